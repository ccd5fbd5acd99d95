"""What the operator API answers: the stored rows as JSON (these classes also describe them in the
OpenAPI schema). The request bodies are with their views."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from dashboard.models import BulkResend
from dashboard.views.attributes import status_of
from forwarding.models import Attempt, Call, DataAttribute, Delivery, EventName, Exchange, Forgotten
from forwarding.transformations.rules import CALL_TYPES


class CallOut(serializers.ModelSerializer):
    """A call as received (its payload only in the call's own answer)."""

    source_name = serializers.CharField(source="source.name", help_text="The source (write key) it came from.")
    payload_removed = serializers.SerializerMethodField(help_text="Its payload is gone (retention, expunge).")

    class Meta:
        model = Call
        fields = [
            "id",
            "source_id",
            "source_name",
            "message_id",
            "type",
            "user_id",
            "anonymous_id",
            "event",
            "group_id",
            "timestamp",
            "received_at",
            "payload_removed",
            "payload_removed_at",
        ]

    def get_payload_removed(self, call) -> bool:
        return call.payload_removed_at is not None or call.payload is None


class DeliveryOut(serializers.ModelSerializer):
    """The state of forwarding one call (its id is the call's)."""

    call_id = serializers.IntegerField(source="pk")

    class Meta:
        model = Delivery
        fields = [
            "call_id",
            "state",
            "user_id",
            "anonymous_id",
            "event_key",
            "trigger",
            "attempt_count",
            "retry_count",
            "last_status",
            "last_error",
            "error_cause",
            "warned",
            "warnings",
            "next_attempt_at",
            "created_at",
            "updated_at",
            "delivered_at",
        ]


class CallRowOut(CallOut):
    """A call of the log, with its delivery (null for a call that has none)."""

    delivery = DeliveryOut(allow_null=True)

    class Meta(CallOut.Meta):
        fields = [*CallOut.Meta.fields, "delivery"]


class DeliveryRowOut(DeliveryOut):
    """A delivery of the log, with its call."""

    call = CallOut()

    class Meta(DeliveryOut.Meta):
        fields = [*DeliveryOut.Meta.fields, "call"]


class ExchangeOut(serializers.ModelSerializer):
    """One HTTP request to Intercom (bodies cut, never the token)."""

    class Meta:
        model = Exchange
        fields = [
            "id",
            "method",
            "path",
            "status",
            "duration_ms",
            "request_headers",
            "request_body",
            "response_headers",
            "response_body",
            "error",
        ]


class AttemptOut(serializers.ModelSerializer):
    exchanges = ExchangeOut(many=True)

    class Meta:
        model = Attempt
        fields = ["id", "trigger", "started_at", "duration_ms", "outcome", "status", "error", "warnings", "rules"]
        fields += ["exchanges"]


class CallDetailOut(CallOut):
    """One call: its payload, its delivery, and its latest attempts, newest first."""

    payload = serializers.JSONField(allow_null=True)
    delivery = DeliveryOut(allow_null=True, source="shown_delivery")
    attempts = AttemptOut(many=True, source="shown_attempts", help_text="The latest attempts, newest first.")
    attempts_not_shown = serializers.IntegerField(help_text="Older attempts left out.")

    class Meta(CallOut.Meta):
        fields = [*CallOut.Meta.fields, "payload", "delivery", "attempts", "attempts_not_shown"]


class EventNameOut(serializers.ModelSerializer):
    """An event name of the registry (Intercom compares names ignoring case: `key`)."""

    has_slot = serializers.SerializerMethodField(help_text="It holds one of the cap's slots.")
    renamed_to = serializers.SerializerMethodField(help_text="The name its calls are forwarded as, if renamed.")

    class Meta:
        model = EventName
        fields = [
            "id",
            "name",
            "key",
            "status",
            "has_slot",
            "renamed_to",
            "first_seen_at",
            "last_seen_at",
            "total_count",
            "delivered_count",
            "held_count",
            "suppressed_count",
            "intercom_refused_at",
            "archived_at",
        ]

    def get_has_slot(self, entry) -> bool:
        return entry.slot_used_at is not None

    def get_renamed_to(self, entry) -> str | None:
        found = self.context.get("renames", {}).get(entry.key)
        return found.to if found else None


ATTRIBUTE_STATUSES = ["active", "pending", "aliased", "refused", "ignored"]


class AttributeOut(serializers.ModelSerializer):
    """A custom data attribute the relay writes (or cannot) in the shown workspace."""

    status = serializers.SerializerMethodField()
    written_as = serializers.CharField(help_text="The attribute name sent to Intercom.")

    class Meta:
        model = DataAttribute
        fields = [
            "id",
            "workspace",
            "model",
            "name",
            "alias",
            "written_as",
            "data_type",
            "status",
            "usable",
            "refusal",
            "reason",
            "ignored",
            "first_written_at",
            "last_written_at",
            "calls_written",
            "calls_dropped",
            "updated_at",
        ]

    @extend_schema_field(serializers.ChoiceField(choices=ATTRIBUTE_STATUSES))
    def get_status(self, row):
        return status_of(row)[0]


class RuleOut(serializers.Serializer):
    """A transformation rule, as `manage.py transformations export` writes it, with its place."""

    id = serializers.IntegerField()
    revision = serializers.IntegerField()
    position = serializers.IntegerField(help_text="Its place in the order the rules run (stored, not renumbered).")
    name = serializers.CharField(allow_blank=True)
    enabled = serializers.BooleanField()
    source = serializers.CharField(allow_null=True, help_text="A source id as text, or null: every source.")
    call_type = serializers.ChoiceField(choices=CALL_TYPES)
    event = serializers.CharField(allow_null=True)
    condition = serializers.JSONField(allow_null=True)
    operations = serializers.JSONField()
    updated_at = serializers.DateTimeField()
    updated_by = serializers.CharField(allow_blank=True)


def rule_out(rule):
    extra = {"position": rule.position, "updated_at": rule.updated_at, "updated_by": rule.updated_by}
    return RuleOut({**rule.spec(), **extra}).data


class JobOut(serializers.ModelSerializer):
    """A bulk resend and its progress."""

    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    cancelled_by = serializers.CharField(source="cancelled_by.username", allow_null=True, default=None)
    percent = serializers.IntegerField()

    class Meta:
        model = BulkResend
        fields = [
            "id",
            "status",
            "description",
            "filters",
            "total",
            "processed",
            "reopened",
            "skipped",
            "percent",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
            "cancelled_by",
            "error",
        ]


class TombstoneOut(serializers.ModelSerializer):
    """A forgotten user's tombstone: a hash of the userId, never the userId itself."""

    class Meta:
        model = Forgotten
        fields = [
            "id",
            "user_hash",
            "requested_by",
            "requested_at",
            "suppress",
            "calls_expunged",
            "anonymous_ids",
            "intercom",
            "intercom_attempts",
            "intercom_error",
            "next_attempt_at",
            "intercom_done_at",
        ]
