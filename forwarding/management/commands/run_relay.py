"""`make run`: set up this machine, then run web, worker and (without a token) the Intercom sandbox.

Each child runs in its own process group; Ctrl-C or SIGTERM stops every child and its group, and
so does the exit of any one child (this command then exits non-zero).
"""

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from config.env import envint
from forwarding.models import Source

VAR = settings.BASE_DIR / "var"
MANAGE = str(settings.BASE_DIR / "manage.py")
ADMIN_USERNAME = "admin"
EXPORTED = ["DJANGO_SECRET_KEY_FILE", "INTERCOM_API_BASE", "INTERCOM_ACCESS_TOKEN", "PORT"]
# The settings this command chose, read by manage.py in any other shell (see manage.py).
RUN_SETTINGS = "relay.env"
# Seconds the web process gets to answer /health, and the children get to exit after SIGTERM
# (together: a delivery in flight finishes within its lease; idle, they are gone within seconds).
READY_TIMEOUT = 60
STOP_TIMEOUT = 30
# A process that exits is started again, up to RESTART_LIMIT times in RESTART_WINDOW seconds;
# one that keeps dying (a port taken, a broken setting) stops everything.
RESTART_LIMIT = 5
RESTART_WINDOW = 600
# gunicorn: 2 processes x 4 threads (gthread); --timeout only restarts a stuck worker, it does not
# bound a slow client: in production a buffering reverse proxy does (docs/scale-out.md). A stopping
# worker gets 10 s to finish its requests. No access log: some URLs carry a write key.
# No control socket: it sits at one path per user, so two relays (or tests) would collide.
GUNICORN_OPTIONS = ["--workers=2", "--threads=4", "--timeout=30", "--graceful-timeout=10", "--no-control-socket"]


def write_private(path, text):
    """Write `text` to `path`, readable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # the mode given to os.open applies only to a new file
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")


def keep_private(var):
    """Files this command and its children create are their owner's only (the database and its
    WAL hold every payload, beside secrets kept 0600); files made before are made so too."""
    os.umask(0o077)
    var.chmod(0o700)
    for path in var.iterdir():
        if path.is_file() and not path.is_symlink():
            path.chmod(0o600)


def read_private(path):
    """The stripped text of `path`, or "" when there is no such file."""
    try:
        return Path(path).read_text().strip()
    except FileNotFoundError:
        return ""


def ensure_sandbox_token(path):
    """The sandbox's bearer token: made once and saved to `path`, so that the printed export line
    stays valid across restarts."""
    token = read_private(path)
    if not token:
        token = secrets.token_urlsafe(24)
        write_private(path, token)
    return token


def sandbox_command(var, port):
    """The sandbox's command line and token. Its token and workspace live in `var`, so that the
    next run continues where this one stopped."""
    token = ensure_sandbox_token(var / "sandbox_token")
    state = var / "sandbox_state.json"
    return [MANAGE, "intercom_sandbox", "--port", str(port), "--token", token, "--state-file", str(state)], token


def child_environment(var, sandbox_url="", sandbox_token=""):
    """The environment of the relay's processes: production-like, over plain HTTP on loopback."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("DJANGO_DEBUG", None)
    # Secure cookies would make the dashboard login fail over http://127.0.0.1.
    env.setdefault("DJANGO_SECURE_COOKIES", "false")
    if not env.get("DJANGO_SECRET_KEY"):
        env.pop("DJANGO_SECRET_KEY", None)
        if not env.get("DJANGO_SECRET_KEY_FILE"):
            path = var / "secret_key"
            if not path.exists():
                write_private(path, secrets.token_urlsafe(50))
            env["DJANGO_SECRET_KEY_FILE"] = str(path)
    if sandbox_url:
        env["INTERCOM_API_BASE"] = sandbox_url
        env["INTERCOM_ACCESS_TOKEN"] = sandbox_token
    return env


def ensure_write_key(path):
    """The default source's write key: created and saved to `path` when there is no source yet,
    else read back from `path` if it still authenticates; None when it cannot be shown."""
    if not Source.objects.exists():
        _, key = Source.create_with_key("Default")
        write_private(path, key)
        return key
    key = read_private(path)
    return key if Source.authenticate(key) else None


def ensure_admin(path):
    """The password of the `admin` superuser: created and saved to `path` when there is no
    superuser yet, else read back from `path` if it still matches; None when it cannot be shown."""
    users = get_user_model().objects
    if not users.filter(is_superuser=True).exists() and not users.filter(username=ADMIN_USERNAME).exists():
        password = secrets.token_urlsafe(12)
        users.create_superuser(ADMIN_USERNAME, "", password)
        write_private(path, password)
        return password
    password = read_private(path)
    admin = users.filter(username=ADMIN_USERNAME).first()
    return password if admin and password and admin.check_password(password) else None


def first_exited(children):
    """The name of a child that has exited, or None."""
    return next((name for name, proc in children.items() if proc.poll() is not None), None)


class Restarts:
    """When each child was restarted, to give up on one that keeps dying."""

    def __init__(self, limit=RESTART_LIMIT, window=RESTART_WINDOW, clock=time.monotonic):
        self.limit, self.window, self.clock = limit, window, clock
        self.times = {}

    def allow(self, name):
        """Whether `name` may be started again now (and count it)."""
        now = self.clock()
        recent = [t for t in self.times.get(name, []) if now - t < self.window]
        if len(recent) >= self.limit:
            return False
        self.times[name] = [*recent, now]
        return True


def stop(children, timeout=STOP_TIMEOUT):
    """Stop the children together: SIGTERM to each leader at once, one shared wait, then SIGKILL
    to each group. Only the leaders get SIGTERM: gunicorn's master and qcluster stop their own
    workers (a qcluster whose sentinel is killed along with it can hang)."""
    for proc in children.values():
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + timeout
    for proc in children.values():
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for proc in children.values():
        try:
            # Whatever is left in its group: a hung leader, or workers it left behind.
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def save_run_settings(path, env):
    """Write the settings this command gave its children to `path`, for manage.py in other shells."""
    lines = ["# Written by `make run`: the settings it chose. The environment wins over them."]
    lines += [f"{name}={env[name]}" for name in EXPORTED if env.get(name)]
    write_private(path, "\n".join(lines))


KEPT = "The relay starts all the same: calls are kept and retried."


def intercom_check(env):
    """One line on whether the configured Intercom accepts the token (GET /me), or "" when fine."""
    from forwarding import intercom

    base = env.get("INTERCOM_API_BASE") or intercom.base_url()
    token = env.get("INTERCOM_ACCESS_TOKEN") or settings.INTERCOM_ACCESS_TOKEN
    answer = intercom.Client(base, token, settings.INTERCOM_API_VERSION, (3, 5)).me()
    if answer.ok:
        return ""
    if answer.status in (401, 403):
        return f"Intercom refused the token (HTTP {answer.status}): check INTERCOM_ACCESS_TOKEN. {KEPT}"
    if answer.status is None:
        return f"Intercom cannot be reached at {base} ({answer.error}). {KEPT}"
    return f"Intercom answered GET /me with HTTP {answer.status}. {KEPT}"


def is_healthy(url):
    """Whether `url` answers 200 now."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


class Command(BaseCommand):
    help = "Set up (secret key, migrations, write key, admin user, static files) and run the relay until Ctrl-C."
    # This command creates the secret key the checks ask for; its children run them.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, help="web port (default: $PORT, else 8000)")

    def handle(self, *args, port=None, **options):
        port = port or envint("PORT", 8000, minimum=1)
        VAR.mkdir(exist_ok=True)
        keep_private(VAR)
        call_command("migrate", interactive=False, verbosity=1)
        write_key = ensure_write_key(VAR / "write_key")
        password = ensure_admin(VAR / "admin_password")
        call_command("collectstatic", interactive=False, verbosity=0)
        connections.close_all()

        commands, env, intercom = self.plan(port)
        env["PORT"] = str(port)
        save_run_settings(VAR / RUN_SETTINGS, env)
        if settings.INTERCOM_ACCESS_TOKEN:  # the real API: say at once when it will not work
            problem = intercom_check(env)
            if problem:
                self.stderr.write(problem)
        received = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda signum, frame: received.append(signum))
        children, dead = {}, None

        def start(name):
            children[name] = subprocess.Popen([sys.executable, *commands[name]], env=env, start_new_session=True)

        try:
            for name in commands:
                start(name)
            base = f"http://127.0.0.1:{port}"
            if self.wait_until_ready(f"{base}/health", children, received):
                self.print_banner(base, write_key, password, intercom, env)
            dead = self.supervise(children, start, received)
        finally:
            self.stdout.write("Stopping…")
            stop(children)
        if dead:
            raise CommandError(
                f"The {dead} process exited (status {children[dead].returncode}) {RESTART_LIMIT} times "
                f"in {RESTART_WINDOW // 60} minutes; stopped the others."
            )
        self.stdout.write("Stopped.")

    def plan(self, port):
        """The children's command lines (by name), their environment, and where Intercom calls go."""
        commands = {}
        sandbox_url = sandbox_token = ""
        if settings.INTERCOM_ACCESS_TOKEN:
            intercom = "the real API (INTERCOM_ACCESS_TOKEN is set)"
        elif "intercom_sandbox" in get_commands():
            sandbox_port = envint("RELAY_SANDBOX_PORT", port + 1, minimum=1)
            sandbox_url = f"http://127.0.0.1:{sandbox_port}"
            commands["sandbox"], sandbox_token = sandbox_command(VAR, sandbox_port)
            intercom = f"the sandbox at {sandbox_url}/ (no INTERCOM_ACCESS_TOKEN set)"
        else:
            intercom = "nowhere: no INTERCOM_ACCESS_TOKEN and no intercom_sandbox command"
        commands["web"] = ["-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}", *GUNICORN_OPTIONS]
        commands["worker"] = [MANAGE, "qcluster"]
        return commands, child_environment(VAR, sandbox_url, sandbox_token), intercom

    def supervise(self, children, start, received, restarts=None):
        """Until a stop signal: start again a child that exits, within its restart limit.
        Returns the name of a child that exited once too often, or None."""
        restarts = restarts or Restarts()
        while not received:
            dead = first_exited(children)
            if dead:
                status = children[dead].returncode
                if not restarts.allow(dead):
                    return dead
                self.stderr.write(f"The {dead} process exited (status {status}); starting it again.")
                # What it left in its process group (gunicorn's workers, qcluster's) goes first.
                stop({dead: children[dead]}, timeout=1)
                start(dead)
            time.sleep(0.2)
        return None

    def wait_until_ready(self, url, children, received):
        """True once `url` answers 200; False if a stop signal came or a child exited first."""
        deadline = time.monotonic() + READY_TIMEOUT
        while not received and not first_exited(children):
            if is_healthy(url):
                return True
            if time.monotonic() > deadline:
                raise CommandError(f"{url} did not answer within {READY_TIMEOUT} s.")
            time.sleep(0.3)
        return False

    def print_banner(self, base, write_key, password, intercom, env):
        password = password or "(not shown: var/admin_password is missing or stale)"
        write_key = write_key or "(not shown: var/write_key is missing or stale)"
        lines = [
            "",
            "Intercom Relay is running.",
            f"  Dashboard:  {base}/admin/   user {ADMIN_USERNAME}, password {password}",
            f"  Ingestion:  {base}/v1/batch   write key {write_key}",
            f"  Intercom:   {intercom}",
            "  Commands:   .venv/bin/python manage.py send_demo_traffic   (any shell: settings in var/relay.env)",
            "Press Ctrl-C to stop.",
            "",
        ]
        self.stdout.write("\n".join(lines), self.style.SUCCESS)
        self.stdout.flush()  # shown now, also when the output goes to a pipe or a file
