import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def test_it_runs_from_manage_py_until_sigterm(tmp_path):
    url_file = tmp_path / "url"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings_test"}
    command = [sys.executable, "manage.py", "intercom_sandbox", "--port", "0", "--token", "cmd-token"]
    process = subprocess.Popen(
        [*command, "--event-name-limit", "7", "--url-file", str(url_file)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not url_file.exists() or not url_file.read_text().strip():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        url = url_file.read_text().strip()

        me = requests.get(f"{url}/me", headers={"Authorization": "Bearer cmd-token"}, timeout=5)
        config = requests.get(f"{url}/_sandbox/config", timeout=5).json()

        assert me.status_code == 200
        assert config["event_name_limit"] == 7
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)

    assert process.returncode == 0, err
    assert f"Intercom sandbox listening on {url}" in out
    assert "stopped after 1 requests, 0 OpenAPI violations" in out
