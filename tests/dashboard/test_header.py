"""The cap usage shows in the header of every dashboard page and leads to the event-names page."""

import pytest
from django.urls import reverse

from forwarding.models import EventName

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "name", ["index", "delivery_log", "user_history", "event_names", "forwarding_source_changelist"]
)
def test_every_page_shows_the_event_name_usage(viewer_client, settings, name):
    settings.INTERCOM_EVENT_NAME_LIMIT = 50
    from django.utils import timezone

    for key in ("one", "two", "three"):
        EventName.objects.create(key=key, name=key, slot_used_at=timezone.now())
    EventName.objects.create(key="held", name="held")
    page = viewer_client.get(reverse(f"admin:{name}")).content.decode()
    badge = page[page.index('id="event-name-usage"') :][:400]
    assert "3 of 50" in badge
    assert f'href="{reverse("admin:event_names")}"' in badge
