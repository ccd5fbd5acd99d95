"""Fixtures of the forwarding tests."""

import pytest

from forwarding.delivery import queue, workspace
from forwarding.models import Delivery
from tests.forwarding.ingest import post_batch


@pytest.fixture
def store(client, source, monkeypatch):
    """Stores a /v1/batch through the API; returns the new deliveries' pks in the order received.
    The test drives the engine itself: storing puts nothing on the queue (the test's transaction
    never commits, and a test that watches the queue sees only what the engine hands on)."""

    def post(*messages):
        before = set(Delivery.objects.values_list("pk", flat=True))
        with monkeypatch.context() as patch:
            patch.setattr(queue, "enqueue_with_commit", lambda delivery_ids: None)
            post_batch(client, source[1], messages)
        rows = Delivery.objects.exclude(pk__in=before).order_by("created_at", "pk")
        return list(rows.values_list("pk", flat=True))

    return post


@pytest.fixture
def one_worker(monkeypatch):
    """The engine in this process alone: nothing goes on django-q2's queue (tests deliver
    themselves), and the workspace is asked again (GET /me) in each test."""
    monkeypatch.setattr(queue, "enqueue_tasks", lambda tasks: True)
    workspace.forget()
    yield
    workspace.forget()
