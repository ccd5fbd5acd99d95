"""The transformations pages: the rules grouped by what they match, the editor (operators save, viewers
read), its preview of a draft rule on a stored or pasted call (nothing sent, nothing written), and
the resend of the held and failed calls a rule matches."""

import html
import json
import re

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.urls import reverse
from django.utils import timezone

from forwarding.models import Call, Delivery, EventName, Rule, Source, State, Trigger
from forwarding.transformations import preview, store

pytestmark = pytest.mark.django_db

LIST = reverse("admin:transformations")
ADD = reverse("admin:transformation_add")
PREVIEW = reverse("admin:transformation_preview")
CALLS = reverse("admin:transformation_calls")
RENAME_CART_TOTAL = [{"op": "rename_property", "from": "properties.cart_total", "to": "properties.revenue"}]
ORDER = {
    "type": "track",
    "event": "Order Completed",
    "userId": "ada",
    "messageId": "m-1",
    "timestamp": "2026-03-01T10:00:00Z",
    "properties": {"cart_total": 12},
}


def edit_url(rule):
    return reverse("admin:transformation_edit", args=[rule.pk])


def action_url(name, rule):
    return reverse(f"admin:transformation_{name}", args=[rule.pk])


def make_rule(call_type="track", event="", operations=None, source=None, condition=None, name="", **fields):
    rule = Rule(call_type=call_type, event=event, source=source, condition=condition, name=name, **fields)
    rule.operations = operations or [{"op": "set_constant", "path": "properties.seen", "value": True}]
    return store.save(rule)


def text(body):
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html.unescape(body))).strip()


def form(**changes):
    """The editor's fields for a track rule renaming cart_total, with `changes`."""
    fields = {
        "name": "cart total is revenue",
        "enabled": "on",
        "source": "",
        "call_type": "track",
        "event": "Order Completed",
        "condition_kind": "none",
        "condition_path": "",
        "condition_value": "",
        "operations": json.dumps(RENAME_CART_TOTAL),
        "position": "",
        "revision": "",
    }
    fields.update(changes)
    return {name: value for name, value in fields.items() if value is not None}


def ask(client, rule, **body):
    response = client.post(PREVIEW, json.dumps({"rule": rule, **body}), content_type="application/json")
    return response, response.json()


def draft(operations=RENAME_CART_TOTAL, **fields):
    return {"call_type": "track", "event": "Order Completed", "operations": operations, **fields}


def event_body(requests):
    [event] = [request["body"] for request in requests if request["path"] == "/events"]
    return event


# -- the list ------------------------------------------------------------------------------------


def test_a_viewer_sees_the_rules_grouped_by_source_call_type_and_event(viewer_client):
    shop = Source.create_with_key("Shop")[0]
    lower = make_rule(
        "identify",
        name="emails in lower case",
        operations=[{"op": "change_case", "path": "traits.email", "to": "lower"}],
    )
    revenue = make_rule(event="Order Completed", name="cart total is revenue", operations=RENAME_CART_TOTAL)
    drop = make_rule(
        event="order completed",
        source=shop,
        name="no test orders",
        operations=[{"op": "drop"}],
        condition={"path": "properties.test", "equals": True},
    )
    again = make_rule(
        event=" ORDER COMPLETED",
        name="plan as text",
        operations=[{"op": "change_type", "path": "properties.plan", "to": "text"}],
        enabled=False,
    )

    response = viewer_client.get(LIST)

    assert response.status_code == 200
    body = response.content.decode()
    groups = [text(g) for g in re.findall(r'<tr class="group-head">(.*?)</tr>', body, re.S)]
    assert groups == [
        "any source · track · event “Order Completed” 2 rules",
        "any source · identify 1 rule",
        "source Shop · track · event “order completed” 1 rule",
    ]
    rows = re.findall(r'<tr class="rule[^"]*" data-rule="(\d+)" data-enabled="(\w+)"', body)
    assert rows == [
        (str(revenue.pk), "true"),
        (str(again.pk), "false"),
        (str(lower.pk), "true"),
        (str(drop.pk), "true"),
    ]
    page = text(body)
    assert "rename properties.cart_total to properties.revenue" in page
    assert "lower-case traits.email" in page
    assert "drop the call" in page and "where properties.test = true" in page
    assert "make properties.plan text" in page
    assert "4 rules, 3 enabled." in page
    # A viewer reads: no add link, no action.
    assert ADD not in body and "<form" not in body.split('id="rules"')[1]
    assert f'href="{edit_url(revenue)}"' in body  # the rule's page, read-only for a viewer


def test_the_sidebar_links_to_the_page(viewer_client):
    body = viewer_client.get(reverse("admin:index")).content.decode()
    assert f'<a href="{LIST}">Transformations</a>' in body


def test_an_empty_list_says_calls_go_as_they_came(operator_client):
    body = operator_client.get(LIST).content.decode()
    assert "No rules yet: every call is forwarded as it was sent." in text(body)
    assert f'href="{ADD}"' in body


# -- who may do what -----------------------------------------------------------------------------


def test_a_viewer_reads_a_rule_but_cannot_add_save_move_delete_or_resend(viewer_client, calls):
    rule = make_rule(event="Order Completed", name="cart total is revenue", operations=RENAME_CART_TOTAL)

    page = viewer_client.get(edit_url(rule))
    assert page.status_code == 200
    body = page.content.decode()
    assert 'id="rule-fields" disabled' in body and 'id="save-rule"' not in body and "resend-button" not in body
    assert "only operators change rules" in body

    assert viewer_client.get(ADD).status_code == 403
    assert viewer_client.post(ADD, form()).status_code == 403
    assert viewer_client.post(edit_url(rule), form(revision="1", name="mine")).status_code == 403
    for name, data in [("toggle", {}), ("move", {"direction": "up"}), ("delete", {}), ("resend", {})]:
        assert viewer_client.post(action_url(name, rule), data).status_code == 403, name
    rule.refresh_from_db()
    assert (rule.name, rule.revision, rule.enabled) == ("cart total is revenue", 1, True)
    assert Rule.objects.count() == 1 and not LogEntry.objects.exists()


# -- the editor ----------------------------------------------------------------------------------


def test_an_operator_adds_a_rule(operator_client, operator):
    response = operator_client.post(ADD, form(condition_kind="exists", condition_path="properties.cart_total"))

    rule = Rule.objects.get()
    assert response.status_code == 302 and response["Location"] == edit_url(rule)
    assert rule.spec() == {
        "id": rule.pk,
        "revision": 1,
        "name": "cart total is revenue",
        "enabled": True,
        "source": None,
        "call_type": "track",
        "event": "Order Completed",
        "condition": {"path": "properties.cart_total", "exists": True},
        "operations": RENAME_CART_TOTAL,
    }
    assert (rule.position, rule.updated_by) == (1, operator.username)
    entry = LogEntry.objects.get()
    assert (entry.user, entry.action_flag, entry.object_id) == (operator, ADDITION, str(rule.pk))
    page = operator_client.get(response["Location"]).content.decode()
    assert f"Added rule {rule.pk} (revision 1)." in page


def test_an_operator_edits_a_rule_and_its_revision_goes_up(operator_client, operator):
    rule = make_rule(event="Order Completed", name="old name", operations=RENAME_CART_TOTAL)
    shop = Source.create_with_key("Shop")[0]
    operations = [*RENAME_CART_TOTAL, {"op": "set_constant", "path": "properties.channel", "value": "web"}]

    response = operator_client.post(
        edit_url(rule),
        form(
            name="new name",
            revision="1",
            source=str(shop.pk),
            condition_kind="equals",
            condition_path="properties.plan",
            condition_value="pro",
            operations=json.dumps(operations),
        ),
    )

    assert response.status_code == 302
    rule.refresh_from_db()
    assert (rule.revision, rule.name, rule.source, rule.operations) == (2, "new name", shop, operations)
    assert rule.condition == {"path": "properties.plan", "equals": "pro"}  # typed as text, kept as text
    entry = LogEntry.objects.get()
    assert (entry.user, entry.action_flag) == (operator, CHANGE)
    assert entry.change_message == "Changed name, source, condition, operations."
    page = operator_client.get(edit_url(rule)).content.decode()
    assert 'value="pro"' in page and "Changed name, source, condition, operations." in page


def test_a_value_that_is_json_is_kept_as_json(operator_client):
    operator_client.post(ADD, form(condition_kind="equals", condition_path="properties.count", condition_value="12"))
    assert Rule.objects.get().condition == {"path": "properties.count", "equals": 12}


def test_saving_what_is_stored_changes_nothing(operator_client):
    rule = make_rule(event="Order Completed", name="cart total is revenue", operations=RENAME_CART_TOTAL)
    response = operator_client.post(edit_url(rule), form(revision="1"), follow=True)
    assert f"Nothing changed in rule {rule.pk}." in response.content.decode()
    rule.refresh_from_db()
    assert rule.revision == 1 and not LogEntry.objects.exists()


def test_a_form_opened_before_someone_else_saved_does_not_overwrite_it(operator_client):
    rule = make_rule(event="Order Completed", name="theirs", operations=RENAME_CART_TOTAL)
    rule.name = "changed meanwhile"
    store.save(rule)

    response = operator_client.post(edit_url(rule), form(revision="1", name="mine"))

    assert response.status_code == 409
    assert "since this form was opened (it is now revision 2): nothing was saved" in response.content.decode()
    rule.refresh_from_db()
    assert (rule.name, rule.revision) == ("changed meanwhile", 2)


@pytest.mark.parametrize(
    "changes, problem",
    [
        ({"operations": "[{"}, "operations: not JSON (Expecting property name enclosed in double quotes"),
        ({"operations": "[]"}, "operations: must be a list of at least one operation"),
        ({"operations": '[{"op": "explode"}]'}, "operation 1: unknown op &quot;explode&quot;"),
        ({"operations": '[{"op": "delete_property", "path": "context.ip"}]'}, "is outside properties"),
        ({"operations": '[{"op": "rename_event", "to": "a.b"}]'}, "contains &#x27;.&#x27;, which Intercom refuses"),
        ({"operations": '[{"op": "set_constant", "path": "properties.x", "value": "\\u0000"}]'}, "NUL character"),
        ({"operations": '[{"op": "set_constant", "path": "properties.x", "value": {"\\u0000": 1}}]'}, "NUL character"),
        ({"operations": "[" * 100 + "]" * 100}, "the rule nests values more than 64 levels deep"),
        ({"operations": "[" * 100_000 + "]" * 100_000}, "operations: nested too deeply"),
        ({"condition_kind": "equals", "condition_value": "[" * 100 + "]" * 100}, "more than 64 levels deep"),
        ({"call_type": "identify", "operations": '[{"op": "drop"}]'}, "event: identify rules have no event name"),
        ({"call_type": "screen"}, "call_type: must be one of track, page, identify, group"),
        ({"condition_kind": "equals", "condition_path": "properties..plan"}, "has an empty segment"),
        ({"condition_kind": "maybe"}, "condition: choose always, equals, exists or is absent"),
        ({"source": "99"}, "source: &#x27;99&#x27; is no source"),
        ({"source": "²"}, "source: &#x27;²&#x27; is no source"),
        ({"name": "n" * 201}, "name: at most 200 characters"),
        ({"position": "7"}, "position: &#x27;7&#x27; is not a place from 1 to 1"),
    ],
)
def test_an_invalid_rule_is_refused_with_its_problems_and_nothing_is_stored(operator_client, changes, problem):
    response = operator_client.post(ADD, form(**changes))

    assert response.status_code == 400
    body = response.content.decode()
    assert 'id="rule-problems"' in body and problem in body, body[body.find("rule-problems") :][:800]
    assert not Rule.objects.exists() and not LogEntry.objects.exists()


def test_a_refused_form_keeps_what_was_typed(operator_client):
    body = operator_client.post(ADD, form(name="typed name", operations="[{")).content.decode()
    assert 'value="typed name"' in body and ">[{</textarea>" in body


def test_the_editor_offers_the_recent_calls_of_the_rules_kind(operator_client, calls):
    old = calls(event="Order Completed")
    calls(event="Signed Up")
    calls(type="identify")
    gone = calls(event="order completed")
    Call.objects.filter(pk=gone.pk).update(payload=None)
    newest = calls(event="ORDER COMPLETED")

    answer = operator_client.get(CALLS, {"call_type": "track", "event": "Order Completed"}).json()
    assert [call["pk"] for call in answer["calls"]] == [newest.pk, old.pk]
    page = operator_client.get(ADD, {"call_type": "track", "event": "order completed"}).content.decode()
    assert re.findall(r'data-call="(\d+)"', page) == [str(newest.pk), str(old.pk)]
    assert operator_client.get(CALLS, {"call_type": "identify"}).json()["calls"][0]["type"] == "identify"


# -- the preview ---------------------------------------------------------------------------------


def test_the_preview_of_a_pasted_call_shows_cart_total_sent_as_the_price(viewer_client):
    response, answer = ask(viewer_client, draft(), payload=ORDER)

    assert response.status_code == 200
    assert answer["before"]["properties"] == {"cart_total": 12}
    assert answer["after"]["properties"] == {"revenue": 12}
    assert answer["changes"] == ["properties.cart_total: removed (was 12)", "properties.revenue: added 12"]
    assert "price" not in event_body(answer["requests_before"])["metadata"]
    assert event_body(answer["requests_before"])["metadata"]["cart_total"] == 12
    assert event_body(answer["requests_after"])["metadata"]["price"] == {"amount": 1200, "currency": "USD"}
    assert (answer["matched"], answer["dropped"], answer["problems"], answer["warnings"]) == (True, False, [], [])
    assert not Rule.objects.exists() and not LogEntry.objects.exists()  # nothing written


def test_the_preview_of_a_stored_call(operator_client, calls):
    call = calls(event="Order Completed", payload=ORDER)

    response, answer = ask(operator_client, draft(), call=call.pk)

    assert response.status_code == 200
    assert answer["before"] == ORDER and answer["after"]["properties"] == {"revenue": 12}
    assert [(r["method"], r["path"]) for r in answer["requests_after"]] == [
        ("GET", "/contacts/find_by_external_id/ada"),
        ("POST", "/events"),
    ]
    assert event_body(answer["requests_after"])["metadata"]["price"]["amount"] == 1200
    assert Call.objects.get(pk=call.pk).payload == ORDER  # the stored call never changes


def test_the_preview_runs_the_draft_after_the_rules_before_it(operator_client):
    earlier = make_rule(
        event="Order Completed", operations=[{"op": "change_type", "path": "properties.cart_total", "to": "text"}]
    )
    edited = make_rule(event="Order Completed", operations=[{"op": "drop"}])
    later = make_rule(event="Order Completed", operations=[{"op": "delete_property", "path": "properties.revenue"}])

    _, answer = ask(operator_client, draft(id=edited.pk, revision=1), payload=ORDER)

    assert answer["earlier"] == [earlier.pk]  # its own stored version and the later rule left out
    assert answer["before"]["properties"] == {"cart_total": "12"}
    assert answer["after"]["properties"] == {"revenue": "12"}
    assert later.pk not in answer["earlier"]


def test_the_preview_says_why_the_draft_does_not_apply(operator_client):
    _, answer = ask(operator_client, draft(event="Signed Up"), payload=ORDER)
    assert (answer["matched"], answer["reason"]) == (False, "its event name \"Order Completed\" is not 'Signed Up'")
    assert answer["after"] == answer["before"] and answer["requests_after"] == answer["requests_before"]
    _, answer = ask(operator_client, draft(condition={"path": "properties.plan", "equals": "pro"}), payload=ORDER)
    assert answer["reason"] == 'properties.plan is absent, not "pro"'


def test_a_dropping_draft_sends_nothing(operator_client):
    _, answer = ask(operator_client, draft([{"op": "drop"}]), payload=ORDER)
    assert (answer["dropped"], answer["requests_after"], answer["skip_after"]) == (True, [], "dropped by this rule")


@pytest.mark.parametrize("name, bad", [("Order.Completed", "'.'"), ("$purchase", "'$'")])
def test_the_preview_names_an_event_name_intercom_refuses(operator_client, name, bad):
    _, answer = ask(operator_client, draft([{"op": "rename_event", "to": name}]), payload=ORDER)
    assert answer["problems"] == [
        f"operation 1 (rename_event): to: event name {name!r} contains {bad}, which Intercom refuses"
    ]
    assert answer["after"] is None and answer["requests_before"]  # it cannot run; the call is still shown


def test_the_preview_warns_that_a_new_name_is_held_while_the_cap_is_full(operator_client, settings):
    settings.INTERCOM_EVENT_NAME_LIMIT = 2
    now = timezone.now()
    for name in ("Signed Up", "Order Completed"):
        EventName.objects.create(key=name.lower(), name=name, slot_used_at=now)
    EventName.objects.create(key="order placed", name="Order Placed")  # seen, but without a slot

    for new_name in ("Purchase", "Order Placed"):
        _, answer = ask(operator_client, draft([{"op": "rename_event", "to": new_name}]), payload=ORDER)
        assert answer["problems"] == [f"the cap is full: calls renamed to {new_name} will be held"]
        assert event_body(answer["requests_after"])["event_name"] == new_name
    _, answer = ask(operator_client, draft([{"op": "rename_event", "to": "signed up"}]), payload=ORDER)
    assert answer["problems"] == []  # a name holding a slot
    assert event_body(answer["requests_after"])["event_name"] == "Signed Up"  # as the registry spells it

    settings.INTERCOM_EVENT_NAME_LIMIT = 3
    _, answer = ask(operator_client, draft([{"op": "rename_event", "to": "Purchase"}]), payload=ORDER)
    assert answer["problems"] == []


@pytest.mark.parametrize(
    "body, status, error",
    [
        ("{not json", 400, "The request is not JSON."),
        ("[1, 2]", 400, 'Send {"rule": {...}, "call": id}'),
        (json.dumps({"rule": "drop", "payload": ORDER}), 400, 'Send {"rule": {...}, "call": id}'),
        (json.dumps({"rule": draft()}), 400, "Pick a call or paste a payload"),
        (json.dumps({"rule": draft(), "call": 1, "payload": ORDER}), 400, "Pick a call or paste a payload"),
        (json.dumps({"rule": draft(), "call": "²"}), 400, 'call: "²" is not a call id.'),
        (json.dumps({"rule": draft(), "call": 10**30}), 400, "is not a call id."),
        (json.dumps({"rule": draft(), "call": True}), 400, "call: true is not a call id."),
        (json.dumps({"rule": draft(), "call": 123456}), 404, "There is no call 123456."),
        (json.dumps({"rule": draft(), "payload": [ORDER]}), 400, "The pasted payload must be a JSON object"),
        ('{"rule": {}, "payload": {"type": "track", "p": NaN}}', 400, "The request is not JSON."),
        ('{"rule": {}, "payload": ' + "[" * 100 + "]" * 100 + "}", 400, "must be a JSON object"),
        ('{"rule": {}, "payload": {"a": ' + '{"a": ' * 100 + "1" + "}" * 101 + "}", 400, "more than 64 levels"),
        ('{"rule": ' + "[" * 100_000 + "]" * 100_000 + "}", 400, "The request is not JSON."),
    ],
)
def test_bad_input_to_the_preview_is_a_clear_error(viewer_client, body, status, error):
    response = viewer_client.post(PREVIEW, body, content_type="application/json")
    assert response.status_code == status
    assert error in response.json()["error"]


def test_the_preview_of_a_call_whose_payload_was_removed(viewer_client, calls):
    call = calls(event="Order Completed")
    Call.objects.filter(pk=call.pk).update(payload=None)
    response, answer = ask(viewer_client, draft(), call=call.pk)
    assert response.status_code == 400 and "has no payload any more" in answer["error"]


def test_a_draft_with_any_shape_is_previewed_as_problems(viewer_client):
    for rule in ({}, {"call_type": "track", "operations": "drop"}, {"call_type": [], "operations": [[]]}):
        response, answer = ask(viewer_client, rule, payload=ORDER)
        assert response.status_code == 200 and answer["problems"] and answer["after"] is None


# -- the list's actions and the resend -----------------------------------------------------------


def test_an_operator_disables_moves_and_deletes_rules(operator_client, operator):
    first = make_rule(event="Order Completed")
    other = make_rule("identify", operations=[{"op": "delete_property", "path": "traits.ssn"}])
    second = make_rule(event="order completed")

    operator_client.post(action_url("toggle", first))
    first.refresh_from_db()
    assert (first.enabled, first.revision) == (False, 2)

    # Up within its group: before `first`, across the identify rule between them.
    response = operator_client.post(action_url("move", second), {"direction": "up"}, follow=True)
    assert list(Rule.objects.order_by("position").values_list("pk", flat=True)) == [second.pk, first.pk, other.pk]
    assert f"Rule {second.pk} now runs at position 1 of 3." in response.content.decode()
    operator_client.post(action_url("move", second), {"direction": "down"})
    assert list(Rule.objects.order_by("position").values_list("pk", flat=True)) == [first.pk, second.pk, other.pk]
    assert operator_client.post(action_url("move", second), {"direction": "sideways"}).status_code == 400

    operator_client.post(action_url("delete", other))
    assert not Rule.objects.filter(pk=other.pk).exists()
    flags = list(LogEntry.objects.order_by("pk").values_list("action_flag", "change_message", "user"))
    assert flags == [
        (CHANGE, "Disabled.", operator.pk),
        (CHANGE, "Moved to position 1.", operator.pk),
        (CHANGE, "Moved to position 2.", operator.pk),
        (DELETION, "Deleted.", operator.pk),
    ]


def test_resend_matching_moves_the_matching_held_and_failed_calls_to_pending(operator_client, operator, calls):
    shop = Source.create_with_key("Shop")[0]
    rule = make_rule(
        event="Order Completed",
        operations=RENAME_CART_TOTAL,
        source=calls.source,
        condition={"path": "properties.cart_total", "exists": True},
    )
    held = calls(event="Order Completed", state=State.HELD, payload=ORDER)
    failed = calls(event="order completed", state=State.FAILED, payload=dict(ORDER, event="order completed"))
    left = [
        calls(event="Order Completed", state=State.DELIVERED, payload=ORDER),  # not held or failed
        calls(event="Order Completed", state=State.FAILED, payload=dict(ORDER, properties={})),  # condition
        calls(event="Signed Up", state=State.FAILED),  # another event
        calls(event="Order Completed", state=State.FAILED, payload=ORDER, source=shop),  # another source
        calls(type="identify", state=State.FAILED),  # another type
    ]
    EventName.objects.create(key="order completed", name="Order Completed", held_count=1)

    assert set(preview.matching_deliveries(rule)) == {held.delivery, failed.delivery}
    page = operator_client.get(edit_url(rule)).content.decode()
    assert "Resend the 2 held and failed calls this rule matches" in page

    response = operator_client.post(action_url("resend", rule), follow=True)

    assert f"Resent 2 held or failed calls rule {rule.pk} matches." in response.content.decode()
    moved = Delivery.objects.filter(pk__in=[held.pk, failed.pk])
    assert {(d.state, d.trigger) for d in moved} == {(State.PENDING, Trigger.MANUAL)}
    assert [Delivery.objects.get(pk=c.pk).state for c in left] == [State.DELIVERED] + [State.FAILED] * 4
    assert EventName.objects.get(key="order completed").held_count == 0
    assert LogEntry.objects.get().change_message == f"Resent 2 held or failed calls rule {rule.pk} matches."


def test_resend_matching_sees_the_call_as_the_rules_before_it_leave_it(calls):
    make_rule(event="Order Completed", operations=[{"op": "set_constant", "path": "properties.vip", "value": True}])
    rule = make_rule(event="Order Completed", condition={"path": "properties.vip", "equals": True})
    failed = calls(event="Order Completed", state=State.FAILED)
    assert preview.resend_matching(rule) == 1
    assert Delivery.objects.get(pk=failed.pk).state == State.PENDING
