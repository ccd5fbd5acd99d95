"""Write keys: the add_source command, the admin, and a database that never holds a key in clear."""

from io import StringIO

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from forwarding.models import RejectedMessage, Source
from tests.ingestion.conftest import message

pytestmark = pytest.mark.django_db

KEY = "wk_fixed-key-for-tests-0123456789"


def add_source(*args):
    out, err = StringIO(), StringIO()
    call_command("add_source", *args, stdout=out, stderr=err)
    return out.getvalue().strip(), err.getvalue()


def test_it_creates_a_source_and_prints_its_new_key():
    key, note = add_source("Website")
    source = Source.objects.get()
    assert source.name == "Website"
    assert key.startswith("wk_") and len(key) > 30
    assert Source.authenticate(key) == source
    assert "Website" in note


def test_it_creates_another_source_each_time_without_a_key():
    first, _ = add_source("Website")
    second, _ = add_source("Website")
    assert first != second
    assert Source.objects.count() == 2


def test_it_is_idempotent_with_a_given_key():
    assert add_source("Backend", "--write-key", KEY)[0] == KEY
    key, note = add_source("Backend", "--write-key", KEY)
    assert key == KEY
    assert "nothing changed" in note
    assert Source.objects.count() == 1
    assert Source.authenticate(KEY).name == "Backend"


def test_it_warns_when_the_given_key_belongs_to_an_inactive_source():
    add_source("Backend", "--write-key", KEY)
    Source.objects.update(is_active=False)
    key, note = add_source("Backend", "--write-key", KEY)
    assert key == KEY
    assert "inactive" in note


@pytest.mark.parametrize("bad", ["short", "wk_has:a-colon-inside-it", "wk_has a space inside it"])
def test_it_refuses_a_key_that_could_not_work(bad):
    with pytest.raises(CommandError):
        add_source("Backend", "--write-key", bad)
    assert Source.objects.count() == 0


def test_it_shows_the_key_prefix_in_the_admin_and_never_the_key(client):
    key, _ = add_source("Website")
    admin = get_user_model().objects.create_superuser("admin", "admin@example.com", "pw")
    client.force_login(admin)
    source = Source.objects.get()
    changelist = client.get("/admin/forwarding/source/")
    detail = client.get(f"/admin/forwarding/source/{source.pk}/change/")
    for response in (changelist, detail):
        assert response.status_code == 200
        page = response.content.decode()
        assert source.key_prefix in page
        assert key not in page
        assert source.key_hash not in page


def test_it_lists_rejected_messages_read_only_in_the_admin(client, post):
    key, _ = add_source("Website")
    post("/v1/batch", {"batch": [message(event="")]}, key=key)
    admin = get_user_model().objects.create_superuser("admin", "admin@example.com", "pw")
    client.force_login(admin)
    rejected = RejectedMessage.objects.get()
    changelist = client.get("/admin/forwarding/rejectedmessage/")
    assert changelist.status_code == 200
    assert "missing_event" in changelist.content.decode()
    detail = client.get(f"/admin/forwarding/rejectedmessage/{rejected.pk}/change/")
    assert detail.status_code == 200
    assert client.get("/admin/forwarding/rejectedmessage/add/").status_code == 403


def test_it_never_keeps_a_write_key_in_clear_in_the_database(post):
    key, _ = add_source("Website", "--write-key", KEY)
    post("/v1/track", {**message(messageId="good"), "writeKey": KEY})
    post("/v1/track", {**message(messageId="bad", event=""), "writeKey": KEY})
    post("/v1/batch", {"batch": [message(messageId="batched", writeKey=KEY)], "writeKey": KEY})
    assert_key_nowhere_in_database(KEY)


def assert_key_nowhere_in_database(key):
    """Every row of every table, as text, without the key."""
    checked = 0
    for model in apps.get_models():
        for row in model.objects.values():
            assert key not in repr(row), f"{model.__name__} holds the write key"
            checked += 1
    assert checked > 0


def test_a_write_key_finds_its_active_source_whole_and_nothing_else():
    source, key = Source.create_with_key("Website")
    found = Source.authenticate(key)
    assert found == source
    assert (found.name, found.key_prefix, found.key_hash, found.is_active) == (
        "Website",
        key[:8],
        source.key_hash,
        True,
    )
    assert found.created_at == Source.objects.get().created_at  # a datetime, as the ORM gives it
    assert Source.authenticate(key + "x") is None
    assert Source.authenticate("") is None
    Source.objects.filter(pk=source.pk).update(is_active=False)
    assert Source.authenticate(key) is None
