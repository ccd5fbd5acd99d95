"""The sandbox's workspace kept in a JSON file across restarts (`intercom_sandbox --state-file`).

Only the workspace is saved (SandboxState.document()): settings such as faults and rate limits,
counters and the request log start afresh with each process.
"""

import contextlib
import json
import logging
import os
import tempfile
import threading
import time
from pathlib import Path

logger = logging.getLogger(__name__)
SAVE_INTERVAL = 1.0  # seconds: at most one save per interval, however busy the sandbox is


class StateFile:
    """Loads a workspace from `path`, then saves it there after changes from a daemon thread,
    and once more on stop(). A file that cannot be read as a workspace is moved aside."""

    def __init__(self, state, path, interval=SAVE_INTERVAL):
        self.state = state
        self.path = Path(path)
        self.interval = interval
        self.enabled = True  # False once an unreadable file could not be moved aside
        self._saved_revision = None  # None: nothing saved yet, so the first save always writes
        self._failing = False
        self._save_lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = None

    def load(self):
        """Restore the workspace from the file; True if it did, False if there was no file or
        it was unreadable (then moved aside, with a warning: the workspace stays empty)."""
        try:
            document = json.loads(self.path.read_bytes())
            self.state.restore(document)
        except FileNotFoundError:
            return False
        except (OSError, ValueError) as exc:  # JSON and UTF-8 errors are ValueErrors
            self._move_aside(exc)
            return False
        self._saved_revision = self.state.revision
        return True

    def save(self):
        """Write the workspace if it changed since the last save; True if written. Never
        raises: a failed save is logged and tried again on the next call."""
        if not self.enabled:
            return False
        with self._save_lock:
            # Read before the document: a change in between only causes one more save.
            revision = self.state.revision
            if revision == self._saved_revision:
                return False
            try:
                write_private_atomically(self.path, json.dumps(self.state.document(), separators=(",", ":")))
            except (OSError, TypeError, ValueError) as exc:
                if not self._failing:  # once per run of failures, not every second
                    logger.warning("Could not save the Intercom sandbox state to %s (will retry): %s", self.path, exc)
                self._failing = True
                return False
            if self._failing:
                logger.warning("Saved the Intercom sandbox state to %s again", self.path)
            self._failing = False
            self._saved_revision = revision
            return True

    def start(self):
        """Save every `interval` seconds while there are changes, from a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="sandbox-state-file", daemon=True)
        self._thread.start()

    def stop(self):
        """Stop the thread and save what changed since its last save."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.save()

    def _run(self):
        while not self._stopping.wait(self.interval):
            self.save()

    def _move_aside(self, problem):
        aside = unused_path(self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}"))
        try:
            os.rename(self.path, aside)
        except OSError as exc:
            # Saving would overwrite what the operator may want to recover.
            self.enabled = False
            logger.error(
                "The Intercom sandbox state file %s is unreadable (%s) and could not be moved aside (%s): "
                "starting with an empty workspace that is not saved.",
                self.path,
                problem,
                exc,
            )
            return
        logger.warning(
            "The Intercom sandbox state file %s is unreadable (%s): moved it to %s, starting with an empty workspace.",
            self.path,
            problem,
            aside,
        )


def unused_path(path):
    """`path`, or `path` with a "-N" suffix that no file has yet."""
    candidate, n = path, 1
    while candidate.exists():
        candidate, n = path.with_name(f"{path.name}-{n}"), n + 1
    return candidate


def write_private_atomically(path, text):
    """Replace `path` with `text` in one step, readable by its owner only: a crash or a full
    disk mid-write leaves the previous file whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
