"""The dashboard in Chromium, end to end: calls come through the Segment client into the live server,
a real qcluster forwards them to the Intercom sandbox, and people use the pages.

With RELAY_SCREENSHOTS=1 the tests save each page to docs/screenshots/ for the README's tour (the
data is what `make run` shows: send_demo_traffic's users, plus the calls each test sends)."""

import io
import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.admin.models import LogEntry
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from dashboard.models import BulkResend, JobStatus
from forwarding.models import Attempt, Delivery, State, Trigger
from tests.e2e.conftest import log_in
from tests.processes import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def demo_traffic(live_server, source, users=4):
    """What `make run` users see: send_demo_traffic's identify, group, track and page calls."""
    _, key = source
    call_command("send_demo_traffic", url=live_server.url, write_key=key, users=users, seed=7, stdout=io.StringIO())


def url(live_server, name, *args, query=""):
    return f"{live_server.url}{reverse(name, args=args)}{query}"


def states(**filters):
    return list(Delivery.objects.filter(**filters).order_by("created_at", "pk").values_list("state", flat=True))


def wait_for_states(expected, timeout=30, **filters):
    wait_until(
        lambda: states(**filters) == expected, timeout, message=f"{filters} to be {expected} ({states(**filters)})"
    )


def settled():
    """Nothing pending or in flight (waiting anonymous calls are settled too)."""
    return not Delivery.objects.filter(state__in=[State.PENDING, State.DELIVERING]).exists()


def screenshot(page, name, full_page=True):
    """Save the page for the README when RELAY_SCREENSHOTS=1 (CI leaves docs/ alone)."""
    if os.environ.get("RELAY_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def test_an_operator_filters_to_failed_calls_and_resends_one(page, live_server, relay, source, sandbox, operator):
    demo_traffic(live_server, source)
    relay.identify("ada", {"email": "ada@example.com", "name": "Ada Lovelace"})
    wait_until(settled, 60, message="the demo traffic delivered")
    # Intercom refuses the next event once (a permanent 400): it fails; then Intercom is fine again.
    sandbox.fail_next(1, status=400, path="/events")
    relay.track("ada", "Order Completed", {"revenue": 19.99, "currency": "EUR"})
    wait_for_states([State.FAILED], call__event="Order Completed")

    log_in(page, live_server, operator.username)
    screenshot(page, "overview")
    assert page.locator("#activity-24h .card-failed .card-value").inner_text() == "1"

    page.goto(url(live_server, "admin:delivery_log"))
    screenshot(page, "log", full_page=False)  # the first screenful: the whole page is a long PNG
    page.locator("#changelist-filter details[data-filter-title=state] a", has_text="Failed").click()
    rows = page.locator("tr.log-row")
    assert rows.count() == 1
    assert rows.first.get_attribute("data-state") == "failed"
    assert "http_400" in rows.first.inner_text()
    screenshot(page, "log-failed")

    rows.first.locator("a.call-link").click()
    assert page.locator("#delivery-summary .state").inner_text() == "FAILED"
    assert page.locator('.attempt[data-outcome="failed"]').count() == 1
    assert "POST\n/events" in page.locator("#planned").inner_text().replace(" ", "\n")
    page.click("#resend-button")
    assert "Resend queued" in page.locator("ul.messagelist").inner_text()
    # The page reloads itself until the worker has tried it.
    page.locator('.attempt[data-outcome="delivered"][data-trigger="manual"]').wait_for(timeout=30_000)
    # The page reads the delivery, then its attempts: on PostgreSQL the worker's commit can fall
    # between the two, so the attempt can show a moment before the state does (it reloads again).
    page.locator("#delivery-summary .state", has_text="DELIVERED").wait_for(timeout=30_000)
    screenshot(page, "call-detail")

    [event] = [e for e in sandbox.state.events_for("ada") if e["event_name"] == "Order Completed"]
    assert event["metadata"]["price"] == {"amount": 1999, "currency": "EUR"}
    delivery = Delivery.objects.get(call__event="Order Completed")
    assert [a.trigger for a in Attempt.objects.filter(delivery=delivery).order_by("started_at")] == [
        Trigger.AUTO,
        Trigger.MANUAL,
    ]
    assert LogEntry.objects.get().change_message == "Resent from the dashboard (was failed)."


def test_an_operator_bulk_resends_a_filter_after_seeing_its_count(page, live_server, relay, sandbox, operator):
    relay.identify("bea", {"email": "bea@example.com"})
    wait_for_states([State.DELIVERED], call__user_id="bea")
    sandbox.fail_next(3, status=400, path="/events")
    now = timezone.now()
    for n in range(3):
        # A second apart: Intercom keeps one event per name, user and second.
        relay.track("bea", "Invoice Paid", {"invoice": n}, timestamp=now - timedelta(seconds=3 - n))
    relay.track("bea", "Logged In")
    wait_for_states([State.FAILED] * 3, call__event="Invoice Paid")
    wait_for_states([State.DELIVERED], call__event="Logged In")

    log_in(page, live_server, operator.username)
    page.goto(url(live_server, "admin:delivery_log", query="?state=failed&type=track"))
    assert page.locator("tr.log-row").count() == 3
    page.click("#bulk-resend-link")
    assert page.locator("#bulk-total").inner_text() == "3"
    assert page.locator("#bulk-description").inner_text() == "state failed, type track"
    screenshot(page, "bulk-confirm")
    page.click("#bulk-confirm")

    # The progress page reloads itself while the job runs in the worker.
    page.locator('#job[data-status="done"]').wait_for(timeout=30_000)
    assert page.locator("#job-processed").inner_text() == "3"
    assert page.locator("#job-reopened").inner_text() == "3"
    screenshot(page, "bulk-job")
    wait_for_states([State.DELIVERED] * 3, call__event="Invoice Paid")
    assert sorted(
        e["metadata"]["invoice"] for e in sandbox.state.events_for("bea") if e["event_name"] == "Invoice Paid"
    ) == [
        0,
        1,
        2,
    ]
    job = BulkResend.objects.get()
    assert (job.status, job.total, job.created_by.username) == (JobStatus.DONE, 3, operator.username)
    page.goto(url(live_server, "admin:delivery_log", query="?state=failed"))
    assert page.locator("tr.log-row").count() == 0


def test_an_operator_opens_a_users_history_in_order(page, live_server, relay, sandbox, operator):
    relay.identify("cleo", {"email": "cleo@example.com", "firstName": "Cleo"}, anonymous_id="anon-cleo")
    relay.track("cleo", "Signed Up", {"plan": "team"})
    relay.group("cleo", "org-42", {"name": "Initech", "employees": 40})
    relay.page("cleo", "Docs", "Getting Started", {"url": "https://example.com/docs", "path": "/docs"})
    wait_for_states([State.DELIVERED] * 4, call__user_id="cleo")

    log_in(page, live_server, operator.username)
    page.goto(url(live_server, "admin:delivery_log"))
    page.fill("#searchbar", "cleo@example.com")
    page.press("#searchbar", "Enter")
    assert page.locator("tr.log-row").count() == 4  # the email finds its user, and the user all her calls
    page.locator("tr.log-row td.user a").first.click()

    events = page.locator("ol.timeline li.event")
    assert events.evaluate_all("items => items.map(item => item.dataset.type)") == [
        "identify",
        "track",
        "group",
        "page",
    ]
    assert events.evaluate_all("items => items.map(item => item.dataset.state)") == ["delivered"] * 4
    contact = sandbox.state.contact_by_external_id("cleo")
    assert page.locator("#contact-id").inner_text() == contact["id"]
    [company] = sandbox.state.companies
    assert re.search(rf"org-42\s+{company['id']}", page.locator("#companies").inner_text())
    screenshot(page, "user-history")


def test_a_viewer_sees_no_action_and_a_forged_post_is_refused(page, live_server, relay, sandbox, viewer):
    sandbox.fail_next(1, status=400, path="/contacts")
    relay.identify("dan", {"email": "dan@example.com"})
    wait_for_states([State.FAILED], call__user_id="dan")
    failed = Delivery.objects.get(call__user_id="dan")

    log_in(page, live_server, viewer.username)
    pages = [
        url(live_server, "admin:delivery_log", query="?state=failed"),
        url(live_server, "admin:call_detail", failed.pk),
        url(live_server, "admin:user_history", query="?q=dan"),
        url(live_server, "admin:bulk_resend", query="?state=failed"),
    ]
    for address in pages:
        page.goto(address)
        assert page.locator("main form[method=post]").count() == 0, address
        assert page.locator("#resend-button, #resend-failed-button, #bulk-confirm, #bulk-resend-link").count() == 0
    assert page.locator("#bulk-total").inner_text() == "1"  # viewers may still count

    # A forged POST with the viewer's session and a valid CSRF token: the permission check refuses it.
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    for action, form in [
        (url(live_server, "admin:call_resend", failed.pk), {}),
        (url(live_server, "admin:user_resend_failed"), {"user_id": "dan"}),
        (url(live_server, "admin:bulk_resend_start"), {"state": "failed"}),
    ]:
        response = page.request.post(action, form={"csrfmiddlewaretoken": token, **form}, headers={"Referer": page.url})
        assert response.status == 403, action
        assert "CSRF" not in response.text()
    assert states(pk=failed.pk) == [State.FAILED]
    assert not BulkResend.objects.exists() and not LogEntry.objects.exists()
