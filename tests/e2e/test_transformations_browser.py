"""The transformation rules in Chromium: an operator picks a recent call in the editor, adds a
rename-property operation as a row, sees the preview's "after" side change, saves, and finds the
rule in the list; a viewer reads the list and a rule (and previews it) with no action, and is
refused the add page. The pages' scripts are files: no console error, no CSP violation.

With RELAY_SCREENSHOTS=1 the operator's test saves docs/screenshots/transformation-edit.png (the
editor with a preview) and transformations.png (the list)."""

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from playwright.sync_api import expect

from forwarding.models import CallType, Rule, Source
from forwarding.transformations import store
from tests.dashboard.conftest import Calls
from tests.e2e.conftest import log_in
from tests.e2e.test_dashboard import screenshot, url

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

RENAME = {"op": "rename_property", "from": "properties.cart_total", "to": "properties.revenue"}
OPERATIONS = {
    "emails in lower case": [{"op": "change_case", "path": "traits.email", "to": "lower"}],
    "page url kept": [{"op": "copy_field", "from": "context.page.url", "to": "properties.url"}],
    "no test orders": [{"op": "drop"}],
    "plan as text": [{"op": "change_type", "path": "properties.plan", "to": "text"}],
    "trials": [{"op": "set_constant", "path": "properties.tier", "value": "trial"}],
}
TEST = {"path": "properties.test", "equals": True}
TRIAL = {"path": "properties.trial", "exists": True}


@pytest.fixture
def console(page):
    """Every error the page logs or throws (a CSP violation is one)."""
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def order(calls, user, total, **properties):
    payload = {
        "type": "track",
        "event": "Order Completed",
        "userId": user,
        "messageId": f"order-{user}",
        "timestamp": "2026-03-01T10:00:00Z",
        "properties": {"cart_total": total, "currency": "EUR", **properties},
        "context": {"page": {"url": "https://shop.example.com/checkout"}},
    }
    return calls(event="Order Completed", user_id=user, payload=payload)


def some_rules(source):
    """Rules an operator made before: what the list groups."""
    for rule in [
        Rule(call_type="identify", name="emails in lower case"),
        Rule(call_type="page", name="page url kept"),
        Rule(call_type="track", event="Order Completed", name="no test orders", source=source),
        Rule(call_type="track", event="Signed Up", name="plan as text"),
        Rule(call_type="track", event="Signed Up", name="trials", enabled=False),
    ]:
        rule.operations = OPERATIONS[rule.name]
        rule.condition = {"no test orders": TEST, "trials": TRIAL}.get(rule.name)
        store.save(rule)


def test_an_operator_previews_a_rule_on_a_recent_call_and_saves_it(page, live_server, source, operator, console):
    calls = Calls(source[0])
    calls(type=CallType.IDENTIFY, user_id="ada", email="Ada@Example.com")
    calls(event="Signed Up", user_id="bea")
    order(calls, "bea", 30)
    newest = order(calls, "ada", 12, coupon="SPRING")
    some_rules(Source.create_with_key("Staging")[0])

    log_in(page, live_server, operator.username)
    page.click("#nav-sidebar a:text('Transformations')")
    assert page.locator("tr.rule").count() == 5
    page.click("#add-rule")
    page.wait_for_load_state()  # the editor's script listens

    page.fill("#id_name", "cart total is revenue")
    page.fill("#id_event", "Order Completed")
    # The recent calls follow the event name typed: the two orders, newest first.
    expect(page.locator("#recent-calls .pick-call")).to_have_count(2)
    page.locator(f'#recent-calls .pick-call[data-call="{newest.pk}"]').click()
    expect(page.locator("#preview-status")).to_have_attribute("data-state", "problems")  # no operation yet
    expect(page.locator("#preview-before")).to_contain_text('"cart_total": 12')

    page.click("#add-operation")
    row = page.locator(".operation-row").last
    row.locator(".op-select").select_option("rename_property")
    row.locator('input[data-key="from"]').fill("properties.cart_total")
    row.locator('input[data-key="to"]').fill("properties.revenue")

    expect(page.locator("#preview-status")).to_have_attribute("data-state", "matched")
    expect(page.locator("#preview-after")).to_contain_text('"revenue": 12')
    expect(page.locator("#preview-after")).not_to_contain_text("cart_total")
    expect(page.locator("#requests-after")).to_contain_text('"amount": 1200')
    expect(page.locator("#requests-before")).not_to_contain_text('"price"')
    expect(page.locator("#preview-changes")).to_contain_text("properties.revenue: added 12")
    screenshot(page, "transformation-edit")

    page.click("#save-rule")
    expect(page.locator("ul.messagelist")).to_contain_text("Added rule")
    rule = Rule.objects.get(name="cart total is revenue")
    assert (rule.call_type, rule.event, rule.operations, rule.revision) == ("track", "Order Completed", [RENAME], 1)
    entry = LogEntry.objects.get(object_id=str(rule.pk))
    assert (entry.user, entry.action_flag) == (operator, ADDITION)
    expect(page.locator("#rule-preview #preview-after")).to_contain_text('"revenue": 12')  # the saved rule, previewed

    page.locator(".breadcrumbs a", has_text="Transformations").click()
    listed = page.locator(f'tr.rule[data-rule="{rule.pk}"]')
    expect(listed).to_contain_text("rename properties.cart_total to properties.revenue")
    assert (
        listed.locator("xpath=ancestor::tbody").get_attribute("data-group")
        == "any source · track · event “Order Completed”"
    )
    screenshot(page, "transformations")
    assert console == []


def test_a_viewer_reads_the_rules_without_any_action(page, live_server, source, viewer, console):
    calls = Calls(source[0])
    order(calls, "ada", 12)
    some_rules(source[0])
    rule = store.save(
        Rule(call_type="track", event="Order Completed", name="cart total is revenue", operations=[RENAME])
    )

    log_in(page, live_server, viewer.username)
    page.click("#nav-sidebar a:text('Transformations')")
    assert page.locator("tr.rule").count() == 6
    assert page.locator("#add-rule, #rules form, #rules .button").count() == 0

    # The rule's page is read-only, and its preview still runs (it sends and writes nothing).
    page.locator(f'tr.rule[data-rule="{rule.pk}"] a.rule-link').click()
    assert page.locator("#id_name").is_disabled() and page.locator("#id_operations").is_disabled()
    assert page.locator("#save-rule, #add-operation:visible, .op-remove").count() == 0
    expect(page.locator("#preview-status")).to_have_attribute("data-state", "matched")
    expect(page.locator("#requests-after")).to_contain_text('"amount": 1200')
    page.screenshot(path="/tmp/viewer.png", full_page=True)
    assert console == []

    response = page.goto(url(live_server, "admin:transformation_add"))
    assert response.status == 403
    assert Rule.objects.count() == 6 and not LogEntry.objects.exists()
