"""Dashboard fixtures: users in each role, and calls with their deliveries, attempts and exchanges
built in code."""

from datetime import timedelta
from itertools import count

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test import Client
from django.utils import timezone

from dashboard import roles
from forwarding.event_names import key_of
from forwarding.models import Attempt, Call, CallType, Delivery, Exchange, Source

PASSWORD = "a-dashboard-test-password"


def ensure_roles():
    """The Viewers and Operators groups, made by dashboard.roles (a no-op: `migrate`, and each
    transactional test's flush, leave them in place; the roles' own tests run it again)."""
    roles.create_roles(apps)


def make_user(username, group=None, **flags):
    user = User.objects.create_user(username, f"{username}@example.com", PASSWORD, is_staff=True, **flags)
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


def client_for(user, csrf=False):
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


@pytest.fixture
def viewer(db):
    return make_user("vera-viewer", "Viewers")


@pytest.fixture
def operator(db):
    return make_user("otto-operator", "Operators")


@pytest.fixture
def superuser(db):
    return make_user("sue-super", is_superuser=True)


@pytest.fixture
def viewer_client(viewer):
    return client_for(viewer)


@pytest.fixture
def operator_client(operator):
    return client_for(operator)


@pytest.fixture
def admin_client(superuser):
    return client_for(superuser)


class Calls:
    """Stores calls as ingestion and the engine leave them: the call, its delivery, and (on
    request) attempts with their HTTP exchanges."""

    def __init__(self, source):
        self.source = source
        self.numbers = count(1)
        self.clock = timezone.now() - timedelta(hours=1)

    def __call__(
        self,
        type=CallType.TRACK,
        user_id="ada",
        event="Signed Up",
        state="delivered",
        received_at=None,
        anonymous_id="",
        email="",
        group_id="",
        source=None,
        payload=None,
        **delivery,
    ):
        n = next(self.numbers)
        if received_at is None:
            self.clock += timedelta(seconds=1)
            received_at = self.clock
        message_id = delivery.pop("message_id", f"msg-{n}")
        if payload is None:
            payload = {"type": type, "messageId": message_id, "timestamp": received_at.isoformat()}
            if user_id:
                payload["userId"] = user_id
            if anonymous_id:
                payload["anonymousId"] = anonymous_id
            if type == CallType.TRACK:
                payload["event"] = event
                payload["properties"] = {"plan": "pro"}
            if type == CallType.PAGE:
                payload["name"] = event
                payload["properties"] = {"url": "https://example.com/docs", "path": "/docs"}
            if type == CallType.IDENTIFY:
                payload["traits"] = {"email": email} if email else {}
            if type == CallType.GROUP:
                payload["groupId"] = group_id
                payload["traits"] = {"name": f"Company {group_id}"}
        named = type in (CallType.TRACK, CallType.PAGE, CallType.SCREEN)
        call = Call.objects.create(
            source=source or self.source,
            message_id=message_id,
            type=type,
            user_id=user_id,
            anonymous_id=anonymous_id,
            event=event if named else "",
            group_id=group_id,
            email=email,
            timestamp=received_at,
            received_at=received_at,
            payload=payload,
        )
        event_key = ""
        if type == CallType.TRACK:
            event_key = key_of(event)
        elif type == CallType.PAGE:
            event_key = "viewed-page"
        fields = {"event_key": event_key, **delivery}
        call.delivery = Delivery.objects.create(
            call=call,
            user_id=fields.pop("delivery_user_id", user_id),
            anonymous_id=anonymous_id,
            state=state,
            created_at=received_at,
            next_attempt_at=fields.pop("next_attempt_at", received_at),
            **fields,
        )
        return call

    def attempt(self, call, outcome="delivered", status=202, exchanges=(), trigger="auto", started_at=None, **fields):
        """An attempt of `call`'s delivery; exchanges are (method, path, status, request, response)."""
        attempt = Attempt.objects.create(
            delivery=call.delivery,
            outcome=outcome,
            status=status,
            trigger=trigger,
            started_at=started_at or timezone.now(),
            duration_ms=120,
            **fields,
        )
        for method, path, answer, request_body, response_body in exchanges:
            Exchange.objects.create(
                attempt=attempt,
                method=method,
                path=path,
                status=answer,
                duration_ms=40,
                request_headers={"Intercom-Version": "2.16", "Content-Type": "application/json"},
                request_body=request_body,
                response_headers={"Content-Type": "application/json"},
                response_body=response_body,
            )
        return attempt


@pytest.fixture
def calls(db):
    return Calls(Source.create_with_key("Website")[0])


def plan_of(sql):
    """The database's plan for one captured statement, as text (which indexes it reads)."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
            return " ".join(str(row[-1]) for row in cursor.fetchall())
        cursor.execute("SET LOCAL enable_seqscan = off")  # a few test rows: scanning would be cheaper
        # Statistics of the test's rows, not of whatever an earlier test left: without them every
        # index of a near-empty table costs the same, and the planner's pick is a coin toss.
        cursor.execute("ANALYZE forwarding_call, forwarding_delivery")
        cursor.execute(f"EXPLAIN {sql}")
        return " ".join(row[0] for row in cursor.fetchall())


def filtering_on_warned(captured):
    """The captured statements whose WHERE tests Delivery.warned."""
    return [q["sql"] for q in captured if "WHERE" in q["sql"] and '"warned"' in q["sql"].split("WHERE", 1)[1]]
