"""A newcomer's first look at the dashboard, in Chromium: no dead "View site" link, the bulk
resends listed once and saying where a job starts, the user-history page naming recent users, the
event names' rename box inside its column, a favicon, and no console error on any of those pages."""

import pytest
from django.utils import timezone

from dashboard.models import BulkResend
from forwarding.models import EventName
from tests.e2e.conftest import log_in
from tests.e2e.test_dashboard import url

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def errors(page):
    """Console errors and failed requests (a 404 favicon included) while the test runs."""
    found = []
    page.on("console", lambda message: found.append(message.text) if message.type == "error" else None)
    page.on(
        "response",
        lambda response: found.append(f"{response.status} {response.url}") if response.status >= 400 else None,
    )
    return found


def test_the_first_pages_a_newcomer_opens_have_no_dead_end(page, live_server, operator, calls_for_browser, errors):
    log_in(page, live_server, operator.username)

    assert page.locator("#user-tools a", has_text="View site").count() == 0
    assert page.locator("link[rel=icon]").count() == 1
    assert page.locator("#nav-sidebar a", has_text="Bulk resends").count() == 1

    page.goto(url(live_server, "admin:dashboard_bulkresend_changelist"))
    assert "starts from the delivery log" in page.locator("#bulk-intro").inner_text()
    assert page.locator(".breadcrumbs").inner_text().split() == ["Home", "›", "Bulk", "resends"]

    page.goto(url(live_server, "admin:user_history"))
    assert page.locator("#recent-users li").all_inner_texts() == ["bea", "ann"]

    job = BulkResend.objects.create(
        description="state failed", created_by=operator, upto_created_at=timezone.now(), upto_pk=0, total=10
    )
    page.goto(url(live_server, "admin:bulk_resend_job", job.pk))
    assert page.locator(".breadcrumbs").inner_text().split()[:4] == ["Home", "›", "Bulk", "resends"]
    cancel = page.locator("#cancel-button")
    assert cancel.get_attribute("value") == "Cancel this bulk resend"
    assert cancel.get_attribute("class") is None  # styled as the admin's other submit buttons

    page.goto(url(live_server, "admin:event_names"))
    assert "Renaming frees nothing" in page.locator("body").inner_text()
    assert "renaming a name" not in page.locator("body").inner_text()
    row = page.locator("tr", has=page.locator("text=" + "A very long event name " * 4)).first
    row.locator("details.rename summary").click()
    box = row.locator(".rename-form input[type=text]").bounding_box()
    cell = row.locator(".rename-form").bounding_box()
    assert box["x"] + box["width"] <= cell["x"] + cell["width"] + 1  # inside its column

    assert errors == []


@pytest.fixture
def calls_for_browser(transactional_db, source):
    from tests.dashboard.conftest import Calls

    calls = Calls(source[0])
    calls(user_id="ann")
    calls(user_id="bea")
    name = ("A very long event name " * 4).strip()
    EventName.objects.create(key=name.lower(), name=name)
    return calls
