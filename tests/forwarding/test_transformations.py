"""Tables of transformation rules and the calls they reshape (forwarding/transformations): the operations,
the change_type table, matching, ordering, drops, validation and Intercom's name rules."""

import copy
import math

import pytest

from forwarding.transformations.operations import FIELDS as OP_FIELDS
from forwarding.transformations.operations import convert
from forwarding.transformations.rules import SPEC_KEYS, Applied, apply, compile_rules, matches, name_problems, validate


def track(properties=None, event="Order Completed", **extra):
    return {
        "type": "track",
        "event": event,
        "userId": "u1",
        "anonymousId": "a1",
        "properties": {} if properties is None else properties,
        "context": {},
        "messageId": "m-track",
        "timestamp": "2026-01-02T03:04:05Z",
        **extra,
    }


def page(properties=None, name="Pricing", **extra):
    return {"type": "page", "name": name, "userId": "u1", "properties": properties or {}, "context": {}, **extra}


def identify(traits=None, **extra):
    return {"type": "identify", "userId": "u1", "traits": {} if traits is None else traits, "context": {}, **extra}


def group(traits=None, **extra):
    return {"type": "group", "userId": "u1", "groupId": "g1", "traits": traits or {}, "context": {}, **extra}


def rule(*operations, call_type="track", id=7, revision=3, **fields):
    return {
        "id": id,
        "revision": revision,
        "name": "a rule",
        "enabled": True,
        "source": None,
        "call_type": call_type,
        "event": None,
        "condition": None,
        "operations": list(operations),
        **fields,
    }


def run_one(op, message):
    """The Applied of one rule holding `op`, of the message's own call type, on `message`."""
    return apply([rule(op, call_type=message["type"])], message, "1")


def rename(source, target):
    return {"op": "rename_property", "from": source, "to": target}


# --- rename_property --------------------------------------------------------------------------

RENAMES = [
    ("properties.cart_total", "properties.revenue", {"cart_total": 12}, {"revenue": 12}, []),
    ("properties.cart.total", "properties.revenue", {"cart": {"total": 5}}, {"cart": {}, "revenue": 5}, []),
    ("properties.total", "properties.order.total", {"total": 5}, {"order": {"total": 5}}, []),
    (
        "properties.total",
        "properties.order.total",
        {"total": 5, "order": {"id": 1}},
        {"order": {"id": 1, "total": 5}},
        [],
    ),
    ("properties.a", "properties.a.b", {"a": 1}, {"a": {"b": 1}}, []),
    ("properties.a", "properties.b", {"a": None}, {"b": None}, []),
    (
        "properties.cart_total",
        "properties.revenue",
        {"cart_total": 12, "revenue": 3},
        {"revenue": 12},
        ["rule 7: properties.revenue: overwritten by properties.cart_total (was 3)"],
    ),
    (
        "properties.a.b",
        "properties.a",
        {"a": {"b": 1}},
        {"a": 1},
        ["rule 7: properties.a: overwritten by properties.a.b (was {})"],
    ),
    (
        "properties.a",
        "properties.b.c",
        {"a": 1, "b": "text"},
        {"a": 1, "b": "text"},
        ["rule 7: properties.b.c: properties.b is not an object; properties.a not moved"],
    ),
    ("properties.cart_total", "properties.revenue", {"other": 1}, {"other": 1}, []),
    ("properties.cart.total", "properties.revenue", {"cart": "x"}, {"cart": "x"}, []),
    ("properties.cart.total", "properties.revenue", {"cart": [{"total": 1}]}, {"cart": [{"total": 1}]}, []),
]


@pytest.mark.parametrize(("source", "target", "before", "after", "warnings"), RENAMES)
def test_it_renames_a_property(source, target, before, after, warnings):
    result = run_one(rename(source, target), track(before))
    assert result.message["properties"] == after
    assert list(result.warnings) == warnings


def test_a_rename_on_identify_moves_a_trait():
    result = run_one(rename("traits.plan_name", "traits.plan"), identify({"plan_name": "pro", "email": "e@x"}))
    assert result.message["traits"] == {"email": "e@x", "plan": "pro"}


def test_a_rename_on_group_moves_a_trait():
    result = run_one(rename("traits.size", "traits.employees"), group({"size": 12}))
    assert result.message["traits"] == {"employees": 12}


def test_a_rename_with_no_traits_at_all_does_nothing():
    message = identify()
    del message["traits"]
    result = run_one(rename("traits.a", "traits.b"), message)
    assert "traits" not in result.message and result.warnings == ()


def test_rename_event_sets_the_event():
    result = run_one({"op": "rename_event", "to": "Checkout Done"}, track())
    assert result.message["event"] == "Checkout Done"


# --- change_type: the whole table -------------------------------------------------------------

NOT = object()  # expected value: left as it is, with a warning

CONVERSIONS = [
    ("number", 5, 5),
    ("number", 2.5, 2.5),
    ("number", -3, -3),
    ("number", "-1", -1),
    ("number", "24.6", 24.6),
    ("number", "1e3", 1000.0),
    ("number", " 42 ", 42),
    ("number", "+7", 7),
    ("number", ".5", 0.5),
    ("number", "$812.37", NOT),
    ("number", "", NOT),
    ("number", "  ", NOT),
    ("number", "abc", NOT),
    ("number", "12abc", NOT),
    ("number", "1_000", NOT),
    ("number", "NaN", NOT),
    ("number", "nan", NOT),
    ("number", "Infinity", NOT),
    ("number", "-inf", NOT),
    ("number", "1e400", NOT),
    ("number", "١٢", NOT),
    ("number", True, NOT),
    ("number", False, NOT),
    ("number", None, None),
    ("number", {"a": 1}, NOT),
    ("number", [1], NOT),
    ("text", "abc", "abc"),
    ("text", "", ""),
    ("text", 12, "12"),
    ("text", -12, "-12"),
    ("text", 24.6, "24.6"),
    ("text", 0.1 + 0.2, "0.30000000000000004"),
    ("text", 1e20, "1e+20"),
    ("text", True, "true"),
    ("text", False, "false"),
    ("text", {"a": 1, "b": [1, 2]}, '{"a":1,"b":[1,2]}'),
    ("text", ["é", None], '["é",null]'),
    ("text", [], "[]"),
    ("text", None, None),
    ("boolean", True, True),
    ("boolean", False, False),
    ("boolean", "true", True),
    ("boolean", " YES ", True),
    ("boolean", "1", True),
    ("boolean", "False", False),
    ("boolean", "no", False),
    ("boolean", "0", False),
    ("boolean", "maybe", NOT),
    ("boolean", "", NOT),
    ("boolean", "on", NOT),
    ("boolean", 1, True),
    ("boolean", 0, False),
    ("boolean", 1.0, True),
    ("boolean", 2, NOT),
    ("boolean", -1, NOT),
    ("boolean", 0.5, NOT),
    ("boolean", None, None),
    ("boolean", {}, NOT),
    ("boolean", [True], NOT),
]


@pytest.mark.parametrize(("to", "value", "expected"), CONVERSIONS)
def test_it_changes_the_type_as_the_table_says(to, value, expected):
    result = run_one({"op": "change_type", "path": "properties.x", "to": to}, track({"x": value}))
    converted = result.message["properties"]["x"]
    if expected is NOT:
        assert converted == value and type(converted) is type(value)
        assert len(result.warnings) == 1 and result.warnings[0].startswith("rule 7: properties.x: ")
        assert result.warnings[0].endswith("; left as it is")
    else:
        assert converted == expected and type(converted) is type(expected)
        assert result.warnings == ()


@pytest.mark.parametrize(
    ("to", "value", "warning"),
    [
        ("number", "$812.37", 'rule 7: properties.price: "$812.37" is not a number; left as it is'),
        ("number", True, "rule 7: properties.price: true is not a number; left as it is"),
        ("boolean", "maybe", 'rule 7: properties.price: "maybe" is not a boolean; left as it is'),
        ("number", "x" * 60, f'rule 7: properties.price: "{"x" * 38}… is not a number; left as it is'),
    ],
)
def test_a_refused_conversion_warning_reads_well(to, value, warning):
    result = run_one({"op": "change_type", "path": "properties.price", "to": to}, track({"price": value}))
    assert result.warnings == (warning,)


def test_a_huge_integer_string_is_left_with_a_warning():
    value, problem = convert("9" * 5000, "number")
    assert value == "9" * 5000 and problem.endswith("is not a number; left as it is")


@pytest.mark.parametrize("to", ["number", "text", "boolean"])
def test_a_type_change_of_an_absent_path_does_nothing(to):
    result = run_one({"op": "change_type", "path": "properties.cart.price", "to": to}, track({"other": "1"}))
    assert result.message["properties"] == {"other": "1"} and result.warnings == ()


def test_a_type_change_reaches_a_nested_trait():
    result = run_one(
        {"op": "change_type", "path": "traits.company.size", "to": "number"}, identify({"company": {"size": "12"}})
    )
    assert result.message["traits"] == {"company": {"size": 12}}


# --- change_case, delete_property -------------------------------------------------------------

CASES = [
    ("upper", {"plan": "Pro"}, {"plan": "PRO"}, []),
    ("lower", {"plan": "PRO Plus"}, {"plan": "pro plus"}, []),
    ("lower", {"plan": "STRASSE"}, {"plan": "strasse"}, []),
    ("upper", {"plan": 12}, {"plan": 12}, ["rule 7: properties.plan: 12 is not text; case left as it is"]),
    ("upper", {"plan": None}, {"plan": None}, ["rule 7: properties.plan: null is not text; case left as it is"]),
    ("upper", {"plan": ["a"]}, {"plan": ["a"]}, ['rule 7: properties.plan: ["a"] is not text; case left as it is']),
    ("upper", {"other": "x"}, {"other": "x"}, []),
]


@pytest.mark.parametrize(("to", "before", "after", "warnings"), CASES)
def test_it_changes_the_case(to, before, after, warnings):
    result = run_one({"op": "change_case", "path": "properties.plan", "to": to}, track(before))
    assert result.message["properties"] == after
    assert list(result.warnings) == warnings


DELETES = [
    ("properties.secret", {"secret": "s", "keep": 1}, {"keep": 1}),
    ("properties.card.number", {"card": {"number": "4242", "brand": "visa"}}, {"card": {"brand": "visa"}}),
    ("properties.secret", {"keep": 1}, {"keep": 1}),
    ("properties.card.number", {"card": "4242"}, {"card": "4242"}),
    ("properties.secret", {"secret": None}, {}),
]


@pytest.mark.parametrize(("path", "before", "after"), DELETES)
def test_it_deletes_a_property(path, before, after):
    result = run_one({"op": "delete_property", "path": path}, track(before))
    assert result.message["properties"] == after and result.warnings == ()


# --- copy_field, set_constant -----------------------------------------------------------------

FIELDS = {
    "context": {
        "page": {"url": "https://x.test/a"},
        "campaign": {"source": "newsletter"},
        "userAgent": "UA/1",
        "ip": "10.0.0.1",
    },
    "channel": "server",
    "anonymousId": "anon-9",
}

COPIES = [
    ("context.page.url", "https://x.test/a"),
    ("context.campaign.source", "newsletter"),
    ("context.userAgent", "UA/1"),
    ("context.ip", "10.0.0.1"),
    ("channel", "server"),
    ("anonymousId", "anon-9"),
    ("userId", "u1"),
    ("context.campaign", {"source": "newsletter"}),
]


@pytest.mark.parametrize(("source", "value"), COPIES)
def test_it_copies_a_field_of_the_call_into_a_property(source, value):
    result = run_one({"op": "copy_field", "from": source, "to": "properties.copied"}, track({"a": 1}, **FIELDS))
    assert result.message["properties"] == {"a": 1, "copied": value}
    assert result.warnings == ()
    assert result.message["context"] == FIELDS["context"]  # the source stays


def test_a_copy_into_traits_works_for_identify():
    result = run_one(
        {"op": "copy_field", "from": "context.ip", "to": "traits.last_ip"}, identify(context={"ip": "1.2.3.4"})
    )
    assert result.message["traits"] == {"last_ip": "1.2.3.4"}


COPY_WARNINGS = [
    (
        "context.page.url",
        "properties.page_url",
        {},
        {},
        "rule 7: context.page.url: absent; nothing copied to properties.page_url",
    ),
    (
        "channel",
        "properties.c",
        {"c": "old"},
        {"c": "server"},
        'rule 7: properties.c: overwritten by channel (was "old")',
    ),
    (
        "channel",
        "properties.c.d",
        {"c": 3},
        {"c": 3},
        "rule 7: properties.c.d: properties.c is not an object; channel not copied",
    ),
]


@pytest.mark.parametrize(("source", "target", "before", "after", "warning"), COPY_WARNINGS)
def test_a_copy_warns_when_it_cannot_copy_cleanly(source, target, before, after, warning):
    result = run_one({"op": "copy_field", "from": source, "to": target}, track(before, channel="server"))
    assert result.message["properties"] == after and result.warnings == (warning,)


def test_a_copied_object_is_not_shared_with_its_source():
    result = run_one({"op": "copy_field", "from": "context.campaign", "to": "properties.campaign"}, track(**FIELDS))
    assert result.message["properties"]["campaign"] is not result.message["context"]["campaign"]


CONSTANTS = [
    ("properties.team", "growth", {"a": 1}, {"a": 1, "team": "growth"}),
    ("properties.team", None, {"team": "x"}, {"team": None}),
    ("properties.flags.beta", True, {}, {"flags": {"beta": True}}),
    ("properties.tags", ["a", {"b": 2}], {"tags": "old"}, {"tags": ["a", {"b": 2}]}),
    ("properties.count", 0, {}, {"count": 0}),
]


@pytest.mark.parametrize(("path", "value", "before", "after"), CONSTANTS)
def test_it_sets_a_constant_silently(path, value, before, after):
    result = run_one({"op": "set_constant", "path": path, "value": value}, track(before))
    assert result.message["properties"] == after and result.warnings == ()


def test_a_constant_blocked_by_a_non_object_is_not_set():
    result = run_one({"op": "set_constant", "path": "properties.a.b", "value": 1}, track({"a": None}))
    assert result.message["properties"] == {"a": None}
    assert result.warnings == ("rule 7: properties.a.b: properties.a is not an object; not set",)


def test_a_constant_object_is_a_fresh_copy_each_time():
    spec = rule({"op": "set_constant", "path": "properties.meta", "value": {"tags": ["a"]}})
    first = apply([spec], track(), "1").message
    first["properties"]["meta"]["tags"].append("b")
    assert apply([spec], track(), "1").message["properties"]["meta"] == {"tags": ["a"]}
    assert spec["operations"][0]["value"] == {"tags": ["a"]}


# --- drop ---------------------------------------------------------------------------------------


def test_a_drop_stops_the_rule_and_the_later_rules():
    set_a = {"op": "set_constant", "path": "properties.a", "value": 1}
    set_b = {"op": "set_constant", "path": "properties.b", "value": 2}
    later = rule({"op": "set_constant", "path": "properties.c", "value": 3}, id=8, revision=1)
    result = apply([rule(set_a, {"op": "drop"}, set_b), later], track(), "1")
    assert result.message["properties"] == {"a": 1}
    assert (result.dropped, result.dropped_by, result.applied) == (True, 7, ((7, 3),))


def test_a_drop_by_an_unsaved_rule_is_told_apart():
    result = apply([rule({"op": "drop"}, id=None, revision=None)], track(), "1")
    assert (result.dropped, result.dropped_by, result.applied) == (True, None, ((None, None),))


def test_a_run_without_drop_is_not_dropped():
    result = apply([rule({"op": "delete_property", "path": "properties.a"})], track(), "1")
    assert (result.dropped, result.dropped_by) == (False, None)


# --- matching -----------------------------------------------------------------------------------

DELETE = {"op": "delete_property", "path": "properties.x"}

MATCHING = [
    ({}, track(), "1", True),
    ({"source": "3"}, track(), 3, True),
    ({"source": "3"}, track(), "3", True),
    ({"source": "3"}, track(), "4", False),
    ({"source": "3"}, track(), None, False),
    ({"enabled": False}, track(), "1", False),
    ({"call_type": "page"}, track(), "1", False),
    ({"call_type": "identify"}, identify(), "1", True),
    ({"call_type": "group"}, identify(), "1", False),
    ({"event": "order completed"}, track(), "1", True),
    ({"event": "ORDER COMPLETED"}, track(event="Order Completed"), "1", True),
    ({"event": "Order Completed"}, track(event=" order completed "), "1", True),
    ({"event": "Straße"}, track(event="STRASSE"), "1", True),
    ({"event": "Order Completed"}, track(event="Order Shipped"), "1", False),
    ({"event": "Order Completed"}, track(event=None), "1", False),
    ({"event": "Order Completed"}, page(name="Order Completed", event="x"), "1", False),
    ({"call_type": "page", "event": "pricing"}, page(name="Pricing"), "1", True),
    ({"call_type": "page", "event": "Pricing"}, page(name="Docs"), "1", False),
    ({"call_type": "page", "event": "Pricing"}, page(name=None, event="Pricing"), "1", False),
    ({"condition": {"path": "properties.plan", "equals": "pro"}}, track({"plan": "pro"}), "1", True),
    ({"condition": {"path": "properties.plan", "equals": "pro"}}, track({"plan": "Pro"}), "1", False),
    ({"condition": {"path": "properties.plan", "equals": "pro"}}, track({}), "1", False),
    ({"condition": {"path": "properties.n", "equals": 1}}, track({"n": 1.0}), "1", True),
    ({"condition": {"path": "properties.n", "equals": 1}}, track({"n": True}), "1", False),
    ({"condition": {"path": "properties.n", "equals": True}}, track({"n": 1}), "1", False),
    ({"condition": {"path": "properties.n", "equals": "1"}}, track({"n": 1}), "1", False),
    ({"condition": {"path": "properties.n", "equals": None}}, track({"n": None}), "1", True),
    ({"condition": {"path": "properties.n", "equals": None}}, track({}), "1", False),
    ({"condition": {"path": "properties.n", "equals": {"a": [1, True]}}}, track({"n": {"a": [1, True]}}), "1", True),
    ({"condition": {"path": "properties.n", "equals": {"a": [1, True]}}}, track({"n": {"a": [1, 1]}}), "1", False),
    ({"condition": {"path": "properties.n", "equals": [1, 2]}}, track({"n": [1, 2, 3]}), "1", False),
    ({"condition": {"path": "context.ip", "equals": "1.2.3.4"}}, track(context={"ip": "1.2.3.4"}), "1", True),
    ({"condition": {"path": "properties.plan", "exists": True}}, track({"plan": None}), "1", True),
    ({"condition": {"path": "properties.plan", "exists": True}}, track({}), "1", False),
    ({"condition": {"path": "properties.plan", "exists": False}}, track({}), "1", True),
    ({"condition": {"path": "properties.plan", "exists": False}}, track({"plan": 0}), "1", False),
    ({"condition": {"path": "properties.a.b", "exists": True}}, track({"a": "b"}), "1", False),
]


@pytest.mark.parametrize(("fields", "message", "source_id", "expected"), MATCHING)
def test_it_matches_as_the_table_says(fields, message, source_id, expected):
    spec = rule(DELETE, **fields)
    assert matches(spec, message, source_id) is expected
    assert bool(apply([spec], message, source_id).applied) is expected
    compiled = compile_rules([spec])
    assert (compiled != [] and matches(compiled[0], message, source_id)) is expected


# --- ordering, applied, input safety --------------------------------------------------------------


def test_a_renamed_event_is_matched_by_a_later_rule_under_its_new_name():
    renaming = rule({"op": "rename_event", "to": "Checkout Done"}, event="Order Completed", id=1, revision=2)
    tagging = rule({"op": "set_constant", "path": "properties.t", "value": 1}, event="checkout done", id=2, revision=5)
    result = apply([renaming, tagging], track(), "1")
    assert result.applied == ((1, 2), (2, 5))
    assert (result.message["event"], result.message["properties"]) == ("Checkout Done", {"t": 1})
    assert apply([tagging, renaming], track(), "1").applied == ((1, 2),)


def test_each_rule_runs_on_the_result_of_the_ones_before():
    first = rule(rename("properties.cart_total", "properties.revenue"), id=1)
    second = rule({"op": "change_type", "path": "properties.revenue", "to": "number"}, id=2)
    assert apply([first, second], track({"cart_total": "12.5"}), "1").message["properties"] == {"revenue": 12.5}
    assert apply([second, first], track({"cart_total": "12.5"}), "1").message["properties"] == {"revenue": "12.5"}


def test_applied_lists_the_rules_that_ran_with_their_revisions():
    specs = [
        rule(DELETE, id=7, revision=3),
        rule(DELETE, id=8, revision=1, event="Other"),
        rule(DELETE, id=9, revision=4, enabled=False),
        rule(DELETE, id=10, revision=2, source="1"),
    ]
    assert apply(specs, track(), "1").applied == ((7, 3), (10, 2))


def test_warnings_name_their_rule_in_order():
    specs = [
        rule({"op": "change_case", "path": "properties.a", "to": "upper"}, id=3),
        rule({"op": "copy_field", "from": "context.x", "to": "properties.b"}, id=None),
    ]
    assert apply(specs, track({"a": 1}), "1").warnings == (
        "rule 3: properties.a: 1 is not text; case left as it is",
        "rule (new): context.x: absent; nothing copied to properties.b",
    )


INPUT_OPERATIONS = [
    rename("properties.cart.total", "properties.revenue"),
    {"op": "change_type", "path": "properties.cart.total", "to": "text"},
    {"op": "change_case", "path": "properties.plan", "to": "upper"},
    {"op": "delete_property", "path": "properties.cart.total"},
    {"op": "copy_field", "from": "context.page", "to": "properties.page"},
    {"op": "set_constant", "path": "properties.cart.extra", "value": 1},
    {"op": "rename_event", "to": "Renamed"},
    {"op": "drop"},
]


@pytest.mark.parametrize("op", INPUT_OPERATIONS)
def test_the_input_call_is_never_mutated(op):
    message = track({"cart": {"total": 5}, "plan": "pro"}, context={"page": {"url": "u"}})
    before = copy.deepcopy(message)
    result = run_one(op, message)
    assert message == before
    assert result.message is not message and result.message["properties"] is not message["properties"]
    assert result.message["context"]["page"] is not message["context"]["page"]


def test_a_call_no_rule_matches_is_returned_as_it_is():
    message = track()
    result = apply([rule(DELETE, event="Other"), rule(DELETE, call_type="page")], message, "1")
    assert result == Applied(message) and result.message is message


def test_compiled_rules_give_the_same_result_as_specs():
    specs = [rule(rename("properties.a", "properties.b"), id=1), rule(DELETE, id=2, enabled=False), rule(DELETE, id=3)]
    compiled = compile_rules(specs)
    assert [r.id for r in compiled] == [1, 3]
    assert apply(compiled, track({"a": 1, "x": 2}), "1") == apply(specs, track({"a": 1, "x": 2}), "1")
    assert apply(compiled, track({"a": 1, "x": 2}), "1").message["properties"] == {"b": 1}


# --- validation -----------------------------------------------------------------------------------

VALID = [
    rule(rename("properties.cart.total", "properties.revenue")),
    rule({"op": "rename_event", "to": "Checkout Done"}, event="Order Completed"),
    rule({"op": "change_type", "path": "properties.price", "to": "number"}, source="12"),
    rule({"op": "change_case", "path": "properties.plan", "to": "lower"}, call_type="page", event="Pricing"),
    rule({"op": "delete_property", "path": "traits.secret"}, call_type="identify"),
    rule({"op": "copy_field", "from": "context.campaign.source", "to": "traits.utm_source"}, call_type="group"),
    rule({"op": "set_constant", "path": "properties.team", "value": {"a": [1, None]}}),
    rule({"op": "drop"}, condition={"path": "properties.plan", "equals": None}),
    rule({"op": "drop"}, condition={"path": "context.ip", "exists": False}),
    {"call_type": "track", "operations": [{"op": "drop"}]},
    rule({"op": "drop"}, id=None, revision=None, name=None, enabled=False),
    rule({"op": "set_constant", "path": "properties." + ".".join("abcdefghi"), "value": 1}),
]


@pytest.mark.parametrize("spec", VALID)
def test_a_valid_spec_has_no_problem(spec):
    assert validate(spec) == []


def op_spec(op, call_type="track"):
    return rule(op, call_type=call_type)


LONG_PATH = "properties." + "x" * 244
OUTSIDE = "is outside properties: track rules change only properties.*"
INVALID = [
    ("not an object", ["a rule must be an object"]),
    (rule({"op": "drop"}, conditon=None), ["conditon: unknown key"]),
    (rule({"op": "drop"}, id="7"), ["id: must be a positive whole number or null"]),
    (rule({"op": "drop"}, revision=True), ["revision: must be a positive whole number or null"]),
    (rule({"op": "drop"}, id=0), ["id: must be a positive whole number or null"]),
    (rule({"op": "drop"}, name=5), ["name: must be text or null"]),
    (rule({"op": "drop"}, enabled="yes"), ["enabled: must be true or false"]),
    (rule({"op": "drop"}, source=3), ["source: must be null (any source) or a source id as text"]),
    (rule({"op": "drop"}, source=" "), ["source: must be null (any source) or a source id as text"]),
    (rule({"op": "drop"}, call_type="screen"), ["call_type: must be one of track, page, identify, group"]),
    ({"operations": [{"op": "drop"}]}, ["call_type: must be one of track, page, identify, group"]),
    (rule({"op": "drop"}, event=""), ["event: must be null (any) or a name of 1 to 255 characters"]),
    (rule({"op": "drop"}, event="x" * 256), ["event: must be null (any) or a name of 1 to 255 characters"]),
    (rule({"op": "drop"}, event=5), ["event: must be null (any) or a name of 1 to 255 characters"]),
    (
        rule({"op": "drop"}, call_type="identify", event="Signed Up"),
        ["event: identify rules have no event name to match; use null"],
    ),
    (
        rule({"op": "drop"}, condition="plan"),
        ['condition: must be null or {"path": ..., "equals": value} or {"path": ..., "exists": true}'],
    ),
    (
        rule({"op": "drop"}, condition={"path": "properties.plan"}),
        ['condition: needs exactly one of "equals" and "exists", and nothing else'],
    ),
    (
        rule({"op": "drop"}, condition={"path": "properties.plan", "equals": 1, "exists": True}),
        ['condition: needs exactly one of "equals" and "exists", and nothing else'],
    ),
    (
        rule({"op": "drop"}, condition={"path": "properties.plan", "exists": "yes"}),
        ["condition: exists: must be true or false"],
    ),
    (
        rule({"op": "drop"}, condition={"path": "properties.p", "equals": math.nan}),
        ["condition: equals: must be a JSON value"],
    ),
    (
        rule({"op": "drop"}, condition={"path": "properties..p", "exists": True}),
        ["condition: path: 'properties..p' has an empty segment"],
    ),
    ({"call_type": "track"}, ["operations: missing"]),
    (rule(), ["operations: must be a list of at least one operation"]),
    (rule(operations="drop"), ["operations: must be a list of at least one operation"]),
    (rule(5), ["operation 1: must be an object"]),
    (
        rule({"op": "drop"}, {"op": "explode"}),
        [
            'operation 2: unknown op "explode"; one of '
            + ", ".join(
                [
                    "rename_event",
                    "rename_property",
                    "change_type",
                    "change_case",
                    "delete_property",
                    "copy_field",
                    "set_constant",
                    "drop",
                ]
            )
        ],
    ),
    (
        rule({}),
        [
            "operation 1: unknown op null; one of "
            + ", ".join(
                [
                    "rename_event",
                    "rename_property",
                    "change_type",
                    "change_case",
                    "delete_property",
                    "copy_field",
                    "set_constant",
                    "drop",
                ]
            )
        ],
    ),
    (rule({"op": "drop", "why": "x"}), ["operation 1 (drop): why: unknown key"]),
    (
        op_spec({"op": "rename_event", "to": "X"}, "page"),
        ["operation 1 (rename_event): only a track rule can rename the event"],
    ),
    (op_spec({"op": "rename_event"}), ["operation 1 (rename_event): to: missing"]),
    (op_spec({"op": "rename_event", "to": ""}), ["operation 1 (rename_event): to: event name is empty"]),
    (
        op_spec({"op": "rename_event", "to": "v1.checkout"}),
        ["operation 1 (rename_event): to: event name 'v1.checkout' contains '.', which Intercom refuses"],
    ),
    (
        op_spec({"op": "rename_event", "to": "x" * 256}),
        ["operation 1 (rename_event): to: event name is longer than 255 characters"],
    ),
    (op_spec({"op": "rename_property", "from": "properties.a"}), ["operation 1 (rename_property): to: missing"]),
    (
        op_spec(rename("userId", "properties.user")),
        ["operation 1 (rename_property): from: 'userId' is outside properties: track rules change only properties.*"],
    ),
    (
        op_spec(rename("properties.a", "type")),
        ["operation 1 (rename_property): to: 'type' is outside properties: track rules change only properties.*"],
    ),
    (
        op_spec(rename("properties.a", "properties")),
        ["operation 1 (rename_property): to: must name a key under properties (e.g. properties.plan)"],
    ),
    (op_spec(rename("properties.a", "properties.a")), ["operation 1 (rename_property): from and to are the same path"]),
    (
        op_spec(rename("properties.a", "properties.$a")),
        ["operation 1 (rename_property): to: key '$a' contains '$', which Intercom refuses"],
    ),
    (
        op_spec(rename("traits.a", "traits.b")),
        [
            f"operation 1 (rename_property): from: 'traits.a' {OUTSIDE}",
            f"operation 1 (rename_property): to: 'traits.b' {OUTSIDE}",
        ],
    ),
    (
        op_spec(rename("properties.a", "traits.a"), "identify"),
        ["operation 1 (rename_property): from: 'properties.a' is outside traits: identify rules change only traits.*"],
    ),
    (
        op_spec({"op": "change_type", "path": "properties.price", "to": "date"}),
        ["operation 1 (change_type): to: must be one of number, text, boolean"],
    ),
    (
        op_spec({"op": "change_type", "path": "messageId", "to": "text"}),
        ["operation 1 (change_type): path: 'messageId' is outside properties: track rules change only properties.*"],
    ),
    (
        op_spec({"op": "change_case", "path": "properties.plan", "to": "title"}),
        ["operation 1 (change_case): to: must be one of upper, lower"],
    ),
    (
        op_spec({"op": "delete_property", "path": "timestamp"}),
        [f"operation 1 (delete_property): path: 'timestamp' {OUTSIDE}"],
    ),
    (
        op_spec({"op": "copy_field", "from": "context.ip", "to": "context.ip2"}),
        ["operation 1 (copy_field): to: 'context.ip2' is outside properties: track rules change only properties.*"],
    ),
    (
        op_spec({"op": "copy_field", "from": "context.", "to": "properties.x"}),
        ["operation 1 (copy_field): from: 'context.' has an empty segment"],
    ),
    (
        op_spec({"op": "copy_field", "from": 5, "to": "properties.x"}),
        ["operation 1 (copy_field): from: must be a dot-separated path (text)"],
    ),
    (
        op_spec({"op": "copy_field", "from": "channel", "to": "properties.a@b"}),
        ["operation 1 (copy_field): to: key 'a@b' contains '@', which Intercom refuses"],
    ),
    (
        op_spec({"op": "set_constant", "path": "userId", "value": "x"}),
        ["operation 1 (set_constant): path: 'userId' is outside properties: track rules change only properties.*"],
    ),
    (op_spec({"op": "set_constant", "path": "properties.x"}), ["operation 1 (set_constant): value: missing"]),
    (
        op_spec({"op": "set_constant", "path": "properties.x", "value": {1, 2}}),
        ["operation 1 (set_constant): value: must be a JSON value"],
    ),
    (
        op_spec({"op": "set_constant", "path": "properties." + ".".join("abcdefghij"), "value": 1}),
        ["operation 1 (set_constant): path: more than 10 segments"],
    ),
    (
        op_spec({"op": "set_constant", "path": LONG_PATH + "x", "value": 1}),
        ["operation 1 (set_constant): path: longer than 255 characters"],
    ),
]


@pytest.mark.parametrize(("spec", "problems"), INVALID)
def test_a_bad_spec_gets_its_problems(spec, problems):
    assert validate(spec) == problems


ODD_VALUES = [{}, {"a": 1}, [], ["x"], 1, 2.5, True, None, "", "x"]


@pytest.mark.parametrize("value", ODD_VALUES, ids=repr)
def test_any_json_value_anywhere_in_a_spec_is_a_problem_to_read_never_a_crash(value):
    """What an editor or an import may hold: every slot of a rule and of each op, with any JSON."""
    specs = [{**rule({"op": "set_constant", "path": "properties.x", "value": 1}), key: value} for key in SPEC_KEYS]
    for name, keys in OP_FIELDS.items():
        good = {"op": name, **{key: "properties.x" for key in keys}}
        specs += [rule({**good, key: value}, call_type="track") for key in ("op", *keys)]
    for spec in specs:
        problems = validate(spec)
        assert isinstance(problems, list) and all(isinstance(problem, str) for problem in problems), spec
    assert validate(rule({"op": value}))  # never a known op


def test_a_path_of_255_characters_is_accepted():
    assert len(LONG_PATH) == 255
    assert validate(op_spec({"op": "set_constant", "path": LONG_PATH, "value": 1})) == []


def test_every_problem_of_a_spec_is_reported():
    spec = rule(
        {"op": "change_case", "path": "userId", "to": "title"},
        {"op": "explode"},
        call_type="identify",
        event="x",
        enabled=None,
    )
    assert validate(spec) == [
        "enabled: must be true or false",
        "event: identify rules have no event name to match; use null",
        "operation 1 (change_case): path: 'userId' is outside traits: identify rules change only traits.*",
        "operation 1 (change_case): to: must be one of upper, lower",
        'operation 2: unknown op "explode"; one of '
        "rename_event, rename_property, change_type, change_case, delete_property, copy_field, set_constant, drop",
    ]


NAMES = [
    ("Order Completed", False, []),
    ("signed-up @ home!", False, []),
    ("x" * 255, False, []),
    ("", False, ["event name is empty"]),
    ("   ", False, ["event name is empty"]),
    ("x" * 256, False, ["event name is longer than 255 characters"]),
    ("v1.checkout", False, ["event name 'v1.checkout' contains '.', which Intercom refuses"]),
    ("$pay.me", False, ["event name '$pay.me' contains '$' '.', which Intercom refuses"]),
    (None, False, ["event name must be text"]),
    ("plan_name", True, []),
    ("plan name-2", True, []),
    ("", True, ["key is empty"]),
    ("k" * 256, True, ["key is longer than 255 characters"]),
    ("a.b", True, ["key 'a.b' contains '.', which Intercom refuses"]),
    ("pl@n", True, ["key 'pl@n' contains '@', which Intercom refuses"]),
    ("a~b`c", True, ["key 'a~b`c' contains '`' '~', which Intercom refuses"]),
    ("it's", True, ['key "it\'s" contains "\'", which Intercom refuses']),
    ('say "hi"', True, ["key 'say \"hi\"' contains '\"', which Intercom refuses"]),
    ("a{b}|c", True, ["key 'a{b}|c' contains '{' '|' '}', which Intercom refuses"]),
    ("nul\0", True, ["key 'nul\\x00' contains '\\x00', which Intercom refuses"]),
    (
        "x" * 256 + "$",
        True,
        ["key is longer than 255 characters", f"key '{'x' * 256}$' contains '$', which Intercom refuses"],
    ),
]


@pytest.mark.parametrize(("name", "key", "problems"), NAMES)
def test_name_problems_follow_intercoms_rules(name, key, problems):
    assert name_problems(name, key=key) == problems
