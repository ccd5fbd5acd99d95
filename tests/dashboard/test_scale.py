"""With 20,000 stored calls the dashboard's pages cost the same few queries as with ten, and none
of them counts the log (bench/dashboard.py measures 10,000 and 1,000,000)."""

import io
import time

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from forwarding.models import Call

pytestmark = pytest.mark.django_db

SEEDED = 20_000
LOG = reverse("admin:delivery_log")
# Each page: its bound, and how long it may take here (generous: CI machines are slow). Every page
# reads the Intercom status (banners) and the data attributes' usage (the header's badge).
PAGES = {
    "log, first page": (f"{LOG}", 12),
    "log, failed": (f"{LOG}?state=failed", 12),
    "log, failed track in the last 7 days": (f"{LOG}?state=failed&type=track&range=7d", 12),
    "log, an event name": (f"{LOG}?event=seeded+event+07", 12),
    "log, a cause": (f"{LOG}?cause=http_503", 12),
    "log, 5xx": (f"{LOG}?status=5xx", 12),
    "log, has warnings": (f"{LOG}?warned=1", 12),
    "log, delivered with warnings in the last 24 hours": (f"{LOG}?state=delivered&warned=1&range=24h", 12),
    "log, a search": (f"{LOG}?q=seed-user-42", 12),
    "log, an email": (f"{LOG}?q=seed-user-42@example.com", 12),
    "user history": (f"{reverse('admin:user_history')}?q=seed-user-42", 18),
    "overview": (reverse("admin:index"), 18),
    "event names": (reverse("admin:event_names"), 14),
    "data attributes": (reverse("admin:data_attributes"), 12),
}


@pytest.fixture
def seeded(db):
    call_command("seed_calls", str(SEEDED), "--users", "400", "--seed", "5", stdout=io.StringIO())


def test_pages_stay_within_their_query_bounds_and_never_count_the_log(viewer_client, seeded):
    viewer_client.get(LOG)
    newest = Call.objects.order_by("-received_at", "-id").first()
    pages = {**PAGES, "call detail": (reverse("admin:call_detail", args=[newest.pk]), 15)}
    for name, (url, bound) in pages.items():
        started = time.monotonic()
        with CaptureQueriesContext(connection) as captured:
            response = viewer_client.get(url)
        elapsed = time.monotonic() - started
        assert response.status_code == 200, name
        assert len(captured) <= bound, (name, [q["sql"][:120] for q in captured])
        counts = [q["sql"] for q in captured if "COUNT(" in q["sql"].upper() and 'FROM "forwarding_call"' in q["sql"]]
        assert counts == [], name
        assert elapsed < 5, (name, elapsed)


def test_the_next_page_is_as_cheap_as_the_first(viewer_client, seeded, django_assert_max_num_queries):
    first = viewer_client.get(f"{LOG}?state=delivered")
    with django_assert_max_num_queries(12):
        second = viewer_client.get(first.context["older_url"])
    assert len(second.context["page"].rows) == 50
