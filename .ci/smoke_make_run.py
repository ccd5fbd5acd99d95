#!/usr/bin/env python3
"""Smoke test of `make run` on a fresh clone, as a new user would run it.

Clones the repository's HEAD (so .venv and var/ start empty), starts `make run` on a free port,
waits for /health, posts an identify and a track with segment-analytics-python using the printed
write key, checks they were stored and delivered to the sandbox, stops it with Ctrl-C (SIGINT to
its process group) within QUICK_STOP seconds and checks that nothing it started is left. A second
`make run` must show the same write key; `manage.py send_demo_traffic`, run from another shell with
none of the relay's settings in its environment (it reads var/relay.env), must be accepted and every
demo call delivered; then it must stop on SIGTERM to make.

Run locally: python3 .ci/smoke_make_run.py (it tests what is committed, not the work tree).
"""

import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The first start creates the virtualenv and installs every pinned package.
FIRST_START_TIMEOUT = 600
START_TIMEOUT = 90
STOP_TIMEOUT = 120
POST_CALLS = """
import sys
import segment.analytics as analytics
from segment.analytics.request import APIError

client = analytics.Client(sys.argv[1], host=sys.argv[2], sync_mode=True, max_retries=0)
try:
    client.identify("smoke-user", {"email": "smoke@example.com"})
    client.track("smoke-user", "Smoke Tested", {"source": "ci"})
except APIError as error:
    print(error.status)
    sys.exit(1)
print(200)
"""
COUNT_CALLS = "from forwarding.models import Call; print(Call.objects.count())"
DELIVERY_STATES = (
    "from forwarding.models import Delivery; print(','.join(sorted(Delivery.objects.values_list('state', flat=True))))"
)
DELIVERY_TIMEOUT = 60
# Ctrl-C with nothing in flight stops everything within this many seconds.
QUICK_STOP = 5
DEMO_STATES = (
    "import json; from collections import Counter; from django.db.models import Q; "
    "from forwarding.models import Delivery; "
    "demo = Q(call__user_id__startswith='demo-') | Q(call__anonymous_id__startswith='demo-'); "
    "print(json.dumps(Counter(Delivery.objects.filter(demo).values_list('state', flat=True))))"
)
RESEND_IDENTIFY = (
    "from forwarding import services; from forwarding.models import Delivery; "
    "print(services.resend(Delivery.objects.get(call__type='identify')))"
)
IDENTIFY_STATE = (
    "from forwarding.models import Delivery; d = Delivery.objects.get(call__type='identify'); "
    "print(d.state, d.attempt_count)"
)


class SmokeFailure(Exception):
    pass


def free_ports():
    """A web port whose next port (the sandbox's) is free too."""
    for _ in range(100):
        port = random.randint(20000, 40000)
        try:
            for candidate in (port, port + 1):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    raise SmokeFailure("no free port pair")


def is_healthy(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def processes_of(clone):
    """Live processes running from the clone (by command line or working directory)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if str(clone) in cmdline or cwd == str(clone) or cwd.startswith(f"{clone}/"):
            found.append(f"{pid} {cmdline.strip()}")
    return found


def django_shell(clone, env, code):
    """What `code` prints, run by the clone's manage.py shell."""
    return subprocess.run(
        [str(clone / ".venv" / "bin" / "python"), "manage.py", "shell", "--verbosity=0", "-c", code],
        cwd=clone,
        env=env | {"DJANGO_SECRET_KEY_FILE": str(clone / "var" / "secret_key")},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def sandbox_contacts(port):
    """External ids of the contacts the sandbox of `make run` holds (its control API)."""
    url = f"http://127.0.0.1:{port + 1}/_sandbox/state"
    with urllib.request.urlopen(url, timeout=5) as response:
        return sorted(c.get("external_id") or "" for c in json.load(response)["contacts"])


def check_continues(clone, env, port):
    """After a restart, the sandbox still holds the first run's contact, and a resend of the
    first run's identify is delivered to it (its token and the relay's caches still valid)."""
    if not (clone / "forwarding" / "sandbox" / "persistence.py").exists():
        print("SKIPPED the restart check: this commit's sandbox keeps no state")
        return
    contacts = sandbox_contacts(port)
    if contacts != ["smoke-user"]:
        raise SmokeFailure(f"the restarted sandbox holds {contacts}, not the first run's contact")
    if django_shell(clone, env, RESEND_IDENTIFY) != "True":
        raise SmokeFailure("the first run's identify could not be resent")
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while (state := django_shell(clone, env, IDENTIFY_STATE)) != "delivered 2":
        if time.monotonic() > deadline:
            raise SmokeFailure(f"the resent identify was not delivered within {DELIVERY_TIMEOUT} s: {state}")
        time.sleep(1)
    if sandbox_contacts(port) != ["smoke-user"]:
        raise SmokeFailure("the resend created a second contact")
    print("after the restart: the sandbox kept its contact, and a resend was delivered to it", flush=True)


def check_demo_traffic(clone, env):
    """send_demo_traffic from a shell with none of the relay's settings: accepted and delivered."""
    bare = {name: value for name, value in env.items() if name not in ("PORT", "RELAY_SANDBOX_PORT")}
    python = str(clone / ".venv" / "bin" / "python")
    sent = subprocess.run(
        [python, "manage.py", "send_demo_traffic", "--seed", "1"], cwd=clone, env=bare, capture_output=True, text=True
    )
    if sent.returncode != 0:
        raise SmokeFailure(f"send_demo_traffic failed in a clean shell: {sent.stderr.strip()[-500:]}")
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while True:
        states = json.loads(django_shell(clone, bare, DEMO_STATES))
        if states and set(states) == {"delivered"}:
            break
        if time.monotonic() > deadline:
            raise SmokeFailure(f"demo calls not all delivered within {DELIVERY_TIMEOUT} s: {states}")
        time.sleep(1)
    print(f"send_demo_traffic from a clean shell: {states['delivered']} calls, all delivered", flush=True)


def check_calls(clone, env, port, write_key):
    """Post an identify and a track: both must be stored and, with the sandbox, delivered."""
    python = str(clone / ".venv" / "bin" / "python")
    posted = subprocess.run(
        [python, "-c", POST_CALLS, write_key, f"http://127.0.0.1:{port}"], capture_output=True, text=True
    )
    status = posted.stdout.strip()
    if status == "404" and not (clone / "forwarding" / "ingestion").is_dir():
        print("SKIPPED the call check: this commit has no ingestion API yet (/v1/batch answers 404)")
        return
    if status != "200":
        raise SmokeFailure(f"segment-analytics-python got {status or posted.stderr.strip()}")
    count = django_shell(clone, env, COUNT_CALLS)
    if count != "2":
        raise SmokeFailure(f"expected 2 stored calls, found {count}")
    print("identify and track posted with segment-analytics-python: 200, stored", flush=True)

    if not (clone / "forwarding" / "management" / "commands" / "intercom_sandbox.py").exists():
        print("SKIPPED the delivery check: this commit has no Intercom sandbox yet")
        return
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while (states := django_shell(clone, env, DELIVERY_STATES)) != "delivered,delivered":
        if time.monotonic() > deadline:
            raise SmokeFailure(f"not delivered to the sandbox within {DELIVERY_TIMEOUT} s: {states}")
        time.sleep(1)
    print("both delivered to the Intercom sandbox", flush=True)


class Relay:
    """One `make run` in its own session, its output in a log file."""

    def __init__(self, clone, env, log):
        self.clone, self.log = clone, log
        with open(log, "ab") as out:
            self.make = subprocess.Popen(
                ["make", "run"], cwd=clone, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def output(self):
        return self.log.read_text(errors="replace")

    def wait_healthy(self, port, timeout):
        deadline = time.monotonic() + timeout
        while not is_healthy(port):
            if self.make.poll() is not None:
                raise SmokeFailure(f"make run exited with {self.make.returncode} before /health answered")
            if time.monotonic() > deadline:
                raise SmokeFailure(f"/health did not answer within {timeout} s")
            time.sleep(1)

    def wait_for_output(self, text, timeout=30):
        """Wait until `text` is in the output: the banner comes just after /health answers."""
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if time.monotonic() > deadline:
                raise SmokeFailure(f"make run did not print {text!r} within {timeout} s")
            time.sleep(0.2)

    def stop(self, signum, whole_group, within=STOP_TIMEOUT):
        started = time.monotonic()
        (os.killpg if whole_group else os.kill)(self.make.pid, signum)
        try:
            self.make.wait(within)
        except subprocess.TimeoutExpired:
            raise SmokeFailure(f"make run still running {within} s after {signum.name}") from None
        self.stopped_in = time.monotonic() - started
        # run_relay prints it last, after every child has exited.
        if not self.output().rstrip().endswith("Stopped."):
            raise SmokeFailure("run_relay did not report a clean stop")
        left = processes_of(self.clone)
        if left:
            raise SmokeFailure("left running after the stop:\n  " + "\n  ".join(left))


def main():
    with tempfile.TemporaryDirectory(prefix="relay-smoke-") as tmp:
        clone = Path(tmp) / "relay"
        log = Path(tmp) / "make-run.log"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        port = free_ports()
        env = {
            name: value
            for name, value in os.environ.items()
            # A new user's shell: none of the relay's settings, and not inside another make.
            if not name.startswith(("DJANGO_", "INTERCOM_", "RELAY_", "MAKE"))
            and name not in ("DATABASE_URL", "REDIS_URL", "MFLAGS")
        }
        env |= {"PORT": str(port), "RELAY_SANDBOX_PORT": str(port + 1)}
        relay = None
        try:
            print(f"make run in a fresh clone ({clone}), PORT={port}", flush=True)
            started = time.monotonic()
            relay = Relay(clone, env, log)
            relay.wait_healthy(port, FIRST_START_TIMEOUT)
            print(f"/health answered 200 after {time.monotonic() - started:.0f} s", flush=True)

            write_key = (clone / "var" / "write_key").read_text().strip()
            relay.wait_for_output(f"write key {write_key}")
            check_calls(clone, env, port, write_key)

            relay.stop(signal.SIGINT, whole_group=True, within=QUICK_STOP)
            print(f"Ctrl-C (SIGINT to the process group) stopped everything in {relay.stopped_in:.1f} s", flush=True)

            log.write_text("")
            relay = Relay(clone, env, log)
            relay.wait_healthy(port, START_TIMEOUT)
            relay.wait_for_output(f"write key {write_key}")
            print("a second make run came up and showed the same write key", flush=True)
            check_continues(clone, env, port)
            check_demo_traffic(clone, env)
            relay.stop(signal.SIGTERM, whole_group=False)
            print("SIGTERM to make stopped everything")
        except (SmokeFailure, subprocess.CalledProcessError, OSError) as failure:
            print(f"SMOKE FAILED: {failure}", file=sys.stderr)
            if relay:
                print("---- make run output, last 60 lines ----", file=sys.stderr)
                print("\n".join(relay.output().splitlines()[-60:]), file=sys.stderr)
            return 1
        finally:
            # Nothing of a failed run may outlive the temporary directory.
            for line in processes_of(clone):
                try:
                    os.kill(int(line.split()[0]), signal.SIGKILL)
                except ProcessLookupError:
                    pass
    print("make run smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
