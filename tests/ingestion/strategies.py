"""Hypothesis strategies for JSON that tries hard to break ingestion and mapping.

Text includes lone surrogates (sent as `\\ud800` escapes), NUL and every character Intercom forbids
in key names; numbers include integers past 64 bits (up to 4000 digits; longer ones are in the
raw-text tests, since `json` cannot write them) and NaN and Infinity, which `json.dumps` writes as
bare literals. What spoils a whole message or body is drawn rarely, so that most messages are
accepted and their storage and mapping get tested too.
"""

import datetime as dt

from hypothesis import strategies as st

from forwarding.mapping import FORBIDDEN_KEY_CHARACTERS
from forwarding.models import CallType

FORBIDDEN = "".join(sorted(FORBIDDEN_KEY_CHARACTERS))
UTC = dt.UTC


def rarely(bad, good, one_in=30):
    """`bad` once in `one_in` draws, else `good`."""
    return st.sampled_from([good] * (one_in - 1) + [bad]).flatmap(lambda strategy: strategy)


def mostly(good, bad):
    """`good` nine times in ten, else `bad`."""
    return rarely(bad, good, one_in=10)


# Every code point, surrogates included (Hypothesis leaves them out by default).
any_character = st.characters(exclude_categories=())
lone_surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, exclude_categories=())
# What a database can hold: ids and names the engine reads back from its own rows.
storable_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\0"), min_size=1, max_size=40)
texts = rarely(
    # Lone surrogates and NUL, which no database stores.
    st.builds(
        "{}{}{}".format, st.text(max_size=3), lone_surrogates | st.just("\0"), st.text(any_character, max_size=3)
    ),
    st.one_of(
        st.text(max_size=12),
        st.text(st.sampled_from(FORBIDDEN.replace("\0", "") + "a_ -é"), max_size=8),
        st.sampled_from(["", " ", "x" * 300, "true", "42", "1.5", "USD", "eur", "https://example.com/a?b=c"]),
        # Numbers as text, some of them very hard to convert.
        st.sampled_from(["1e999999999", "-1e999999", "1e-999999", "9" * 5000, "NaN", "-Infinity", "sNaN", "1_000"]),
    ),
    # A message holds dozens of texts and numbers: one spoiled value spoils it whole.
    one_in=200,
)
keys = texts | st.sampled_from(
    [
        "",
        "email",
        "name",
        "firstName",
        "lastName",
        "phone",
        "avatar",
        "createdAt",
        "company",
        "companies",
        "revenue",
        "currency",
        "price",
        "url",
        "path",
        "title",
        "id",
        "plan",
        "size",
        "monthly_spend",
        "due_date",
        "unsubscribedFromEmails",
        "Email",
        "a.b",
        "$name",
    ]
)
finite_numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, -0.0, 2**63 - 1, 2**63, -(2**63) - 1, 10**30, 1e300, 5e-324, 10**4000]),
)
numbers = rarely(st.sampled_from([float("nan"), float("inf"), float("-inf")]), finite_numbers, one_in=100)
offsets = st.builds(
    dt.timezone,
    st.timedeltas(min_value=dt.timedelta(hours=-23, minutes=-59), max_value=dt.timedelta(hours=23, minutes=59)),
)
good_times = st.datetimes(timezones=st.just(UTC) | offsets).map(dt.datetime.isoformat)
odd_times = st.one_of(
    st.datetimes(
        min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31, 23, 59, 59), timezones=offsets
    ).map(dt.datetime.isoformat),
    st.sampled_from(
        [
            "0001-01-01T00:00:00+01:00",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59-14:00",
            "9999-12-31T23:59:59.999999Z",
            "2024-02-30T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:00+24:00",
            "2024-01-01T00:00:00.123456789Z",
            "2024-01-01",
            "2024-01-01T00:00",
            "20240101T000000Z",
            " 2024-01-01T00:00:00Z ",
            "1704164645",
            "-0001-01-01T00:00:00Z",
            "2024-W01-1",
            "yesterday",
        ]
    ),
    numbers,
    texts,
    st.none(),
    st.booleans(),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts, odd_times)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=25,
)
objects = st.dictionaries(keys, values, max_size=8)
ids = mostly(
    st.sampled_from(["user-1", "u", "anon-1", "42"]) | st.text(min_size=1, max_size=12) | st.integers(),
    st.sampled_from([" ", ""]) | texts | numbers | st.none() | values,
)
types = mostly(st.sampled_from(CallType.values), st.sampled_from(["", "purchase", None, 1]))

# Messages with the right fields, each field sometimes wrong, plus a few arbitrary ones.
messages = st.fixed_dictionaries(
    {"type": types, "userId": ids},
    optional={
        "anonymousId": ids,
        "event": mostly(st.sampled_from(["Order Completed", "Signed Up"]) | st.text(min_size=1), texts | values),
        "groupId": ids,
        "previousId": ids,
        "messageId": mostly(st.text(max_size=12), numbers | values),
        "timestamp": mostly(good_times, odd_times),
        "originalTimestamp": mostly(good_times, odd_times),
        "sentAt": mostly(good_times, odd_times),
        "traits": mostly(objects, values),
        "properties": mostly(objects, values),
        "context": mostly(objects | st.fixed_dictionaries({}, optional={"traits": objects, "active": values}), values),
        "integrations": mostly(objects, values),
        "name": texts,
        "category": texts,
        "writeKey": texts,
    },
).flatmap(lambda message: st.dictionaries(keys, values, max_size=3).map(lambda extra: {**extra, **message}))
envelopes = st.fixed_dictionaries(
    {},
    optional={
        "context": mostly(objects, values),
        "integrations": mostly(objects, values),
        "sentAt": mostly(good_times, odd_times),
    },
)
