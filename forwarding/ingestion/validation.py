"""Messages: validate and normalise each one into a call to store, or a rejection with its reason.

Expected failures are values (`Rejected`), not exceptions: one bad message in a batch must not
stop the others. Only an invalid envelope raises IngestionError.
"""

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings

from forwarding.ingestion import timestamps
from forwarding.ingestion.errors import invalid_request, too_many_messages
from forwarding.models import CallType

MESSAGE_ID_MAX = 100
EXCERPT_CHARS = 2000
# Levels of objects and arrays in one message (the message itself is one). Deeper JSON parses, but
# every later recursion over it (encoding, storing, loading in a worker, flattening for Intercom)
# would have to stay under Python's recursion limit; nothing real nests this deep.
MAX_DEPTH = 64
# A JSON \u0000 escape (not an escaped backslash followed by "u0000"): PostgreSQL cannot store it.
NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


@dataclass
class Accepted:
    """A valid, normalised message: the values of its Call row (full length) and its payload."""

    message_id: str
    type: str
    user_id: str
    anonymous_id: str
    event: str
    group_id: str
    email: str
    timestamp: object
    original_timestamp: object
    sent_at: object
    received_at: object
    payload: dict


@dataclass
class Rejected:
    """A message refused, with a stable code, a readable reason and an excerpt of what was sent."""

    code: str
    reason: str
    message_id: str = ""
    excerpt: str = ""


@dataclass
class Envelope:
    """What a message inherits from its request: arrival time, client IP, batch-level fields."""

    received_at: object
    ip: str = ""
    context: dict = field(default_factory=dict)
    integrations: dict = field(default_factory=dict)
    sent_at: object = None


class Invalid(Exception):
    """Internal: stops checking one message; turned into a Rejected by `normalise`."""

    def __init__(self, code, reason):
        super().__init__(reason)
        self.code = code
        self.reason = reason


def batch_messages(body, *, received_at, ip):
    """(accepted, rejected) for the body of a batch request; IngestionError for a bad envelope.

    A batch of more than RELAY_MAX_BATCH_MESSAGES messages is refused whole, before any message is
    looked at: its sender learns it from the 400, and a flood of tiny messages costs nothing more.
    """
    items = body.get("batch")
    if not isinstance(items, list):
        raise invalid_request("A batch request needs `batch`, a list of messages.")
    limit = settings.RELAY_MAX_BATCH_MESSAGES
    if len(items) > limit:
        raise too_many_messages(
            f"The batch holds {len(items)} messages, over the limit of {limit}; nothing was stored. "
            "Send them in smaller batches."
        )
    for name in ("context", "integrations"):
        # Merged one level down into each message, whose depth is checked as a whole.
        if nested_deeper_than(body.get(name), MAX_DEPTH - 1):
            raise invalid_request(f"The batch's {name} nests objects and arrays more than {MAX_DEPTH - 1} levels deep.")
    envelope = Envelope(
        received_at=received_at,
        ip=ip,
        context=_envelope_object(body, "context"),
        integrations=_envelope_object(body, "integrations"),
        sent_at=body.get("sentAt"),
    )
    accepted, rejected = [], []
    for item in items:
        result = normalise(item, envelope)
        (rejected if isinstance(result, Rejected) else accepted).append(result)
    return accepted, rejected


def single_message(body, route_type, *, received_at, ip):
    """Accepted or Rejected for the body of a single-call route (`/v1/track` and the rest)."""
    return normalise(body, Envelope(received_at=received_at, ip=ip), route_type=route_type)


def normalise(raw, envelope, route_type=None):
    """Accepted or Rejected for one raw message."""
    try:
        return _normalise(raw, envelope, route_type)
    except Invalid as exc:
        return _rejection(raw, exc.code, exc.reason)


def _normalise(raw, envelope, route_type):
    if not isinstance(raw, dict):
        raise Invalid("invalid_message", f"A message must be a JSON object, not {type(raw).__name__}.")
    if nested_deeper_than(raw, MAX_DEPTH):
        raise Invalid("message_too_deep", f"The message nests objects and arrays more than {MAX_DEPTH} levels deep.")
    # The write key is a secret: it is never stored, not even inside the payload.
    message = {key: value for key, value in raw.items() if key != "writeKey"}
    _check_size(message)

    message["messageId"] = _message_id(message.get("messageId"))
    message["type"] = message_type = _type(message.get("type"), route_type)
    user_id = _id(message, "userId")
    anonymous_id = _id(message, "anonymousId")
    if not user_id and not anonymous_id:
        raise Invalid("no_user_anon_id", "A message needs a userId or an anonymousId.")
    _check_type_fields(message, message_type, user_id)

    message["context"] = context = {**envelope.context, **_object(message, "context")}
    integrations = {**envelope.integrations, **_object(message, "integrations")}
    if integrations:
        message["integrations"] = integrations
    if not context.get("ip") and envelope.ip:
        context["ip"] = envelope.ip
    _lift_identify_traits(message, message_type, context)

    times = _times(message, envelope)
    _check_storable(message)
    return Accepted(
        message_id=message["messageId"],
        type=message_type,
        user_id=user_id,
        anonymous_id=anonymous_id,
        event=_event(message, message_type),
        group_id=_text(message.get("groupId")) if message_type == CallType.GROUP else "",
        email=_email(message, message_type),
        payload=message,
        **times,
    )


def nested_deeper_than(value, limit):
    """True when objects and arrays in `value` nest more than `limit` levels deep (without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _lift_identify_traits(message, message_type, context):
    # RudderStack's SDKs send an identify's traits in context.traits only; downstream reads `traits`.
    if message_type == CallType.IDENTIFY and not message.get("traits") and isinstance(context.get("traits"), dict):
        message["traits"] = dict(context["traits"])


def _check_size(message):
    # Measured on the message as the client sent it (its own libraries cap the same figure),
    # before batch-level context and server-side fields are added.
    limit = settings.RELAY_MAX_MESSAGE_BYTES
    try:
        size = len(json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    except UnicodeEncodeError:
        raise Invalid("invalid_message", "The message holds text that is not valid Unicode.") from None
    if size > limit:
        raise Invalid("message_too_large", f"The message is {size} bytes, over the limit of {limit}.")


def _check_storable(message):
    text = json.dumps(message, ensure_ascii=False)
    if NUL_ESCAPE.search(text):
        raise Invalid("invalid_message", "The message holds a NUL character (\\u0000), which cannot be stored.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid("invalid_message", "The message holds text that is not valid Unicode.") from None


def _message_id(value):
    if value is None or value == "":
        return str(uuid.uuid4())
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Invalid("invalid_message_id", "messageId must be a string.")
    value = str(value)
    if len(value) > MESSAGE_ID_MAX:
        # Not cut: a cut id could collide with another message's, and dedup would drop it.
        raise Invalid("invalid_message_id", f"messageId is {len(value)} characters, over {MESSAGE_ID_MAX}.")
    return value


def _type(value, route_type):
    if value is None or value == "":
        value = route_type
    if value not in CallType.values:
        raise Invalid("invalid_type", f"type must be one of {', '.join(CallType.values)}, not {value!r}.")
    if route_type and value != route_type:
        raise Invalid("invalid_type", f"A {value} message was sent to the {route_type} route.")
    return value


def _id(message, name):
    """The id as a string ("" when absent or null), written back normalised into the message."""
    value = message.get(name)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise Invalid("invalid_field", f"{name} must be a string or a number.")
    # Numbers are accepted as Segment does, and stored as strings.
    text = value if isinstance(value, str) else _number_text(value)
    message[name] = text
    return text if text.strip() else ""


def _number_text(value):
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _check_type_fields(message, message_type, user_id):
    if message_type == CallType.TRACK and not _text(message.get("event")):
        raise Invalid("missing_event", "A track message needs an event name (`event`, a non-empty string).")
    if message_type == CallType.GROUP and not _id(message, "groupId"):
        raise Invalid("missing_group_id", "A group message needs a groupId.")
    if message_type == CallType.ALIAS and not (_id(message, "previousId") and user_id):
        raise Invalid("missing_alias_ids", "An alias message needs both previousId and userId.")


def _object(message, name):
    value = message.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid("invalid_field", f"{name} must be an object.")
    return value


def _envelope_object(body, name):
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid_request(f"The batch's {name} must be an object.")
    return value


def _times(message, envelope):
    received_at = envelope.received_at
    skew_threshold = timedelta(seconds=settings.RELAY_CLOCK_SKEW_THRESHOLD)
    try:
        original = timestamps.parse(_given(message.get("originalTimestamp"), message.get("timestamp")))
        sent_at = timestamps.parse(_given(message.get("sentAt"), envelope.sent_at))
        if timestamps.replayed(message):
            # Corrected once already, by the server that first took it (docs/delivery.md, "Timestamps").
            timestamp = timestamps.parse(message["timestamp"])
        else:
            timestamp = timestamps.corrected(received_at, original, sent_at, skew_threshold)
    except ValueError as exc:
        raise Invalid("invalid_timestamp", f"A timestamp is not valid: {exc}.") from None
    message["timestamp"] = timestamps.to_iso(timestamp)
    message["receivedAt"] = timestamps.to_iso(received_at)
    for key, value in (("originalTimestamp", original), ("sentAt", sent_at)):
        if value is None:
            message.pop(key, None)
        else:
            message[key] = timestamps.to_iso(value)
    return {"timestamp": timestamp, "original_timestamp": original, "sent_at": sent_at, "received_at": received_at}


def _given(*values):
    """The first value that is neither absent nor "": 0, false or {} are values (and not dates)."""
    return next((value for value in values if value is not None and value != ""), None)


def _text(value):
    """A non-blank string value, else ""."""
    return value if isinstance(value, str) and value.strip() else ""


def _event(message, message_type):
    if message_type == CallType.TRACK:
        return message["event"]
    if message_type in (CallType.PAGE, CallType.SCREEN):
        properties = message.get("properties")
        fallback = properties.get("name") if isinstance(properties, dict) else None
        return _text(message.get("name")) or _text(fallback)
    return ""


def _email(message, message_type):
    traits = message.get("traits") if message_type == CallType.IDENTIFY else None
    context_traits = message["context"].get("traits")
    for source in (traits, context_traits):
        if isinstance(source, dict) and _text(source.get("email")):
            return source["email"]
    return ""


def _rejection(raw, code, reason):
    message_id = raw.get("messageId") if isinstance(raw, dict) else None
    return Rejected(
        code=code,
        reason=reason,
        message_id=str(message_id)[:MESSAGE_ID_MAX] if isinstance(message_id, str | int) else "",
        excerpt=excerpt(raw),
    )


def excerpt(raw):
    """The start of a message as JSON, without its write key, for the rejected-messages list."""
    if isinstance(raw, dict):
        raw = {key: value for key, value in raw.items() if key != "writeKey"}
    try:
        text = json.dumps(raw, sort_keys=False)
    except RecursionError:
        # JSON that parsed near the recursion limit may not encode again from deeper in the stack.
        return "(not shown: nested too deeply)"
    return text[:EXCERPT_CHARS]
