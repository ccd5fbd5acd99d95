"""Logging filters: django-q2's INFO lines per task ("Enqueued [...]", "... processing ...",
"Processed ...") are DEBUG here, so that a worker's console shows what went wrong, not every task;
and write keys in request lines and paths are blanked out before any line is written."""

import logging
import re

PER_TASK = re.compile(r"^(Process-[\w:-]+ processing |Processed '|Enqueued \[)")


class PerTaskToDebug(logging.Filter):
    """Demote django-q2's per-task INFO lines to DEBUG (kept only when DEBUG is wanted)."""

    def filter(self, record):
        if record.levelno == logging.INFO and PER_TASK.match(record.getMessage()):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


# Where a URL carries a write key: RudderStack's `?writeKey=` (beacons, sourceConfig), the
# analytics.js settings document and the per-key analytics.js loader.
WRITE_KEY_IN_URL = re.compile(
    r"(?P<before>[?&]writeKey=|/v1/projects/|/analytics\.js/v1/)(?P<key>[^&/\s\"'#?]+)", re.IGNORECASE
)
REDACTED = "[redacted]"


def redact_write_keys(text):
    """`text` with every write key of a URL in it replaced by [redacted]."""
    return WRITE_KEY_IN_URL.sub(lambda match: match["before"] + REDACTED, text)


class RedactWriteKeys(logging.Filter):
    """Blank out write keys in URLs before a record is written: runserver's request lines
    (django.server), Django's "Not Found: /v1/projects/<key>/settings" (django.request), anything else.

    The record's message is formatted once here and kept formatted, so that every handler writes
    the redacted text; the request itself (record.request) is left as it is.
    """

    def filter(self, record):
        message = record.getMessage()
        redacted = redact_write_keys(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
