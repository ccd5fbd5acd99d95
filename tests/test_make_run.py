"""`make run` (the run_relay command): first-run setup and stopping children.

The whole command on a fresh clone is exercised by `.ci/smoke_make_run.py`, run by `.ci/run`.
"""

import os
import signal
import stat
import subprocess
import sys
import threading
import time

import pytest
from django.contrib.auth import get_user_model

from forwarding.management.commands import run_relay
from forwarding.management.commands.run_relay import (
    MANAGE,
    Command,
    child_environment,
    ensure_admin,
    ensure_write_key,
    first_exited,
    stop,
)
from forwarding.models import Source


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_it_creates_a_write_key_once_and_shows_it_again(db, tmp_path):
    path = tmp_path / "write_key"

    key = ensure_write_key(path)

    assert Source.authenticate(key).name == "Default"
    assert path.read_text().strip() == key
    assert mode(path) == 0o600
    assert ensure_write_key(path) == key
    assert Source.objects.count() == 1


def test_it_does_not_show_a_key_it_did_not_save(db, tmp_path):
    Source.create_with_key("Website")
    (tmp_path / "write_key").write_text("wk_from_another_database\n")

    assert ensure_write_key(tmp_path / "write_key") is None
    assert ensure_write_key(tmp_path / "missing") is None
    assert Source.objects.count() == 1


def test_it_creates_an_admin_once_and_shows_the_password_again(db, tmp_path):
    path = tmp_path / "admin_password"

    password = ensure_admin(path)

    admin = get_user_model().objects.get()
    assert (admin.username, admin.is_superuser, admin.is_staff) == ("admin", True, True)
    assert admin.check_password(password)
    assert mode(path) == 0o600
    assert ensure_admin(path) == password
    assert get_user_model().objects.count() == 1


def test_it_does_not_show_a_password_that_was_changed(db, tmp_path):
    path = tmp_path / "admin_password"
    ensure_admin(path)
    admin = get_user_model().objects.get()
    admin.set_password("changed by the operator")
    admin.save()

    assert ensure_admin(path) is None


def test_it_leaves_existing_superusers_alone(db, tmp_path):
    get_user_model().objects.create_superuser("ops", "", "secret")

    assert ensure_admin(tmp_path / "admin_password") is None
    assert not (tmp_path / "admin_password").exists()
    assert get_user_model().objects.count() == 1


def test_children_run_production_like_with_a_saved_secret_key(monkeypatch, tmp_path):
    monkeypatch.setenv("DJANGO_DEBUG", "true")
    monkeypatch.setenv("DJANGO_SECRET_KEY", "")
    monkeypatch.delenv("DJANGO_SECRET_KEY_FILE", raising=False)
    monkeypatch.delenv("DJANGO_SECURE_COOKIES", raising=False)

    env = child_environment(tmp_path, "http://127.0.0.1:8001", "sandbox-token")

    assert "DJANGO_DEBUG" not in env
    assert "DJANGO_SECRET_KEY" not in env
    assert env["DJANGO_SECURE_COOKIES"] == "false"
    key_file = tmp_path / "secret_key"
    assert env["DJANGO_SECRET_KEY_FILE"] == str(key_file)
    secret_key = key_file.read_text()
    assert len(secret_key.strip()) >= 50
    assert mode(key_file) == 0o600
    assert (env["INTERCOM_API_BASE"], env["INTERCOM_ACCESS_TOKEN"]) == ("http://127.0.0.1:8001", "sandbox-token")
    # The key survives restarts, and so do sessions signed with it.
    assert child_environment(tmp_path)["DJANGO_SECRET_KEY_FILE"] == str(key_file)
    assert key_file.read_text() == secret_key


def test_children_keep_a_configured_secret_key_and_token(monkeypatch, tmp_path):
    monkeypatch.setenv("DJANGO_SECRET_KEY", "configured")
    monkeypatch.setenv("INTERCOM_ACCESS_TOKEN", "real-token")

    env = child_environment(tmp_path)

    assert env["DJANGO_SECRET_KEY"] == "configured"
    assert "DJANGO_SECRET_KEY_FILE" not in env
    assert env["INTERCOM_ACCESS_TOKEN"] == "real-token"
    assert not (tmp_path / "secret_key").exists()


def test_the_sandbox_keeps_its_token_and_workspace_in_var(monkeypatch, settings, tmp_path):
    monkeypatch.setattr(run_relay, "VAR", tmp_path)
    monkeypatch.delenv("RELAY_SANDBOX_PORT", raising=False)
    settings.INTERCOM_ACCESS_TOKEN = ""

    commands, env, _ = Command().plan(8000)

    token_file = tmp_path / "sandbox_token"
    token = token_file.read_text().strip()
    assert len(token) >= 32
    assert mode(token_file) == 0o600
    assert commands["sandbox"] == [
        MANAGE,
        "intercom_sandbox",
        "--port",
        "8001",
        "--token",
        token,
        "--state-file",
        str(tmp_path / "sandbox_state.json"),
    ]
    assert (env["INTERCOM_API_BASE"], env["INTERCOM_ACCESS_TOKEN"]) == ("http://127.0.0.1:8001", token)
    # The next make run reuses the token: the export line printed before stays valid.
    assert Command().plan(8000)[0]["sandbox"] == commands["sandbox"]
    assert token_file.read_text().strip() == token


def test_there_is_no_sandbox_token_with_a_real_intercom_token(monkeypatch, settings, tmp_path):
    monkeypatch.setattr(run_relay, "VAR", tmp_path)
    settings.INTERCOM_ACCESS_TOKEN = "real-token"

    commands, _, _ = Command().plan(8000)

    assert "sandbox" not in commands
    assert not (tmp_path / "sandbox_token").exists()


def spawn(script):
    """A child in its own process group, as run_relay starts them; returns once it printed a line."""
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True, stdout=subprocess.PIPE, text=True)
    proc.stdout.readline()
    return proc


def group_members(pgid):
    """Live processes in process group `pgid`, after waiting a little for them to go."""
    deadline = time.monotonic() + 5
    while True:
        members = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    state, _ppid, pgrp = f.read().rsplit(")", 1)[1].split()[:3]
            except OSError:
                continue
            if int(pgrp) == pgid and state != "Z":
                members.append(int(pid))
        if not members or time.monotonic() > deadline:
            return members
        time.sleep(0.1)


SLEEPER = "import time; print('ready', flush=True); time.sleep(60)"


@pytest.mark.timeout(30)
def test_stop_ends_each_child_and_what_it_left_in_its_group():
    # A leader that ignores SIGTERM and has a worker of its own: both must be gone.
    stubborn = spawn(
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    polite = spawn(SLEEPER)

    stop({"polite": polite, "stubborn": stubborn}, timeout=1)

    assert (polite.returncode, stubborn.returncode) == (-signal.SIGTERM, -signal.SIGKILL)
    assert group_members(stubborn.pid) == []
    assert group_members(polite.pid) == []


@pytest.mark.timeout(30)
def test_stop_waits_for_the_children_together_not_one_after_another():
    # Each takes 2 s to finish after SIGTERM, as a worker finishing its task does.
    slow = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *a: (time.sleep(2), sys.exit(0)))\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    children = {name: spawn(slow) for name in ("sandbox", "web", "worker")}
    started = time.monotonic()

    stop(children, timeout=10)

    assert time.monotonic() - started < 4  # not 6
    assert [proc.returncode for proc in children.values()] == [0, 0, 0]


def test_manage_py_reads_the_settings_make_run_saved_and_the_environment_wins(tmp_path):
    import manage

    saved = tmp_path / "relay.env"
    run_relay.save_run_settings(
        saved,
        {
            "DJANGO_SECRET_KEY_FILE": "/k",
            "INTERCOM_API_BASE": "http://127.0.0.1:8001",
            "INTERCOM_ACCESS_TOKEN": "t",
            "PORT": "8000",
        },
    )

    assert mode(saved) == 0o600
    assert manage.run_settings(saved, {}) == {
        "DJANGO_SECRET_KEY_FILE": "/k",
        "INTERCOM_API_BASE": "http://127.0.0.1:8001",
        "INTERCOM_ACCESS_TOKEN": "t",
        "PORT": "8000",
    }
    assert "PORT" not in manage.run_settings(saved, {"PORT": "9000"})
    # A token of one's own never goes to the sandbox's URL, nor the sandbox's token to Intercom.
    assert manage.run_settings(saved, {"INTERCOM_ACCESS_TOKEN": "real"}) == {
        "DJANGO_SECRET_KEY_FILE": "/k",
        "PORT": "8000",
    }
    assert manage.run_settings(tmp_path / "missing", {}) == {}


def test_a_refused_token_or_an_unreachable_intercom_is_said_at_start(settings):
    from forwarding.sandbox.testing import running_sandbox

    with running_sandbox(token="right") as sandbox:
        assert run_relay.intercom_check({"INTERCOM_API_BASE": sandbox.url, "INTERCOM_ACCESS_TOKEN": "right"}) == ""
        refused = run_relay.intercom_check({"INTERCOM_API_BASE": sandbox.url, "INTERCOM_ACCESS_TOKEN": "wrong"})
    unreachable = run_relay.intercom_check({"INTERCOM_API_BASE": "http://127.0.0.1:9", "INTERCOM_ACCESS_TOKEN": "t"})

    assert refused.startswith("Intercom refused the token (HTTP 401)")
    assert unreachable.startswith("Intercom cannot be reached at http://127.0.0.1:9")


@pytest.mark.timeout(30)
def test_it_notices_a_child_that_exited():
    running = spawn(SLEEPER)
    done = spawn("print('ready')")
    done.wait()

    assert first_exited({"web": running, "worker": done}) == "worker"
    stop({"web": running})
    assert first_exited({"web": running}) == "web"


@pytest.mark.timeout(30)
def test_a_child_that_dies_is_started_again_and_one_that_keeps_dying_stops_everything():
    children, started = {"web": spawn(SLEEPER), "worker": spawn("print('ready')")}, []

    def start(name):
        started.append(name)
        children[name] = spawn("print('ready')") if len(started) < 3 else spawn(SLEEPER)

    # The worker dies twice and then stays up: restarted each time, until a stop signal.
    received = []
    restarts = run_relay.Restarts(limit=5, window=600)
    threading.Timer(3, lambda: received.append(signal.SIGTERM)).start()
    assert Command().supervise(children, start, received, restarts) is None
    assert started == ["worker", "worker", "worker"]
    assert children["worker"].poll() is None
    stop(children)

    # One that dies every time: given up after its limit.
    children = {"web": spawn(SLEEPER), "worker": spawn("print('ready')")}
    dead = Command().supervise(
        children, lambda name: children.update({name: spawn("print('ready')")}), [], run_relay.Restarts(limit=2)
    )
    assert dead == "worker"
    stop(children)


def test_the_database_and_everything_in_var_is_its_owners_only(tmp_path):
    old = os.umask(0o022)
    try:
        (tmp_path / "relay.sqlite3").write_text("")
        (tmp_path / "relay.sqlite3-wal").write_text("")
        run_relay.keep_private(tmp_path)
        (tmp_path / "made-after").write_text("")  # as SQLite creates its WAL and journal
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    finally:
        os.umask(old)
    assert modes == {"relay.sqlite3": 0o600, "relay.sqlite3-wal": 0o600, "made-after": 0o600}
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700
