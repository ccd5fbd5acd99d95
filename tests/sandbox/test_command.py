import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import requests

from forwarding.sandbox.testing import API_VERSION

ROOT = Path(__file__).resolve().parents[2]
HEADERS = {"Authorization": "Bearer cmd-token", "Intercom-Version": API_VERSION, "Accept": "application/json"}


def start(tmp_path, *options):
    """`manage.py intercom_sandbox` on a free port with token cmd-token; returns (process, URL)
    once it listens."""
    url_file = tmp_path / "url"
    url_file.unlink(missing_ok=True)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings_test"}
    command = [sys.executable, "manage.py", "intercom_sandbox", "--port", "0", "--token", "cmd-token"]
    process = subprocess.Popen(
        [*command, "--url-file", str(url_file), *options],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not url_file.exists() or not url_file.read_text().strip():
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            raise AssertionError("the sandbox did not start")
        time.sleep(0.1)
    return process, url_file.read_text().strip()


def stop(process):
    """SIGTERM, as make run stops it; returns (stdout, stderr) after checking it exited cleanly."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    return out, err


def test_it_runs_from_manage_py_until_sigterm(tmp_path):
    process, url = start(tmp_path, "--event-name-limit", "7")
    try:
        me = requests.get(f"{url}/me", headers=HEADERS, timeout=5)
        config = requests.get(f"{url}/_sandbox/config", timeout=5).json()
    finally:
        out, err = stop(process)

    assert me.status_code == 200
    assert config["event_name_limit"] == 7
    assert f"Intercom sandbox listening on {url}" in out
    assert "stopped after 1 requests, 0 OpenAPI violations" in out


def test_it_keeps_its_workspace_in_the_state_file_across_restarts(tmp_path):
    state_file = tmp_path / "state.json"
    process, url = start(tmp_path, "--state-file", str(state_file))
    try:
        body = {"role": "user", "external_id": "u1", "email": "ada@example.com"}
        created = requests.post(f"{url}/contacts", json=body, headers=HEADERS, timeout=5)
        id_code = requests.get(f"{url}/me", headers=HEADERS, timeout=5).json()["app"]["id_code"]
    finally:
        out, err = stop(process)  # right away: the save on SIGTERM must catch the contact

    assert created.status_code == 200
    assert f"Workspace {id_code}: new, saved to {state_file}" in out
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600

    process, url = start(tmp_path, "--state-file", str(state_file))
    try:
        found = requests.get(f"{url}/contacts/find_by_external_id/u1", headers=HEADERS, timeout=5)
        me = requests.get(f"{url}/me", headers=HEADERS, timeout=5)
        violations = requests.get(f"{url}/_sandbox/violations", timeout=5).json()
    finally:
        out, err = stop(process)

    assert found.status_code == 200
    assert (found.json()["id"], found.json()["email"]) == (created.json()["id"], "ada@example.com")
    assert me.json()["app"]["id_code"] == id_code
    assert violations == []
    assert f"Workspace {id_code}: loaded from {state_file} (1 contacts)" in out


def test_it_starts_empty_from_a_corrupt_state_file_and_moves_the_file_aside(tmp_path):
    state_file = tmp_path / "state.json"
    state_file.write_text("{not json")
    process, url = start(tmp_path, "--state-file", str(state_file))
    try:
        state = requests.get(f"{url}/_sandbox/state", timeout=5).json()
    finally:
        out, err = stop(process)

    assert state["contacts"] == []
    assert [p.read_text() for p in tmp_path.glob("state.json.corrupt-*")] == ["{not json"]
    assert "is unreadable" in err and "starting with an empty workspace" in err
    assert json.loads(state_file.read_text())["workspace"]["id_code"] == state["workspace"]["id_code"]
