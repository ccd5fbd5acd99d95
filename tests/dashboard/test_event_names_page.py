"""The event-names page through Django's test client: the gauge, the registry table, and the
operators' actions with their permission, CSRF and admin-log checks."""

import re
from datetime import timedelta

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from dashboard.views.event_names import gauge
from forwarding import event_names
from forwarding.delivery import connection
from forwarding.event_names import Usage
from forwarding.models import (
    Call,
    CallType,
    Delivery,
    EventName,
    EventNameHour,
    IntercomStatus,
    NameStatus,
    Rule,
    State,
)
from forwarding.transformations import store

pytestmark = pytest.mark.django_db

PAGE = reverse("admin:event_names")
ACTIONS = ["archive", "unarchive", "rename", "release"]


@pytest.fixture
def limit(settings):
    settings.INTERCOM_EVENT_NAME_LIMIT = 4
    return 4


def name(label, *, slot=True, days_ago=1, rename_to=None, **fields):
    seen = timezone.now() - timedelta(days=days_ago)
    fields.setdefault("first_seen_at", seen - timedelta(days=1))
    entry = EventName.objects.create(
        key=label.lower(), name=label, slot_used_at=seen if slot else None, last_seen_at=seen, **fields
    )
    if rename_to is not None:  # a rename-event rule, as the page's Rename makes
        event_names.rename(entry, rename_to.name)
    return entry


def renamed(entry):
    """The name a rename-event rule forwards `entry` as, or None."""
    found = store.renames().get(entry.key)
    return found.to if found else None


def held_calls(source, entry, count):
    """`count` calls under `entry` that are held, as the delivery engine leaves them."""
    source, _ = source
    for _ in range(count):
        n = Call.objects.count() + 1
        call = Call.objects.create(
            source=source,
            message_id=f"m-{n}",
            type=CallType.TRACK,
            user_id="u1",
            event=entry.name,
            timestamp=timezone.now(),
            payload={"type": "track", "userId": "u1", "event": entry.name},
        )
        Delivery.objects.create(call=call, user_id="u1", event_key=entry.key, state=State.HELD)
    EventName.objects.filter(pk=entry.pk).update(held_count=count)


def states(entry):
    return sorted(Delivery.objects.filter(event_key=entry.key).values_list("state", flat=True))


def action_url(verb, entry):
    return reverse(f"admin:event_name_{verb}", args=[entry.pk])


def messages_of(response):
    return [str(m) for m in response.context["messages"]]


def rows(response):
    return [entry.name for entry in response.context["page_obj"]]


# -- the page ------------------------------------------------------------------------------------


def test_it_shows_the_gauge_against_the_limit(viewer_client, limit):
    for label in ("Signed Up", "Plan Chosen", "Invited Teammate"):
        name(label)
    name("Exported Report", slot=False)

    response = viewer_client.get(PAGE)
    assert response.status_code == 200
    assert response.context["usage"] == {
        "used": 3,
        "limit": 4,
        "free": 1,
        "percent": 75,
        "level": "amber",
        "full": False,
    }
    html = response.content.decode()
    assert '<strong id="usage-figures">3 of 4</strong>' in html
    assert 'class="module usage-gauge level-amber"' in html
    assert 'aria-valuenow="3"' in html
    assert "admin/css/base.css" in html  # the admin's look: the page extends its base template


@pytest.mark.parametrize(
    ("used", "limit", "level"),
    [(0, 120, "green"), (89, 120, "green"), (90, 120, "amber"), (113, 120, "amber"), (114, 120, "red"), (3, 3, "red")],
)
def test_it_colours_the_gauge_as_it_fills(used, limit, level):
    assert gauge(Usage(used, limit))["level"] == level


def test_it_warns_when_intercom_refused_a_name_the_relay_had_room_for(viewer_client):
    response = viewer_client.get(PAGE)
    assert "cap-refused" not in response.content.decode()

    # Noted with another base URL or token: not this connection's.
    status = IntercomStatus.objects.create(
        name="intercom", config_key="another-token", cap_refused_at=timezone.now(), cap_refused_usage=87
    )
    assert "cap-refused" not in viewer_client.get(PAGE).content.decode()

    status.config_key = connection.config_key()
    status.save()
    html = " ".join(viewer_client.get(PAGE).content.decode().split())
    assert "Intercom refused a new name while the relay counted 87" in html
    assert "Intercom counts names the relay did not send" in html
    assert "set <code>INTERCOM_EVENT_NAME_LIMIT</code> to 87 or lower" in html


def test_it_sorts_by_last_seen_newest_first_by_default_and_by_whitelisted_columns(viewer_client):
    name("old", days_ago=9, total_count=50, delivered_count=1)
    name("new", days_ago=1, total_count=5, delivered_count=3)
    name("mid", days_ago=4, total_count=20, delivered_count=2, status=NameStatus.ARCHIVED)

    assert rows(viewer_client.get(PAGE)) == ["new", "mid", "old"]
    assert rows(viewer_client.get(PAGE, {"sort": "last_seen"})) == ["old", "mid", "new"]
    assert rows(viewer_client.get(PAGE, {"sort": "-total"})) == ["old", "mid", "new"]
    assert rows(viewer_client.get(PAGE, {"sort": "delivered"})) == ["old", "mid", "new"]
    assert rows(viewer_client.get(PAGE, {"sort": "status"})) == ["new", "old", "mid"]
    # Anything else is ignored rather than passed to order_by().
    assert rows(viewer_client.get(PAGE, {"sort": "-call__payload"})) == ["new", "mid", "old"]


def test_it_counts_the_last_24_hours_and_7_days_from_the_hourly_buckets_and_sorts_by_them(viewer_client):
    busy, quiet = name("busy"), name("quiet")
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    for entry, hours_ago, count in [(busy, 2, 5), (busy, 72, 7), (busy, 240, 11), (quiet, 30, 9)]:
        EventNameHour.objects.create(event_name=entry, hour=now - timedelta(hours=hours_ago), count=count)

    response = viewer_client.get(PAGE, {"sort": "-day"})
    assert [(e.name, e.day_count, e.week_count) for e in response.context["page_obj"]] == [
        ("busy", 5, 12),
        ("quiet", 0, 9),
    ]
    assert rows(viewer_client.get(PAGE, {"sort": "-week"})) == ["busy", "quiet"]
    assert rows(viewer_client.get(PAGE, {"sort": "week"})) == ["quiet", "busy"]


def test_it_filters_the_registry(viewer_client, source):
    name("plain")
    name("gone", status=NameStatus.ARCHIVED, days_ago=50)
    waiting = name("waiting", slot=False)
    held_calls(source, waiting, 2)
    target = name("target")
    name("alias", rename_to=target)
    name("stale", days_ago=31)

    def shown(show):
        return sorted(rows(viewer_client.get(PAGE, {"show": show})))

    assert shown("active") == ["alias", "plain", "stale", "target", "waiting"]
    assert shown("archived") == ["gone"]
    assert shown("held") == ["waiting"]
    assert shown("renamed") == ["alias"]
    assert shown("candidates") == ["stale"]
    assert shown("all") == shown("nonsense") == ["alias", "gone", "plain", "stale", "target", "waiting"]
    counts = {f["key"]: f["count"] for f in viewer_client.get(PAGE).context["filters"]}
    assert counts == {"all": 6, "active": 5, "archived": 1, "held": 1, "renamed": 1, "candidates": 1}
    assert rows(viewer_client.get(PAGE, {"q": "TAR"})) == ["target"]


def test_it_marks_names_not_seen_for_30_days_as_archive_candidates(viewer_client):
    name("Fresh", days_ago=29)
    name("Stale", days_ago=31)
    name("Archived Long Ago", days_ago=90, status=NameStatus.ARCHIVED)

    response = viewer_client.get(PAGE)
    marked = {e.name: e.is_candidate for e in response.context["page_obj"]}
    assert marked == {"Fresh": False, "Stale": True, "Archived Long Ago": False}
    html = response.content.decode()
    assert html.count(">archive candidate</span>") == 1
    assert re.search(r'<tr class="event-name status-active candidate" data-name="Stale">', html)


def test_it_pages_a_long_registry(viewer_client):
    for i in range(105):
        name(f"name-{i:03}", days_ago=1 + i / 1000)
    first = viewer_client.get(PAGE)
    assert len(rows(first)) == 100
    assert first.context["next_url"] == "?page=2"
    assert rows(viewer_client.get(PAGE, {"page": 2})) == [f"name-{i:03}" for i in range(100, 105)]


def test_it_redirects_anonymous_visitors_to_the_login(client):
    response = client.get(PAGE)
    assert response.status_code == 302
    assert response.url == f"{reverse('admin:login')}?next={PAGE}"


def test_it_refuses_staff_pages_to_non_staff_users(client):
    user = User.objects.create_user("nostaff", password="pw")
    user.user_permissions.add(Permission.objects.get(codename="operate"))
    client.force_login(user)
    entry = name("keep")
    assert client.get(PAGE).status_code == 302
    assert client.post(action_url("archive", entry)).status_code == 302
    assert EventName.objects.get(pk=entry.pk).status == NameStatus.ACTIVE


# -- the operators' actions ----------------------------------------------------------------------


def test_operators_see_every_action_and_the_intercom_archive_reminder(operator_client, source):
    active, archived = name("Active One"), name("Archived One", status=NameStatus.ARCHIVED)
    held = name("Held One", slot=False)
    held_calls(source, held, 1)

    html = operator_client.get(PAGE).content.decode()
    assert f'action="{action_url("archive", active)}"' in html
    assert f'action="{action_url("unarchive", archived)}"' in html
    assert f'action="{action_url("release", held)}"' in html
    assert f'action="{action_url("rename", active)}"' in html
    assert "also resend held and failed calls under the new name" in html
    assert "Settings &gt; Data &gt; Events" in html
    assert '<option value="Active One">' in html  # rename targets: existing names


def test_an_operator_archives_a_name_and_the_oldest_held_name_takes_its_slot(operator_client, limit, source):
    for label in ("one", "two", "three"):
        name(label)
    old = name("Old Favourite")
    waiting = name("Waiting", slot=False, first_seen_at=timezone.now() - timedelta(days=3))
    later = name("Later", slot=False)
    held_calls(source, waiting, 3)
    EventName.objects.filter(pk=later.pk).update(held_count=1)

    response = operator_client.post(action_url("archive", old), {"next": f"{PAGE}?sort=-held"}, follow=True)
    assert response.redirect_chain == [(f"{PAGE}?sort=-held", 302)]
    old.refresh_from_db()
    assert (old.status, old.slot_used_at) == (NameStatus.ARCHIVED, None)
    assert EventName.objects.get(pk=waiting.pk).slot_used_at is not None
    assert states(waiting) == [State.PENDING] * 3
    assert EventName.objects.get(pk=later.pk).slot_used_at is None
    [message] = messages_of(response)
    assert message.startswith("Archived 'Old Favourite'; released 'Waiting' (3 held calls).")
    assert "Settings > Data > Events" in message
    entry = LogEntry.objects.get(object_id=str(old.pk))
    assert (entry.user.username, entry.action_flag, entry.object_repr) == ("otto-operator", CHANGE, "Old Favourite")
    assert entry.get_change_message() == "Archived 'Old Favourite'; released 'Waiting' (3 held calls)"
    assert entry.content_type.model_class() is EventName


def test_an_operator_unarchives_a_name_and_its_suppressed_calls_are_tried_again(operator_client, source):
    entry = name("Back Again", slot=False, status=NameStatus.ARCHIVED, archived_at=timezone.now())
    held_calls(source, entry, 2)
    Delivery.objects.filter(event_key=entry.key).update(state=State.SUPPRESSED)
    EventName.objects.filter(pk=entry.pk).update(held_count=0)

    response = operator_client.post(action_url("unarchive", entry), follow=True)
    entry.refresh_from_db()
    assert (entry.status, entry.archived_at) == (NameStatus.ACTIVE, None)
    assert states(entry) == [State.PENDING, State.PENDING]
    assert messages_of(response) == ["Unarchived 'Back Again'; trying 2 suppressed calls again."]
    assert LogEntry.objects.get(object_id=str(entry.pk)).change_message == (
        "Unarchived 'Back Again'; trying 2 suppressed calls again"
    )


def test_an_operator_renames_a_name_to_a_new_one_and_resends_its_held_calls(operator_client, source):
    entry = name("signup", slot=False)
    held_calls(source, entry, 2)

    response = operator_client.post(
        action_url("rename", entry), {"new_name": "  Signed Up ", "resend": "on"}, follow=True
    )
    target = EventName.objects.get(key="signed up")
    assert target.name == "Signed Up"
    assert renamed(entry) == target.name
    assert states(entry) == [State.PENDING, State.PENDING]
    assert messages_of(response) == [
        "Renamed 'signup' to 'Signed Up'; resent 2 held or failed calls under 'Signed Up'."
    ]
    logged = {(e.object_repr, e.action_flag, e.change_message) for e in LogEntry.objects.all()}
    assert logged == {
        ("signup", CHANGE, "Renamed 'signup' to 'Signed Up'; resent 2 held or failed calls under 'Signed Up'"),
        ("Signed Up", ADDITION, "Added as the new name of 'signup'"),
        (f"rule {Rule.objects.get().pk}: rename signup", ADDITION, "Renames 'signup' to 'Signed Up'."),  # its rule
    }


def test_an_operator_renames_to_an_existing_name_without_resending(operator_client, source):
    entry, existing = name("Sign Up", slot=False), name("Signed Up")
    held_calls(source, entry, 1)

    response = operator_client.post(action_url("rename", entry), {"new_name": "signed up"}, follow=True)
    assert renamed(entry) == existing.name
    assert states(entry) == [State.HELD]
    assert messages_of(response) == ["Renamed 'Sign Up' to 'Signed Up'."]
    assert EventName.objects.count() == 2
    logged = [e.change_message for e in LogEntry.objects.order_by("pk")]
    assert logged == ["Renames 'Sign Up' to 'Signed Up'.", "Renamed 'Sign Up' to 'Signed Up'"]


@pytest.mark.parametrize(("new_name", "error"), [("", "needs a new name"), ("SAME", "cannot be renamed to itself")])
def test_a_rename_the_service_refuses_changes_nothing(operator_client, new_name, error):
    entry = name("same")
    response = operator_client.post(action_url("rename", entry), {"new_name": new_name}, follow=True)
    [message] = messages_of(response)
    assert error in message
    assert renamed(entry) is None
    assert not LogEntry.objects.exists()


def test_an_operator_releases_a_names_held_calls(operator_client, source):
    target = name("Signed Up")
    entry = name("Sign Up", slot=False, rename_to=target)
    held_calls(source, entry, 3)

    response = operator_client.post(action_url("release", entry), follow=True)
    assert states(entry) == [State.PENDING] * 3
    assert EventName.objects.get(pk=entry.pk).held_count == 0
    assert messages_of(response) == ["Released 3 held calls of 'Sign Up'."]
    assert LogEntry.objects.get(object_id=str(entry.pk)).change_message == "Released 3 held calls of 'Sign Up'"


def test_releasing_without_a_free_slot_warns_that_the_calls_will_hold_again(operator_client, settings, source):
    settings.INTERCOM_EVENT_NAME_LIMIT = 1
    name("taken")
    entry = name("no room", slot=False)
    held_calls(source, entry, 1)

    response = operator_client.post(action_url("release", entry), follow=True)
    [message] = response.context["messages"]
    assert message.level_tag == "warning"
    assert "has no slot and none is free" in str(message)


def test_actions_are_post_only(operator_client):
    entry = name("kept")
    for verb in ACTIONS:
        assert operator_client.get(action_url(verb, entry)).status_code == 405
    assert not LogEntry.objects.exists()


def test_an_action_on_an_unknown_name_is_a_404(operator_client):
    assert operator_client.post(reverse("admin:event_name_archive", args=[999])).status_code == 404


# -- viewers, CSRF -------------------------------------------------------------------------------


def test_viewers_see_the_page_without_any_action(viewer_client, source):
    active, archived = name("Active One"), name("Archived One", status=NameStatus.ARCHIVED)
    held = name("Held One", slot=False)
    held_calls(source, held, 1)

    response = viewer_client.get(PAGE)
    assert response.status_code == 200
    assert response.context["can_operate"] is False
    html = response.content.decode()
    assert {"Active One", "Archived One", "Held One"} <= set(rows(response))
    for entry in (active, archived, held):
        for verb in ACTIONS:
            assert action_url(verb, entry) not in html
    assert "event-name-actions" not in html
    assert ">Archive</button>" not in html
    assert "Release held" not in html
    assert "Rename&hellip;" not in html
    # The only form that posts is the header's log-out.
    assert re.findall(r'<form[^>]*method="post"[^>]*action="([^"]+)"', html) == [reverse("admin:logout")]


def test_viewers_are_refused_every_action(viewer_client, source):
    entry = name("Locked", slot=False)
    held_calls(source, entry, 1)
    data = {"new_name": "Elsewhere", "resend": "on"}
    for verb in ACTIONS:
        assert viewer_client.post(action_url(verb, entry), data).status_code == 403
    entry.refresh_from_db()
    assert (entry.status, renamed(entry), entry.held_count) == (NameStatus.ACTIVE, None, 1)
    assert states(entry) == [State.HELD]
    assert not EventName.objects.filter(key="elsewhere").exists()
    assert not LogEntry.objects.exists()


def test_actions_need_the_csrf_token(operator):
    entry = name("Guarded")
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    for verb in ACTIONS:
        assert client.post(action_url(verb, entry), {"new_name": "other"}).status_code == 403
    assert EventName.objects.get(pk=entry.pk).status == NameStatus.ACTIVE
    assert not LogEntry.objects.exists()

    # The page's own form carries the token, and with it the same POST goes through.
    html = client.get(PAGE).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    response = client.post(action_url("archive", entry), {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert EventName.objects.get(pk=entry.pk).status == NameStatus.ARCHIVED


def test_a_staff_user_without_a_role_is_refused_the_page_and_its_actions(db, client):
    entry = EventName.objects.create(key="ordered", name="Ordered", first_seen_at=timezone.now())
    user = User.objects.create_user("nobody", "n@example.com", "pw", is_staff=True)
    client.force_login(user)
    assert client.get(reverse("admin:event_names")).status_code == 403
    for name in ("archive", "unarchive", "rename", "release"):
        assert client.post(reverse(f"admin:event_name_{name}", args=[entry.pk])).status_code == 403
    assert EventName.objects.get(pk=entry.pk).status == NameStatus.ACTIVE


def test_a_slot_taken_for_a_call_not_yet_delivered_is_shown_unconfirmed(db, viewer_client):
    now = timezone.now()
    EventName.objects.create(key="timed out", name="Timed Out", first_seen_at=now, slot_used_at=now)
    EventName.objects.create(key="sent", name="Sent", first_seen_at=now, slot_used_at=now, delivered_count=3)
    EventName.objects.create(key="held", name="Held", first_seen_at=now)
    body = viewer_client.get(reverse("admin:event_names")).content.decode()

    def slot(name):
        [row] = [row for row in body.split("<tr")[1:] if "field-slot" in row and f">{name}<" in row]
        cell = re.search(r'class="field-slot">(.*?)</td>', row, re.S).group(1)
        return re.sub(r"<[^>]+>", "", cell).strip()

    assert (slot("Timed Out"), slot("Sent"), slot("Held")) == ("unconfirmed", "yes", "no")
