"""The relay's status at a glance (the overview's cheap queries), and forgetting a user (a privacy
request, as the user-history page does it)."""

from django.utils import timezone
from rest_framework import serializers, status
from rest_framework.response import Response

from dashboard.api.base import ApiView, StrictBoolean, Text, describe, invalid, log_action
from dashboard.api.serializers import TombstoneOut
from dashboard.queries import overview
from dashboard.queries.attributes import attribute_usage
from dashboard.views import users
from dashboard.views.overview import _connection
from forwarding import event_names, intercom
from forwarding.delivery import connection, workspace

CONNECTION_STATES = ["ok", "warn", "bad", "unknown"]


class BacklogOut(serializers.Serializer):
    pending_or_in_flight = serializers.IntegerField(help_text="Deliveries pending or being sent.")
    due = serializers.IntegerField(help_text="Pending deliveries due now.")
    oldest_due_at = serializers.DateTimeField(allow_null=True, help_text="When the longest-due one fell due.")
    oldest_due_seconds = serializers.FloatField(allow_null=True, help_text="How long it has been due.")


class IntercomOut(serializers.Serializer):
    state = serializers.ChoiceField(choices=CONNECTION_STATES, help_text="ok: the last request succeeded.")
    headline = serializers.CharField()
    base_url = serializers.CharField()
    workspace_id = serializers.CharField(allow_blank=True)
    workspace_name = serializers.CharField(allow_blank=True)
    last_success_at = serializers.DateTimeField(allow_null=True)
    auth_failed_at = serializers.DateTimeField(allow_null=True)
    unreachable_since = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField(allow_blank=True, help_text="The token's refusal, or the last failure.")


class UsageOut(serializers.Serializer):
    used = serializers.IntegerField()
    limit = serializers.IntegerField()
    percent = serializers.IntegerField()


class WorkersOut(serializers.Serializer):
    stalled = serializers.BooleanField(help_text="Deliveries are overdue and no worker finished a task lately.")
    last_task_at = serializers.DateTimeField(allow_null=True, help_text="When a stalled worker last finished one.")


class StatusOut(serializers.Serializer):
    now = serializers.DateTimeField()
    backlog = BacklogOut()
    intercom = IntercomOut()
    event_names = UsageOut(help_text="Event names holding a slot against INTERCOM_EVENT_NAME_LIMIT.")
    attributes = UsageOut(help_text="Custom data attributes of the shown workspace against its limit.")
    workers = WorkersOut()
    last_24_hours = serializers.DictField(
        child=serializers.IntegerField(), help_text="Deliveries of the calls received in the last 24 hours, by group."
    )


class Status(ApiView):
    @describe(summary="Backlog, Intercom connection, usage of Intercom's limits, workers", responses=StatusOut)
    def get(self, request):
        now = timezone.now()
        backlog = overview.backlog(now)
        age = backlog.oldest_due_age(now)
        found = connection.current()
        state, headline = _connection(found)
        names = event_names.usage()
        attributes = attribute_usage(workspace.shown())
        stall = overview.stalled_workers(now)
        return Response(
            StatusOut(
                {
                    "now": now,
                    "backlog": {
                        "pending_or_in_flight": backlog.size,
                        "due": backlog.due,
                        "oldest_due_at": backlog.oldest_due["next_attempt_at"] if backlog.oldest_due else None,
                        "oldest_due_seconds": None if age is None else max(0.0, age.total_seconds()),
                    },
                    "intercom": {
                        "state": state,
                        "headline": headline,
                        "base_url": intercom.base_url(),
                        "workspace_id": found.workspace_id if found else "",
                        "workspace_name": found.workspace_name if found else "",
                        "last_success_at": found.last_success_at if found else None,
                        "auth_failed_at": found.auth_failed_at if found else None,
                        "unreachable_since": found.unreachable_since if found else None,
                        "error": (found.auth_error or found.failure_error) if found else "",
                    },
                    "event_names": {"used": names.used, "limit": names.limit, "percent": names.percent},
                    "attributes": {"used": attributes.used, "limit": attributes.limit, "percent": attributes.percent},
                    "workers": {"stalled": stall is not None, "last_task_at": stall.since if stall else None},
                    "last_24_hours": overview.activity(now, "hour").totals,
                }
            ).data
        )


class ForgetIn(serializers.Serializer):
    user_id = Text(max_length=255, help_text="The userId to forget.")
    suppress = StrictBoolean(default=False, help_text="Also suppress their later calls (stored without payload).")


class TombstoneAnswer(TombstoneOut):
    message = serializers.SerializerMethodField()

    class Meta(TombstoneOut.Meta):
        fields = [*TombstoneOut.Meta.fields, "message"]

    def get_message(self, tombstone) -> str:
        return tombstone.done


class ForgetUser(ApiView):
    @describe(
        summary="Forget a user (a privacy request)",
        description=(
            "Their stored data is expunged at once (their calls and the anonymous calls attributed to them), their "
            "Intercom contact deleted (tried now, then by the sweeper until done), a tombstone kept with a hash of "
            "the userId; with suppress, their later calls are stored without payload and never sent."
        ),
        request=ForgetIn,
        responses={201: TombstoneAnswer},
    )
    def post(self, request):
        given = self.read(ForgetIn)
        user_id = given["user_id"].strip()
        if not user_id:
            raise invalid("user_id: cannot be blank")
        forgotten = users.forget(user_id, request.user, suppress=given["suppress"])
        log_action(request, forgotten.tombstone, forgotten.logged)
        forgotten.tombstone.done = forgotten.outcome
        return Response(TombstoneAnswer(forgotten.tombstone).data, status=status.HTTP_201_CREATED)
