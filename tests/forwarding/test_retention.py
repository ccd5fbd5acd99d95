"""Retention: payloads, then log entries, never a call still being delivered; rejected messages
after their own, shorter retention; expunge."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule

from forwarding import retention, services
from forwarding.models import Attempt, Call, Delivery, Exchange, RejectedMessage, State

pytestmark = pytest.mark.django_db


@pytest.fixture
def days_ago():
    now = timezone.now()
    return lambda days: now - timedelta(days=days)


def with_attempt(call):
    attempt = Attempt.objects.create(delivery=call.delivery, outcome="delivered", status=202)
    Exchange.objects.create(attempt=attempt, method="POST", path="/events", status=202, request_body='{"email": "x"}')
    return call


def test_it_removes_old_payloads_of_finished_calls_only(make_call, days_ago, settings):
    settings.RELAY_PAYLOAD_RETENTION_DAYS = 30
    old = with_attempt(make_call(received_at=days_ago(31)))
    old_waiting = make_call(received_at=days_ago(31), state=State.WAITING)
    old_held = make_call(received_at=days_ago(31), state=State.HELD)
    recent = with_attempt(make_call(received_at=days_ago(29)))

    assert retention.prune_payloads() == 1
    old.refresh_from_db()
    assert old.payload is None
    assert old.payload_removed_reason == retention.EXPIRED_REASON
    # What was sent carried the same traits: its bodies go with the payload, the exchange stays.
    [gone] = Exchange.objects.filter(attempt__delivery_id=old.pk)
    assert (gone.request_body, gone.response_body, gone.status) == ("[expired]", "[expired]", 202)
    for kept in (old_waiting, old_held, recent):
        kept.refresh_from_db()
        assert kept.payload is not None
    assert Exchange.objects.get(attempt__delivery_id=recent.pk).request_body == '{"email": "x"}'


def test_it_deletes_old_log_entries_with_their_attempts(make_call, days_ago, settings):
    settings.RELAY_LOG_RETENTION_DAYS = 90
    old = with_attempt(make_call(received_at=days_ago(91)))
    old_pending = make_call(received_at=days_ago(91), state=State.PENDING)
    recent = with_attempt(make_call(received_at=days_ago(89)))

    assert retention.prune_logs() == 1
    assert not Call.objects.filter(pk=old.pk).exists()
    assert not Delivery.objects.filter(pk=old.pk).exists()
    assert list(Attempt.objects.values_list("delivery_id", flat=True)) == [recent.pk]
    assert Call.objects.filter(pk__in=[old_pending.pk, recent.pk]).count() == 2


def test_it_prunes_in_batches_from_the_command(make_call, days_ago, settings, capsys):
    settings.RELAY_PAYLOAD_RETENTION_DAYS = 1
    settings.RELAY_LOG_RETENTION_DAYS = 10
    for _ in range(5):
        make_call(received_at=days_ago(2))
    for _ in range(3):
        make_call(received_at=days_ago(11))
    assert retention.prune_payloads(batch=2) == 5 + 3
    call_command("prune")
    assert "Pruned 0 payloads, 3 log entries and 0 rejected messages." in capsys.readouterr().out
    assert Call.objects.count() == 5


def test_it_deletes_rejected_messages_after_their_own_retention(source, days_ago, settings):
    settings.RELAY_REJECTED_RETENTION_DAYS = 7
    settings.RELAY_LOG_RETENTION_DAYS = 90
    for days in (8, 8, 8, 30, 6):
        RejectedMessage.objects.create(source=source[0], code="missing_event", reason="r", received_at=days_ago(days))
    kept = RejectedMessage.objects.get(received_at__gt=days_ago(7))

    assert retention.prune_rejected(batch=2) == 4
    assert list(RejectedMessage.objects.all()) == [kept]
    # The log's own retention (90 days) does not keep them any longer.
    assert retention.prune()["rejected"] == 0


def test_it_keeps_rejected_messages_seven_days_by_default(source, days_ago, settings):
    assert settings.RELAY_REJECTED_RETENTION_DAYS == 7
    for days in (7.01, 6.99):
        RejectedMessage.objects.create(source=source[0], code="invalid_type", reason="r", received_at=days_ago(days))
    assert retention.prune()["rejected"] == 1
    assert RejectedMessage.objects.get().received_at == days_ago(6.99)


def test_it_refuses_to_resend_a_call_whose_payload_expired(make_call, days_ago, settings):
    settings.RELAY_PAYLOAD_RETENTION_DAYS = 1
    call = make_call(received_at=days_ago(2), state=State.FAILED)
    retention.prune_payloads()
    call.refresh_from_db()
    assert services.resend(call.delivery) is False
    assert "payload was removed" in services.resend_refusal(call)
    assert Delivery.objects.get(pk=call.pk).state == State.FAILED


def test_it_expunges_personal_data_and_keeps_the_attempt_history(make_call):
    call = with_attempt(make_call(type="identify", event="", traits={"email": "ada@example.com"}))
    Call.objects.filter(pk=call.pk).update(email="ada@example.com")
    services.expunge(call, "expunged by olive")
    call.refresh_from_db()
    assert (call.payload, call.email, call.payload_removed_reason) == (None, "", "expunged by olive")
    exchange = Exchange.objects.get()
    assert "ada@example.com" not in exchange.request_body
    assert Attempt.objects.filter(delivery_id=call.pk).count() == 1


def test_it_schedules_the_sweeper_and_the_daily_prune_once():
    from forwarding.schedules import ensure_schedules

    ensure_schedules()
    ensure_schedules()
    assert sorted(Schedule.objects.filter(name__startswith="relay-").values_list("name", "func")) == [
        ("relay-prune", "forwarding.tasks.prune"),
        ("relay-sweep", "forwarding.tasks.sweep"),
    ]
