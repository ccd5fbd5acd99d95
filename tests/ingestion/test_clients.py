"""Real client libraries, unmodified, against a live relay: what they send is stored right."""

import datetime as dt
import importlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from forwarding.models import Call, Delivery, Source
from tests.ingestion.conftest import basic

pytestmark = pytest.mark.django_db(transaction=True)

NODE_DIR = Path(__file__).resolve().parent.parent / "clients" / "node"
HISTORICAL = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


@pytest.fixture
def live_source(transactional_db):
    return Source.create_with_key("Live")


@pytest.fixture
def errors():
    """Collects what a client's on_error reports; a test asserts it stays empty."""
    return []


def calls_by_type():
    calls = {call.type: call for call in Call.objects.all()}
    assert Delivery.objects.count() == len(calls) == 4
    return calls


def send_python_calls(client):
    client.identify("py-user", {"email": "py@example.com", "name": "Py"}, message_id="py-identify-1")
    client.track("py-user", "Order Completed", {"revenue": 9.5}, timestamp=HISTORICAL, message_id="py-track-1")
    client.group("py-user", "org-py", {"name": "Initech", "employees": 42}, message_id="py-group-1")
    client.page("py-user", "Docs", "Getting Started", {"url": "https://example.com/docs"}, message_id="py-page-1")


def finish(client):
    """Wait until a Python client has sent everything and stopped its consumer thread."""
    client.flush()
    if not client.sync_mode:
        client.join()


def assert_python_calls(source, library):
    calls = calls_by_type()
    identify, track, group, page = (calls[t] for t in ("identify", "track", "group", "page"))
    for call in calls.values():
        assert call.source == source
        assert call.user_id == "py-user"
        assert call.anonymous_id == ""
        assert call.payload["context"]["library"]["name"] == library
        assert call.payload["context"]["ip"] == "127.0.0.1"
        assert call.sent_at is not None
    for call in calls.values():
        # The client's clock is the relay's: sentAt is within the skew threshold of the arrival, so
        # no call is moved.
        assert call.timestamp == call.original_timestamp
    for call in (identify, group, page):
        # Made just before they were sent: close to the arrival.
        assert call.received_at - call.timestamp < dt.timedelta(seconds=30)
    assert (identify.message_id, identify.email) == ("py-identify-1", "py@example.com")
    assert identify.payload["traits"] == {"email": "py@example.com", "name": "Py"}
    assert (track.message_id, track.event) == ("py-track-1", "Order Completed")
    assert track.payload["properties"] == {"revenue": 9.5}
    # A historical timestamp stays historical: the device clock was right, so correction keeps it.
    assert track.original_timestamp == HISTORICAL
    assert abs(track.timestamp - HISTORICAL) < dt.timedelta(seconds=30)
    assert (group.group_id, group.payload["traits"]) == ("org-py", {"name": "Initech", "employees": 42})
    assert (page.event, page.payload["category"]) == ("Getting Started", "Docs")
    assert page.payload["properties"]["url"] == "https://example.com/docs"


@pytest.mark.parametrize(
    "options",
    [{"sync_mode": True}, {"sync_mode": True, "gzip": True}, {"sync_mode": False, "upload_interval": 0.1}],
    ids=["sync", "sync-gzip", "batched"],
)
def test_it_stores_what_segment_analytics_python_sends(live_server, live_source, errors, options):
    from segment.analytics import Client

    source, key = live_source
    client = Client(
        key, host=live_server.url, max_retries=1, timeout=10, on_error=lambda e, b: errors.append(e), **options
    )
    send_python_calls(client)
    finish(client)
    assert errors == []
    assert_python_calls(source, "analytics-python")


def test_it_moves_a_skewed_clients_calls_by_whole_seconds_and_keeps_them_apart(
    live_server, live_source, errors, monkeypatch
):
    # A device whose clock is an hour and 0.4 s ahead: segment-analytics-python stamps sentAt with it.
    import segment.analytics.request as request_module
    from segment.analytics import Client

    skew = dt.timedelta(hours=1, milliseconds=400)

    class SkewedClock(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return dt.datetime.now(tz) + skew

    monkeypatch.setattr(request_module, "datetime", SkewedClock)
    _, key = live_source
    # Two calls of one user and name, 0.2 s apart but in different seconds of the device's clock.
    second = (dt.datetime.now(dt.UTC) + skew - dt.timedelta(seconds=10)).replace(microsecond=0)
    made = [second + dt.timedelta(milliseconds=900), second + dt.timedelta(milliseconds=1100)]
    client = Client(key, host=live_server.url, upload_interval=1, max_retries=1, on_error=lambda e, b: errors.append(e))
    for n, moment in enumerate(made):
        client.track("py-user", "Clicked", timestamp=moment, message_id=f"skewed-{n}")
    finish(client)
    assert errors == []

    first, later = Call.objects.order_by("message_id")
    assert first.sent_at == later.sent_at  # one batch, so one shift
    for call, moment in zip((first, later), made, strict=True):
        assert call.original_timestamp == moment
        shift = call.original_timestamp - call.timestamp
        # The hour and 0.4 s less the transit, in whole seconds.
        assert shift % dt.timedelta(seconds=1) == dt.timedelta(0)
        assert abs(shift - dt.timedelta(hours=1)) <= dt.timedelta(seconds=1)
    # Still in different seconds, a second apart, so Intercom keeps both events.
    assert later.timestamp.replace(microsecond=0) - first.timestamp.replace(microsecond=0) == dt.timedelta(seconds=1)


def test_it_stores_what_rudder_sdk_python_sends_gzipped(live_server, live_source, errors, monkeypatch):
    # rudder-sdk-python loads a .env file at import; keep the test independent of one.
    monkeypatch.setenv("PYTHON_DOTENV_DISABLED", "1")
    Client = importlib.import_module("rudderstack.analytics").Client

    source, key = live_source
    client = Client(
        key,
        host=live_server.url,
        max_retries=1,
        timeout=10,
        upload_interval=0.1,
        on_error=lambda e, b: errors.append(e),
    )
    assert client.gzip is True
    send_python_calls(client)
    finish(client)
    assert errors == []
    assert_python_calls(source, "analytics-python")
    assert all(call.payload["channel"] == "server" for call in Call.objects.all())


def test_it_stores_a_python_client_retry_once(live_server, live_source, errors):
    from segment.analytics import Client

    source, key = live_source
    client = Client(key, host=live_server.url, sync_mode=True, max_retries=1, on_error=lambda e, b: errors.append(e))
    for _ in range(2):
        client.track("py-user", "Retried", message_id="fixed-message-id")
    assert errors == []
    assert Call.objects.filter(source=source).count() == 1
    assert Delivery.objects.count() == 1


def test_it_stores_a_raw_retry_once(live_server, live_source):
    _, key = live_source
    body = json.dumps({"batch": [{"type": "track", "userId": "u", "event": "E", "messageId": "raw-1"}]})
    headers = {"Authorization": basic(key), "Content-Type": "application/json"}
    first = requests.post(f"{live_server.url}/v1/batch", data=body, headers=headers, timeout=10)
    retry = requests.post(
        f"{live_server.url}/v1/batch", data=body, headers={**headers, "X-Retry-Count": "1"}, timeout=10
    )
    assert (first.status_code, retry.status_code) == (200, 200)
    assert retry.json() == {"success": True}
    assert Call.objects.count() == 1
    assert Delivery.objects.count() == 1


def test_it_never_redirects_a_client_that_adds_a_slash(live_server, live_source):
    _, key = live_source
    response = requests.post(
        f"{live_server.url}/v1/batch/", json={"batch": []}, headers={"Authorization": basic(key)}, timeout=10
    )
    assert response.history == []
    assert response.status_code == 404


def node_modules():
    """Install the pinned Node client once (`npm ci` from the lock file) when it is missing."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed for the @segment/analytics-node test")
    if not (NODE_DIR / "node_modules" / "@segment" / "analytics-node").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, timeout=240)


@pytest.mark.slow
def test_it_stores_what_segment_analytics_node_sends(live_server, live_source):
    node_modules()
    source, key = live_source
    result = subprocess.run(
        ["node", "send.js", live_server.url, key], cwd=NODE_DIR, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "flushed" in result.stdout

    calls = calls_by_type()
    identify, track, group, page = (calls[t] for t in ("identify", "track", "group", "page"))
    for call in calls.values():
        assert call.source == source
        assert call.payload["context"]["library"] == {"name": "@segment/analytics-node", "version": "3.1.0"}
        assert call.sent_at is not None
    assert (identify.user_id, identify.email, identify.message_id) == (
        "node-user",
        "node@example.com",
        "node-identify-1",
    )
    assert identify.payload["traits"] == {"email": "node@example.com", "name": "Node User"}
    assert (track.event, track.message_id) == ("Order Completed", "node-track-1")
    assert track.payload["properties"] == {"revenue": 42.5, "currency": "EUR"}
    assert track.original_timestamp == HISTORICAL
    assert abs(track.timestamp - HISTORICAL) < dt.timedelta(seconds=30)
    assert track.payload["originalTimestamp"] == "2024-01-02T03:04:05.000Z"
    assert (group.group_id, group.payload["traits"]) == ("org-node", {"name": "Initech"})
    assert (page.user_id, page.anonymous_id, page.event) == ("", "node-anon", "Getting Started")
    assert page.payload["category"] == "Docs"
    assert page.payload["properties"]["url"] == "https://example.com/docs"


def test_it_stores_concurrent_retries_of_one_message_once(live_server, live_source):
    from concurrent.futures import ThreadPoolExecutor

    _, key = live_source
    body = json.dumps({"batch": [{"type": "track", "userId": "u", "event": "E", "messageId": "concurrent-1"}]})
    headers = {"Authorization": basic(key), "Content-Type": "application/json"}

    def send(_):
        return requests.post(f"{live_server.url}/v1/batch", data=body, headers=headers, timeout=30).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(send, range(16)))
    assert statuses == [200] * 16
    assert Call.objects.count() == 1
    assert Delivery.objects.count() == 1
