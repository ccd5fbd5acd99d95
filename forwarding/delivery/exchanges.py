"""An attempt in progress: its row exists before the first request, and each HTTP
exchange is written before the next request or with the outcome, in its transaction (bodies
cut, allowlisted headers, never the token).

What an exchange keeps depends on its answer. A failure (no answer, or a status other than 2xx)
keeps everything an operator debugs with: the headers kept and both bodies, cut. A success keeps
the request body (what Intercom received) and of the answer only what identifies it (type, id,
count): Intercom's whole contact on every identify, and the client's
headers (the same on every request, set by the settings) were half of an exchange's bytes on
disk (bench/storage.py)."""

import json
import time

from django.utils import timezone

from forwarding import intercom
from forwarding.delivery import connection, limiter
from forwarding.models import Attempt, Exchange, Outcome
from forwarding.models.deliveries import BODY_LIMIT

# Of a successful answer the keys that say what Intercom made or found. (No answer header is kept:
# its request id alone was a seventh of an exchange's bytes; the rate-limit headers are the
# limiter's, and the overview shows the window.)
SUMMARY_KEYS = ("type", "id", "external_id", "total_count")
SUMMARY_ITEMS = 5  # items of a list answer (`data`) summarised


def cut(value):
    """Text of a body (compact JSON), cut to the stored limit."""
    if value is None:
        return ""
    if isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    if len(text) > BODY_LIMIT:
        return text[:BODY_LIMIT] + "…[cut]"
    return text


def summary(body):
    """What identifies a successful answer: its type, id, external_id and total_count, and the same
    of the first items of its `data` list; text that is not JSON is kept whole (it is unexpected)."""
    if isinstance(body, dict):
        kept = {key: body[key] for key in SUMMARY_KEYS if key in body}
        if isinstance(body.get("data"), list):
            kept["data"] = [summary(item) for item in body["data"][:SUMMARY_ITEMS]]
        return kept
    if isinstance(body, list):
        return [summary(item) for item in body[:SUMMARY_ITEMS]]
    return body


def exchange_fields(response, request_headers):
    """The stored fields of one HTTP exchange: everything for a failure, the essentials for a 2xx."""
    fields = {
        "method": response.method,
        "path": response.path[:500],
        "status": response.status,
        "duration_ms": response.duration_ms,
        "request_body": cut(response.request_body),
        "error": response.error[:500],
    }
    if not response.ok:
        return {
            **fields,
            "request_headers": request_headers,
            "response_headers": response.headers,
            "response_body": cut(response.body),
        }
    return {
        **fields,
        "request_headers": {},
        "response_headers": {},
        "response_body": cut(summary(response.body)),
    }


def clear_bodies(delivery_ids, marker, **fields):
    """Empty the bodies of these deliveries' exchanges (what was sent carries the payload's
    personal data), leaving `marker` in their place; `fields` changes others too."""
    Exchange.objects.filter(attempt__delivery_id__in=delivery_ids).update(
        request_body=marker, response_body=marker, **fields
    )


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
        self.unwritten = Exchange(attempt=self.attempt, **exchange_fields(response, self.client.kept_request_headers()))

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
