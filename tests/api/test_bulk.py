"""Bulk resends through the API: the count first (dry_run), then a job started in the background,
its progress, and cancelling it; every start and cancel in the admin log."""

import pytest
from django.contrib.admin.models import LogEntry

from dashboard import bulk
from dashboard.models import BulkResend, JobStatus
from forwarding.models import Delivery
from tests.api.conftest import error_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def failed(calls):
    made = [calls(state="failed", error_cause="http_400") for _ in range(3)]
    calls(state="delivered")
    calls(state="delivering")
    return made


def test_a_dry_run_counts_and_starts_nothing(operator_api, failed):
    response = operator_api.post("bulk-resends/", {"filters": {"state": "failed"}, "dry_run": True})
    assert response.status_code == 200
    body = response.json()
    assert (body["dry_run"], body["total"], body["by_state"], body["resendable"]) == (True, 3, {"failed": 3}, 3)
    assert body["capped"] is False
    assert body["description"] == "state failed" and body["filters"] == {"state": "failed"}
    assert not BulkResend.objects.exists() and not LogEntry.objects.exists()


def test_a_dry_run_past_the_cap_says_so(operator_api, failed, monkeypatch):
    monkeypatch.setattr("dashboard.queries.resends.PREVIEW_CAP", 2)
    body = operator_api.post("bulk-resends/", {"filters": {"state": "failed"}, "dry_run": True}).json()
    assert (body["capped"], body["total"]) == (True, 3)
    assert body["message"] == "More than 2 deliveries match; the job counts them all when it starts."


def test_starting_creates_the_job_and_its_progress_can_be_followed(operator_api, operator, failed):
    response = operator_api.post("bulk-resends/", {"filters": {"state": "failed", "cause": "http_400"}})
    assert response.status_code == 201
    job = response.json()
    assert (job["status"], job["total"], job["processed"], job["created_by"]) == ("queued", 3, 0, "otto-operator")
    assert job["filters"] == {"state": "failed", "cause": "http_400"}
    entry = LogEntry.objects.get()
    assert entry.user == operator and entry.change_message.startswith("Started a bulk resend of 3 deliveries")

    bulk.run(job["id"])  # what the worker's task does
    progress = operator_api.get(f"bulk-resends/{job['id']}/").json()
    assert (progress["status"], progress["processed"], progress["reopened"], progress["percent"]) == ("done", 3, 3, 100)
    assert Delivery.objects.filter(state="pending").count() == 3


def test_nothing_to_resend_starts_nothing(operator_api, failed):
    response = operator_api.post("bulk-resends/", {"filters": {"state": "waiting"}})
    assert response.status_code == 200
    assert response.json()["total"] == 0 and response.json()["dry_run"] is False
    assert not BulkResend.objects.exists()


def test_warned_may_be_a_boolean(operator_api, calls):
    calls(state="delivered", warned=True)
    calls(state="delivered")
    body = operator_api.post("bulk-resends/", {"filters": {"warned": True}, "dry_run": True}).json()
    assert body["total"] == 1 and body["filters"] == {"warned": "1"}


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"filters": {"state": "lost"}}, "filters.state: unknown value 'lost'"),
        ({"filters": {"colour": "red"}}, "unknown filter 'colour'"),
        ({"filters": {"source": 12}}, "filters.source: must be text"),
        ({"filters": ["state"]}, "filters: must be an object"),
        ({"dry_run": "yes"}, "dry_run"),
        ([], "The body must be a JSON object."),
    ],
)
def test_bad_input_is_a_400_and_starts_nothing(operator_api, failed, body, problem):
    response = operator_api.post("bulk-resends/", body)
    assert error_of(response) == (400, "invalid")
    assert problem in response.json()["message"]
    assert not BulkResend.objects.exists()


def test_a_body_that_is_not_json_is_a_400(operator_api):
    response = operator_api.client.post(
        "/api/v1/bulk-resends/", "{not json", content_type="application/json", **operator_api.headers()
    )
    assert error_of(response) == (400, "parse_error")


def test_cancelling_stops_the_job_once(operator_api, operator, failed):
    job = operator_api.post("bulk-resends/", {"filters": {"state": "failed"}}).json()
    response = operator_api.post(f"bulk-resends/{job['id']}/cancel/")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled" and response.json()["cancelled_by"] == "otto-operator"
    assert BulkResend.objects.get().status == JobStatus.CANCELLED
    assert error_of(operator_api.post(f"bulk-resends/{job['id']}/cancel/")) == (409, "finished")
    assert [e.change_message.split(" (")[0] for e in LogEntry.objects.order_by("pk")] == [
        "Started a bulk resend of 3 deliveries: state failed",
        "Cancelled the bulk resend after 0 of 3 deliveries",
    ]


def test_a_job_that_does_not_exist_is_a_404(operator_api):
    assert error_of(operator_api.get("bulk-resends/999/")) == (404, "not_found")
    assert error_of(operator_api.post("bulk-resends/999/cancel/")) == (404, "not_found")


def test_a_viewer_follows_a_job_but_cannot_start_or_cancel_one(viewer_api, failed):
    job = bulk.create(bulk.LogFilter(state="failed"))
    assert viewer_api.get(f"bulk-resends/{job.pk}/").json()["total"] == 3
    assert viewer_api.post(f"bulk-resends/{job.pk}/cancel/").status_code == 403
    assert viewer_api.post("bulk-resends/", {"dry_run": True}).status_code == 403
