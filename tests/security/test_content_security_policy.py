"""Every dashboard (/admin/) response carries a Content-Security-Policy that runs no inline script
and applies no inline style, and the relay's templates hold none. The browser test
(tests/e2e/test_csp_browser.py) checks that no page breaks the policy."""

import re
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.test.utils import override_script_prefix
from django.urls import reverse

from dashboard.middleware import CONTENT_SECURITY_POLICY, dashboard_path
from tests.dashboard.conftest import client_for, make_user

TEMPLATES = Path(__file__).resolve().parents[2] / "dashboard" / "templates"


def directives(response):
    policy = response.headers["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in policy.split("; ")}


def assert_strict(response):
    found = directives(response)
    assert found["script-src"] == ["'self'"]
    assert found["style-src"] == ["'self'"]
    assert found["default-src"] == ["'self'"]
    assert found["object-src"] == ["'none'"] and found["base-uri"] == ["'none'"]
    assert found["frame-ancestors"] == ["'none'"] and found["form-action"] == ["'self'"]
    assert "unsafe" not in response.headers["Content-Security-Policy"]


@pytest.mark.django_db
def test_every_dashboard_response_carries_the_policy(make_call):
    call = make_call(state="failed")
    viewer = client_for(make_user("vic-viewer", "Viewers"))
    admin = client_for(make_user("ann-admin", is_superuser=True))
    responses = {
        "login page": Client().get(reverse("admin:login")),
        "failed login": Client().post(reverse("admin:login"), {"username": "x", "password": "y"}),
        "redirect to the login": Client().get(reverse("admin:delivery_log")),
        "not found": admin.get("/admin/no-such-page/"),
        "bad request": admin.get(reverse("admin:delivery_log"), {"q": "\x00"}),
        "forbidden action": viewer.post(reverse("admin:call_resend", args=[call.pk])),
        "a Django admin page": admin.get(reverse("admin:forwarding_source_changelist")),
        "a Django admin form": admin.get(reverse("admin:auth_user_change", args=[User.objects.first().pk])),
    }
    for name in ["index", "delivery_log", "user_history", "event_names", "data_attributes", "bulk_resend"]:
        responses[name] = admin.get(reverse(f"admin:{name}"))
    responses["call detail"] = admin.get(reverse("admin:call_detail", args=[call.pk]))
    for name, response in responses.items():
        assert response.status_code < 500, name
        assert response.headers.get("Content-Security-Policy") == CONTENT_SECURITY_POLICY, name
        assert_strict(response)


def test_the_ingestion_api_is_left_alone(client, db):
    assert "Content-Security-Policy" not in client.get("/health").headers


@pytest.mark.django_db
@pytest.mark.parametrize("first", ["/relay", ""])
def test_the_dashboard_is_known_under_any_script_prefix(first):
    """Behind a proxy that mounts the relay under a path, the dashboard's responses still carry the
    policy and the API's do not, whichever prefix the first request had (the admin path is found once)."""
    dashboard_path.cache_clear()
    client = Client()
    for prefix in [first, "/relay" if not first else ""]:
        with override_script_prefix(f"{prefix}/"):  # as Django's WSGI handler sets it from SCRIPT_NAME
            page = client.get("/admin/login/", SCRIPT_NAME=prefix)
        assert page.status_code == 200
        assert page.headers.get("Content-Security-Policy") == CONTENT_SECURITY_POLICY, prefix
        assert f'action="{prefix}/admin/login/"' in page.content.decode(), prefix
        assert "Content-Security-Policy" not in client.get("/health", SCRIPT_NAME=prefix).headers, prefix


def template_files():
    return sorted(TEMPLATES.rglob("*.html"))


@pytest.mark.parametrize("path", template_files(), ids=lambda path: str(path.relative_to(TEMPLATES)))
def test_the_relay_templates_hold_no_inline_script_or_style(path):
    text = path.read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), "an inline <script>"
    assert not re.search(r"\son[a-z]+\s*=", text, re.IGNORECASE), "an on…= event handler"
    assert not re.search(r"\sstyle\s*=", text, re.IGNORECASE), "a style= attribute"
    assert not re.search(r"<style\b", text, re.IGNORECASE), "a <style> element"
    assert "javascript:" not in text.lower()
