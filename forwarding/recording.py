"""An attempt in progress: its row exists before the first request, and each HTTP
exchange is written before the next request or with the outcome, in its transaction (bodies
cut, allowlisted headers, never the token)."""

import json
import time
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from forwarding import intercom, ratelimit
from forwarding.models import Attempt, Exchange, IntercomStatus
from forwarding.models.deliveries import BODY_LIMIT

# The limiter's windows are 10 seconds; a worker waits for the next one rather than fail.
LIMITER_POLL_SECONDS = 2.0
LIMITER_MAX_WAIT_SECONDS = 30.0
STATUS_WRITE_INTERVAL = timedelta(seconds=10)
SUCCESS_CHECK_SECONDS = 1.0
_success_checked_at = float("-inf")


def cut(value):
    """Text of a body, cut to the stored limit."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    if len(text) > BODY_LIMIT:
        return text[:BODY_LIMIT] + "…[cut]"
    return text


class AttemptLog:
    """Sends requests for one attempt and records them."""

    def __init__(self, delivery, trigger, attempt=None, contacts=None):
        # The task creates its attempts' rows together (`Journal.begin`); alone, it is created here.
        self.attempt = attempt or Attempt.objects.create(delivery=delivery, trigger=trigger)
        self.contacts = {} if contacts is None else contacts  # {userId: contact id or None}, see sending
        self.client = intercom.client()
        self.started_at = timezone.now()
        self.started = time.monotonic()
        self.unwritten = None  # the last exchange, written with the next request or the outcome

    def send(self, operation, *args):
        """Call `Client.<operation>(*args)` once the shared limiter allows, and record it."""
        self._write_exchange()
        self._wait_for_limiter()
        response = getattr(self.client, operation)(*args)
        ratelimit.observe(response)
        note_connection(response)
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
        return response

    def _write_exchange(self):
        if self.unwritten is not None:
            self.unwritten.save(force_insert=True)
            self.unwritten = None

    def _wait_for_limiter(self):
        waited = 0.0
        while waited < LIMITER_MAX_WAIT_SECONDS:
            wait = ratelimit.wait_seconds()
            if wait <= 0:
                return
            pause = min(wait, LIMITER_POLL_SECONDS)
            time.sleep(pause)
            waited += pause

    def finish(self, outcome, status=None, error="", warnings=()):
        self._write_exchange()
        Attempt.objects.filter(pk=self.attempt.pk).update(
            outcome=outcome,
            status=status,
            error=error[:500],
            warnings=list(warnings),
            started_at=self.started_at,
            duration_ms=self.duration_ms(),
        )

    def duration_ms(self):
        return int((time.monotonic() - self.started) * 1000)

    def take_unwritten(self):
        """The exchange not written yet, for the journal to write (at most one)."""
        unwritten, self.unwritten = self.unwritten, None
        return [unwritten] if unwritten is not None else []


def note_connection(response):
    """Keep the dashboard's connection status: a refused token raises the banner, a success clears it."""
    global _success_checked_at
    if response.status in (401, 403):
        _success_checked_at = float("-inf")  # the next success clears the banner at once
        IntercomStatus.objects.update_or_create(
            name="intercom", defaults={"auth_failed_at": timezone.now(), "auth_error": response.error_message[:500]}
        )
    elif response.ok:
        # Written at most every few seconds, but at once when it clears the banner; and asked at
        # most once a second by each process (a banner clears within that second).
        if time.monotonic() - _success_checked_at < SUCCESS_CHECK_SECONDS:
            return
        _success_checked_at = time.monotonic()
        now = timezone.now()
        stale = Q(last_success_at=None) | Q(last_success_at__lt=now - STATUS_WRITE_INTERVAL)
        updated = IntercomStatus.objects.filter(stale | ~Q(auth_failed_at=None), name="intercom").update(
            last_success_at=now, auth_failed_at=None, auth_error=""
        )
        if not updated:
            IntercomStatus.objects.get_or_create(name="intercom", defaults={"last_success_at": now})
