"""`manage.py seed_calls N`: store N made-up calls with their deliveries, fast, for benchmarks and
scale tests of the dashboard. Nothing is sent: the deliveries are stored in final states only
(delivered, failed, waiting, held, suppressed, skipped), so no worker picks them up. With
`--waiting-anonymous` every call is an anonymous page or track call waiting for an identify that
never comes (most website visitors: bench/anonymous.py).

Rows go in as plain tuples with executemany and ids chosen here (the ORM's bulk_create spends
most of its time building model instances and compiling SQL for SQLite's 999-parameter batches);
run it on a database nothing else writes to."""

import random
import time
import uuid
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.core.management.color import no_style
from django.db import connection, models, transaction
from django.db.models import Max
from django.utils import timezone

from forwarding import tallies
from forwarding.event_names import key_of
from forwarding.models import Call, CallType, Delivery, Source, State

SOURCE_NAME = "Seeded (not real traffic)"
EVENT_NAMES = [f"Seeded Event {n:02d}" for n in range(40)]
PAGE_EVENT_NAME = "viewed-page"
# (type, weight)
TYPES = [
    (CallType.TRACK, 55),
    (CallType.PAGE, 25),
    (CallType.IDENTIFY, 10),
    (CallType.GROUP, 5),
    (CallType.SCREEN, 3),
    (CallType.ALIAS, 2),
]
# Outcomes of forwardable calls: (state, weight, last_status, error_cause, last_error)
OUTCOMES = [
    (State.DELIVERED, 900, 200, "", ""),
    (State.FAILED, 25, 400, "http_400", "400 Bad Request: invalid attribute"),
    (State.FAILED, 10, 503, "http_503", "retries used up: 503 Service Unavailable"),
    (State.FAILED, 5, None, "timeout", "retries used up: timeout after 20 s"),
    (State.FAILED, 5, None, "wait_expired", "no identify for this user within RELAY_WAIT_FOR_IDENTIFY"),
    (State.WAITING, 25, 404, "", "user not found in Intercom: waiting for an identify"),
    (State.HELD, 15, None, "name_held", "event name cap full"),
    (State.SUPPRESSED, 15, None, "name_suppressed", "event name is archived"),
]
# --waiting-anonymous: what a delivery attempt leaves on an anonymous call (forwarding/delivery/attempt.py).
ANONYMOUS_WAIT = (State.WAITING, None, "anonymous", "anonymous call: waiting for an identify with this anonymousId")
VISITOR_CALLS = 3  # calls per anonymous visitor, on average


class Command(BaseCommand):
    help = "Store N made-up calls and deliveries (bulk inserts) for benchmarks and scale tests. Sends nothing."

    def add_arguments(self, parser):
        parser.add_argument("count", type=int)
        parser.add_argument("--users", type=int, default=0, help="distinct users (default: count / 20)")
        parser.add_argument("--days", type=float, default=30, help="spread over this many days up to now")
        parser.add_argument("--batch", type=int, default=10000)
        parser.add_argument("--seed", type=int, default=None, help="random seed, for repeatable data")
        parser.add_argument(
            "--waiting-anonymous",
            action="store_true",
            help="anonymous page and track calls only, all waiting for an identify (users: visitors)",
        )

    def handle(self, *args, count, users, days, batch, seed, waiting_anonymous, **options):
        if count < 1 or batch < 1:
            raise CommandError("count and --batch must be positive")
        rng = random.Random(seed)
        users = users or max(1, count // (VISITOR_CALLS if waiting_anonymous else 20))
        make_call, make_delivery = self.call, self.delivery
        if waiting_anonymous:
            make_call, make_delivery = self.anonymous_call, self.anonymous_delivery
        source, _ = Source.objects.get_or_create(
            name=SOURCE_NAME, defaults={"key_prefix": "seeded", "key_hash": uuid.uuid4().hex, "is_active": False}
        )
        run = uuid.uuid4().hex[:8]
        now = timezone.now()
        start = now - timedelta(days=days)
        step = (now - start) / count
        if connection.vendor == "sqlite":
            with connection.cursor() as cursor:
                # This connection only: 256 MB of page cache keeps the indexes' pages in memory.
                cursor.execute("PRAGMA cache_size = -262144")
        started = time.monotonic()
        next_id = (Call.objects.aggregate(top=Max("id"))["top"] or 0) + 1
        done = 0
        while done < count:
            size = min(batch, count - done)
            calls = [
                make_call(rng, source, run, next_id + done + i, done + i, users, start + step * (done + i))
                for i in range(size)
            ]
            with transaction.atomic():
                insert(Call, calls)
                insert(Delivery, [make_delivery(rng, call) for call in calls])
            done += size
            if done % (batch * 20) == 0:
                tallies.fold()  # as the sweeper does every few seconds
            if options["verbosity"] > 1:
                self.stdout.write(f"{done}/{count}")
        tallies.fold()
        with connection.cursor() as cursor:
            # PostgreSQL: move the id sequence past the ids chosen here (nothing to do on SQLite).
            for sql in connection.ops.sequence_reset_sql(no_style(), [Call]):
                cursor.execute(sql)
            if connection.vendor == "postgresql":
                compact_postgres(cursor)
        rate = count / max(time.monotonic() - started, 0.001)
        self.stdout.write(
            f"Seeded {count} calls for {users} users in {time.monotonic() - started:.1f} s ({rate:.0f}/s)."
        )

    def call(self, rng, source, run, pk, number, users, received_at):
        kind = rng.choices([t for t, _ in TYPES], [w for _, w in TYPES])[0]
        user = rng.randrange(users)
        user_id = f"seed-user-{user}"
        anonymous_id = f"seed-anon-{user}"
        if rng.random() < 0.05:
            user_id = ""  # an anonymous visitor
        message_id = f"seed-{run}-{number}"
        payload = {
            "type": kind,
            "messageId": message_id,
            "anonymousId": anonymous_id,
            "timestamp": received_at.isoformat(),
        }
        if user_id:
            payload["userId"] = user_id
        event = group_id = email = ""
        if kind == CallType.TRACK:
            event = rng.choice(EVENT_NAMES)
            payload.update(event=event, properties={"plan": rng.choice(["free", "team", "business"]), "n": number})
        elif kind in (CallType.PAGE, CallType.SCREEN):
            event = rng.choice(["Home", "Pricing", "Docs", "Dashboard"])
            payload.update(name=event, properties={"path": f"/{event.lower()}"})
        elif kind == CallType.IDENTIFY:
            email = f"{user_id or anonymous_id}@example.com"
            payload["traits"] = {"email": email, "plan": "team"}
        elif kind == CallType.GROUP:
            group_id = f"seed-company-{user % 500}"
            payload.update(groupId=group_id, traits={"name": f"Company {user % 500}"})
        return dict(
            id=pk,
            source_id=source.pk,
            message_id=message_id,
            type=kind,
            user_id=user_id,
            anonymous_id=anonymous_id,
            event=event,
            group_id=group_id,
            email=email,
            timestamp=received_at,
            received_at=received_at,
            payload=payload,
        )

    def anonymous_call(self, rng, source, run, pk, number, users, received_at):
        """A visitor's page or track call: an anonymousId and no userId."""
        kind = CallType.PAGE if rng.random() < 0.7 else CallType.TRACK
        anonymous_id = f"seed-visitor-{rng.randrange(users)}"
        message_id = f"seed-{run}-{number}"
        payload = {"type": kind, "messageId": message_id, "anonymousId": anonymous_id}
        payload["timestamp"] = received_at.isoformat()
        if kind == CallType.TRACK:
            event = rng.choice(EVENT_NAMES)
            payload.update(event=event, properties={"n": number})
        else:
            event = rng.choice(["Home", "Pricing", "Docs", "Blog"])
            payload.update(name=event, properties={"path": f"/{event.lower()}"})
        return dict(
            id=pk,
            source_id=source.pk,
            message_id=message_id,
            type=kind,
            anonymous_id=anonymous_id,
            event=event,
            timestamp=received_at,
            received_at=received_at,
            payload=payload,
        )

    def anonymous_delivery(self, rng, call):
        state, status, cause, error = ANONYMOUS_WAIT
        received_at = call["received_at"]
        return dict(
            call_id=call["id"],
            anonymous_id=call["anonymous_id"],
            event_key=key_of(call["event"]) if call["type"] == CallType.TRACK else PAGE_EVENT_NAME,
            created_at=received_at,
            updated_at=received_at,
            next_attempt_at=received_at,
            attempt_count=1,
            state=state,
            last_status=status,
            error_cause=cause,
            last_error=error,
        )

    def delivery(self, rng, call):
        event_key = ""
        kind, user_id = call["type"], call["user_id"]
        if kind == CallType.TRACK:
            event_key = key_of(call["event"])
        elif kind == CallType.PAGE:
            event_key = PAGE_EVENT_NAME
        fields = {"state": State.SKIPPED, "last_status": None, "error_cause": "skipped", "last_error": ""}
        forwardable = kind in (CallType.TRACK, CallType.PAGE, CallType.GROUP) or (kind == CallType.IDENTIFY and user_id)
        if forwardable:
            state, _, status, cause, error = rng.choices(OUTCOMES, [o[1] for o in OUTCOMES])[0]
            if not event_key and state in (State.HELD, State.SUPPRESSED):
                state, status, cause, error = State.DELIVERED, 200, "", ""
            fields = {"state": state, "last_status": status, "error_cause": cause, "last_error": error}
        elif kind == CallType.IDENTIFY:
            fields["last_error"] = "identify without userId: Intercom leads are not created"
        else:
            fields["last_error"] = f"{kind} calls are not forwarded: Intercom has no equivalent"
        attempts = 0 if fields["state"] in (State.SKIPPED, State.HELD, State.SUPPRESSED) else rng.randint(1, 3)
        received_at = call["received_at"]
        return dict(
            call_id=call["id"],
            user_id=user_id,
            anonymous_id=call["anonymous_id"],
            event_key=event_key,
            created_at=received_at,
            updated_at=received_at,
            next_attempt_at=received_at,
            attempt_count=attempts,
            delivered_at=received_at if fields["state"] == State.DELIVERED else None,
            **fields,
        )


def compact_postgres(cursor):
    """Leave PostgreSQL's tables as weeks of real traffic would, not as a bulk load does.

    Planner statistics and the visibility map (for index-only scans): what autovacuum would do
    after a bulk load, done now rather than while the pages are measured.

    The tally table rewritten: real traffic is folded every few seconds and autovacuum reuses the
    freed space as it goes, so the table stays a few pages. Seeded in minutes, its million rows
    (one per delivery, folded every 200,000) left 48 MB of empty pages behind the few hundred
    sums, which every later fold scanned: a sweep at a million calls took 10.6 ms against 6.4 ms at
    a thousand, and 6.9 ms once rewritten.

    VACUUM cannot run inside a transaction: a test's seeding only analyzes."""
    tables = "forwarding_call, forwarding_delivery, forwarding_deliverytally"
    if connection.in_atomic_block:
        cursor.execute(f"ANALYZE {tables}")
        return
    cursor.execute("VACUUM FULL forwarding_deliverytally")
    cursor.execute(f"VACUUM (ANALYZE) {tables}")


def insert(model, rows):
    """INSERT rows (dicts by field attname; the model's defaults for the rest) with one executemany:
    no model instances, no signals, no returned ids."""
    fields = list(model._meta.concrete_fields)
    defaults = {field.attname: field.get_default() for field in fields if field.attname not in rows[0]}
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})"
    columns = [(field.attname, _converter(field)) for field in fields]
    values = [tuple(convert(row[name] if name in row else defaults[name]) for name, convert in columns) for row in rows]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # COPY: several times faster than INSERTs on PostgreSQL.
            copy_sql = f"COPY {quote(model._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) FROM STDIN"
            with cursor.cursor.copy(copy_sql) as copy:
                for value in values:
                    copy.write_row(value)
        else:
            cursor.executemany(sql, values)


def _converter(field):
    if isinstance(field, models.DateTimeField):
        if connection.vendor == "sqlite":
            return _sqlite_datetime  # Django's adapter, without its checks (every value here is UTC)
        return connection.ops.adapt_datetimefield_value
    if isinstance(field, models.JSONField):
        return lambda value: field.get_db_prep_save(value, connection)
    return _same


def _same(value):
    return value


def _sqlite_datetime(value):
    return None if value is None else str(value.replace(tzinfo=None))
