"""The operators' actions: Resend, a user's failed calls, bulk resend and its cancel, and the data
attributes' Retry, Set alias and Ignore. Each is a POST with CSRF, refused to viewers with 403, and
written to the admin log."""

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from dashboard.models import BulkResend, JobStatus
from forwarding.models import DataAttribute, Delivery, State, Trigger
from tests.dashboard.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def failed(calls):
    return calls(state="failed", user_id="ada", error_cause="http_400")


def posts(failed):
    """Every action: (url, data)."""
    job = BulkResend.objects.create(description="x", total=1, upto_created_at=failed.received_at, upto_pk=failed.pk)
    attribute = DataAttribute.objects.create(model="contact", name="tier", usable=False, refusal="limit")
    return [
        (reverse("admin:data_attribute_retry", args=[attribute.pk]), {}),
        (reverse("admin:data_attribute_alias", args=[attribute.pk]), {"alias": "tier2"}),
        (reverse("admin:data_attribute_ignore", args=[attribute.pk]), {}),
        (reverse("admin:data_attribute_unignore", args=[attribute.pk]), {}),
        (reverse("admin:call_resend", args=[failed.pk]), {}),
        (reverse("admin:user_resend_failed"), {"user_id": "ada"}),
        (reverse("admin:bulk_resend_start"), {"state": "failed"}),
        (reverse("admin:bulk_resend_cancel", args=[job.pk]), {}),
        (reverse("admin:call_expunge", args=[failed.pk]), {}),
    ]


def test_viewers_are_refused_every_action(viewer, failed):
    client = client_for(viewer)
    for url, data in posts(failed):
        assert client.post(url, data).status_code == 403, url
    assert Delivery.objects.get(pk=failed.pk).state == State.FAILED
    assert DataAttribute.objects.filter(refusal="limit", alias="", ignored=False).count() == 1
    assert not LogEntry.objects.exists()


def test_every_action_needs_the_csrf_token(operator, failed):
    client = client_for(operator, csrf=True)
    for url, data in posts(failed):
        assert client.post(url, data).status_code == 403, url
    assert Delivery.objects.get(pk=failed.pk).state == State.FAILED


def test_every_action_is_post_only(operator, failed):
    client = client_for(operator)
    for url, _ in posts(failed):
        if url != reverse("admin:bulk_resend_start"):
            assert client.get(url).status_code == 405, url


def test_an_operator_resends_a_call(operator_client, failed):
    response = operator_client.post(reverse("admin:call_resend", args=[failed.pk]))
    assert response.status_code == 302 and response.url == reverse("admin:call_detail", args=[failed.pk])
    delivery = Delivery.objects.get(pk=failed.pk)
    assert (delivery.state, delivery.trigger) == (State.PENDING, Trigger.MANUAL)
    entry = LogEntry.objects.get()
    assert (entry.object_id, entry.change_message) == (str(failed.pk), "Resent from the dashboard (was failed).")
    page = operator_client.get(response.url).content.decode()
    assert "Resend queued" in page and 'id="refreshing"' in page


def test_the_resend_works_with_the_csrf_token(operator, failed):
    client = client_for(operator, csrf=True)
    page = client.get(reverse("admin:call_detail", args=[failed.pk]))
    token = page.context["csrf_token"]
    response = client.post(reverse("admin:call_resend", args=[failed.pk]), {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert Delivery.objects.get(pk=failed.pk).state == State.PENDING


def test_a_call_without_payload_is_not_resent(operator_client, failed):
    failed.payload = None
    failed.save()
    response = operator_client.post(reverse("admin:call_resend", args=[failed.pk]), follow=True)
    assert "Not resent: Its payload is no longer stored" in response.content.decode()
    assert Delivery.objects.get(pk=failed.pk).state == State.FAILED
    assert not LogEntry.objects.exists()


def test_a_call_in_flight_is_not_resent(operator_client, calls):
    call = calls(state="delivering")
    response = operator_client.post(reverse("admin:call_resend", args=[call.pk]), follow=True)
    assert "A worker is sending it right now" in response.content.decode()
    assert Delivery.objects.get(pk=call.pk).state == State.DELIVERING


def test_viewers_see_no_action_buttons(viewer_client, failed):
    pages = [
        reverse("admin:call_detail", args=[failed.pk]),
        reverse("admin:user_history") + "?q=ada",
        reverse("admin:bulk_resend") + "?state=failed",
        reverse("admin:delivery_log"),
        reverse("admin:data_attributes"),
    ]
    DataAttribute.objects.create(model="contact", name="tier", usable=False, refusal="limit")
    for url in pages:
        body = viewer_client.get(url).content.decode()
        assert 'method="post"' not in body.replace('id="logout-form" method="post"', ""), url


def test_an_operator_resends_a_users_failed_calls(operator_client, calls):
    first = calls(state="failed", user_id="ada")
    calls(state="delivered", user_id="ada")
    second = calls(state="failed", user_id="ada")
    other = calls(state="failed", user_id="bob")
    response = operator_client.post(reverse("admin:user_resend_failed"), {"user_id": "ada"})
    assert response.status_code == 302 and response.url == reverse("admin:user_history") + "?q=ada"
    reopened = Delivery.objects.filter(state=State.PENDING, trigger=Trigger.BULK)
    assert sorted(reopened.values_list("pk", flat=True)) == [first.pk, second.pk]
    assert Delivery.objects.get(pk=other.pk).state == State.FAILED
    job = BulkResend.objects.get()
    assert (job.status, job.total, job.reopened, job.filters) == (
        JobStatus.DONE,
        2,
        2,
        {"state": "failed", "user": "ada"},
    )
    assert LogEntry.objects.get().change_message == "Resent the failed calls of user ada: 2 of 2."


def test_a_user_without_failed_calls_has_nothing_to_resend(operator_client, calls):
    calls(state="delivered", user_id="ada")
    response = operator_client.post(reverse("admin:user_resend_failed"), {"user_id": "ada"}, follow=True)
    assert "No failed calls of ada to resend" in response.content.decode()
    assert not BulkResend.objects.exists()


def test_an_operator_expunges_a_payload_and_the_attempts_stay(operator_client, failed):
    from forwarding.models import Attempt, Call, Exchange

    attempt = Attempt.objects.create(delivery_id=failed.pk, outcome="failed", status=400)
    Exchange.objects.create(
        attempt=attempt, method="POST", path="/events", status=400, request_body='{"user_id": "ada"}'
    )
    response = operator_client.post(reverse("admin:call_expunge", args=[failed.pk]))
    assert response.status_code == 302
    call = Call.objects.get(pk=failed.pk)
    assert call.payload is None
    assert call.payload_removed_reason == "expunged by otto-operator"
    assert Exchange.objects.get().request_body == "[expunged]"
    assert Attempt.objects.filter(delivery_id=failed.pk).count() == 1
    assert LogEntry.objects.filter(change_message__contains="Expunged").exists()
    page = operator_client.get(reverse("admin:call_detail", args=[failed.pk])).content.decode()
    assert "expunged by otto-operator" in page
    assert 'id="expunge-form"' not in page and 'id="resend-form"' not in page
