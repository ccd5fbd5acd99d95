"""The dashboard in Chromium under its Content-Security-Policy (no inline script, no inline style):
no page reports a violation, in the console or as a securitypolicyviolation event, and what the
dashboard's scripts do still works: the call detail's Expunge asks first (dashboard.js), its
Resend reloads the page until the worker has tried the call (a meta refresh), the log's filters
and Django's admin widgets run."""

import pytest
from django.urls import reverse
from django.utils import timezone

from dashboard.models import BulkResend
from dashboard.views.calls import REFRESH_SECONDS
from forwarding.models import Call, Delivery, State
from tests.e2e.conftest import log_in, make_user
from tests.e2e.test_dashboard import url, wait_for_states
from tests.processes import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

EXPUNGE_QUESTION = "Remove this call's payload and the bodies of its requests for good?"
# Reports each violation the page sees to the test (an init script and a binding run whatever the
# page's policy says).
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.reportCspViolation(
    `${event.violatedDirective} blocked ${event.blockedURI || "inline"} at ${event.sourceFile}:${event.lineNumber}`
  );
});
"""


@pytest.fixture
def violations(page):
    """Every Content-Security-Policy violation the page reports, as text."""
    found = []
    page.on(
        "console", lambda message: found.append(message.text) if "Content Security Policy" in message.text else None
    )
    page.expose_function("reportCspViolation", lambda text: found.append(text))
    page.add_init_script(REPORT_VIOLATIONS)
    return found


def visit(page, address, violations):
    response = page.goto(address)
    page.wait_for_load_state("networkidle")
    assert violations == [], address
    return response


def test_the_detector_sees_an_inline_script_the_policy_blocks(page, live_server, violations, transactional_db):
    response = visit(page, f"{live_server.url}{reverse('admin:login')}", violations)
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.evaluate(
        """() => {
        const script = document.createElement("script");
        script.textContent = "window.inlineRan = true";
        document.head.appendChild(script);
        document.body.setAttribute("style", "color: red");
      }"""
    )
    page.wait_for_timeout(300)
    assert page.evaluate("window.inlineRan") is None
    assert any("script-src" in text for text in violations)
    assert any("style-src" in text for text in violations)


def test_no_dashboard_page_breaks_the_policy(page, live_server, relay, sandbox, source, violations):
    admin = make_user("ann-admin", superuser=True)
    relay.identify("ada", {"email": "ada@example.com", "plan": "pro"})
    relay.group("ada", "org-7", {"name": "Initech"})
    relay.track("ada", "Signed Up", {"plan": "pro"})
    wait_for_states([State.DELIVERED] * 3, call__user_id="ada")
    call = Call.objects.get(event="Signed Up")
    now = timezone.now()
    job = BulkResend.objects.create(description="state failed", total=0, upto_created_at=now, upto_pk=call.pk)

    log_in(page, live_server, admin.username)  # the login page, under the policy too
    assert violations == []
    pages = [
        url(live_server, "admin:index"),
        url(live_server, "admin:delivery_log"),
        url(live_server, "admin:delivery_log", query="?state=delivered&range=24h&source=²"),
        url(live_server, "admin:call_detail", call.pk),
        url(live_server, "admin:user_history", query="?q=ada"),
        url(live_server, "admin:event_names"),
        url(live_server, "admin:data_attributes"),
        url(live_server, "admin:bulk_resend", query="?state=delivered"),
        url(live_server, "admin:bulk_resend_job", job.pk),
        url(live_server, "admin:dashboard_bulkresend_changelist"),
        url(live_server, "admin:forwarding_source_changelist"),
        url(live_server, "admin:forwarding_source_change", source[0].pk),
        url(live_server, "admin:auth_user_change", admin.pk),
        url(live_server, "admin:delivery_log", query="?q=%00"),  # the 400 page
    ]
    for address in pages:
        visit(page, address, violations)
        assert page.locator("#header").count() == 1, address  # the page, not an error
    assert visit(page, f"{live_server.url}/admin/calls/123456789/", violations).status == 404

    # The scripts ran: the log's filters (admin/js/filters.js) keep a closed section closed, and
    # Django's admin widgets draw the groups' two-list selector.
    page.goto(url(live_server, "admin:delivery_log"))
    page.locator('details[data-filter-title="state"] summary').click()
    page.reload()
    assert page.locator('details[data-filter-title="state"]').get_attribute("open") is None
    page.goto(url(live_server, "admin:auth_user_change", admin.pk))
    assert page.locator("#id_groups_from").count() == 1
    assert violations == []


def test_the_call_details_scripts_work_under_the_policy(page, live_server, relay, sandbox, operator, violations):
    relay.identify("bea", {"email": "bea@example.com"})
    wait_for_states([State.DELIVERED], call__user_id="bea")
    sandbox.fail_next(1, status=400, path="/events")
    relay.track("bea", "Order Completed", {"revenue": 9.5})
    wait_for_states([State.FAILED], call__event="Order Completed")
    call = Call.objects.get(event="Order Completed")

    log_in(page, live_server, operator.username)
    visit(page, url(live_server, "admin:call_detail", call.pk), violations)

    # Expunge asks first (dashboard.js); dismissed, nothing is sent.
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.click("#expunge-button")
    page.wait_for_timeout(300)
    assert asked == [EXPUNGE_QUESTION]
    assert page.locator("#payload pre.json").is_visible()
    assert Call.objects.get(pk=call.pk).payload is not None

    # Resend: the page reloads itself (every REFRESH_SECONDS) until the worker has tried it, which
    # takes a while: Intercom answers after 1.5 s.
    sandbox.configure(slow_rate=1.0, slow_ms=1500)
    loads = []
    page.on("load", lambda _: loads.append(page.url))
    page.click("#resend-button")
    assert "Resend queued" in page.locator("ul.messagelist").inner_text()
    assert page.locator('meta[http-equiv="refresh"]').get_attribute("content") == str(REFRESH_SECONDS)
    page.locator('.attempt[data-outcome="delivered"][data-trigger="manual"]').wait_for(timeout=30_000)
    page.locator("#delivery-summary .state", has_text="DELIVERED").wait_for(timeout=30_000)
    assert Delivery.objects.get(pk=call.pk).state == State.DELIVERED
    assert len(loads) >= 2 and set(loads) == {url(live_server, "admin:call_detail", call.pk)}  # it reloaded
    assert page.locator('meta[http-equiv="refresh"]').count() == 0  # and stopped once it was done
    sandbox.configure(slow_rate=0.0)

    # Accepted, the expunge is sent.
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.click("#expunge-button")
    page.locator("#payload-gone").wait_for()
    assert asked == [EXPUNGE_QUESTION] * 2
    wait_until(lambda: Call.objects.get(pk=call.pk).payload is None, 5, message="the payload expunged")
    assert violations == []
