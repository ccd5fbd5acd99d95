"""The cap usage shows in the header of every dashboard page and leads to the event-names page; the
data attributes' usage joins it once more than 80% of Intercom's limit is used."""

import pytest
from django.urls import reverse

from forwarding import intercom
from forwarding.delivery import connection
from forwarding.models import DataAttribute, EventName, IntercomStatus

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


def learned_workspace(workspace_id):
    IntercomStatus.objects.create(
        name="intercom", config_key=connection.config_key(), base_url=intercom.base_url(), workspace_id=workspace_id
    )


@pytest.mark.parametrize(
    "name", ["index", "delivery_log", "user_history", "event_names", "data_attributes", "forwarding_source_changelist"]
)
def test_the_data_attribute_usage_shows_in_the_header_above_80_percent(viewer_client, settings, name):
    settings.INTERCOM_ATTRIBUTE_LIMIT = 10
    learned_workspace("ws-1")
    for n in range(9):
        DataAttribute.objects.create(workspace="ws-1", model=["contact", "company"][n % 2], name=f"a{n}")
    # Neither an alias's row, a refused name, nor another workspace's attribute counts.
    DataAttribute.objects.create(workspace="ws-1", model="contact", name="plan", alias="contact_plan")
    DataAttribute.objects.create(workspace="ws-1", model="contact", name="bad", usable=False, refusal="invalid_name")
    DataAttribute.objects.create(workspace="ws-2", model="contact", name="elsewhere")
    page = viewer_client.get(reverse(f"admin:{name}")).content.decode()
    badge = page[page.index('id="attribute-usage"') :][:400]
    assert "9 of 10" in badge
    assert f'href="{reverse("admin:data_attributes")}"' in badge
    assert 'id="event-name-usage"' in page  # beside the event names'


def test_the_data_attribute_usage_stays_out_of_the_header_up_to_80_percent(viewer_client, settings):
    settings.INTERCOM_ATTRIBUTE_LIMIT = 10
    learned_workspace("ws-1")
    for n in range(8):
        DataAttribute.objects.create(workspace="ws-1", model="contact", name=f"a{n}")
    for n in range(5):  # another workspace's: not the shown one's
        DataAttribute.objects.create(workspace="ws-2", model="contact", name=f"b{n}")
    for name in ["index", "delivery_log", "data_attributes"]:
        page = viewer_client.get(reverse(f"admin:{name}")).content.decode()
        assert 'id="attribute-usage"' not in page, name
    # The page itself still shows the figures.
    assert "8 of 10" in viewer_client.get(reverse("admin:data_attributes")).content.decode()
