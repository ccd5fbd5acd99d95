"""Browser tests: Playwright driving Debian's Chromium (/usr/bin/chromium), never a downloaded browser."""

import os
import shutil

import pytest
from django.contrib.auth.models import Group, User
from segment.analytics import Client

CHROMIUM = os.environ.get("RELAY_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
PASSWORD = "a-browser-test-password"

# Playwright's sync API runs an event loop in this thread; the ORM calls in tests are still sync.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def make_user(username, group_name=None, superuser=False):
    """A staff user in the given role group (dashboard.roles: every flush leaves the groups in place)."""
    user = User.objects.create_user(username, f"{username}@example.com", PASSWORD, is_staff=True)
    if superuser:
        user.is_superuser = True
        user.save()
    if group_name:
        user.groups.add(Group.objects.get(name=group_name))
    return user


def log_in(page, live_server, username):
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")


@pytest.fixture
def operator(transactional_db):
    return make_user("olive-operator", "Operators")


@pytest.fixture
def viewer(transactional_db):
    return make_user("victor-viewer", "Viewers")


@pytest.fixture
def relay(live_server, source, cluster, sandbox):
    """The Segment client, sending to the live server; a real worker forwards to the sandbox."""
    _, key = source
    return Client(key, host=live_server.url, sync_mode=True, max_retries=0)
