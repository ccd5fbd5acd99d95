"""`manage.py resend` (the bulk resend from the shell, with a progress bar) and `manage.py
seed_calls` (bulk seeding for the scale tests and benchmarks)."""

import io

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Sum

from dashboard.models import BulkResend, JobStatus
from forwarding.delivery.attempt import release_user
from forwarding.models import Call, CallType, Delivery, DeliveryTally, State, Trigger

pytestmark = pytest.mark.django_db


def resend(*args, answer=None, monkeypatch=None):
    out = io.StringIO()
    if answer is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(answer + "\n"))
    call_command("resend", *args, stdout=out)
    return out.getvalue()


def test_resend_counts_then_resends_with_a_progress_bar(calls):
    made = [calls(state="failed", event="Order Completed") for _ in range(3)]
    calls(state="failed", event="Other")
    calls(state="delivered", event="Order Completed")
    output = resend("--state", "failed", "--event", "order completed", "--yes")
    assert "3 deliveries match: state failed, event order completed." in output
    assert "[##############################] 100%  3/3" in output
    assert "Made 3 deliveries due again (0 left alone)" in output
    reopened = Delivery.objects.filter(state=State.PENDING, trigger=Trigger.BULK)
    assert sorted(reopened.values_list("pk", flat=True)) == [c.pk for c in made]
    job = BulkResend.objects.get()
    assert (job.status, job.created_by) == (JobStatus.DONE, None)


def test_resend_asks_first(calls, monkeypatch):
    calls(state="failed")
    output = resend("--state", "failed", answer="n", monkeypatch=monkeypatch)
    assert "Resend 1 deliveries? [y/N]" in output and "Nothing resent." in output
    assert Delivery.objects.get().state == State.FAILED
    resend("--state", "failed", answer="y", monkeypatch=monkeypatch)
    assert Delivery.objects.get().state == State.PENDING


def test_resend_needs_a_filter_or_all(calls):
    calls(state="failed")
    with pytest.raises(CommandError, match="at least one filter"):
        resend("--yes")
    assert "1 deliveries match: every call." in resend("--all", "--yes")


def test_resend_refuses_bad_filters(db):
    with pytest.raises(CommandError, match="status"):
        resend("--status", "teapot", "--yes")


def test_resend_with_nothing_to_do(calls):
    calls(state="delivering")
    output = resend("--all", "--yes")
    assert "Left alone: 1 being sent now" in output and "Nothing to resend." in output
    assert not BulkResend.objects.exists()


def test_seed_calls_stores_calls_with_their_deliveries(db):
    out = io.StringIO()
    call_command("seed_calls", "500", "--users", "20", "--seed", "7", "--batch", "120", stdout=out)
    assert "Seeded 500 calls for 20 users" in out.getvalue()
    assert Call.objects.count() == Delivery.objects.count() == 500
    assert Call.objects.values("message_id").distinct().count() == 500
    states = set(Delivery.objects.values_list("state", flat=True))
    assert {State.DELIVERED, State.FAILED, State.SKIPPED} <= states
    assert State.PENDING not in states and State.DELIVERING not in states  # no worker picks them up
    assert set(Call.objects.values_list("type", flat=True)) <= set(CallType.values)
    call = Call.objects.filter(type=CallType.TRACK).select_related("delivery").first()
    assert call.delivery.created_at == call.received_at and call.payload["event"] == call.event
    # A second run adds to the first, and ids keep working for ordinary inserts (PostgreSQL's sequence).
    call_command("seed_calls", "10", stdout=io.StringIO())
    assert Call.objects.count() == 510
    Call.objects.create(source=call.source, message_id="after-seed", type="track", timestamp=call.timestamp, payload={})


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's pages: SQLite's scans skip freed ones")
def test_seed_calls_leaves_the_tallies_as_a_folded_week_would_on_postgresql():
    """A week folded every few seconds keeps the tally table to a few pages; a seed writes a row
    per delivery in minutes. Its empty pages must not be left for every later fold to scan."""
    count = 30_000
    options = ["--waiting-anonymous", "--days", "6.9", "--batch", "1000"]
    call_command("seed_calls", str(count), *options, stdout=io.StringIO())
    assert DeliveryTally.objects.aggregate(total=Sum("change"))["total"] == count  # every delivery counted
    assert DeliveryTally.objects.count() <= 7 * 24 + 1  # folded: one row per hour of waits
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_relation_size('forwarding_deliverytally')")
        pages = cursor.fetchone()[0] // 8192
    assert pages <= 2  # 168 sums; without the rewrite, 222 pages


def test_seed_calls_waiting_anonymous_stores_visitors_calls_an_identify_would_release(db):
    out = io.StringIO()
    call_command("seed_calls", "60", "--waiting-anonymous", "--days", "7", "--seed", "3", "--batch", "25", stdout=out)
    assert "Seeded 60 calls for 20 users" in out.getvalue()
    deliveries = Delivery.objects.select_related("call")
    assert {(d.state, d.error_cause, d.user_id, d.call.user_id) for d in deliveries} == {
        (State.WAITING, "anonymous", "", "")
    }
    assert {d.call.type for d in deliveries} == {CallType.PAGE, CallType.TRACK}
    assert all(d.anonymous_id == d.call.anonymous_id == d.call.payload["anonymousId"] for d in deliveries)
    visitor = deliveries.first().anonymous_id
    release_user("someone", visitor)
    released = Delivery.objects.filter(anonymous_id=visitor)
    assert set(released.values_list("state", "user_id")) == {(State.PENDING, "someone")}
