"""Tables of calls and the Intercom bodies they map to (docs/architecture.md, "Mapping"), checked
against the OpenAPI description."""

import copy
import functools
import math
from pathlib import Path

import pytest
import yaml
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from forwarding.mapping import (
    DISABLED_REASON,
    FORBIDDEN_KEY_CHARACTERS,
    LEAD_REASON,
    PAGE_OFF_REASON,
    Mapped,
    clean_key,
    custom_attribute_types,
    map_call,
    planned_requests,
    to_unix,
)

TS = "2026-01-02T03:04:05.923+00:00"
TS_UNIX = 1767323045  # floored: Intercom dedups on the second, so a resend must give the same one
LONG = "x" * 300
CUT = "x" * 255


def identify(traits=None, **extra):
    message = {
        "type": "identify",
        "userId": "u1",
        "anonymousId": None,
        "traits": traits if traits is not None else {},
        "context": {},
        "timestamp": TS,
        "messageId": "m-identify",
    }
    return {**message, **extra}


def track(properties=None, event="Order Completed", **extra):
    message = {
        "type": "track",
        "userId": "u1",
        "anonymousId": None,
        "event": event,
        "properties": properties if properties is not None else {},
        "context": {},
        "timestamp": TS,
        "messageId": "m-track",
    }
    return {**message, **extra}


def page(properties=None, **extra):
    message = {
        "type": "page",
        "userId": "u1",
        "anonymousId": None,
        "properties": properties if properties is not None else {},
        "context": {},
        "timestamp": TS,
        "messageId": "m-page",
    }
    return {**message, **extra}


def group(traits=None, **extra):
    message = {
        "type": "group",
        "userId": "u1",
        "anonymousId": None,
        "groupId": "org-9",
        "traits": traits if traits is not None else {},
        "context": {},
        "timestamp": TS,
        "messageId": "m-group",
    }
    return {**message, **extra}


def contact(**fields):
    return {"external_id": "u1", "last_seen_at": TS_UNIX, **fields}


def attributes(**values):
    return contact(custom_attributes=values)


def event(metadata=None, name="Order Completed", **fields):
    body = {"event_name": name, "created_at": TS_UNIX, "user_id": "u1", **fields}
    if metadata is not None:
        body["metadata"] = metadata
    return body


# Every message in the tables below; each one's bodies are checked against the OpenAPI description.
ALL_MESSAGES = []


def cases(*rows):
    """pytest params from (id, message, *expected) rows, remembering each message for the schema check."""
    params = []
    for case_id, message, *expected in rows:
        ALL_MESSAGES.append(pytest.param(message, id=case_id))
        params.append(pytest.param(message, *expected, id=case_id))
    return params


# --- identify ------------------------------------------------------------------------------------

IDENTIFY = cases(
    (
        "email-and-name",
        identify({"email": "ada@example.com", "name": "Ada"}),
        contact(email="ada@example.com", name="Ada"),
        [],
    ),
    ("firstName-lastName", identify({"firstName": "Ada", "lastName": "Lovelace"}), contact(name="Ada Lovelace"), []),
    (
        "first_name-last_name",
        identify({"first_name": "Ada", "last_name": "Lovelace"}),
        contact(name="Ada Lovelace"),
        [],
    ),
    ("firstName-only", identify({"firstName": " Ada "}), contact(name="Ada"), []),
    ("lastName-only", identify({"lastName": "Lovelace"}), contact(name="Lovelace"), []),
    (
        "name-wins-over-first-and-last",
        identify({"name": "Ada L.", "firstName": "Ada", "last_name": "Lovelace"}),
        contact(name="Ada L."),
        ["traits.firstName: dropped: name is set", "traits.last_name: dropped: name is set"],
    ),
    (
        "firstName-and-first_name",
        identify({"firstName": "Ada", "first_name": "Augusta"}),
        contact(name="Ada"),
        ["traits.first_name: dropped: firstName is used"],
    ),
    ("phone-string", identify({"phone": "+353871234567"}), contact(phone="+353871234567"), []),
    ("phone-number", identify({"phone": 353871234567}), contact(phone="353871234567"), []),
    ("avatar-url", identify({"avatar": "https://example.com/a.png"}), contact(avatar="https://example.com/a.png"), []),
    (
        "avatar-object",
        identify({"avatar": {"url": "https://example.com/a.png"}}),
        contact(avatar="https://example.com/a.png"),
        [],
    ),
    (
        "avatar-object-without-url",
        identify({"avatar": {"size": 3}}),
        contact(),
        ['traits.avatar: dropped: {"size": 3} is not an image URL'],
    ),
    ("createdAt-iso", identify({"createdAt": "2020-01-01T00:00:00.000Z"}), contact(signed_up_at=1577836800), []),
    (
        "createdAt-iso-offset",
        identify({"createdAt": "2020-01-01T02:00:00+02:00"}),
        contact(signed_up_at=1577836800),
        [],
    ),
    (
        "createdAt-iso-naive-is-utc",
        identify({"createdAt": "2020-01-01T00:00:00"}),
        contact(signed_up_at=1577836800),
        [],
    ),
    ("createdAt-date-only", identify({"createdAt": "2020-01-01"}), contact(signed_up_at=1577836800), []),
    ("created_at-epoch-seconds", identify({"created_at": 1577836800}), contact(signed_up_at=1577836800), []),
    ("createdAt-epoch-ms", identify({"createdAt": 1577836800123}), contact(signed_up_at=1577836800), []),
    ("createdAt-epoch-float", identify({"createdAt": 1577836800.9}), contact(signed_up_at=1577836800), []),
    ("createdAt-digit-string", identify({"createdAt": "1577836800"}), contact(signed_up_at=1577836800), []),
    (
        "createdAt-not-a-date",
        identify({"createdAt": "last tuesday"}),
        contact(),
        ['traits.createdAt: dropped: "last tuesday" is not a date'],
    ),
    (
        "createdAt-and-created_at",
        identify({"createdAt": "2020-01-01T00:00:00Z", "created_at": 1}),
        contact(signed_up_at=1577836800),
        ["traits.created_at: dropped: createdAt is used"],
    ),
    (
        "unsubscribedFromEmails-true",
        identify({"unsubscribedFromEmails": True}),
        contact(unsubscribed_from_emails=True),
        [],
    ),
    (
        "unsubscribed_from_emails-string-false",
        identify({"unsubscribed_from_emails": "False"}),
        contact(unsubscribed_from_emails=False),
        [],
    ),
    (
        "unsubscribedFromEmails-not-boolean",
        identify({"unsubscribedFromEmails": "yes please"}),
        contact(),
        ['traits.unsubscribedFromEmails: dropped: "yes please" is not true or false'],
    ),
    ("context-active-false", identify({}, context={"active": False}), {"external_id": "u1"}, []),
    ("context-active-true", identify({}, context={"active": True}), contact(), []),
    ("no-context", {k: v for k, v in identify().items() if k != "context"}, contact(), []),
    ("numeric-userId", identify(userId=42), {**contact(), "external_id": "42"}, []),
    ("other-traits-custom-attributes", identify({"plan": "pro", "logins": 3}), attributes(plan="pro", logins=3), []),
    ("float-and-bool-kept", identify({"score": 4.5, "beta": False}), attributes(score=4.5, beta=False), []),
    (
        "nested-object-flattened",
        identify({"address": {"city": "Dublin", "zip": "D01"}}),
        attributes(address_city="Dublin", address_zip="D01"),
        ["traits.address: nested object flattened to address_city, address_zip"],
    ),
    (
        "deeply-nested-flattened",
        identify({"a": {"b": {"c": 1}, "d": 2}}),
        attributes(a_b_c=1, a_d=2),
        ["traits.a: nested object flattened to a_b_c, a_d"],
    ),
    ("empty-object-dropped", identify({"prefs": {}}), contact(), ["traits.prefs: dropped: empty object"]),
    (
        "array-joined",
        identify({"tags": ["a", "b", 3, True, None]}),
        attributes(tags="a,b,3,true"),
        ["traits.tags: array joined into a string"],
    ),
    (
        "array-of-objects-joined-as-json",
        identify({"items": [{"id": 1}, {"id": 2}]}),
        attributes(items='{"id":1},{"id":2}'),
        ["traits.items: array joined into a string"],
    ),
    ("empty-array-dropped", identify({"tags": []}), contact(), ["traits.tags: dropped: empty array"]),
    ("string-255-kept", identify({"bio": CUT}), attributes(bio=CUT), []),
    ("string-cut-to-255", identify({"bio": LONG}), attributes(bio=CUT), ["traits.bio: cut from 300 to 255 characters"]),
    (
        "joined-array-cut-to-255",
        identify({"tags": ["x" * 200, "y" * 200]}),
        attributes(tags="x" * 200 + "," + "y" * 54),
        ["traits.tags: array joined into a string", "traits.tags: cut from 401 to 255 characters"],
    ),
    (
        "forbidden-key-characters",
        identify({"a.b": 1, "$c": 2, "d e": 3}),
        attributes(a_b=1, _c=2, **{"d e": 3}),
        ['traits["a.b"]: key renamed to a_b', 'traits["$c"]: key renamed to _c'],
    ),
    (
        "forbidden-key-character-nested",
        identify({"o": {"x.y": 1}}),
        attributes(o_x_y=1),
        ['traits.o["x.y"]: key renamed to o_x_y', "traits.o: nested object flattened to o_x_y"],
    ),
    (
        "keys-case-insensitive",
        identify({"Plan": "a", "plan": "b"}),
        attributes(Plan="a"),
        ["traits.plan: dropped: key plan is already set"],
    ),
    (
        "renamed-key-collides",
        identify({"a_b": 1, "a.b": 2}),
        attributes(a_b=1),
        ['traits["a.b"]: key renamed to a_b', 'traits["a.b"]: dropped: key a_b is already set'],
    ),
    (
        "iso-datetime-attribute-to-unix",
        identify({"trial_ends": "2026-03-01T00:00:00Z"}),
        attributes(trial_ends=1772323200),
        [],
    ),
    ("bare-date-attribute-stays-string", identify({"birthday": "1990-05-17"}), attributes(birthday="1990-05-17"), []),
    ("null-dropped", identify({"plan": None}), contact(), ["traits.plan: dropped: null"]),
    ("email-null-dropped", identify({"email": None}), contact(), ["traits.email: dropped: empty"]),
    ("email-empty-dropped", identify({"email": ""}), contact(), ["traits.email: dropped: empty"]),
    ("email-not-string", identify({"email": 5}), contact(), ["traits.email: dropped: 5 is not a string"]),
    ("nan-dropped", identify({"x": math.nan}), contact(), ["traits.x: dropped: nan is not a number Intercom stores"]),
    (
        "infinity-dropped",
        identify({"x": math.inf}),
        contact(),
        ["traits.x: dropped: inf is not a number Intercom stores"],
    ),
    ("huge-int-dropped", identify({"x": 2**63}), contact(), ["traits.x: dropped: integer out of the 64-bit range"]),
    ("largest-int-kept", identify({"x": 2**63 - 1}), attributes(x=2**63 - 1), []),
    ("traits-id-same-as-userId", identify({"id": "u1", "userId": "u1"}), contact(), []),
    (
        "traits-id-differs",
        identify({"id": "other"}),
        contact(),
        ["traits.id: dropped: the contact's external_id is userId"],
    ),
    ("traits-not-an-object", identify("nope"), contact(), ["traits: ignored: not an object"]),
)


@pytest.mark.parametrize(("message", "expected", "warnings"), IDENTIFY)
def test_it_maps_identify(message, expected, warnings):
    mapped = map_call(message)
    assert mapped.skip_reason == ""
    assert mapped.contact == expected
    assert list(mapped.warnings) == warnings
    assert mapped.event is None and mapped.company is None
    assert mapped.user_id == expected["external_id"]


def test_it_does_not_change_the_stored_message():
    traits = {"address": {"city": "Dublin"}, "company": {"id": "c1"}, "tags": ["a"]}
    message = identify(copy.deepcopy(traits))
    map_call(message)
    assert message["traits"] == traits


def test_it_records_which_attributes_hold_dates():
    mapped = map_call(identify({"trial_ends": "2026-03-01T00:00:00Z", "n": 3, "d": {"at": "2026-03-01T00:00Z"}}))
    assert mapped.date_attributes == {"trial_ends", "d_at"}


# --- traits.company ------------------------------------------------------------------------------

COMPANIES = cases(
    (
        "company-object",
        identify({"company": {"id": "c1", "name": "Initech", "plan": "pro", "employees": 42, "tier": "gold"}}),
        [{"company_id": "c1", "name": "Initech", "plan": "pro", "size": 42, "custom_attributes": {"tier": "gold"}}],
        [],
    ),
    ("company-name-string", identify({"company": "Initech"}), [{"company_id": "Initech", "name": "Initech"}], []),
    (
        "company-object-without-id",
        identify({"company": {"name": "Initech"}}),
        [{"company_id": "Initech", "name": "Initech"}],
        [],
    ),
    ("company-company_id", identify({"company": {"company_id": 7}}), [{"company_id": "7"}], []),
    (
        "company-without-id-or-name",
        identify({"company": {"plan": "pro"}}),
        [],
        ["traits.company: dropped: a company needs an id or a name"],
    ),
    (
        "company-not-an-object",
        identify({"company": 12}),
        [],
        ["traits.company: dropped: a company is an object or a name"],
    ),
    (
        "company-created-and-spend",
        identify({"company": {"id": "c1", "createdAt": "2020-01-01T00:00:00Z", "monthlySpend": 99.9}}),
        [{"company_id": "c1", "remote_created_at": 1577836800, "monthly_spend": 99}],
        ["traits.company.monthlySpend: truncated from 99.9 to 99"],
    ),
    (
        "companies-list",
        identify({"companies": [{"id": "c1"}, "Acme", {"id": "c1"}]}),
        [{"company_id": "c1"}, {"company_id": "Acme", "name": "Acme"}],
        ["traits.companies[2]: dropped: company 'c1' is already listed"],
    ),
    (
        "companies-not-a-list",
        identify({"companies": "Acme"}),
        [],
        ["traits.companies: dropped: not a list of companies"],
    ),
    (
        "company-id-and-different-company_id",
        identify({"company": {"id": "c1", "company_id": "c2"}}),
        [{"company_id": "c1"}],
        ["traits.company.company_id: dropped: company_id comes from the company's id"],
    ),
    ("company-remove-detaches", identify({"company": {"id": "c1", "remove": True}}), [], []),
    (
        "company-remove-not-true",
        identify({"company": {"id": "c1", "remove": "yes"}}),
        [{"company_id": "c1"}],
        ['traits.company.remove: ignored: "yes" is not true'],
    ),
    (
        "company-nested-attribute",
        identify({"company": {"id": "c1", "hq": {"city": "Austin"}}}),
        [{"company_id": "c1", "custom_attributes": {"hq_city": "Austin"}}],
        ["traits.company.hq: nested object flattened to hq_city"],
    ),
)


@pytest.mark.parametrize(("message", "expected", "warnings"), COMPANIES)
def test_it_maps_traits_company_to_companies_not_attributes(message, expected, warnings):
    mapped = map_call(message)
    assert list(mapped.companies) == expected
    assert list(mapped.warnings) == warnings
    assert "custom_attributes" not in mapped.contact


def test_it_records_company_date_attributes_from_identify():
    mapped = map_call(identify({"company": {"id": "c1", "renewal": "2027-01-01T00:00:00Z"}}))
    assert mapped.companies[0]["custom_attributes"] == {"renewal": 1798761600}
    assert mapped.company_date_attributes == {"renewal"}


# --- skipped calls -------------------------------------------------------------------------------

SKIPPED = cases(
    ("identify-without-userId", identify({"email": "a@b.c"}, userId=None, anonymousId="anon"), {}, LEAD_REASON),
    ("identify-empty-userId", identify({}, userId="", anonymousId="anon"), {}, LEAD_REASON),
    (
        "identify-ignores-user_id-override",
        identify({}, userId=None, anonymousId="anon"),
        {"user_id": "u1"},
        LEAD_REASON,
    ),
    (
        "screen",
        {"type": "screen", "userId": "u1", "name": "Home", "timestamp": TS},
        {},
        "screen calls are not forwarded: Intercom has no equivalent",
    ),
    (
        "alias",
        {"type": "alias", "userId": "u1", "previousId": "a1", "timestamp": TS},
        {},
        "alias calls are not forwarded: Intercom has no equivalent",
    ),
    ("page-forwarding-off", page({"url": "https://x"}), {"page_event_name": ""}, PAGE_OFF_REASON),
    ("track-without-event", track({}, event=""), {}, "track without an event name"),
    ("group-without-groupId", group({}, groupId=None), {}, "group without groupId"),
    ("unknown-type", {"type": "merge", "userId": "u1", "timestamp": TS}, {}, "unknown call type 'merge'"),
)


@pytest.mark.parametrize(("message", "options", "reason"), SKIPPED)
def test_it_skips_what_intercom_has_no_request_for(message, options, reason):
    mapped = map_call(message, **options)
    assert mapped == Mapped(skip_reason=reason)
    assert planned_requests(mapped) == []


# --- track ---------------------------------------------------------------------------------------

TRACK = cases(
    ("no-properties-no-metadata", track(), {}, event(), []),
    (
        "properties-to-metadata",
        track({"plan": "pro", "seats": 3, "trial": True}),
        {},
        event({"plan": "pro", "seats": 3, "trial": True}),
        [],
    ),
    (
        "event_name-override",
        track({}, event="Order Done"),
        {"event_name": "order-completed"},
        event(name="order-completed"),
        [],
    ),
    ("user_id-override", track({}, userId=None, anonymousId="anon"), {"user_id": "u1"}, event(), []),
    ("timestamp-zulu", track({}, timestamp="2026-01-02T03:04:05Z"), {}, event(), []),
    ("timestamp-other-offset", track({}, timestamp="2026-01-02T04:04:05.5+01:00"), {}, event(), []),
    (
        "nested-property-flattened",
        track({"product": {"id": "p1", "price": 9}}),
        {},
        event({"product_id": "p1", "product_price": 9}),
        ["properties.product: nested object flattened to product_id, product_price"],
    ),
    (
        "array-property-joined",
        track({"skus": ["a", "b"]}),
        {},
        event({"skus": "a,b"}),
        ["properties.skus: array joined into a string"],
    ),
    (
        "string-property-cut",
        track({"note": LONG}),
        {},
        event({"note": CUT}),
        ["properties.note: cut from 300 to 255 characters"],
    ),
    ("key-renamed", track({"a$b": 1}), {}, event({"a_b": 1}), ['properties["a$b"]: key renamed to a_b']),
    ("null-property-dropped", track({"coupon": None}), {}, event(), ["properties.coupon: dropped: null"]),
    ("_date-iso-to-unix", track({"ship_date": "2026-01-05T00:00:00Z"}), {}, event({"ship_date": 1767571200}), []),
    ("_date-bare-date-to-unix", track({"ship_date": "2026-01-05"}), {}, event({"ship_date": 1767571200}), []),
    ("_date-ms-to-seconds", track({"ship_date": 1767571200000}), {}, event({"ship_date": 1767571200}), []),
    ("_date-not-a-date-kept", track({"ship_date": "soon"}), {}, event({"ship_date": "soon"}), []),
    (
        "iso-without-_date-stays-string",
        track({"ordered_at": "2026-01-05T00:00:00Z"}),
        {},
        event({"ordered_at": "2026-01-05T00:00:00Z"}),
        [],
    ),
    (
        "rich-link-kept",
        track({"article": {"url": "https://example.org/a", "value": "A"}}),
        {},
        event({"article": {"url": "https://example.org/a", "value": "A"}}),
        [],
    ),
    (
        "monetary-object-kept",
        track({"fee": {"amount": 500, "currency": "eur"}}),
        {},
        event({"fee": {"amount": 500, "currency": "eur"}}),
        [],
    ),
    (
        "monetary-object-with-float-amount-flattened",
        track({"fee": {"amount": 5.5, "currency": "eur"}}),
        {},
        event({"fee_amount": 5.5, "fee_currency": "eur"}),
        ["properties.fee: nested object flattened to fee_amount, fee_currency"],
    ),
    (
        "rich-link-value-cut",
        track({"article": {"url": "https://example.org/a", "value": LONG}}),
        {},
        event({"article": {"url": "https://example.org/a", "value": CUT}}),
        ["properties.article.value: cut from 300 to 255 characters"],
    ),
)


@pytest.mark.parametrize(("message", "options", "expected", "warnings"), TRACK)
def test_it_maps_track(message, options, expected, warnings):
    mapped = map_call(message, **options)
    assert mapped.event == expected
    assert list(mapped.warnings) == warnings
    assert mapped.user_id == "u1"


def test_it_leaves_user_id_out_of_an_anonymous_event():
    mapped = map_call(track({}, userId=None, anonymousId="anon"))
    assert mapped.event == {"event_name": "Order Completed", "created_at": TS_UNIX}
    assert mapped.user_id is None


def test_it_rejects_a_call_without_a_timestamp_as_a_bug():
    with pytest.raises(ValueError, match="timestamp"):
        map_call(track({}, timestamp="yesterday"))


REVENUE = cases(
    ("19.99", track({"revenue": 19.99}), {"amount": 1999, "currency": "USD"}, []),
    ("0.1+0.2", track({"revenue": 0.1 + 0.2}), {"amount": 30, "currency": "USD"}, []),
    ("4.35", track({"revenue": 4.35}), {"amount": 435, "currency": "USD"}, []),
    (
        "1.005-rounds-half-up",
        track({"revenue": 1.005}),
        {"amount": 101, "currency": "USD"},
        ["properties.revenue: 1.005 rounded to 101 cents"],
    ),
    ("string-12.50", track({"revenue": "12.50"}), {"amount": 1250, "currency": "USD"}, []),
    ("integer-10", track({"revenue": 10}), {"amount": 1000, "currency": "USD"}, []),
    ("currency-kept", track({"revenue": 5, "currency": "EUR"}), {"amount": 500, "currency": "EUR"}, []),
    ("currency-upper-cased", track({"revenue": 5, "currency": " eur "}), {"amount": 500, "currency": "EUR"}, []),
    ("currency-empty-default", track({"revenue": 5, "currency": ""}), {"amount": 500, "currency": "USD"}, []),
    (
        "currency-not-a-code",
        track({"revenue": 5, "currency": "dollars"}),
        None,
        ['properties.currency: dropped: "dollars" is not a currency code; price not sent'],
    ),
    (
        "currency-number",
        track({"revenue": 5, "currency": 978}),
        None,
        ["properties.currency: dropped: 978 is not a currency code; price not sent"],
    ),
    (
        "negative",
        track({"revenue": -5}),
        None,
        ["properties.revenue: dropped: -5 is not a positive amount; price not sent"],
    ),
    ("zero", track({"revenue": 0}), None, ["properties.revenue: dropped: 0 is not a positive amount; price not sent"]),
    (
        "below-a-cent",
        track({"revenue": 0.004}),
        None,
        ["properties.revenue: dropped: 0.004 is less than a cent; price not sent"],
    ),
    (
        "not-a-number",
        track({"revenue": "abc"}),
        None,
        ['properties.revenue: dropped: "abc" is not a number; price not sent'],
    ),
    ("boolean", track({"revenue": True}), None, ["properties.revenue: dropped: true is not a number; price not sent"]),
    ("null", track({"revenue": None}), None, ["properties.revenue: dropped: null is not a number; price not sent"]),
    (
        "nan-string",
        track({"revenue": "NaN"}),
        None,
        ['properties.revenue: dropped: "NaN" is not a number; price not sent'],
    ),
    (
        "huge",
        track({"revenue": 1e30}),
        None,
        ["properties.revenue: dropped: 1e+30 is not a positive amount; price not sent"],
    ),
)


@pytest.mark.parametrize(("message", "price", "warnings"), REVENUE)
def test_it_turns_revenue_into_a_price_in_cents(message, price, warnings):
    mapped = map_call(message)
    metadata = mapped.event.get("metadata", {})
    assert metadata.get("price") == price
    assert "revenue" not in metadata and "currency" not in metadata
    assert list(mapped.warnings) == warnings


def test_it_puts_price_first_and_replaces_a_sent_price():
    mapped = map_call(track({"sku": "a", "price": 9.99, "revenue": 19.99, "currency": "GBP"}))
    assert list(mapped.event["metadata"].items()) == [("price", {"amount": 1999, "currency": "GBP"}), ("sku", "a")]
    assert mapped.warnings == ("properties.price: dropped: price is built from revenue",)


def test_it_keeps_a_sent_price_and_currency_without_revenue():
    mapped = map_call(track({"price": 9.99, "currency": "GBP"}))
    assert mapped.event["metadata"] == {"price": 9.99, "currency": "GBP"}


METADATA_LIMIT = cases(
    (
        "eleven-keys",
        track({f"k{i}": i for i in range(11)}),
        [f"k{i}" for i in range(10)],
        ["properties.k10: dropped: Intercom keeps only the first 10 metadata keys"],
    ),
    (
        "price-first-then-order-sent",
        track({"z": 1, **{f"k{i}": i for i in range(9)}, "revenue": 5, "after": 1}),
        ["price", "z", *[f"k{i}" for i in range(8)]],
        [
            "properties.k8: dropped: Intercom keeps only the first 10 metadata keys",
            "properties.after: dropped: Intercom keeps only the first 10 metadata keys",
        ],
    ),
    (
        "flattened-keys-count",
        track({"a": {f"b{i}": i for i in range(11)}}),
        [f"a_b{i}" for i in range(10)],
        [
            "properties.a: nested object flattened to " + ", ".join(f"a_b{i}" for i in range(11)),
            "properties.a.b10: dropped: Intercom keeps only the first 10 metadata keys",
        ],
    ),
    ("ten-keys-kept", track({f"k{i}": i for i in range(10)}), [f"k{i}" for i in range(10)], []),
)


@pytest.mark.parametrize(("message", "keys", "warnings"), METADATA_LIMIT)
def test_it_keeps_at_most_ten_metadata_keys(message, keys, warnings):
    mapped = map_call(message)
    assert list(mapped.event["metadata"]) == keys
    assert list(mapped.warnings) == warnings


# --- page ----------------------------------------------------------------------------------------

PAGE_CONTEXT = {
    "page": {
        "url": "https://example.com/docs?q=1",
        "path": "/docs",
        "title": "Docs",
        "referrer": "https://google.com/",
        "search": "?q=1",
    }
}

PAGE = cases(
    (
        "properties-fields",
        page({"url": "https://example.com/a", "path": "/a", "title": "A", "referrer": "https://r/", "extra": 1}),
        {},
        event(
            {"url": "https://example.com/a", "path": "/a", "title": "A", "referrer": "https://r/"}, name="viewed-page"
        ),
        ["properties.extra: dropped: a page event keeps only url, path, title, name, referrer, search, category"],
    ),
    (
        # RudderStack's SDKs send these five on every page: noise that once filled the 10 keys.
        "rudderstack-fields-dropped",
        page(
            {
                "referring_domain": "r.example",
                "tab_url": "https://example.com/a#x",
                "initial_referrer": "$direct",
                "initial_referring_domain": "",
                "search": "?q=1",
                "title": "A",
            }
        ),
        {},
        event({"title": "A", "search": "?q=1"}, name="viewed-page"),
        [
            f"properties.{key}: dropped: a page event keeps only url, path, title, name, referrer, search, category"
            for key in ("referring_domain", "tab_url", "initial_referrer", "initial_referring_domain")
        ],
    ),
    (
        "context-page-fallback",
        page({}, context=PAGE_CONTEXT),
        {},
        event({**PAGE_CONTEXT["page"]}, name="viewed-page"),
        [],
    ),
    (
        "empty-strings-left-out",
        page({"referrer": "", "search": "", "path": "/a"}),
        {},
        event({"path": "/a"}, name="viewed-page"),
        [],
    ),
    (
        "name-and-category",
        page({"name": "Getting Started", "category": "Docs", "path": "/gs"}, name="Getting Started", category="Docs"),
        {},
        event({"path": "/gs", "name": "Getting Started", "category": "Docs"}, name="viewed-page"),
        [],
    ),
    (
        "name-from-properties",
        page({"name": "Pricing"}),
        {},
        event({"name": "Pricing"}, name="viewed-page"),
        [],
    ),
    (
        "call-name-wins",
        page({"name": "Old"}, name="New"),
        {},
        event({"name": "New"}, name="viewed-page"),
        ["properties.name: dropped: the call's name is used"],
    ),
    (
        "page-event-name",
        page({"path": "/"}),
        {"page_event_name": "visited-page"},
        event({"path": "/"}, name="visited-page"),
        [],
    ),
    ("user_id-override", page({}, userId=None, anonymousId="anon"), {"user_id": "u1"}, event(name="viewed-page"), []),
    (
        "url-cut",
        page({"url": "https://example.com/" + LONG}),
        {},
        event({"url": ("https://example.com/" + LONG)[:255]}, name="viewed-page"),
        ["properties.url: cut from 320 to 255 characters"],
    ),
    (
        "fields-in-their-order",
        page({"k0": 0}, name="N", category="C", context=PAGE_CONTEXT),
        {},
        event(
            {
                "url": "https://example.com/docs?q=1",
                "path": "/docs",
                "title": "Docs",
                "name": "N",
                "referrer": "https://google.com/",
                "search": "?q=1",
                "category": "C",
            },
            name="viewed-page",
        ),
        ["properties.k0: dropped: a page event keeps only url, path, title, name, referrer, search, category"],
    ),
)


@pytest.mark.parametrize(("message", "options", "expected", "warnings"), PAGE)
def test_it_maps_page_to_one_event_name(message, options, expected, warnings):
    mapped = map_call(message, **options)
    assert mapped.event == expected
    assert list(mapped.event.get("metadata", {})) == list(expected.get("metadata", {}))
    assert list(mapped.warnings) == warnings


def test_it_ignores_event_name_for_page():
    assert map_call(page(), event_name="Renamed").event["event_name"] == "viewed-page"


# --- group ---------------------------------------------------------------------------------------


def company(**fields):
    return {"company_id": "org-9", **fields}


GROUP = cases(
    (
        "standard-fields",
        group({"name": "Initech", "plan": "pro", "website": "https://initech.example", "industry": "Software"}),
        {},
        company(name="Initech", plan="pro", website="https://initech.example", industry="Software"),
        [],
    ),
    ("employees-to-size", group({"employees": 42}), {}, company(size=42), []),
    ("size-string", group({"size": "42"}), {}, company(size=42), []),
    ("size-float-truncated", group({"size": 12.5}), {}, company(size=12), ["traits.size: truncated from 12.5 to 12"]),
    (
        "size-not-a-number",
        group({"employees": "50-100"}),
        {},
        company(),
        ['traits.employees: dropped: "50-100" is not a number'],
    ),
    (
        "size-and-employees",
        group({"size": 5, "employees": 6}),
        {},
        company(size=5),
        ["traits.employees: dropped: size is used"],
    ),
    ("monthly_spend-int", group({"monthly_spend": 155}), {}, company(monthly_spend=155), []),
    (
        "monthlySpend-truncated",
        group({"monthlySpend": 155.98}),
        {},
        company(monthly_spend=155),
        ["traits.monthlySpend: truncated from 155.98 to 155"],
    ),
    ("monthlySpend-string", group({"monthlySpend": "99"}), {}, company(monthly_spend=99), []),
    (
        "monthly_spend-capped",
        group({"monthly_spend": 3_000_000_000}),
        {},
        company(monthly_spend=2147483647),
        ["traits.monthly_spend: capped from 3000000000 to 2147483647"],
    ),
    (
        "createdAt-to-remote_created_at",
        group({"createdAt": "2020-01-01T00:00:00Z"}),
        {},
        company(remote_created_at=1577836800),
        [],
    ),
    ("created_at-epoch", group({"created_at": 1577836800}), {}, company(remote_created_at=1577836800), []),
    ("numeric-name-and-plan", group({"name": 123, "plan": 2}), {}, company(name="123", plan="2"), []),
    (
        "other-traits-custom-attributes",
        group({"tier": "gold", "seats": 10, "paid": True, "hq": {"city": "Austin"}, "renewal": "2027-01-01T00:00:00Z"}),
        {},
        company(
            custom_attributes={"tier": "gold", "seats": 10, "paid": True, "hq_city": "Austin", "renewal": 1798761600}
        ),
        ["traits.hq: nested object flattened to hq_city"],
    ),
    ("id-trait-same-as-groupId", group({"id": "org-9"}), {}, company(), []),
    (
        "id-trait-differs",
        group({"id": "org-1"}),
        {},
        company(),
        ["traits.id: dropped: company_id comes from groupId"],
    ),
    ("numeric-groupId", group({}, groupId=9), {}, {"company_id": "9"}, []),
    ("user_id-override", group({}, userId=None, anonymousId="anon"), {"user_id": "u1"}, company(), []),
    (
        "attribute-cut",
        group({"motto": LONG}),
        {},
        company(custom_attributes={"motto": CUT}),
        ["traits.motto: cut from 300 to 255 characters"],
    ),
)


@pytest.mark.parametrize(("message", "options", "expected", "warnings"), GROUP)
def test_it_maps_group_to_a_company(message, options, expected, warnings):
    mapped = map_call(message, **options)
    assert mapped.company == expected
    assert list(mapped.warnings) == warnings
    assert mapped.user_id == "u1"
    assert mapped.contact is None and mapped.event is None and mapped.companies == ()


def test_it_records_company_date_attributes_from_group():
    assert map_call(group({"renewal": "2027-01-01T00:00:00Z"})).company_date_attributes == {"renewal"}


# --- helpers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("2026-01-02T03:04:05.923+00:00", TS_UNIX, id="iso-ms-floored"),
        pytest.param("2026-01-02T03:04:05Z", TS_UNIX, id="iso-zulu"),
        pytest.param("2026-01-02T03:04:05z", TS_UNIX, id="iso-lower-zulu"),
        pytest.param("2026-01-02 03:04:05", TS_UNIX, id="iso-space-naive"),
        pytest.param("2026-01-02T04:04:05+0100", TS_UNIX, id="iso-offset-no-colon"),
        pytest.param("2026-01-01T22:04:05-05", TS_UNIX, id="iso-offset-hours"),
        pytest.param("2026-01-02T03:04Z", TS_UNIX - 5, id="iso-no-seconds"),
        pytest.param("2026-01-02T03:04:05.123456789Z", TS_UNIX, id="iso-nanoseconds"),
        pytest.param("2026-01-02", 1767312000, id="date-only"),
        pytest.param("1969-12-31T23:59:59.5Z", -1, id="before-epoch"),
        pytest.param(1577836800, 1577836800, id="seconds"),
        pytest.param(1577836800.75, 1577836800, id="float-seconds"),
        pytest.param(1577836800123, 1577836800, id="milliseconds"),
        pytest.param(1577836800123.9, 1577836800, id="float-milliseconds"),
        pytest.param("1577836800", 1577836800, id="digit-string"),
        pytest.param(" 2026-01-02 ", 1767312000, id="surrounding-space"),
        pytest.param("2026-13-01", None, id="month-13"),
        pytest.param("2026-01-02T24:00:00Z", None, id="hour-24"),
        pytest.param("2026-01-02T03:04:05+24:00", None, id="offset-24h"),
        pytest.param("2026-W01-1", None, id="week-date"),
        pytest.param("20260102", 20260102, id="basic-format-is-an-epoch-number"),
        pytest.param("tomorrow", None, id="words"),
        pytest.param("", None, id="empty"),
        pytest.param(None, None, id="none"),
        pytest.param(True, None, id="boolean"),
        pytest.param(math.nan, None, id="nan"),
        pytest.param(math.inf, None, id="infinity"),
        pytest.param({"a": 1}, None, id="object"),
    ],
)
def test_it_converts_to_unix_seconds(value, expected):
    assert to_unix(value) == expected


def test_it_converts_datetime_objects_to_unix_seconds():
    from datetime import UTC, date, datetime

    assert to_unix(datetime(2026, 1, 2, 3, 4, 5, 923000, tzinfo=UTC)) == TS_UNIX
    assert to_unix(datetime(2026, 1, 2, 3, 4, 5)) == TS_UNIX
    assert to_unix(date(2026, 1, 2)) == 1767312000


@pytest.mark.parametrize("char", sorted(FORBIDDEN_KEY_CHARACTERS), ids=lambda char: f"U+{ord(char):04X}")
def test_it_cleans_each_forbidden_key_character(char):
    assert clean_key(f"a{char}b") == "a_b"
    mapped = map_call(track({f"a{char}b": 1}))
    assert mapped.event["metadata"] == {"a_b": 1}
    assert len(mapped.warnings) == 1 and mapped.warnings[0].endswith("key renamed to a_b")


def test_it_knows_the_forbidden_key_characters():
    assert FORBIDDEN_KEY_CHARACTERS == set(".$~`!@#%^&*'{}|\\\"\0")


@pytest.mark.parametrize(
    ("attributes", "date_keys", "expected"),
    [
        pytest.param({"a": "x"}, (), {"a": "string"}, id="string"),
        pytest.param({"a": 3}, (), {"a": "integer"}, id="integer"),
        pytest.param({"a": 3.5}, (), {"a": "float"}, id="float"),
        pytest.param({"a": True}, (), {"a": "boolean"}, id="boolean-not-integer"),
        pytest.param({"a": 1767312000}, {"a"}, {"a": "date"}, id="date-by-key-set"),
        pytest.param({"trial_at": 1767312000}, (), {"trial_at": "date"}, id="date-by-_at"),
        pytest.param({"ship_date": 1767312000}, (), {"ship_date": "date"}, id="date-by-_date"),
        pytest.param({"renewal_at": "soon"}, (), {"renewal_at": "string"}, id="string-named-_at"),
    ],
)
def test_it_infers_custom_attribute_types(attributes, date_keys, expected):
    assert custom_attribute_types(attributes, date_keys) == expected


def test_it_infers_types_for_mapped_attributes():
    mapped = map_call(identify({"plan": "pro", "seats": 3, "beta": True, "trial_ends": "2026-03-01T00:00:00Z"}))
    types = custom_attribute_types(mapped.contact["custom_attributes"], mapped.date_attributes)
    assert types == {"plan": "string", "seats": "integer", "beta": "boolean", "trial_ends": "date"}


IDENTIFY_WITH_COMPANY = identify({"email": "a@b.c", "company": {"id": "c1"}})
FIND = ("GET", "/contacts/find_by_external_id/u1", None)
IDENTIFY_BODY = {"external_id": "u1", "email": "a@b.c", "last_seen_at": TS_UNIX}


@pytest.mark.parametrize(
    ("message", "options", "expected"),
    [
        pytest.param(
            IDENTIFY_WITH_COMPANY,
            {},
            [
                FIND,
                ("PUT", "/contacts/{contact_id}", IDENTIFY_BODY),
                ("POST", "/companies", {"company_id": "c1"}),
                ("POST", "/contacts/{contact_id}/companies", {"id": "{company_id}"}),
            ],
            id="identify-not-cached",
        ),
        pytest.param(
            IDENTIFY_WITH_COMPANY,
            {"contact_id": "abc", "company_id": {"c1": "ic1"}},
            [
                ("PUT", "/contacts/abc", IDENTIFY_BODY),
                ("POST", "/companies", {"company_id": "c1"}),
                ("POST", "/contacts/abc/companies", {"id": "ic1"}),
            ],
            id="identify-cached",
        ),
        pytest.param(
            identify({"email": "a@b.c"}),
            {"contact_id": None},
            [FIND, ("POST", "/contacts", {"role": "user", **IDENTIFY_BODY})],
            id="identify-new-contact",
        ),
        pytest.param(track(), {}, [FIND, ("POST", "/events", event())], id="track-not-cached"),
        pytest.param(track(), {"contact_id": "abc"}, [("POST", "/events", event())], id="track-cached"),
        pytest.param(
            track({}, userId="a/b c"),
            {},
            [
                ("GET", "/contacts/find_by_external_id/a%2Fb%20c", None),
                ("POST", "/events", {**event(), "user_id": "a/b c"}),
            ],
            id="track-user-id-quoted",
        ),
        pytest.param(
            track({}, userId=None, anonymousId="anon"),
            {},
            [
                ("GET", "/contacts/find_by_external_id/{user_id}", None),
                ("POST", "/events", {"event_name": "Order Completed", "created_at": TS_UNIX}),
            ],
            id="track-anonymous",
        ),
        pytest.param(
            group({"name": "Initech"}),
            {"contact_id": "abc", "company_id": "ic9"},
            [
                ("POST", "/companies", {"company_id": "org-9", "name": "Initech"}),
                ("POST", "/contacts/abc/companies", {"id": "ic9"}),
            ],
            id="group-cached",
        ),
        pytest.param(
            group({}),
            {"company_id": {"other": "x"}},
            [
                FIND,
                ("POST", "/companies", {"company_id": "org-9"}),
                ("POST", "/contacts/{contact_id}/companies", {"id": "{company_id}"}),
            ],
            id="group-not-cached",
        ),
    ],
)
def test_it_lists_the_planned_requests(message, options, expected):
    assert planned_requests(map_call(message), **options) == expected


# --- the OpenAPI description ---------------------------------------------------------------------

OPENAPI_PATHS = [
    Path(__file__).resolve().parents[2] / "forwarding" / "openapi" / "api.intercom.io.yaml",
    Path("/work/shared/intercom-openapi/api.intercom.io.yaml"),
]
REQUEST_SCHEMAS = {
    "create_contact": "create_contact_request",
    "update_contact": "update_contact_request",
    "create_event": "create_data_event_request",
    "upsert_company": "create_or_update_company_request",
    "tag_company": "tag_company_request",
}
SCALAR = [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]


@functools.cache
def validators():
    """OAS 3.0 validators of the four request bodies, with the sandbox's two relaxations and nothing else."""
    path = next(path for path in OPENAPI_PATHS if path.exists())
    spec = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    schemas = spec["components"]["schemas"]
    # Documented metadata types: string, number, boolean, date (number), monetary amount, rich link.
    schemas["create_data_event_request"]["properties"]["metadata"]["additionalProperties"] = {
        "anyOf": [
            *SCALAR,
            {
                "type": "object",
                "properties": {"amount": {"type": "integer", "minimum": 1}, "currency": {"type": "string"}},
                "required": ["amount", "currency"],
                "additionalProperties": False,
            },
            {
                "type": "object",
                "properties": {"url": {"type": "string"}, "value": {"type": "string"}},
                "required": ["url", "value"],
                "additionalProperties": False,
            },
        ]
    }
    # Documented company custom attribute values: strings, numbers and booleans.
    schemas["create_or_update_company_request"]["properties"]["custom_attributes"]["additionalProperties"] = {
        "anyOf": SCALAR
    }
    registry = Registry().with_resource("urn:intercom", Resource.from_contents(spec, default_specification=DRAFT4))
    return {
        name: (
            OAS30Validator({"$ref": f"urn:intercom#/components/schemas/{schema}"}, registry=registry),
            schemas[schema],
        )
        for name, schema in REQUEST_SCHEMAS.items()
    }


def assert_valid(name, body):
    validator, schema = validators()[name]
    errors = [f"{list(error.absolute_path)}: {error.message}" for error in validator.iter_errors(body)]
    assert errors == [], f"{name} body {body!r} is invalid: {errors}"
    # The schemas allow unknown top-level keys; a misspelt field would be silently ignored by Intercom.
    assert set(body) <= set(schema["properties"]), f"{name}: unknown keys {set(body) - set(schema['properties'])}"
    for value in (body.get("custom_attributes") or {}).values():
        assert isinstance(value, str | int | float | bool), f"{name}: custom attribute {value!r} is not a flat scalar"


def bodies(mapped):
    """(schema name, body) of every request body `mapped` produces."""
    if mapped.contact is not None:
        yield "create_contact", {"role": "user", **mapped.contact}
        yield "update_contact", mapped.contact
    if mapped.event is not None and "user_id" in mapped.event:
        yield "create_event", mapped.event
    if mapped.company is not None:
        yield "upsert_company", mapped.company
    for company_body in mapped.companies:
        yield "upsert_company", company_body
    for method, path, body in planned_requests(mapped, contact_id="abc", company_id="ic1"):
        if (method, path) == ("POST", "/tags"):
            yield "tag_company", body


@pytest.mark.parametrize("message", ALL_MESSAGES)
def test_it_produces_bodies_valid_against_the_openapi_description(message):
    for options in ({}, {"user_id": "u1"}):
        for name, body in bodies(map_call(message, **options)):
            assert_valid(name, body)


def test_it_validates_strictly_outside_the_two_relaxations():
    event_validator, _ = validators()["create_event"]
    company_validator, _ = validators()["upsert_company"]
    contact_validator, _ = validators()["update_contact"]
    assert not event_validator.is_valid({"event_name": "x", "created_at": "2026-01-02", "user_id": "u1"})
    assert not event_validator.is_valid({"event_name": "x", "created_at": 1})
    assert not event_validator.is_valid({**event(), "metadata": {"a": {"b": 1}}})
    assert not event_validator.is_valid({**event(), "metadata": {"price": {"amount": 0, "currency": "USD"}}})
    assert not company_validator.is_valid({"company_id": "c", "size": "42"})
    assert not company_validator.is_valid({"company_id": "c", "custom_attributes": {"a": {"b": 1}}})
    assert not contact_validator.is_valid({"signed_up_at": "2020-01-01"})
    assert contact_validator.is_valid({"phone": None})  # nullable, as the description says


# --- parity with the peers' Intercom destinations (docs/delivery.md, "Mapping") ------------------------------

PARITY_IDENTIFY = cases(
    ("created-to-signed_up_at", identify({"created": "2026-01-02T03:04:05Z"}), contact(signed_up_at=1767323045), []),
    ("ownerId", identify({"ownerId": 42}), contact(owner_id="42"), []),
    ("owner_id-string", identify({"owner_id": "42"}), contact(owner_id="42"), []),
    (
        "ownerId-not-an-integer",
        identify({"ownerId": "ada"}),
        contact(),
        ['traits.ownerId: dropped: "ada" is not a number'],
    ),
    ("lastSeenAt", identify({"lastSeenAt": "2026-01-01T00:00:00Z"}), contact(last_seen_at=1767225600), []),
    ("lastRequestAt", identify({"lastRequestAt": 1767225600}), contact(last_seen_at=1767225600), []),
    (
        "last_seen_at-even-when-inactive",
        identify({"last_seen_at": 1767225600}, context={"active": False}),
        contact(last_seen_at=1767225600),
        [],
    ),
    ("firstname-lastname", identify({"firstname": "Ada", "lastname": "Lovelace"}), contact(name="Ada Lovelace"), []),
)


@pytest.mark.parametrize(("message", "expected", "warnings"), PARITY_IDENTIFY)
def test_it_reads_the_trait_aliases_the_peers_read_and_none_becomes_a_custom_attribute(message, expected, warnings):
    mapped = map_call(message)
    assert mapped.contact == expected
    assert list(mapped.warnings) == warnings


PARITY_GROUP = cases(
    ("remoteCreatedAt", group({"remoteCreatedAt": 1767225600}), {}, company(remote_created_at=1767225600), []),
    ("created", group({"created": "2026-01-01T00:00:00Z"}), {}, company(remote_created_at=1767225600), []),
    (
        "ids-of-the-caller-are-not-company-attributes",
        group({"userId": "u1", "anonymousId": "a1", "groupId": "org-9", "seats": 3}),
        {},
        company(custom_attributes={"seats": 3}),
        [
            "traits.userId: dropped: an id of the caller is not a company attribute",
            "traits.anonymousId: dropped: an id of the caller is not a company attribute",
        ],
    ),
)


@pytest.mark.parametrize(("message", "options", "expected", "warnings"), PARITY_GROUP)
def test_it_reads_the_group_aliases_and_never_makes_ids_company_attributes(message, options, expected, warnings):
    mapped = map_call(message, **options)
    assert mapped.company == expected
    assert list(mapped.warnings) == warnings


DISABLED = cases(
    ("intercom-false", track({}, integrations={"Intercom": False}), True),
    ("all-false", identify({}, integrations={"All": False}), True),
    ("all-false-intercom-true", track({}, integrations={"All": False, "Intercom": True}), False),
    ("all-false-intercom-options", group({}, integrations={"All": False, "Intercom": {"x": 1}}), False),
    ("other-destination-off", track({}, integrations={"Mixpanel": False}), False),
    ("integrations-not-an-object", track({}, integrations="no"), False),
)


@pytest.mark.parametrize(("message", "skipped"), DISABLED)
def test_a_call_that_turns_intercom_off_is_skipped(message, skipped):
    mapped = map_call(message)
    assert (mapped.skip_reason == DISABLED_REASON) is skipped
    assert (planned_requests(mapped) == []) is skipped


MONEY = cases(
    ("dollar-sign-and-thousands", track({"revenue": "$1,234.50"}), {"amount": 123450, "currency": "USD"}, []),
    ("code-after", track({"revenue": "1 234.50 EUR", "currency": "EUR"}), {"amount": 123450, "currency": "EUR"}, []),
    ("euro-sign", track({"revenue": "€5"}), {"amount": 500, "currency": "USD"}, []),
    (
        "comma-decimal-refused",
        track({"revenue": "1.234,50"}),
        None,
        ['properties.revenue: dropped: "1.234,50" is not a number; price not sent'],
    ),
    ("total-of-order-completed", track({"total": 20, "currency": "EUR"}), {"amount": 2000, "currency": "EUR"}, []),
    ("revenue-before-total", track({"revenue": 5, "total": 20}), {"amount": 500, "currency": "USD"}, []),
)


@pytest.mark.parametrize(("message", "price", "warnings"), MONEY)
def test_it_reads_revenue_as_the_e_commerce_spec_defines_it(message, price, warnings):
    mapped = map_call(message)
    assert mapped.event.get("metadata", {}).get("price") == price
    assert list(mapped.warnings) == warnings
    if price is not None and "total" in message["properties"] and "revenue" not in message["properties"]:
        assert "total" not in mapped.event["metadata"]


def test_total_is_revenue_only_for_order_completed():
    mapped = map_call(track({"total": 20}, event="Checkout Started"))
    assert mapped.event["metadata"] == {"total": 20}


DETACH = cases(
    ("identify-company-remove", identify({"company": {"id": "c1", "remove": True}}), ("c1",)),
    (
        "identify-companies-remove-one",
        identify({"companies": [{"id": "c1", "remove": True}, {"id": "c2"}]}),
        ("c1",),
    ),
    ("group-remove", group({"remove": True, "name": "Initech"}), ("org-9",)),
    ("group-without-remove", group({"name": "Initech"}), ()),
)


@pytest.mark.parametrize(("message", "detach"), DETACH)
def test_a_company_with_remove_is_detached_and_never_created(message, detach):
    mapped = map_call(message)
    assert mapped.detach == detach
    created = [c["company_id"] for c in ((mapped.company,) if mapped.company else mapped.companies)]
    assert not set(created) & set(detach)
    requests = planned_requests(mapped, contact_id="abc", company_id={})
    deletes = [path for method, path, _ in requests if method == "DELETE"]
    assert deletes == ["/contacts/abc/companies/{company_id}" for _ in detach]


TAGS = cases(
    ("group-list", group({"tags": ["VIP", "beta"]}), [("org-9", "VIP"), ("org-9", "beta")], []),
    ("group-comma-string", group({"tags": "VIP, beta,,"}), [("org-9", "VIP"), ("org-9", "beta")], []),
    ("repeats-ignore-case", group({"tags": ["VIP", "vip", " VIP "]}), [("org-9", "VIP")], []),
    (
        "not-a-list",
        group({"tags": {"a": 1}}),
        [],
        ['traits.tags: dropped: {"a": 1} is not a list of tag names'],
    ),
    (
        "blank-and-object-items",
        group({"tags": ["ok", "", {"x": 1}, 7]}),
        [("org-9", "ok"), ("org-9", "7")],
        ['traits.tags[1]: dropped: "" is not a tag name', 'traits.tags[2]: dropped: {"x": 1} is not a tag name'],
    ),
    (
        "identify-company-tags",
        identify({"company": {"id": "c1", "tags": ["VIP"]}}),
        [("c1", "VIP")],
        [],
    ),
)


@pytest.mark.parametrize(("message", "tags", "warnings"), TAGS)
def test_a_companys_tags_tag_it_and_never_become_an_attribute(message, tags, warnings):
    mapped = map_call(message)
    assert list(mapped.tags) == tags
    assert list(mapped.warnings) == warnings
    for company_body in (mapped.company,) if mapped.company else mapped.companies:
        assert "tags" not in company_body.get("custom_attributes", {})
    requests = planned_requests(mapped, contact_id="abc", company_id="ic1")
    tagged = [body for method, path, body in requests if (method, path) == ("POST", "/tags")]
    assert tagged == [{"name": name, "companies": [{"id": "ic1"}]} for _, name in tags]
    for body in tagged:
        assert_valid("tag_company", body)
    # Each company's tags come after it is created or updated, before the attach.
    order = [path for _, path, _ in requests]
    if tagged:
        assert order.index("/companies") < order.index("/tags") < order.index("/contacts/abc/companies")


INTERCOM_OPTIONS = cases(
    (
        "option-unsubscribed",
        identify({}, integrations={"Intercom": {"unsubscribedFromEmails": True}}),
        contact(unsubscribed_from_emails=True),
    ),
    (
        "trait-wins-over-option",
        identify({"unsubscribedFromEmails": False}, integrations={"Intercom": {"unsubscribedFromEmails": True}}),
        contact(unsubscribed_from_emails=False),
    ),
    ("intercom-true-has-no-options", identify({}, integrations={"Intercom": True}), contact()),
)


@pytest.mark.parametrize(("message", "expected"), INTERCOM_OPTIONS)
def test_it_reads_the_options_of_integrations_intercom(message, expected):
    assert map_call(message).contact == expected
