"""Fidelity in Chromium: the data-attributes page, where an operator aliases a name Intercom
refused and a real qcluster then writes the trait under the alias to the Intercom sandbox; a viewer
finds no action; and the amber banner once the Intercom the relay talks to stops answering.

With RELAY_SCREENSHOTS=1 the operator's test saves docs/screenshots/attributes.png."""

import re
import time

import pytest
from django.contrib.admin.models import LogEntry
from django.utils import timezone

from forwarding import intercom, services
from forwarding.delivery import attributes, connection, loop, queue, workspace
from forwarding.models import DataAttribute, Delivery, IntercomStatus, State
from forwarding.sandbox.testing import running_sandbox
from tests.e2e.conftest import log_in
from tests.e2e.test_dashboard import demo_traffic, screenshot, settled, url
from tests.processes import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

INVALID_NAME = "Your name for this attribute must only contain alphanumeric characters"


def row(page, name, model="contact"):
    return page.locator(f'#attributes-{model} tr[data-name="{name}"]')


def flash(page):
    return page.locator("ul.messagelist li").all_inner_texts()


def delivered(user_id, count):
    states = list(Delivery.objects.filter(call__user_id=user_id).values_list("state", flat=True))
    return states == [State.DELIVERED] * count


def test_an_operator_aliases_a_refused_name_and_the_worker_writes_it_so(
    page, live_server, relay, source, sandbox, operator
):
    demo_traffic(live_server, source)
    relay.identify("ada", {"email": "ada@example.com"})
    relay.group("ada", "org-7", {"name": "Initech", "tier": "enterprise", "seats": 40})
    wait_until(lambda: delivered("ada", 2), 30, message="ada's identify and group delivered")
    # "tier" is the companies' now: the contact trait goes under the alias contact_tier. Intercom
    # refuses names with other characters than letters, digits, spaces, hyphens and underscores.
    relay.identify("ada", {"tier": "gold", "score (beta)": 7, "nps?": 9})
    wait_until(lambda: delivered("ada", 3), 30, message="ada's second identify delivered")
    wait_until(settled, 60, message="the demo traffic delivered")
    refused = DataAttribute.objects.get(model="contact", name="score (beta)")
    assert (refused.refusal, refused.calls_dropped) == (DataAttribute.Refusal.INVALID_NAME, 1)
    assert DataAttribute.objects.get(model="contact", name="tier").alias == "contact_tier"

    log_in(page, live_server, operator.username)
    page.goto(url(live_server, "admin:data_attributes"))
    assert row(page, "score (beta)").get_attribute("data-status") == "refused"
    assert row(page, "tier").locator("td.written-as").inner_text() == "contact_tier"
    assert row(page, "tier", "company").get_attribute("data-status") == "active"
    assert page.locator('#refused-names tr[data-name="nps?"]').is_visible()
    assert INVALID_NAME in page.locator("#refused-names").inner_text()
    used = attributes.in_intercom(workspace.shown()).count()
    assert used >= 5  # plan, logins, the company's tier and seats, contact_tier
    assert page.locator("#attribute-usage-figures").inner_text() == f"{used} of 250"

    # Alias the refused name through its form.
    target = row(page, "score (beta)")
    target.locator("details.alias summary").click()
    target.locator('input[name="alias"]').fill("score_beta")
    target.locator("button.action-alias").click()
    assert "The contact attribute 'score (beta)' is written as 'score_beta', from its next write." in flash(page)
    assert row(page, "score (beta)").get_attribute("data-status") == "aliased"
    assert row(page, "score (beta)").locator("td.written-as").inner_text() == "score_beta"
    entry = LogEntry.objects.get()
    assert (entry.user, entry.change_message) == (
        operator,
        "The contact attribute 'score (beta)' is written as 'score_beta'.",
    )

    # The next identify writes the trait under the alias (created in Intercom first).
    relay.identify("ada", {"score (beta)": 8})
    wait_until(lambda: delivered("ada", 4), 30, message="ada's third identify delivered")
    contact = sandbox.state.contact_by_external_id("ada")
    assert contact["custom_attributes"]["score_beta"] == 8
    assert "score (beta)" not in contact["custom_attributes"]
    latest = Delivery.objects.filter(call__user_id="ada").order_by("-created_at").first()
    assert "custom attribute 'score (beta)' written as 'score_beta': an operator set this alias" in latest.warnings

    page.reload()
    assert row(page, "score_beta").get_attribute("data-status") == "active"
    assert row(page, "score (beta)").locator("td.written-as").inner_text() == "score_beta"
    screenshot(page, "attributes")


def test_a_viewer_sees_the_attributes_without_any_action(page, live_server, viewer):
    IntercomStatus.objects.create(
        name="intercom",
        config_key=connection.config_key(),
        base_url=intercom.base_url(),
        workspace_id="ws-viewer",
        last_success_at=timezone.now(),
    )
    DataAttribute.objects.create(workspace="ws-viewer", model="contact", name="tier", calls_written=3)
    bad = DataAttribute.objects.create(
        workspace="ws-viewer",
        model="company",
        name="nps?",
        usable=False,
        refusal=DataAttribute.Refusal.INVALID_NAME,
        reason=INVALID_NAME,
        calls_dropped=4,
    )

    log_in(page, live_server, viewer.username)
    page.click("#nav-sidebar a:text('Data attributes')")
    assert page.locator("#attribute-usage-figures").inner_text() == "1 of 250"
    assert row(page, "tier").get_attribute("data-status") == "active"
    assert row(page, "nps?", "company").get_attribute("data-status") == "refused"
    assert page.locator("#content-main form, #content-main button, details.alias").count() == 0

    # A forged POST with the viewer's session and a valid CSRF token: the permission check refuses it.
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    for name, form in [("retry", {}), ("alias", {"alias": "nps"}), ("ignore", {})]:
        action = url(live_server, f"admin:data_attribute_{name}", bad.pk)
        response = page.request.post(action, form={"csrfmiddlewaretoken": token, **form}, headers={"Referer": page.url})
        assert response.status == 403, name
    bad.refresh_from_db()
    assert (bad.refusal, bad.alias, bad.ignored) == (DataAttribute.Refusal.INVALID_NAME, "", False)
    assert not LogEntry.objects.exists()


@pytest.fixture
def in_process(monkeypatch):
    """No worker runs in this test: what would be enqueued is delivered by the test itself, with
    this process's Intercom client (made again afterwards for the settings restored)."""
    monkeypatch.setattr(queue, "enqueue_tasks", lambda tasks: True)
    yield
    intercom.reset_client()


def test_the_amber_banner_appears_once_intercom_stops_answering(
    page, live_server, viewer, settings, make_call, in_process
):
    call = make_call(type="identify", user_id="amber", state="pending", traits={"email": "amber@example.com"})
    with running_sandbox(token="amber-token") as second:
        settings.INTERCOM_API_BASE = second.url
        settings.INTERCOM_ACCESS_TOKEN = "amber-token"
        intercom.reset_client()
        # A process notes a success at most once a second: let one an earlier test noted pass.
        time.sleep(connection.SUCCESS_CHECK_SECONDS + 0.1)
        assert _deliver(call.pk) == State.DELIVERED
        second.assert_clean()
        base_url = second.url
    status = connection.current()
    assert status.last_success_at is not None
    assert (status.base_url, status.unreachable_since, status.auth_failed_at) == (base_url, None, None)

    log_in(page, live_server, viewer.username)
    assert page.locator("#connection-status").get_attribute("data-status") == "ok"
    assert "Connected." in page.locator("#intercom-status").inner_text()
    assert page.locator("#unreachable-banner").count() == 0

    # That Intercom is gone: the next attempt cannot connect.
    delivery = Delivery.objects.get(pk=call.pk)
    assert services.resend(delivery)
    assert _deliver(call.pk) == State.PENDING  # a retry later
    status = connection.current()
    assert status.unreachable_since is not None and status.failure_error

    page.goto(url(live_server, "admin:delivery_log"))
    banner = page.locator("#unreachable-banner")
    assert banner.is_visible()
    text = banner.inner_text()
    assert re.match(r"Intercom unreachable since \d{4}-\d\d-\d\d \d\d:\d\d UTC \(.+\)\.", text), text
    assert status.failure_error[:40] in text and base_url in text
    assert "amber-token" not in page.content()
    page.goto(url(live_server, "admin:index"))
    assert page.locator("#connection-status").get_attribute("data-status") == "warn"
    assert "Unreachable since" in page.locator("#intercom-status").inner_text()
    assert page.locator("#unreachable-banner").is_visible()


def _deliver(pk):
    loop.deliver_many([pk])
    return Delivery.objects.get(pk=pk).state
