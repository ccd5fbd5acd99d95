"""Forgetting a user from their history page: operators only, with the userId typed again."""

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from forwarding.models import Call, Forgotten, hash_user

pytestmark = pytest.mark.django_db
FORGET = reverse("admin:user_forget")


def messages_of(response):
    return [str(m) for m in response.context["messages"]]


def test_an_operator_forgets_a_user_after_typing_their_id(operator_client, calls, sandbox):
    call = calls(user_id="ann", email="ann@example.com")
    history = operator_client.get(reverse("admin:user_history"), {"q": "ann"}).content.decode()
    assert 'id="forget-form"' in history

    response = operator_client.post(FORGET, {"user_id": "ann", "confirm": "ann", "suppress": "on"}, follow=True)

    [message] = messages_of(response)
    assert message == "Forgot a user: 1 calls expunged, later calls suppressed; Intercom contact absent."
    call.refresh_from_db()
    assert (call.payload, call.email, call.user_id) == (None, "", "")
    tombstone = Forgotten.objects.get()
    assert (tombstone.user_hash, tombstone.requested_by, tombstone.suppress) == (
        hash_user("ann"),
        "otto-operator",
        True,
    )
    assert LogEntry.objects.get().user.username == "otto-operator"
    listed = operator_client.get(reverse("admin:user_history")).content.decode()
    assert (
        'id="forgotten"' in listed
        and tombstone.user_hash[:10] in listed
        and "ann" not in listed.split('id="forgotten"')[1]
    )


def test_a_wrong_confirmation_forgets_nothing(operator_client, calls):
    call = calls(user_id="ann")
    response = operator_client.post(FORGET, {"user_id": "ann", "confirm": "an"}, follow=True)
    assert messages_of(response) == ["Nothing was forgotten: type the userId exactly to confirm."]
    assert Call.objects.get(pk=call.pk).payload is not None
    assert not Forgotten.objects.exists()


def test_a_viewer_can_neither_see_nor_use_the_forget_form(viewer_client, calls):
    call = calls(user_id="ann")
    assert 'id="forget-form"' not in viewer_client.get(reverse("admin:user_history"), {"q": "ann"}).content.decode()
    assert viewer_client.post(FORGET, {"user_id": "ann", "confirm": "ann"}).status_code == 403
    assert Call.objects.get(pk=call.pk).payload is not None
