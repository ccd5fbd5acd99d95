"""The event-names page in Chromium: an operator archives, renames and releases, and a real qcluster
delivers the released calls to the Intercom sandbox; a viewer finds no action and a forged POST fails.

The calls come through the Segment client into the live server; the worker runs with a small
INTERCOM_EVENT_NAME_LIMIT (it reads the limit from its environment)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from django.utils import timezone
from segment.analytics import Client

from forwarding import event_names
from forwarding.models import Delivery, EventName, NameStatus, Rule, State
from forwarding.transformations import store
from tests.e2e.conftest import log_in
from tests.processes import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

LIMIT = 4
T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
SCREENSHOT = "/tmp/event-names-operator.png"


@pytest.fixture(autouse=True)
def limit(transactional_db, settings):
    """The limit this process enforces, the same as the worker's."""
    settings.INTERCOM_EVENT_NAME_LIMIT = LIMIT


@pytest.fixture
def relay(live_server, source, cluster, sandbox):
    cluster.configure(INTERCOM_EVENT_NAME_LIMIT=LIMIT)
    _, key = source
    return Client(key, host=live_server.url, sync_mode=True, max_retries=0)


def someone_elses_names(*labels):
    """Names that use a slot but have not been seen for weeks (archive candidates)."""
    for i, label in enumerate(labels):
        seen = timezone.now() - timedelta(days=40 + i)
        EventName.objects.create(
            key=label.lower(), name=label, first_seen_at=seen, last_seen_at=seen, slot_used_at=seen, total_count=9
        )


def states(name):
    return [d.state for d in Delivery.objects.filter(call__event=name).order_by("created_at", "pk")]


def wait_for_states(name, expected, timeout=30):
    wait_until(lambda: states(name) == expected, timeout, message=f"{name!r} deliveries {expected} ({states(name)})")


def events(server, user_id="ada"):
    return [(e["event_name"], e["created_at"]) for e in server.state.events_for(user_id)]


def at(seconds):
    return T0 + timedelta(seconds=seconds)


def row(page, name):
    return page.locator(f'tr[data-name="{name}"]')


def flash(page):
    """The messages shown after an action (other banners may share the list)."""
    return page.locator("ul.messagelist li").all_inner_texts()


def test_an_operator_archives_renames_and_releases_and_the_sandbox_receives_the_calls(
    page,
    live_server,
    relay,
    sandbox,
    operator,
):
    someone_elses_names("Legacy Checkout", "Old Promo Click")
    relay.identify("ada", {"email": "ada@example.com"}, timestamp=at(0))
    relay.track("ada", "Signed Up", {"plan": "trial"}, timestamp=at(1))
    relay.track("ada", "Plan Chosen", {"plan": "pro"}, timestamp=at(2))
    wait_for_states("Plan Chosen", [State.DELIVERED])
    assert event_names.usage().full
    # Past the cap: held in the relay, nothing sent to Intercom.
    relay.track("ada", "Invited Teammate", {"n": 1}, timestamp=at(3))
    relay.track("ada", "Invited Teammate", {"n": 2}, timestamp=at(4))
    relay.track("ada", "Exported Report", {"format": "csv"}, timestamp=at(5))
    relay.track("ada", "Opened Settings", {"tab": "billing"}, timestamp=at(6))
    wait_for_states("Invited Teammate", [State.HELD, State.HELD])
    wait_for_states("Exported Report", [State.HELD])
    wait_for_states("Opened Settings", [State.HELD])
    assert [name for name, _ in events(sandbox)] == ["Signed Up", "Plan Chosen"]

    log_in(page, live_server, operator.username)
    page.goto(f"{live_server.url}{reverse('admin:event_names')}")
    assert page.locator("#usage-figures").inner_text() == f"{LIMIT} of {LIMIT}"
    assert "level-red" in page.locator("#usage-gauge").get_attribute("class")
    assert "Settings > Data > Events" in page.locator("#archive-reminder").inner_text()
    assert row(page, "Invited Teammate").locator("td.field-held").inner_text() == "2"
    assert row(page, "Legacy Checkout").locator(".tag-candidate").is_visible()
    page.screenshot(path=SCREENSHOT, full_page=True)

    # Archive an archive candidate: its slot goes to the oldest held name, whose calls are sent.
    page.click('a[data-filter="candidates"]')
    assert page.locator("#result_list tbody tr").count() == 2
    row(page, "Legacy Checkout").locator("button.action-archive").click()
    assert any(
        text.startswith("Archived 'Legacy Checkout'; released 'Invited Teammate' (2 held calls).")
        for text in flash(page)
    )
    assert "show=candidates" in page.url
    wait_until(lambda: ("Invited Teammate", int(at(4).timestamp())) in events(sandbox), 30, message="released events")
    assert EventName.objects.get(key="legacy checkout").status == NameStatus.ARCHIVED

    # Rename a held name to one that has a slot, resending its held call under the new name.
    page.click('a[data-filter="held"]')
    renamed = row(page, "Exported Report")
    renamed.locator("details.rename summary").click()
    renamed.locator('input[name="new_name"]').fill("Plan Chosen")
    renamed.locator('input[name="resend"]').check()
    page.screenshot(path="/tmp/event-names-rename.png")
    renamed.locator("button.action-rename").click()
    assert "Renamed 'Exported Report' to 'Plan Chosen'; resent 1 held or failed call under 'Plan Chosen'." in flash(
        page
    )
    assert row(page, "Exported Report").count() == 0  # no longer held
    wait_until(lambda: ("Plan Chosen", int(at(5).timestamp())) in events(sandbox), 30, message="renamed event")

    # Rename without resending, then release the held call from the page.
    held = row(page, "Opened Settings")
    held.locator("details.rename summary").click()
    held.locator('input[name="new_name"]').fill("Signed Up")
    held.locator("button.action-rename").click()
    assert "Renamed 'Opened Settings' to 'Signed Up'." in flash(page)
    assert row(page, "Opened Settings").locator("td.field-rename").inner_text() == "→ Signed Up"
    row(page, "Opened Settings").locator("button.action-release").click()
    assert "Released 1 held call of 'Opened Settings'." in flash(page)
    page.screenshot(path="/tmp/event-names-released.png")
    wait_until(lambda: ("Signed Up", int(at(6).timestamp())) in events(sandbox), 30, message="released event")

    assert events(sandbox) == [
        ("Signed Up", int(at(1).timestamp())),
        ("Plan Chosen", int(at(2).timestamp())),
        ("Invited Teammate", int(at(3).timestamp())),
        ("Invited Teammate", int(at(4).timestamp())),
        ("Plan Chosen", int(at(5).timestamp())),
        ("Signed Up", int(at(6).timestamp())),
    ]
    [forwarded] = [e for e in sandbox.state.events_for("ada") if e["created_at"] == int(at(5).timestamp())]
    assert forwarded["metadata"] == {"format": "csv"}
    assert not [r for r in sandbox.requests if r["status"] == 422]
    page.goto(f"{live_server.url}{reverse('admin:event_names')}")
    assert page.locator("#usage-figures").inner_text() == f"{LIMIT} of {LIMIT}"
    rules = [f"rule {rule.pk}: {rule.name}" for rule in Rule.objects.all()]  # each rename is a rule
    expected = ["Exported Report", "Legacy Checkout", "Opened Settings", "Opened Settings", *rules]
    assert sorted(LogEntry.objects.values_list("object_repr", flat=True)) == sorted(expected)
    assert [rule.name for rule in Rule.objects.order_by("pk")] == ["rename Exported Report", "rename Opened Settings"]


def test_a_viewer_finds_no_action_and_a_forged_post_is_refused(page, live_server, viewer):
    someone_elses_names("Legacy Checkout")
    entry = EventName.objects.get(key="legacy checkout")

    log_in(page, live_server, viewer.username)
    page.goto(f"{live_server.url}{reverse('admin:event_names')}")
    assert page.locator("#usage-figures").inner_text() == f"1 of {LIMIT}"
    assert row(page, "Legacy Checkout").is_visible()
    assert page.locator("button.action-archive, button.action-rename, button.action-release").count() == 0
    assert page.locator("form[action*='event-names']").count() == 0
    assert page.locator("#archive-reminder").count() == 0

    # A forged POST with the viewer's session and a valid CSRF token: the permission check refuses it.
    token = page.locator("input[name=csrfmiddlewaretoken]").first.input_value()
    url = f"{live_server.url}{reverse('admin:event_name_archive', args=[entry.pk])}"
    response = page.request.post(url, form={"csrfmiddlewaretoken": token}, headers={"Referer": page.url})
    assert response.status == 403
    rename = f"{live_server.url}{reverse('admin:event_name_rename', args=[entry.pk])}"
    response = page.request.post(rename, form={"csrfmiddlewaretoken": token, "new_name": "Hijacked"})
    assert response.status == 403
    entry.refresh_from_db()
    assert (entry.status, entry.key in store.renames()) == (NameStatus.ACTIVE, False)
    assert not LogEntry.objects.exists()
