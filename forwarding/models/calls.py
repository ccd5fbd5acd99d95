"""What arrives (sources, calls, rejected messages) and what is done with it (deliveries,
attempts, HTTP exchanges), plus the caches of Intercom's ids and data attributes."""

import hashlib
import hmac
import json
import secrets

from django.db import connection, models
from django.utils import timezone
from psycopg.types.json import Json

KEY_PREFIX_LENGTH = 8


def hash_key(key):
    """The stored form of a write key: SHA-256 hex (keys are random, 32+ bytes)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class Source(models.Model):
    """A named write key. Only the hash and a short prefix are stored."""

    name = models.CharField(max_length=100)
    key_prefix = models.CharField(max_length=KEY_PREFIX_LENGTH)
    key_hash = models.CharField(max_length=64, unique=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return f"{self.name} ({self.key_prefix}…)"

    @staticmethod
    def new_key():
        return "wk_" + secrets.token_urlsafe(32)

    @classmethod
    def create_with_key(cls, name, key=None):
        """Create a source; returns (source, key). The key is shown once, never stored."""
        key = key or cls.new_key()
        source = cls.objects.create(name=name, key_prefix=key[:KEY_PREFIX_LENGTH], key_hash=hash_key(key))
        return source, key

    @classmethod
    def authenticate(cls, key):
        """The active source owning `key`, or None."""
        if not key:
            return None
        digest = hash_key(key)
        # Every ingestion request asks this: a plain cursor and `from_db` skip the ORM's compiling
        # and a raw queryset's column mapping (two thirds of the lookup's CPU, bench/single_call.py).
        with connection.cursor() as cursor:
            cursor.execute(_AUTHENTICATE_SQL.get(connection.vendor) or _authenticate_sql(connection), [digest])
            row = cursor.fetchone()
        # Text and integer columns only, which need no converting; `created_at` is loaded if asked.
        source = None if row is None else cls.from_db(connection.alias, [*_SOURCE_COLUMNS, "is_active"], (*row, True))
        # The lookup is by hash; compare again in constant time before trusting it.
        if source is None or not hmac.compare_digest(source.key_hash, digest):
            return None
        return source


_SOURCE_COLUMNS = ["id", "name", "key_prefix", "key_hash"]
_AUTHENTICATE_SQL = {}  # {vendor: sql}


def _authenticate_sql(connection):
    quote = connection.ops.quote_name
    columns = ", ".join(quote(column) for column in _SOURCE_COLUMNS)
    sql = f"SELECT {columns} FROM {quote(Source._meta.db_table)} WHERE key_hash = %s AND is_active"  # noqa: S608
    _AUTHENTICATE_SQL[connection.vendor] = sql
    return sql


class CompactJSONEncoder(json.JSONEncoder):
    """JSON without the spaces after `,` and `:`: SQLite stores a payload as text, and the spaces of
    the default separators were 6% of it (bench/storage.py)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **{**kwargs, "separators": (",", ":")})


class PayloadField(models.JSONField):
    """A call's payload as the JSON text it was written in: PostgreSQL's `json`, not `jsonb`. The
    relay never queries inside a payload, and jsonb's binary form was a quarter larger than the
    compact text (a call's row then filled its 8 KB pages worse), and reordered the client's keys.
    SQLite keeps text either way."""

    def db_type(self, connection):
        return "json" if connection.vendor == "postgresql" else super().db_type(connection)

    def get_db_prep_value(self, value, connection, prepared=False):
        if connection.vendor != "postgresql":
            return super().get_db_prep_value(value, connection, prepared)
        return Json(value if prepared else self.get_prep_value(value), dumps=compact_dumps)

    def from_db_value(self, value, expression, connection):
        if value is not None and not isinstance(value, str):
            return value  # psycopg decodes `json` itself (jsonb it leaves to Django)
        return super().from_db_value(value, expression, connection)


def compact_dumps(value):
    return json.dumps(value, cls=CompactJSONEncoder)


class CallType(models.TextChoices):
    IDENTIFY = "identify"
    TRACK = "track"
    PAGE = "page"
    SCREEN = "screen"
    GROUP = "group"
    ALIAS = "alias"


class Call(models.Model):
    """One accepted analytics call, stored whole."""

    # No index of its own: call_unique_message leads with it.
    source = models.ForeignKey(Source, on_delete=models.PROTECT, related_name="calls", db_index=False)
    message_id = models.CharField(max_length=100)
    type = models.CharField(max_length=10, choices=CallType.choices)
    user_id = models.CharField(max_length=255, blank=True, default="")
    anonymous_id = models.CharField(max_length=255, blank=True, default="")
    # track: the event; page/screen: the page name.
    event = models.CharField(max_length=255, blank=True, default="")
    group_id = models.CharField(max_length=255, blank=True, default="")
    # traits.email of an identify, kept for search by email.
    email = models.CharField(max_length=255, blank=True, default="")
    timestamp = models.DateTimeField()
    original_timestamp = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    # None once the payload is expunged or past its retention; then the two fields below say why.
    payload = PayloadField(null=True, encoder=CompactJSONEncoder)
    payload_removed_at = models.DateTimeField(null=True, blank=True)
    payload_removed_reason = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        constraints = [
            # Dedup: a client retry with the same messageId is one call.
            models.UniqueConstraint(fields=["source", "message_id"], name="call_unique_message"),
        ]
        indexes = [
            # Delivery log, newest first (keyset pagination on id).
            models.Index(fields=["-received_at", "-id"], name="call_received"),
            # User history by userId, in order received.
            models.Index(fields=["user_id", "received_at"], name="call_user"),
            # User history and attribution by anonymousId.
            models.Index(fields=["anonymous_id", "received_at"], name="call_anonymous"),
            # Log filtered by event name.
            models.Index(fields=["event", "-received_at"], name="call_event"),
            # Search by email.
            models.Index(fields=["email"], name="call_email"),
            # Search by messageId across sources.
            models.Index(fields=["message_id"], name="call_message"),
            # Whether a call's payload is gone (the bulk resend's count asks it of up to 1,001 calls):
            # a probe of this small index instead of a read of the call's row.
            models.Index(fields=["id"], name="call_payload_gone", condition=models.Q(payload__isnull=True)),
        ]

    def __str__(self):
        return f"{self.type} {self.event or ''} {self.user_id or self.anonymous_id}".strip()


class RejectedMessage(models.Model):
    """A message refused by ingestion, with its reason (the rest of its batch may be accepted)."""

    source = models.ForeignKey(Source, on_delete=models.SET_NULL, null=True, blank=True, related_name="rejected")
    received_at = models.DateTimeField(default=timezone.now)
    code = models.CharField(max_length=50)
    reason = models.CharField(max_length=500)
    message_id = models.CharField(max_length=100, blank=True, default="")
    # The offending message, cut to a few KB.
    excerpt = models.TextField(blank=True, default="")

    class Meta:
        indexes = [
            # Rejected-messages list, newest first.
            models.Index(fields=["-received_at"], name="rejected_received"),
        ]

    def __str__(self):
        return f"{self.code}: {self.reason}"
