"""Bulk resend from a log filter: the count first, a confirmation, a background job in slices
with its progress, and cancel."""

from datetime import timedelta
from unittest import mock

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from dashboard import bulk, tasks
from dashboard.filters import LogFilter
from dashboard.models import BulkResend, JobStatus
from forwarding.models import Delivery, State, Trigger

pytestmark = pytest.mark.django_db

CONFIRM = reverse("admin:bulk_resend")
START = reverse("admin:bulk_resend_start")


@pytest.fixture
def enqueued():
    """The tasks the job would put on the queue, instead of putting them there."""
    with mock.patch("dashboard.bulk.enqueue") as enqueue:
        yield enqueue


def states():
    return dict(Delivery.objects.values_list("pk", "state"))


def test_the_count_asks_the_partial_index_whether_a_payload_is_gone(operator_client, calls):
    from tests.dashboard.conftest import plan_of

    for n in range(30):
        call = calls(state="failed")
        if n % 10 == 0:
            call.payload = None
            call.save()
    with CaptureQueriesContext(connection) as captured:
        preview = operator_client.get(f"{CONFIRM}?state=failed").context["preview"]
    assert (preview.total, preview.without_payload) == (30, 3)
    [sql] = [q["sql"] for q in captured if "GROUP BY state" in q["sql"]]
    plan = plan_of(sql)
    # Each match is one probe: on PostgreSQL of the partial index (not a read of the call's row);
    # SQLite finds a row by its rowid at once.
    probe = "call_payload_gone" if connection.vendor == "postgresql" else "USING INTEGER PRIMARY KEY"
    assert probe in plan, plan


def test_the_confirmation_shows_the_count_by_state_first(operator_client, calls):
    for state in ["failed", "failed", "held", "delivering", "delivered"]:
        calls(state=state, event="Order Completed")
    gone = calls(state="failed", event="Order Completed")
    gone.payload = None
    gone.save()
    response = operator_client.get(f"{CONFIRM}?event=order+completed&state=failed")
    preview = response.context["preview"]
    assert (preview.total, preview.without_payload, preview.resendable) == (3, 1, 2)
    body = response.content.decode()
    assert 'id="bulk-total">3<' in body and "Resend 2 deliveries" in body
    assert '<input type="hidden" name="state" value="failed">' in body
    everything = operator_client.get(f"{CONFIRM}?event=order+completed").context["preview"]
    assert (everything.by_state, everything.in_flight) == ({"failed": 3, "held": 1, "delivering": 1, "delivered": 1}, 1)


def test_past_the_cap_the_confirmation_says_more_than_and_the_job_counts_them_all(
    operator_client, calls, enqueued, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr("dashboard.queries.resends.PREVIEW_CAP", 3)
    for _ in range(5):
        calls(state="failed")
    calls(state="delivered")
    with CaptureQueriesContext(connection) as counting:
        response = operator_client.get(f"{CONFIRM}?state=failed")
    preview = response.context["preview"]
    assert preview.capped and preview.total == 4  # the cap + 1: enough to know there are more
    body = response.content.decode()
    assert 'More than</span> <span id="bulk-total">3<' in body and 'value="Resend all of them"' in body
    assert 'name="expected"' not in body and 'id="bulk-capped"' in body
    counts = [q["sql"] for q in counting if "COUNT(" in q["sql"].upper() and "forwarding_delivery" in q["sql"]]
    assert len(counts) == 1 and "LIMIT 4" in counts[0]
    with django_capture_on_commit_callbacks(execute=True):
        response = operator_client.post(START, {"state": "failed"})
    job = BulkResend.objects.get()
    assert job.total == 5  # counted exactly when it starts
    assert bulk.run(job.pk) is False
    job.refresh_from_db()
    assert (job.status, job.processed, job.reopened) == (JobStatus.DONE, 5, 5)
    under = operator_client.get(f"{CONFIRM}?state=delivered").context["preview"]
    assert (under.capped, under.total) == (False, 1)


def test_viewers_see_the_count_but_cannot_start(viewer_client, calls):
    calls(state="failed")
    response = viewer_client.get(f"{CONFIRM}?state=failed")
    assert response.context["preview"].total == 1
    assert 'id="bulk-form"' not in response.content.decode()


def test_starting_creates_a_job_logs_it_and_enqueues_its_task(
    operator_client, calls, enqueued, django_capture_on_commit_callbacks
):
    for _ in range(3):
        calls(state="failed")
    with django_capture_on_commit_callbacks(execute=True):
        response = operator_client.post(START, {"state": "failed", "expected": "3"})
    job = BulkResend.objects.get()
    assert response.url == reverse("admin:bulk_resend_job", args=[job.pk])
    assert (job.status, job.total, job.filters, job.created_by.username) == (
        JobStatus.QUEUED,
        3,
        {"state": "failed"},
        "otto-operator",
    )
    enqueued.assert_called_once_with(job.pk)
    assert LogEntry.objects.get().change_message == "Started a bulk resend of 3 deliveries: state failed."


def test_a_changed_count_is_pointed_out(operator_client, calls, enqueued):
    calls(state="failed")
    response = operator_client.post(START, {"state": "failed", "expected": "5"}, follow=True)
    assert "The count changed since you looked: 1 deliveries now, not 5" in response.content.decode()


def test_a_relative_range_is_fixed_when_the_job_starts(operator_client, calls, enqueued):
    calls(state="failed")
    operator_client.post(START, {"state": "failed", "range": "24h"})
    filters = BulkResend.objects.get().filters
    assert "range" not in filters and "since" in filters


def test_the_task_reopens_everything_oldest_first_in_chunks(calls, enqueued, monkeypatch):
    monkeypatch.setattr(bulk, "CHUNK", 4)
    made = [calls(state="failed") for _ in range(10)]
    calls(state="delivered")
    job = bulk.create(LogFilter(state="failed"))
    reopened = []
    real = bulk.queue.reopen

    def spy(pks, trigger):
        reopened.append(list(pks))
        return real(pks, trigger)

    monkeypatch.setattr(bulk.queue, "reopen", spy)
    tasks.run_bulk_resend(job.pk)
    job.refresh_from_db()
    assert (job.status, job.processed, job.reopened, job.skipped) == (JobStatus.DONE, 10, 10, 0)
    assert reopened == [[c.pk for c in made[:4]], [c.pk for c in made[4:8]], [c.pk for c in made[8:]]]
    assert set(Delivery.objects.filter(trigger=Trigger.BULK).values_list("state", flat=True)) == {State.PENDING}
    enqueued.assert_not_called()  # done in one slice


def test_a_slice_hands_on_to_the_next_task(calls, enqueued, monkeypatch):
    monkeypatch.setattr(bulk, "CHUNK", 2)
    monkeypatch.setattr(bulk, "SLICE_SECONDS", 0)  # one chunk per slice
    for _ in range(5):
        calls(state="failed")
    job = bulk.create(LogFilter(state="failed"))
    tasks.run_bulk_resend(job.pk)
    job.refresh_from_db()
    assert (job.status, job.processed, job.lease_expires_at) == (JobStatus.RUNNING, 2, None)
    enqueued.assert_called_once_with(job.pk)
    while bulk.run(job.pk, budget=0):
        pass
    job.refresh_from_db()
    assert (job.status, job.processed) == (JobStatus.DONE, 5)


def test_calls_that_arrive_after_the_confirmation_are_left_out(calls):
    calls(state="failed")
    job = bulk.create(LogFilter(state="failed"))
    late = calls(state="failed", received_at=timezone.now() + timedelta(seconds=5))
    bulk.run(job.pk)
    assert Delivery.objects.get(pk=late.pk).state == State.FAILED
    assert BulkResend.objects.get().reopened == 1


def test_deliveries_in_flight_or_without_payload_are_left_alone(calls):
    calls(state="delivering")
    gone = calls(state="failed")
    gone.payload = None
    gone.save()
    kept = calls(state="failed")
    job = bulk.create(LogFilter())
    bulk.run(job.pk)
    job.refresh_from_db()
    assert (job.total, job.reopened, job.skipped) == (3, 1, 2)
    assert states()[gone.pk] == State.FAILED and states()[kept.pk] == State.PENDING


def test_cancel_stops_the_job_before_its_next_chunk(operator_client, calls, monkeypatch):
    monkeypatch.setattr(bulk, "CHUNK", 2)
    for _ in range(6):
        calls(state="failed")
    job = bulk.create(LogFilter(state="failed"))
    cancel = reverse("admin:bulk_resend_cancel", args=[job.pk])

    def progress(job):
        operator_client.post(cancel)  # the operator presses Cancel after the first chunk

    bulk.run(job.pk, budget=None, progress=progress)
    job.refresh_from_db()
    assert (job.status, job.processed, job.cancelled_by.username) == (JobStatus.CANCELLED, 2, "otto-operator")
    assert Delivery.objects.filter(state=State.FAILED).count() == 4
    assert LogEntry.objects.get().change_message == "Cancelled the bulk resend after 2 of 6 deliveries."
    assert not bulk.run(job.pk)  # a cancelled job does not run again
    page = operator_client.get(reverse("admin:bulk_resend_job", args=[job.pk])).content.decode()
    assert 'id="job-status">Cancelled<' in page and 'id="cancel-button"' not in page


def test_two_tasks_never_work_on_one_job_at_once(calls):
    calls(state="failed")
    job = bulk.create(LogFilter(state="failed"))
    BulkResend.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() + timedelta(minutes=1))
    assert bulk.run(job.pk) is False
    assert BulkResend.objects.get().processed == 0


def test_a_stalled_job_is_resumed(calls, enqueued):
    calls(state="failed")
    job = bulk.create(LogFilter(state="failed"))
    assert bulk.resume_stalled() == []  # just created: its task is on its way
    BulkResend.objects.filter(pk=job.pk).update(touched_at=timezone.now() - timedelta(minutes=5))
    assert tasks.resume_bulk_resends() == [job.pk]
    enqueued.assert_called_once_with(job.pk)


def test_the_progress_page_reloads_while_the_job_runs(viewer_client, operator_client, calls):
    calls(state="failed")
    job = bulk.create(LogFilter(state="failed"))
    page = operator_client.get(reverse("admin:bulk_resend_job", args=[job.pk]))
    assert page.context["refresh"] and 'id="cancel-button"' in page.content.decode()
    assert (
        'id="cancel-button"' not in viewer_client.get(reverse("admin:bulk_resend_job", args=[job.pk])).content.decode()
    )
    bulk.run(job.pk)
    page = operator_client.get(reverse("admin:bulk_resend_job", args=[job.pk]))
    assert not page.context["refresh"]
    assert 'id="job-processed">1<' in page.content.decode() and "Done" in page.content.decode()


def test_a_job_that_raises_is_marked_failed(calls, monkeypatch):
    calls(state="failed")
    job = bulk.create(LogFilter(state="failed"))
    monkeypatch.setattr(bulk.queue, "reopen", mock.Mock(side_effect=RuntimeError("database went away")))
    with pytest.raises(RuntimeError):
        tasks.run_bulk_resend(job.pk)
    job.refresh_from_db()
    assert (job.status, job.error) == (JobStatus.FAILED, "RuntimeError: database went away")
    assert bulk.resume_stalled(timezone.now() + timedelta(hours=1)) == []


def test_a_bulk_resend_of_has_warnings_resends_only_those(operator_client, calls, enqueued):
    warned = [calls(warned=True, warnings=["traits.a: dropped"]) for _ in range(2)]
    calls()  # delivered as received
    calls(state="failed")
    response = operator_client.get(f"{CONFIRM}?warned=1&state=delivered")
    assert response.context["preview"].total == 2
    assert response.context["description"] == "state delivered, has warnings"
    assert '<input type="hidden" name="warned" value="1">' in response.content.decode()
    operator_client.post(START, {"state": "delivered", "warned": "1", "expected": "2"})
    job = BulkResend.objects.get()
    assert (job.filters, job.total, job.description) == (
        {"state": "delivered", "warned": "1"},
        2,
        "state delivered, has warnings",
    )
    bulk.run(job.pk)
    reopened = Delivery.objects.filter(state=State.PENDING, trigger=Trigger.BULK)
    assert sorted(reopened.values_list("pk", flat=True)) == [c.pk for c in warned]
