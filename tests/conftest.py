"""Shared fixtures: data built in code, and no network outside loopback."""

import socket

import pytest

from forwarding.models import Source

_real_connect = socket.socket.connect


def _loopback_only(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and not (host.startswith("127.") or host in ("localhost", "::1") or host.startswith("/")):
        raise RuntimeError(f"tests must not reach the network: {address!r}")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)


@pytest.fixture
def source(db):
    """A source and its write key: (source, key)."""
    return Source.create_with_key("Website")


@pytest.fixture
def make_call(source):
    """make_call(type="track", user_id="u1", event="Signed Up", state="delivered", received_at=..., **payload)
    stores a call with its delivery, as ingestion and the engine would leave it."""
    from django.utils import timezone

    from forwarding.models import Call, Delivery

    counter = iter(range(1, 10**9))

    def make(type="track", user_id="u1", event="Signed Up", state="delivered", received_at=None, **payload):
        n = next(counter)
        received_at = received_at or timezone.now()
        message = {"type": type, "userId": user_id, "messageId": f"made-{n}", "timestamp": received_at.isoformat()}
        if type == "track":
            message["event"] = event
        message.update(payload)
        call = Call.objects.create(
            source=source[0],
            message_id=f"made-{n}",
            type=type,
            user_id=user_id,
            event=event if type == "track" else "",
            timestamp=received_at,
            received_at=received_at,
            payload=message,
        )
        Delivery.objects.create(call=call, user_id=user_id, state=state, created_at=received_at)
        return call

    return make
