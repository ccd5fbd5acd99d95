"""The Intercom connection status the dashboard shows (docs/fidelity.md): "connected" only while the
last request to the configured base URL and token succeeded; unreachable after network errors,
timeouts or a run of 5xx; refused while the token gets 401/403."""

import hashlib
import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from forwarding import intercom
from forwarding.models import IntercomStatus

logger = logging.getLogger(__name__)

# A run of this many 5xx answers, with no success between them, makes Intercom "unreachable".
SERVER_ERROR_RUN = 3
STATUS_WRITE_INTERVAL = timedelta(seconds=10)
SUCCESS_CHECK_SECONDS = 1.0
_success_checked_at = float("-inf")
_failing = False  # this process saw a failure since its last success


def config_key():
    """A digest of the configured base URL and token: a status or a cache of another
    configuration is never shown or used as this one's. (The token itself is never stored.)"""
    text = f"{intercom.base_url()}\n{settings.INTERCOM_ACCESS_TOKEN}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def current():
    """The status row of the configured connection, or None (nothing known of it yet)."""
    return IntercomStatus.objects.filter(name="intercom", config_key=config_key()).first()


def note(response):
    """Keep the status from one answer (or network error) of Intercom."""
    global _success_checked_at, _failing
    if response.status in (401, 403):
        _success_checked_at = float("-inf")  # the next success clears the banner at once
        _write(auth_failed_at=timezone.now(), auth_error=response.error_message[:500])
    elif response.ok:
        # Written at most every few seconds, but at once when it clears a banner; and asked at
        # most once a second by each process (a banner clears within that second).
        if not _failing and time.monotonic() - _success_checked_at < SUCCESS_CHECK_SECONDS:
            return
        _success_checked_at, _failing = time.monotonic(), False
        now = timezone.now()
        stale = Q(last_success_at=None) | Q(last_success_at__lt=now - STATUS_WRITE_INTERVAL)
        troubled = ~Q(auth_failed_at=None) | ~Q(unreachable_since=None) | Q(failures__gt=0)
        cleared = {"auth_failed_at": None, "auth_error": "", "unreachable_since": None, "failures": 0}
        rows = IntercomStatus.objects.filter(stale | troubled, name="intercom", config_key=config_key())
        if not rows.update(last_success_at=now, **cleared):
            if not IntercomStatus.objects.filter(name="intercom", config_key=config_key()).exists():
                _write(last_success_at=now, **cleared)
    elif response.status is None or response.status >= 500:
        _failing = True
        _success_checked_at = float("-inf")
        _note_failure(response)


def _note_failure(response):
    now = timezone.now()
    error = (response.error or f"{response.status} {response.error_message}".strip())[:500]
    status = _status()
    status.failures += 1
    status.last_failure_at, status.failure_error = now, error
    unreachable = response.status is None or status.failures >= SERVER_ERROR_RUN
    if unreachable and status.unreachable_since is None:
        status.unreachable_since = now
        logger.warning("Intercom unreachable at %s: %s", intercom.base_url(), error)
    status.save(update_fields=["failures", "last_failure_at", "failure_error", "unreachable_since"])


def _status():
    """The status row, reset when it described another configuration."""
    global _success_checked_at
    key = config_key()
    status, created = IntercomStatus.objects.get_or_create(name="intercom")
    if created or status.config_key != key:
        _success_checked_at = float("-inf")  # a new row: the next success is written at once
        for field in ("last_success_at", "auth_failed_at", "unreachable_since", "last_failure_at"):
            setattr(status, field, None)
        status.auth_error = status.failure_error = status.workspace_id = status.workspace_name = ""
        status.failures = 0
        status.config_key, status.base_url = key, intercom.base_url()
        status.save()
    return status


def _write(**fields):
    status = _status()
    for name, value in fields.items():
        setattr(status, name, value)
    status.save(update_fields=list(fields))


def learned_workspace(workspace_id, name):
    """Record the workspace the configured token belongs to."""
    _write(workspace_id=workspace_id, workspace_name=name[:255])
