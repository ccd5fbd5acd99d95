"""An attempt in progress: its row exists before the first request, and each HTTP
exchange is written before the next request or with the outcome, in its transaction (bodies
cut, allowlisted headers, never the token)."""

import json
import time

from django.utils import timezone

from forwarding import intercom
from forwarding.delivery import connection, limiter
from forwarding.models import Attempt, Exchange, Outcome
from forwarding.models.deliveries import BODY_LIMIT


def cut(value):
    """Text of a body, cut to the stored limit."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    if len(text) > BODY_LIMIT:
        return text[:BODY_LIMIT] + "…[cut]"
    return text


class AttemptLog:
    """One attempt's requests: `intercom` is the Intercom client, recording each exchange and
    waiting for the shared limiter before each request."""

    def __init__(self, delivery, trigger, attempt=None, contacts=None):
        # The task creates its attempts' rows together (`OutcomeBuffer.begin`); alone, here.
        self.attempt = attempt or Attempt.objects.create(delivery=delivery, trigger=trigger)
        self.contacts = {} if contacts is None else contacts  # {userId: contact id or None}, see sequence
        self.workspace = None  # the Intercom workspace's id, once `sequence` knows it
        self.client = intercom.client()
        self.intercom = self.client.recorded(self)
        self.started_at = timezone.now()
        self.started = time.monotonic()
        self.unwritten = None  # the last exchange, written with the next request or the outcome

    def before_request(self):
        """Write the exchange before, and wait until the shared limiter allows a request."""
        self._write_exchange()
        limiter.wait()

    def after_request(self, response):
        """Tell the limiter and the connection status, and keep the exchange to write."""
        limiter.observe(response)
        connection.note(response)
        self.unwritten = Exchange(
            attempt=self.attempt,
            method=response.method,
            path=response.path[:500],
            status=response.status,
            duration_ms=response.duration_ms,
            request_headers=self.client.kept_request_headers(),
            request_body=cut(response.request_body),
            response_headers=response.headers,
            response_body=cut(response.body),
            error=response.error[:500],
        )

    def _write_exchange(self):
        if self.unwritten is not None:
            self.unwritten.save(force_insert=True)
            self.unwritten = None

    def outcome_fields(self, result):
        """The attempt's fields its outcome sets (written by `finish`, or by the buffer)."""
        return {
            "outcome": result.outcome,
            "status": result.status,
            "error": result.error[:500] if result.outcome != Outcome.DELIVERED else "",
            "warnings": list(result.warnings),
            "rules": [list(rule) for rule in result.rules] or None,
            "started_at": self.started_at,
            "duration_ms": self.duration_ms(),
        }

    def finish(self, result):
        self._write_exchange()
        Attempt.objects.filter(pk=self.attempt.pk).update(**self.outcome_fields(result))

    def duration_ms(self):
        return int((time.monotonic() - self.started) * 1000)

    def take_unwritten(self):
        """The exchange not written yet, for the buffer to write (at most one)."""
        unwritten, self.unwritten = self.unwritten, None
        return [unwritten] if unwritten is not None else []
