"""Turn a stored Segment call into the bodies of the Intercom requests it maps to (docs/architecture.md, "Mapping").

Pure functions: no ORM, no settings, no HTTP. The engine passes what it knows (the forwarded event
name, the attributed userId, the page event name) as keyword arguments.

Decisions where the design is silent (each one is tested in tests/forwarding/test_mapping.py):

- Every value that is dropped, cut, rounded, truncated, flattened, joined or renamed gives a warning,
  "<where it was>: <what happened>". Lossless conversions the design prescribes (ISO dates to Unix
  seconds, createdAt to signed_up_at, revenue to price) give none.
- null values, empty objects and empty arrays are dropped (with a warning), never sent: the relay
  cannot tell "unset" from "unknown", and clearing data in Intercom is not undoable.
- Key names: the characters Intercom forbids become "_"; keys are case-insensitive in Intercom, so a
  key equal (ignoring case) to one already set is dropped.
- Dates: custom attribute values that are full ISO-8601 datetimes (date and time) become Unix seconds;
  a bare date ("1990-05-17") stays a string. In event metadata only keys ending in "_date" are
  converted (Intercom types metadata as a date by that suffix alone; elsewhere a Unix number would
  read as a plain number, so the ISO string is kept).
- Money: revenue is exact decimal arithmetic, cents rounded half up (1.005 -> 101, with a warning;
  float noise such as 0.1 + 0.2 -> 30 rounds silently). Intercom wants a positive amount: zero,
  negative or non-numeric revenue drops the price. Currency is an ISO 4217 code, upper-cased
  ("eur" -> "EUR"), "USD" when absent; anything else drops the price. Every currency is x100.
- A string `traits.company` becomes a company whose company_id is its name.
- Integers beyond the signed 64-bit range, NaN and Infinity are dropped.
- identify always uses the message's own userId (a lead identify stays skipped even when the engine
  knows who the anonymousId belongs to); the `user_id` override applies to track, page and group.
"""

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from urllib.parse import quote

# Intercom's key-name rule (help center "Set up event tracking", the same for custom attributes).
FORBIDDEN_KEY_CHARACTERS = frozenset(".$~`!@#%^&*'{}|\\\"\0")
MAX_STRING_LENGTH = 255
MAX_METADATA_KEYS = 10
MAX_INT32 = 2**31 - 1  # monthly_spend's documented maximum; size is held to it too
MIN_INT, MAX_INT = -(2**63), 2**63 - 1
DEFAULT_CURRENCY = "USD"
LEAD_REASON = "identify without userId: Intercom leads are not created"
PAGE_OFF_REASON = "page forwarding is off"
CONTACT_PLACEHOLDER = "{contact_id}"
COMPANY_PLACEHOLDER = "{company_id}"
USER_PLACEHOLDER = "{user_id}"

# Numbers at least this large are epoch milliseconds, not seconds (1e11 s is the year 5138).
_MILLISECONDS_FROM = 10**11
# Below a millionth of a cent, a difference is float noise (0.1 + 0.2), not a rounded amount.
_CENT_NOISE = Decimal("0.000001")
_MAX_AMOUNT = Decimal(MAX_INT) / 100  # in cents, an amount must fit in 64 bits
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ISO = re.compile(
    r"(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})"
    r"(?:[Tt ](?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:[.,]\d+)?)?"
    r"(?P<tz>[Zz]|[+-]\d{2}(?::?\d{2})?)?)?"
)
# Past this many digits a number is capped without being converted to an int first.
_MAX_INT_DIGITS = 30
_EPOCH_STRING = re.compile(r"-?\d{1,16}")
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_ -]+")
_CURRENCY = re.compile(r"[A-Za-z]{3}")
_TRUE_STRINGS = {"true": True, "false": False}

_NAME_KEYS = ("name",)
# Aliases the peers' Intercom destinations read (RudderStack, Segment Actions): docs/delivery.md, "Mapping".
_FIRST_NAME_KEYS = ("firstName", "first_name", "firstname")
_LAST_NAME_KEYS = ("lastName", "last_name", "lastname")
_SIGNED_UP_KEYS = ("createdAt", "created_at", "signed_up_at", "created")
_OWNER_KEYS = ("ownerId", "owner_id")
_LAST_SEEN_KEYS = ("lastSeenAt", "lastRequestAt", "last_seen_at")
_UNSUBSCRIBED_KEYS = ("unsubscribedFromEmails", "unsubscribed_from_emails")
_USER_IDENTITY_KEYS = ("id", "userId", "user_id", "external_id")
_COMPANY_IDENTITY_KEYS = ("id", "company_id", "groupId")
_CALLER_IDENTITY_KEYS = ("userId", "anonymousId")  # a group's ids of its caller, never company attributes
_COMPANY_CREATED_KEYS = ("remoteCreatedAt", "createdAt", "created_at", "created", "remote_created_at")
DISABLED_REASON = "disabled for Intercom by the call (integrations)"
ORDER_COMPLETED = "order completed"
# A page event's metadata, in this order (docs/delivery.md, "Mapping"); name and category may be the call's own.
PAGE_FIELDS = ("url", "path", "title", "name", "referrer", "search", "category")
_CALL_PAGE_FIELDS = ("name", "category")  # Segment's e-commerce spec: its `total` is the revenue
# "$1,234.50", "1 234.50 €", "USD 12": a currency symbol or code around digits with thousands separators.
_MONEY = re.compile(
    r"(?:[^\d\s.,'-]{1,3}\s?)?"  # a symbol or code before
    r"(?P<number>\d{1,3}(?:[,' \u00a0]\d{3})*(?:\.\d+)?|\d+(?:\.\d+)?)"
    r"(?:\s?[^\d\s.,'-]{1,3})?"  # or after
)


@dataclass(frozen=True)
class Mapped:
    """The Intercom request bodies one call maps to, or why it maps to none."""

    skip_reason: str = ""  # non-empty: nothing to send
    contact: dict | None = None  # identify: PUT /contacts/{id} body (POST /contacts adds "role": "user")
    event: dict | None = None  # track, page: POST /events body ("user_id" absent when the call is anonymous)
    company: dict | None = None  # group: POST /companies body
    companies: tuple = ()  # identify with traits.company(ies): POST /companies bodies
    detach: tuple = ()  # company_ids (groupIds) the contact is detached from: `remove: true`
    tags: tuple = ()  # (company_id, tag name): the companies' `tags`, each a POST /tags after the company
    warnings: tuple[str, ...] = ()  # one per value dropped, cut, rounded, flattened, joined or renamed
    user_id: str | None = None  # the userId the requests are about (external_id / user_id / the contact to attach)
    date_attributes: frozenset[str] = frozenset()  # contact custom attributes holding dates (Unix seconds)
    company_date_attributes: frozenset[str] = frozenset()  # company custom attributes holding dates


def map_call(
    message: dict,
    *,
    event_name: str | None = None,
    page_event_name: str = "viewed-page",
    user_id: str | None = None,
) -> Mapped:
    """Map a stored Segment message to Intercom request bodies.

    `event_name` replaces a track call's `event` (the name after rename); `page_event_name` is the one
    event name of page calls (empty: not forwarded); `user_id` replaces the userId of track, page and
    group calls (an anonymous call attributed to a user).
    """
    kind = message.get("type")
    if disabled_by_call(message):
        return Mapped(skip_reason=DISABLED_REASON)
    notes = _Notes()
    if kind == "identify":
        return _identify(message, notes)
    if kind == "track":
        name = event_name if event_name is not None else message.get("event")
        if not isinstance(name, str) or not name:
            return Mapped(skip_reason="track without an event name")
        return _event(message, notes, name, user_id, _track_metadata)
    if kind == "page":
        if not page_event_name:
            return Mapped(skip_reason=PAGE_OFF_REASON)
        return _event(message, notes, page_event_name, user_id, _page_metadata)
    if kind == "group":
        return _group(message, notes, user_id)
    if kind in ("screen", "alias"):
        return Mapped(skip_reason=f"{kind} calls are not forwarded: Intercom has no equivalent")
    return Mapped(skip_reason=f"unknown call type {kind!r}")


def planned_requests(
    mapped: Mapped,
    *,
    contact_id: str | None = CONTACT_PLACEHOLDER,
    company_id: str | Mapping[str, str] = COMPANY_PLACEHOLDER,
) -> list[tuple[str, str, dict | None]]:
    """The (method, path, body) requests the engine sends for `mapped`, in order.

    `contact_id`: the cached Intercom contact id; the placeholder (default) when none is cached, so the
    lookup comes first; None when Intercom has no contact (identify then creates it). `company_id`: the
    Intercom company id, or a mapping from our company_id (groupId) to it.
    """
    if mapped.skip_reason:
        return []
    requests = []
    if contact_id is None or contact_id == CONTACT_PLACEHOLDER:
        user = quote(mapped.user_id, safe="") if mapped.user_id else USER_PLACEHOLDER
        requests.append(("GET", f"/contacts/find_by_external_id/{user}", None))
    contact_path = f"/contacts/{contact_id or CONTACT_PLACEHOLDER}"
    if mapped.contact is not None:
        if contact_id is None:
            requests.append(("POST", "/contacts", {"role": "user", **mapped.contact}))
        else:
            requests.append(("PUT", contact_path, mapped.contact))
    if mapped.event is not None:
        requests.append(("POST", "/events", mapped.event))
    companies = (mapped.company,) if mapped.company is not None else mapped.companies
    for company in companies:
        if isinstance(company_id, Mapping):
            intercom_id = company_id.get(company["company_id"], COMPANY_PLACEHOLDER)
        else:
            intercom_id = company_id
        requests.append(("POST", "/companies", company))
        for group_id, tag in mapped.tags:
            if group_id == company["company_id"]:
                requests.append(("POST", "/tags", {"name": tag, "companies": [{"id": intercom_id}]}))
        requests.append(("POST", f"{contact_path}/companies", {"id": intercom_id}))
    for group_id in mapped.detach:
        intercom_id = company_id.get(group_id, COMPANY_PLACEHOLDER) if isinstance(company_id, Mapping) else company_id
        # Always looked up first: a company the contact leaves may be gone from Intercom, and needs nothing then.
        requests.append(("GET", f"/companies?company_id={quote(group_id, safe='')}", None))
        requests.append(("DELETE", f"{contact_path}/companies/{intercom_id}", None))
    return requests


def custom_attribute_types(attributes: dict, date_keys=frozenset()) -> dict[str, str]:
    """The Intercom data_type of each mapped custom attribute, for POST /data_attributes.

    Integers are dates when their name is in `date_keys` (Mapped.date_attributes) or ends in "_at" or
    "_date" (Intercom's own convention).
    """
    types = {}
    for name, value in attributes.items():
        if isinstance(value, bool):
            types[name] = "boolean"
        elif isinstance(value, int):
            is_date = name in date_keys or name.endswith(("_at", "_date"))
            types[name] = "date" if is_date else "integer"
        elif isinstance(value, float):
            types[name] = "float"
        elif isinstance(value, str):
            types[name] = "string"
    return types


def to_unix(value) -> int | None:
    """Unix seconds (floored) from an ISO-8601 date or datetime, a datetime, or epoch seconds or
    milliseconds (number or digit string); None when the value is none of those."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return _seconds(moment)
    if isinstance(value, date):
        return _seconds(datetime(value.year, value.month, value.day, tzinfo=UTC))
    if isinstance(value, str):
        text = value.strip()
        if _EPOCH_STRING.fullmatch(text):
            return to_unix(int(text))
        moment = _parse_iso(text, need_time=False)
        return None if moment is None else _seconds(moment)
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if abs(value) >= _MILLISECONDS_FROM:
            value = value / 1000 if isinstance(value, float) else value // 1000
        seconds = math.floor(value)
        return seconds if MIN_INT <= seconds <= MAX_INT else None
    return None


def clean_key(key: str) -> str:
    """`key` with the characters Intercom forbids in attribute and metadata names replaced by "_"."""
    return "".join("_" if char in FORBIDDEN_KEY_CHARACTERS else char for char in key)


# --- calls -------------------------------------------------------------------------------------


def _identify(message, notes):
    uid = _id_string(message.get("userId"))
    if uid is None:
        return Mapped(skip_reason=LEAD_REASON)
    traits = _object(message, "traits", notes)
    contact = {"external_id": uid}
    _drop_identity(traits, _USER_IDENTITY_KEYS, uid, "traits", "the contact's external_id is userId", notes)

    email = _take_string(traits, ("email",), "traits", notes)
    if email is not None:
        contact["email"] = email
    name = _take_name(traits, notes)
    if name is not None:
        contact["name"] = name
    phone = _take_string(traits, ("phone",), "traits", notes, numbers=True)
    if phone is not None:
        contact["phone"] = phone
    avatar = _take_avatar(traits, notes)
    if avatar is not None:
        contact["avatar"] = avatar
    signed_up_at = _take_time(traits, _SIGNED_UP_KEYS, "traits", notes)
    if signed_up_at is not None:
        contact["signed_up_at"] = signed_up_at
    owner = _take_int(traits, _OWNER_KEYS, "traits", notes)
    if owner is not None:
        contact["owner_id"] = str(owner)  # an admin's id: digits, typed a string by Intercom's 2.16 description
    last_seen = _take_time(traits, _LAST_SEEN_KEYS, "traits", notes)
    context = message.get("context")
    if last_seen is not None:
        contact["last_seen_at"] = last_seen
    elif not (isinstance(context, dict) and context.get("active") is False):
        contact["last_seen_at"] = _timestamp(message)
    unsubscribed = _take_bool(traits, _UNSUBSCRIBED_KEYS, "traits", notes)
    options = (
        (message.get("integrations") or {}).get("Intercom") if isinstance(message.get("integrations"), dict) else None
    )
    if unsubscribed is None and isinstance(options, dict):  # integrations.Intercom's options (Segment's)
        unsubscribed = _take_bool(dict(options), _UNSUBSCRIBED_KEYS, "integrations.Intercom", notes)
    if unsubscribed is not None:
        contact["unsubscribed_from_emails"] = unsubscribed

    companies, company_dates, detach, tags = _identify_companies(traits, notes)
    attributes, dates = _attributes(traits, "traits", notes)
    if attributes:
        contact["custom_attributes"] = attributes
    return Mapped(
        contact=contact,
        companies=tuple(companies),
        detach=tuple(detach),
        tags=tuple(tags),
        warnings=notes.done(),
        user_id=uid,
        date_attributes=frozenset(dates),
        company_date_attributes=frozenset(company_dates),
    )


def _identify_companies(traits, notes):
    """traits.company (an object or a name) and traits.companies (a list of them) as company bodies,
    their date attributes, and the company_ids of those with `remove: true` (to detach)."""
    found = []
    if "company" in traits:
        found.append(("traits.company", traits.pop("company")))
    if "companies" in traits:
        listed = traits.pop("companies")
        if isinstance(listed, list):
            found += [(f"traits.companies[{index}]", item) for index, item in enumerate(listed)]
        else:
            notes.add("traits.companies", "dropped: not a list of companies")
    companies, dates, seen, detach, tags = [], set(), set(), [], []
    for path, value in found:
        if isinstance(value, str) and value:
            value = {"name": value}
        if not isinstance(value, dict):
            notes.add(path, "dropped: a company is an object or a name")
            continue
        value = dict(value)
        company_id = _id_string(value.pop("id", None)) or _id_string(value.pop("company_id", None))
        if company_id is None and isinstance(value.get("name"), str) and value["name"]:
            company_id = value["name"]
        if company_id is None:
            notes.add(path, "dropped: a company needs an id or a name")
            continue
        if company_id in seen:
            notes.add(path, f"dropped: company {company_id!r} is already listed")
            continue
        seen.add(company_id)
        remove = value.pop("remove", None)
        if remove is True:
            detach.append(company_id)  # detached, never created or attached (as RudderStack does)
            continue
        if remove is not None:
            notes.add(f"{path}.remove", f"ignored: {_show(remove)} is not true")
        company, company_dates, company_tags = _company(company_id, value, path, notes, id_source="the company's id")
        companies.append(company)
        dates |= company_dates
        tags += company_tags
    return companies, dates, detach, tags


def _event(message, notes, name, user_id, metadata_of):
    uid = _id_string(user_id) or _id_string(message.get("userId"))
    event = {"event_name": name, "created_at": _timestamp(message)}
    if uid is not None:
        event["user_id"] = uid
    metadata = metadata_of(message, notes)
    if metadata:
        event["metadata"] = metadata
    return Mapped(event=event, warnings=notes.done(), user_id=uid)


def _track_metadata(message, notes):
    properties = _object(message, "properties", notes)
    entries = _Entries(notes)
    revenue_key = "revenue" if "revenue" in properties else None
    event = message.get("event")
    if revenue_key is None and "total" in properties and isinstance(event, str) and event.lower() == ORDER_COMPLETED:
        revenue_key = "total"
    if revenue_key:
        price = _price(properties.pop(revenue_key), properties.pop("currency", None), notes, revenue_key)
        if price is not None:
            entries.add("price", price, f"properties.{revenue_key}")
            if "price" in properties:
                properties.pop("price")
                notes.add("properties.price", "dropped: price is built from revenue")
    for key, value in properties.items():
        _add_flat(entries, key, value, "properties", notes, metadata=True)
    return entries.capped(MAX_METADATA_KEYS)


def _page_metadata(message, notes):
    """The page fields an Intercom user reads, in PAGE_FIELDS order; other properties are dropped,
    so the 10-key cap never keeps an SDK's noise (referring_domain, tab_url...) over them."""
    properties = _object(message, "properties", notes)
    context = message.get("context")
    page = context.get("page") if isinstance(context, dict) else None
    page = page if isinstance(page, dict) else {}
    entries = _Entries(notes)
    for key in PAGE_FIELDS:
        if key in _CALL_PAGE_FIELDS:
            top, inner = message.get(key), properties.pop(key, None)
            if _present(top):
                if _present(inner) and inner != top:
                    notes.add(f"properties.{key}", f"dropped: the call's {key} is used")
                _add_flat(entries, key, top, "", notes, metadata=True)
            elif _present(inner):
                _add_flat(entries, key, inner, "properties", notes, metadata=True)
        else:
            _page_field(entries, key, properties, page, notes)
    for key in properties:
        notes.add(_path("properties", key), f"dropped: a page event keeps only {', '.join(PAGE_FIELDS)}")
    return entries.capped(MAX_METADATA_KEYS)


def _page_field(entries, key, properties, page, notes):
    """A page field from the properties, else from context.page; empty strings are left out."""
    value = properties.pop(key, None)
    if _present(value):
        _add_flat(entries, key, value, "properties", notes, metadata=True)
    elif _present(page.get(key)):
        _add_flat(entries, key, page[key], "context.page", notes, metadata=True)


def _group(message, notes, user_id):
    company_id = _id_string(message.get("groupId"))
    if company_id is None:
        return Mapped(skip_reason="group without groupId")
    traits = _object(message, "traits", notes)
    uid = _id_string(user_id) or _id_string(message.get("userId"))
    remove = traits.pop("remove", None)
    if remove is True:  # detach the user from the company, never create it (as RudderStack does)
        return Mapped(detach=(company_id,), warnings=notes.done(), user_id=uid)
    if remove is not None:
        notes.add("traits.remove", f"ignored: {_show(remove)} is not true")
    company, dates, tags = _company(company_id, traits, "traits", notes, id_source="groupId")
    return Mapped(
        company=company, tags=tags, warnings=notes.done(), user_id=uid, company_date_attributes=frozenset(dates)
    )


def _company(company_id, traits, path, notes, *, id_source):
    """A POST /companies body from a company's traits (consumed), its date attributes and its tags."""
    traits = dict(traits)
    tags = _take_tags(traits, path, notes)
    _drop_identity(traits, _COMPANY_IDENTITY_KEYS, company_id, path, f"company_id comes from {id_source}", notes)
    for key in _CALLER_IDENTITY_KEYS:
        if key in traits:
            traits.pop(key)
            notes.add(_path(path, key), "dropped: an id of the caller is not a company attribute")
    company = {"company_id": company_id}
    for key in ("name", "plan", "website", "industry"):
        value = _take_string(traits, (key,), path, notes, numbers=True)
        if value is not None:
            company[key] = value
    size = _take_int(traits, ("size", "employees"), path, notes, limit=MAX_INT32)
    if size is not None:
        company["size"] = size
    spend = _take_int(traits, ("monthly_spend", "monthlySpend"), path, notes, limit=MAX_INT32)
    if spend is not None:
        company["monthly_spend"] = spend
    created = _take_time(traits, _COMPANY_CREATED_KEYS, path, notes)
    if created is not None:
        company["remote_created_at"] = created
    attributes, dates = _attributes(traits, path, notes)
    if attributes:
        company["custom_attributes"] = attributes
    return company, dates, tuple((company_id, tag) for tag in tags)


def _take_tags(traits, path, notes):
    """The company's tag names from `tags`, a list or a comma-separated string (as RudderStack
    reads it); blanks and repeats (names ignore case in Intercom) are left out."""
    if "tags" not in traits:
        return []
    value, where = traits.pop("tags"), _path(path, "tags")
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]  # "a, b," is two names
    if not isinstance(value, list):
        notes.add(where, f"dropped: {_show(value)} is not a list of tag names")
        return []
    names, seen = [], set()
    for index, item in enumerate(value):
        name = _id_string(item) if not isinstance(item, str) else item.strip()
        if not name:
            notes.add(f"{where}[{index}]", f"dropped: {_show(item)} is not a tag name")
        elif len(name) > MAX_STRING_LENGTH:
            notes.add(f"{where}[{index}]", f"dropped: longer than {MAX_STRING_LENGTH} characters")
        elif name.lower() not in seen:
            seen.add(name.lower())
            names.append(name)
    return names


# --- standard fields ---------------------------------------------------------------------------


def _take(traits, keys, path, notes, convert, what):
    """Pop every key of `keys`; the first whose value converts wins, the others are dropped."""
    winner = _take_keyed(traits, keys, path, notes, convert, what)
    return None if winner is None else winner[1]


def _take_keyed(traits, keys, path, notes, convert, what):
    """Like _take, but returns (key, value) of the winner, or None."""
    winner = None
    for key in keys:
        if key not in traits:
            continue
        value = traits.pop(key)
        where = _path(path, key)
        if value is None or value == "":
            notes.add(where, "dropped: empty")
        elif winner is not None:
            notes.add(where, f"dropped: {winner[0]} is used")
        else:
            converted = convert(value, where)
            if converted is None:
                notes.add(where, f"dropped: {_show(value)} is not {what}")
            else:
                winner = (key, converted)
    return winner


def _take_string(traits, keys, path, notes, *, numbers=False):
    winner = _take_string_keyed(traits, keys, path, notes, numbers=numbers)
    return None if winner is None else winner[1]


def _take_string_keyed(traits, keys, path, notes, *, numbers=False):
    def convert(value, where):
        if isinstance(value, str):
            return value
        if numbers and isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return str(value)
        return None

    return _take_keyed(traits, keys, path, notes, convert, "a string")


def _take_name(traits, notes):
    """name, or firstName and lastName (either spelling) joined; the parts are never custom attributes."""
    name = _take_string(traits, _NAME_KEYS, "traits", notes)
    parts = []
    for keys in (_FIRST_NAME_KEYS, _LAST_NAME_KEYS):
        winner = _take_string_keyed(traits, keys, "traits", notes)
        if winner is None:
            continue
        if name is not None:
            notes.add(_path("traits", winner[0]), "dropped: name is set")
        elif winner[1].strip():
            parts.append(winner[1].strip())
    return name if name is not None else (" ".join(parts) or None)


def _take_avatar(traits, notes):
    def convert(value, where):
        if isinstance(value, dict):
            value = value.get("url")
        return value if isinstance(value, str) and value else None

    return _take(traits, ("avatar",), "traits", notes, convert, "an image URL")


def _take_time(traits, keys, path, notes):
    return _take(traits, keys, path, notes, lambda value, where: to_unix(value), "a date")


def _take_bool(traits, keys, path, notes):
    def convert(value, where):
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            return _TRUE_STRINGS.get(value.strip().lower())
        return None

    return _take(traits, keys, path, notes, convert, "true or false")


def _take_int(traits, keys, path, notes, *, limit=MAX_INT):
    """An integer, truncated toward zero (Intercom truncates floats) and capped at `limit`."""

    def convert(value, where):
        number = _decimal(value)
        if number is None:
            return None
        if number.adjusted() > _MAX_INT_DIGITS:
            # Capped before int(): int(Decimal("1e999999999")) would build a billion-digit integer.
            capped = limit if number > 0 else -limit - 1
            notes.add(where, f"capped from {_show(value)} to {capped}")
            return capped
        whole = int(number)
        if whole != number:
            notes.add(where, f"truncated from {_show(value)} to {whole}")
        if abs(whole) > limit:
            capped = limit if whole > 0 else -limit - 1
            notes.add(where, f"capped from {whole} to {capped}")
            whole = capped
        return whole

    return _take(traits, keys, path, notes, convert, "a number")


def _drop_identity(traits, keys, own_id, path, reason, notes):
    """Identity keys are never custom attributes; a value other than the call's own id is reported."""
    for key in keys:
        if key in traits:
            value = traits.pop(key)
            if _id_string(value) != own_id:
                notes.add(_path(path, key), f"dropped: {reason}")


def _price(revenue, currency, notes, key="revenue"):
    """Intercom's monetary amount from revenue and currency, or None (with a warning) when it cannot be."""
    where = f"properties.{key}"
    amount = _decimal(revenue) if not isinstance(revenue, str) else _money(revenue)
    if amount is None:
        notes.add(where, f"dropped: {_show(revenue)} is not a number; price not sent")
        return None
    if currency is None or currency == "":
        code = DEFAULT_CURRENCY
    elif isinstance(currency, str) and _CURRENCY.fullmatch(currency.strip()):
        code = currency.strip().upper()
    else:
        notes.add("properties.currency", f"dropped: {_show(currency)} is not a currency code; price not sent")
        return None
    # Checked before multiplying and rounding: Decimal("1e999999") * 100 overflows, quantize cannot take huge values.
    if not 0 < amount < _MAX_AMOUNT:
        notes.add(where, f"dropped: {_show(revenue)} is not a positive amount; price not sent")
        return None
    cents = amount * 100
    rounded = cents.quantize(Decimal(1), rounding=ROUND_HALF_UP)
    if rounded == 0:
        notes.add(where, f"dropped: {_show(revenue)} is less than a cent; price not sent")
        return None
    if abs(cents - rounded) > _CENT_NOISE:
        notes.add(where, f"{_show(revenue)} rounded to {rounded} cents")
    return {"amount": int(rounded), "currency": code}


# --- values ------------------------------------------------------------------------------------


def _attributes(traits, path, notes):
    """Custom attributes (flat scalars) from the remaining traits, and the names holding dates."""
    entries = _Entries(notes)
    for key, value in traits.items():
        _add_flat(entries, key, value, path, notes, metadata=False)
    return entries.values, entries.dates


def _add_flat(entries, key, value, path, notes, *, metadata):
    """Add one sent key/value to `entries` as Intercom-ready flat keys (with warnings)."""
    where = _path(path, key)
    name = clean_key(key)
    if not name:
        notes.add(where, "dropped: empty key")
        return
    if name != key:
        notes.add(where, f"key renamed to {name}")
    if isinstance(value, dict) and not (metadata and _is_typed_object(value)):
        added = []
        _flatten(entries, name, value, where, notes, metadata, added)
        if added:
            notes.add(where, f"nested object flattened to {', '.join(added)}")
        elif not value:
            notes.add(where, "dropped: empty object")
        return
    _add_scalar(entries, name, value, where, notes, metadata)


def _flatten(entries, prefix, value, where, notes, metadata, added):
    for key, inner in value.items():
        inner_where = _path(where, key)
        part = clean_key(key)
        if part != key:
            notes.add(inner_where, f"key renamed to {prefix}_{part}")
        name = f"{prefix}_{part}"
        if isinstance(inner, dict) and not (metadata and _is_typed_object(inner)):
            if not inner:
                notes.add(inner_where, "dropped: empty object")
            _flatten(entries, name, inner, inner_where, notes, metadata, added)
        elif _add_scalar(entries, name, inner, inner_where, notes, metadata):
            added.append(name)


def _add_scalar(entries, name, value, where, notes, metadata):
    """Convert one value to what Intercom accepts and add it; False when it was dropped."""
    is_date = False
    if value is None:
        notes.add(where, "dropped: null")
        return False
    if isinstance(value, dict):  # a monetary amount or rich link in metadata
        value = {key: _cut(inner, f"{where}.{key}", notes) for key, inner in value.items()}
    elif isinstance(value, list | tuple):
        if not [item for item in value if item is not None]:
            notes.add(where, "dropped: empty array")
            return False
        notes.add(where, "array joined into a string")
        value = _cut(",".join(_item_text(item) for item in value if item is not None), where, notes)
    elif isinstance(value, bool):
        pass
    elif isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            notes.add(where, f"dropped: {_show(value)} is not a number Intercom stores")
            return False
        if isinstance(value, int) and not MIN_INT <= value <= MAX_INT:
            notes.add(where, "dropped: integer out of the 64-bit range")
            return False
        if metadata and name.endswith("_date"):
            value, is_date = to_unix(value), True
    elif isinstance(value, str):
        date_key = metadata and name.endswith("_date")
        moment = _parse_iso(value, need_time=not date_key) if (date_key or not metadata) else None
        if moment is not None:
            value, is_date = _seconds(moment), True
        else:
            value = _cut(value, where, notes)
    elif isinstance(value, datetime | date):
        value, is_date = to_unix(value), True
    else:
        notes.add(where, f"dropped: unsupported value type {type(value).__name__}")
        return False
    return entries.add(name, value, where, is_date=is_date)


def _is_typed_object(value):
    """Intercom's two metadata objects: a monetary amount or a rich link."""
    if set(value) == {"amount", "currency"}:
        amount = value["amount"]
        return isinstance(amount, int) and not isinstance(amount, bool) and amount > 0 and _is_text(value["currency"])
    if set(value) == {"url", "value"}:
        return _is_text(value["url"]) and _is_text(value["value"])
    return False


def _item_text(item):
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, str):
        return item
    return json.dumps(item, ensure_ascii=False, separators=(",", ":"))


def _cut(value, where, notes):
    if isinstance(value, str) and len(value) > MAX_STRING_LENGTH:
        notes.add(where, f"cut from {len(value)} to {MAX_STRING_LENGTH} characters")
        return value[:MAX_STRING_LENGTH]
    return value


def _money(text):
    """A Decimal from a numeric string, also with a currency symbol or code and thousands
    separators ("$1,234.50", "1 234.50 EUR"), else None. A comma is a thousands separator only."""
    number = _decimal(text)
    if number is not None:
        return number
    match = _MONEY.fullmatch(text.strip())
    if not match:
        return None
    return _decimal(re.sub(r"[,' \u00a0]", "", match.group("number")))


def disabled_by_call(message):
    """Whether the call's `integrations` turn Intercom off: `Intercom: false`, or `All: false`
    without Intercom turned on (true, or an object of options), as Segment's libraries read it."""
    integrations = message.get("integrations")
    if not isinstance(integrations, dict):
        return False
    intercom = integrations.get("Intercom")
    if intercom is False:
        return True
    return integrations.get("All") is False and not (intercom is True or isinstance(intercom, dict))


def _decimal(value):
    """A finite Decimal from a number or numeric string (exact for floats' shortest repr), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = Decimal(value.strip() if isinstance(value, str) else str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _parse_iso(text, *, need_time):
    match = _ISO.fullmatch(text.strip())
    if match is None or (need_time and match["h"] is None):
        return None
    zone = UTC
    if match["tz"] and match["tz"] not in "Zz":
        digits = match["tz"][1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
        if offset >= timedelta(hours=24):
            return None
        zone = timezone(-offset if match["tz"][0] == "-" else offset)
    try:
        return datetime(
            int(match["y"]),
            int(match["mo"]),
            int(match["d"]),
            int(match["h"] or 0),
            int(match["mi"] or 0),
            int(match["s"] or 0),
            tzinfo=zone,
        )
    except ValueError:
        return None


def _seconds(moment):
    return (moment - _EPOCH) // timedelta(seconds=1)


def _timestamp(message):
    seconds = to_unix(message.get("timestamp"))
    if seconds is None:
        raise ValueError(f"call has no valid timestamp: {message.get('timestamp')!r}")
    return seconds


def _id_string(value):
    """An identifier as Intercom takes it (a non-empty string), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    return value if isinstance(value, str) and value else None


def _object(message, key, notes):
    value = message.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        notes.add(key, "ignored: not an object")
        return {}
    return dict(value)


def _present(value):
    return value is not None and value != ""


def _is_text(value):
    return isinstance(value, str) and value != ""


def _path(parent, key):
    key_text = key if _PLAIN_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)
    if not parent:
        return key_text if _PLAIN_KEY.fullmatch(key) else f"[{key_text}]"
    return f"{parent}.{key_text}" if _PLAIN_KEY.fullmatch(key) else f"{parent}[{key_text}]"


def _show(value):
    text = repr(value) if isinstance(value, float) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


class _Notes:
    """The warnings of one mapping, in the order they arose."""

    def __init__(self):
        self.items = []

    def add(self, where, what):
        self.items.append(f"{where}: {what}")

    def done(self):
        return tuple(self.items)


@dataclass
class _Entries:
    """Ordered flat keys for one body; Intercom keys are case-insensitive, so the first one wins."""

    notes: _Notes
    values: dict = field(default_factory=dict)
    paths: dict = field(default_factory=dict)
    dates: set = field(default_factory=set)
    lowered: set = field(default_factory=set)

    def add(self, name, value, where, *, is_date=False):
        if name.lower() in self.lowered:
            self.notes.add(where, f"dropped: key {name} is already set")
            return False
        self.lowered.add(name.lower())
        self.values[name] = value
        self.paths[name] = where
        if is_date:
            self.dates.add(name)
        return True

    def capped(self, limit):
        """The first `limit` keys; Intercom ignores the ones after them."""
        kept = {}
        for name, value in self.values.items():
            if len(kept) < limit:
                kept[name] = value
            else:
                self.notes.add(self.paths[name], f"dropped: Intercom keeps only the first {limit} metadata keys")
        return kept
