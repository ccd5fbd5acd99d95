"""Production settings: `manage.py check --deploy` is clean, production refuses to start without its
secrets, and HTTPS is enforced everywhere but the ingestion API and /health, which never redirect.

"Production" is DJANGO_DEBUG off, the default. The commands run in subprocesses with an environment
built from scratch, so nothing of the test settings leaks in.
"""

import os
import secrets
import subprocess
import sys

import pytest
from django.test import Client

from forwarding.models import Call
from tests.ingestion.conftest import basic, message
from tests.processes import ROOT

PRODUCTION = {
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
    "DJANGO_ALLOWED_HOSTS": "relay.example.com",
    "DJANGO_HSTS_SECONDS": "31536000",
    "DJANGO_HSTS_INCLUDE_SUBDOMAINS": "true",
    "DJANGO_HSTS_PRELOAD": "true",
    "INTERCOM_ACCESS_TOKEN": "intercom-token-for-the-check",
}


def manage(*args, tmp_path, timeout=60, **env):
    """Run manage.py with production settings and exactly `env` (None removes a variable)."""
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        # A database of its own: the checks never open it, and nothing else is touched.
        "DATABASE_URL": f"sqlite:///{tmp_path / 'deploy.sqlite3'}",
        **PRODUCTION,
    }
    for name, value in env.items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    result = manage("check", "--deploy", "--fail-level", "WARNING", tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize(
    "env,warnings",
    [
        ({"DJANGO_HSTS_SECONDS": None}, ["security.W004"]),
        ({"DJANGO_SECURE_COOKIES": "false"}, ["security.W008", "security.W012", "security.W016"]),
        ({"DJANGO_SSL_REDIRECT": "false"}, ["security.W008"]),
        ({"DJANGO_SECRET_KEY": "short"}, ["security.W009"]),
        ({"DJANGO_DEBUG": "true"}, ["security.W018"]),
    ],
)
def test_check_deploy_says_what_a_weaker_setting_gives_up(tmp_path, env, warnings):
    result = manage("check", "--deploy", "--fail-level", "WARNING", tmp_path=tmp_path, **env)
    assert result.returncode != 0
    for warning in warnings:
        assert warning in result.stderr + result.stdout


@pytest.mark.parametrize("command", [["check"], ["migrate", "--check"], ["qcluster"]])
def test_production_refuses_to_start_without_its_secret_key(tmp_path, command):
    result = manage(*command, tmp_path=tmp_path, DJANGO_SECRET_KEY=None)
    assert result.returncode != 0
    assert "relay.E001" in result.stderr
    assert "DJANGO_SECRET_KEY is not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_production_refuses_a_secret_key_file_it_cannot_read(tmp_path):
    missing = tmp_path / "no-such-secret"
    result = manage("check", tmp_path=tmp_path, DJANGO_SECRET_KEY=None, DJANGO_SECRET_KEY_FILE=str(missing))
    assert result.returncode != 0
    assert f"DJANGO_SECRET_KEY_FILE={missing} cannot be read" in result.stderr


def test_production_reads_its_secrets_from_files(tmp_path):
    key_file, token_file = tmp_path / "secret_key", tmp_path / "intercom_token"
    key_file.write_text(secrets.token_urlsafe(64) + "\n")
    token_file.write_text("token-from-a-file\n")
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        tmp_path=tmp_path,
        DJANGO_SECRET_KEY=None,
        DJANGO_SECRET_KEY_FILE=str(key_file),
        INTERCOM_ACCESS_TOKEN=None,
        INTERCOM_ACCESS_TOKEN_FILE=str(token_file),
    )
    assert result.returncode == 0, result.stderr


def test_production_refuses_to_start_with_nowhere_to_deliver(tmp_path):
    result = manage("check", tmp_path=tmp_path, INTERCOM_ACCESS_TOKEN=None)
    assert result.returncode != 0
    assert "relay.E002" in result.stderr
    assert "INTERCOM_ACCESS_TOKEN is not set" in result.stderr


def test_without_a_token_the_sandbox_named_by_intercom_api_base_is_fine(tmp_path):
    # What `make run` does when no token is set: its children forward to the sandbox it starts.
    result = manage("check", tmp_path=tmp_path, INTERCOM_ACCESS_TOKEN=None, INTERCOM_API_BASE="http://127.0.0.1:8001")
    assert result.returncode == 0, result.stderr


def test_development_needs_no_secret(tmp_path):
    result = manage("check", tmp_path=tmp_path, DJANGO_DEBUG="true", DJANGO_SECRET_KEY=None, INTERCOM_ACCESS_TOKEN=None)
    assert result.returncode == 0, result.stderr


# --- HTTPS redirect ---------------------------------------------------------------------------


@pytest.fixture
def https_only(settings):
    """This process's settings with the redirect production has (the exemptions are config.settings')."""
    settings.SECURE_SSL_REDIRECT = True
    return Client()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "route,body",
    [
        ("/v1/batch", {"batch": [message()]}),
        ("/v1/import", {"batch": [message()]}),
        ("/v1/b", {"batch": [message()]}),
        ("/v1/track", message()),
        ("/v1/t", message()),
        ("/v1/identify", message("identify")),
    ],
)
def test_the_ingestion_api_is_never_redirected_to_https(https_only, source, route, body):
    _, key = source
    response = https_only.post(route, body, content_type="application/json", HTTP_AUTHORIZATION=basic(key))
    assert response.status_code == 200, response.content
    assert Call.objects.count() >= 1


@pytest.mark.django_db
def test_health_and_ingestion_errors_are_never_redirected(https_only, source):
    _, key = source
    assert https_only.get("/health").status_code == 200
    assert https_only.get(f"/v1/projects/{key}/settings").status_code == 200
    assert https_only.options("/v1/batch").status_code == 204
    assert https_only.post("/v1/batch/", {}, content_type="application/json").status_code == 404
    assert https_only.post("/v1/track", message(), content_type="application/json").status_code == 401


@pytest.mark.django_db
def test_the_dashboard_is_redirected_to_https(https_only):
    response = https_only.get("/admin/login/")
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/admin/login/"
    secure = https_only.get("/admin/login/", secure=True)
    assert secure.status_code == 200
