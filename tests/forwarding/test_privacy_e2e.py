"""Forgetting a user end to end: the Segment client, ingestion on a live server, a real qcluster
and the sandbox over HTTP. Their contact is gone from Intercom, nothing of theirs is left in any
table, and their later calls are suppressed when asked."""

import pytest
from django.core.management import call_command
from segment.analytics import Client

from forwarding.models import Call, Delivery, State
from tests.forwarding.test_privacy import stored_anywhere
from tests.processes import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_forgotten_user_is_gone_from_intercom_and_the_relay_and_stays_gone(live_server, source, cluster, sandbox):
    cluster.ensure_running()
    client = Client(source[1], host=live_server.url, sync_mode=True)
    client.page(anonymous_id="anon-9", name="Pricing")
    client.identify("zoe", {"email": "zoe@example.com", "plan": "pro"}, anonymous_id="anon-9")
    client.track("zoe", "Ordered", {"total": 12})
    client.identify("yan", {"email": "yan@example.com"})
    wait_until(
        lambda: list(Delivery.objects.values_list("state", flat=True)) == [State.DELIVERED] * 4,
        60,
        message="four calls delivered",
    )
    assert sandbox.state.contact_by_external_id("zoe") is not None

    call_command("forget_user", "zoe", "--suppress")

    assert sandbox.state.contact_by_external_id("zoe") is None
    assert sandbox.state.contact_by_external_id("yan") is not None
    for trace in ("zoe", "zoe@example.com", "anon-9"):
        assert stored_anywhere(trace) == [], trace

    client.track("zoe", "Came Back")
    later = Call.objects.latest("received_at")
    assert later.payload is None and later.user_id == ""
    assert Delivery.objects.get(pk=later.pk).state == State.SUPPRESSED
    assert not [r for r in sandbox.requests if r.get("request_body") and "Came Back" in str(r["request_body"])]
