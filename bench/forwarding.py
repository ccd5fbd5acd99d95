"""Forwarding: deliveries/s of real `qcluster` workers to the Intercom sandbox (its own process).

1. Under a limit: the sandbox allows N requests per window (LIMITS). Figure: deliveries/s as a
   share of the limit (goal >= 0.95), and the share of requests answered 429 (goal < 1%).
2. Overhead: no limit. Figure: deliveries/s against a bare single-threaded `requests` loop that
   replays the very HTTP calls the relay made (goal >= 1.0). Also the peak RSS of a worker.

Users are identified and their contacts cached (ContactLink rows, contacts in the sandbox), so
each delivery is one POST /events. Calls are stored and queued as ingestion does before the
cluster starts; the clock starts once deliveries flow.

    PYTHONPATH=. .venv/bin/python bench/forwarding.py [limit|overhead]   (default: both)
"""

import contextlib
import os
import sys
import time
from datetime import UTC, datetime, timedelta

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import support  # noqa: E402

USERS = 200
# (requests, per seconds): the goal's limit, 50/s; then 10/s, below what the relay can do on a
# small machine, so that the limiter's own behaviour shows even when the first is out of reach.
LIMITS = [(100, 2), (20, 2)]
LIMIT_SECONDS = int(os.environ.get("BENCH_LIMIT_SECONDS", 16))  # a whole number of windows
OVERHEAD_SECONDS = float(os.environ.get("BENCH_OVERHEAD_SECONDS", 12))
OVERHEAD_CALLS = int(os.environ.get("BENCH_OVERHEAD_CALLS", 2500))
BARE_SECONDS = 5.0
WARMUP_SECONDS = 2.0  # after the first delivery, before the clock starts
DRAIN_TIMEOUT = 60


def main(parts):
    support.stop_on_sigterm()
    with support.fresh_backend() as backend:
        support.setup_django(backend)
        figures = []
        if "limit" in parts:
            for limit, window in LIMITS:
                reset_database()
                figures += under_limit(backend, limit, window)
        if "overhead" in parts:
            reset_database()
            figures += overhead(backend)
        support.report("forwarding", backend, figures)


def reset_database():
    """Empty every table between the two parts (the schedules come back with post_migrate)."""
    from django.core.management import call_command

    call_command("flush", interactive=False, verbosity=0)


# -- 1. under a limit ------------------------------------------------------------------------------


def under_limit(backend, limit, window):
    allowed = limit / window
    calls = int(allowed * (LIMIT_SECONDS + 2 * WARMUP_SECONDS + 2 * window + 4))
    with contextlib.ExitStack() as stack:
        _, sandbox = support.start_sandbox(stack, backend)
        users = support.user_ids(USERS)
        support.seed_contacts(sandbox, users)
        support.sandbox_control(sandbox, "config", {"rate_limit": limit, "rate_limit_window": window})
        store_tracks(users, calls)
        support.start_qcluster(stack, backend, sandbox)
        first = wait_first_delivery()
        # Whole windows only: the sandbox's windows start at multiples of `window` since the epoch.
        start = next_window(first + timedelta(seconds=WARMUP_SECONDS), window)
        end = start + timedelta(seconds=LIMIT_SECONDS)
        sleep_until(end + timedelta(seconds=0.5))
        counters = support.sandbox_control(sandbox, "state")["counters"]
    delivered = delivered_between(start, end)
    rate = delivered / LIMIT_SECONDS
    exchanges = exchange_statuses()
    total = sum(exchanges.values())
    share_429 = exchanges.get(429, 0) / total if total else 0.0
    notes = {
        "measured": f"{LIMIT_SECONDS} s = {LIMIT_SECONDS // window} windows of {window} s, {delivered} deliveries",
        "relay's exchanges by status (whole run)": exchanges,
        "sandbox counters": {k: v for k, v in counters.items() if k.startswith(("status.", "events.", "violations"))},
    }
    return [
        support.Figure(
            f"deliveries under a limit of {limit}/{window} s",
            round(rate, 2),
            "deliveries/s",
            "the limit",
            allowed,
            support.ratio(rate, allowed),
            ">= 0.95 x limit",
            rate >= 0.95 * allowed,
            notes,
        ),
        support.Figure(
            f"requests answered 429 under the limit of {limit}/{window} s",
            round(100 * share_429, 2),
            "% of requests",
            goal="< 1%",
            met=share_429 < 0.01,
            notes={"429": exchanges.get(429, 0), "requests": total},
        ),
    ]


def next_window(moment, window):
    """The first window boundary at or after `moment`."""
    boundary = -(-moment.timestamp() // window) * window
    return datetime.fromtimestamp(boundary, UTC)


# -- 2. overhead -----------------------------------------------------------------------------------


def overhead(backend):
    with contextlib.ExitStack() as stack:
        _, sandbox = support.start_sandbox(stack, backend)
        users = support.user_ids(USERS)
        support.seed_contacts(sandbox, users)
        store_tracks(users, OVERHEAD_CALLS)
        qcluster = support.start_qcluster(stack, backend, sandbox)
        sampler = support.PeakSampler(qcluster.pid)
        first = wait_first_delivery()
        start = first + timedelta(seconds=WARMUP_SECONDS)
        end = wait_window_end(start, OVERHEAD_SECONDS)
        peaks = sampler.stop()
        workers = support.worker_pids(qcluster)
        relay_rate = delivered_between(start, end) / (end - start).total_seconds()
        bare_rate, replayed = bare_loop(sandbox, replay_requests(), BARE_SECONDS)
        qcluster.stop()
        per_delivery = queries_per_delivery(backend, sandbox)
    from django.conf import settings

    worker_peak = round(max((peaks.get(pid, 0) for pid in workers), default=0) / 1024, 1)
    other_peak = round(max((kb for pid, kb in peaks.items() if pid not in workers), default=0) / 1024, 1)
    measured = f"{(end - start).total_seconds():.1f} s after {WARMUP_SECONDS:.0f} s of warm-up"
    return [
        support.Figure(
            f"deliveries without a limit ({settings.Q_CLUSTER['workers']} workers)",
            round(relay_rate, 1),
            "deliveries/s",
            f"bare requests loop replaying the relay's {replayed} requests",
            round(bare_rate, 1),
            support.ratio(relay_rate, bare_rate),
            ">= 1.0 x baseline",
            relay_rate >= bare_rate,
            {"measured": measured, "per delivery": per_delivery},
        ),
        support.Figure(
            "worker peak RSS (VmHWM, qcluster task worker)",
            worker_peak,
            "MB",
            notes={"largest other qcluster process (guard, pusher, monitor)": f"{other_peak} MB"},
        ),
    ]


def queries_per_delivery(backend, sandbox):
    """What one delivery asks of the database (and Redis), run in this process once the cluster
    has stopped: the second of three calls of a new user, so that its event name has a slot and
    a next call waits behind it, as in a backlog."""
    from django.conf import settings

    from forwarding import intercom, services
    from forwarding.models import Delivery

    settings.INTERCOM_API_BASE = sandbox
    settings.INTERCOM_ACCESS_TOKEN = support.SANDBOX_TOKEN
    intercom.reset_client()
    support.seed_contacts(sandbox, ["probe-user"])
    store_tracks(["probe-user"], 3)
    first, second, _ = (
        Delivery.objects.filter(user_id="probe-user").order_by("created_at", "pk").values_list("pk", flat=True)
    )
    services.deliver(first)
    return support.count_queries(lambda: services.deliver(second), backend.redis_url)


def wait_window_end(start, seconds):
    """The end of the measured window: `seconds` after `start`, or the last delivery if all
    calls were delivered before then."""
    from forwarding.models import Delivery, State

    end = start + timedelta(seconds=seconds)
    deadline = time.monotonic() + seconds + DRAIN_TIMEOUT
    while datetime.now(UTC) < end and time.monotonic() < deadline:
        if not Delivery.objects.exclude(state=State.DELIVERED).exists():
            last = Delivery.objects.order_by("-delivered_at").values_list("delivered_at", flat=True).first()
            return max(last, start + timedelta(seconds=1))
        time.sleep(0.25)
    return end


def replay_requests():
    """The HTTP requests the relay made, in order: (method, path, body)."""
    from forwarding.models import Exchange

    rows = Exchange.objects.filter(status__lt=300).order_by("id").values_list("method", "path", "request_body")
    return [(method, path, body.encode()) for method, path, body in rows]


def bare_loop(sandbox, requests_to_make, seconds):
    """Requests/s of one thread replaying the requests (in a loop, for `seconds`) with a
    keep-alive requests.Session, as the relay's client sends them."""
    import itertools

    import requests

    session = requests.Session()
    session.headers.update(
        {
            "Authorization": f"Bearer {support.SANDBOX_TOKEN}",
            "Intercom-Version": "2.16",
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
    )
    started = time.monotonic()
    done = 0
    for method, path, body in itertools.cycle(requests_to_make):
        response = session.request(method, sandbox + path, data=body, timeout=30)
        # What the relay's client does with an answer: parse it when there is one.
        _ = response.json() if response.content else None
        done += response.ok
        if time.monotonic() - started > seconds:
            break
    elapsed = time.monotonic() - started
    session.close()
    return (done / elapsed if elapsed else 0.0), len(requests_to_make)


# -- shared ----------------------------------------------------------------------------------------


def store_tracks(users, count):
    """`count` track calls round-robin over the users, stored and queued as ingestion does."""
    messages = [support.track_message(users[n % len(users)], n) for n in range(count)]
    support.store_calls(messages)


def wait_first_delivery():
    from forwarding.models import Delivery

    def first():
        return (
            Delivery.objects.exclude(delivered_at=None)
            .order_by("delivered_at")
            .values_list("delivered_at", flat=True)
            .first()
        )

    return support.wait_for(first, 60, "the first delivery", 0.1)


def delivered_between(start, end):
    from forwarding.models import Delivery

    return Delivery.objects.filter(delivered_at__gte=start, delivered_at__lt=end).count()


def exchange_statuses():
    from django.db.models import Count

    from forwarding.models import Exchange

    rows = Exchange.objects.values_list("status").annotate(n=Count("id"))
    return {status: n for status, n in rows}


def sleep_until(moment):
    delay = (moment - datetime.now(UTC)).total_seconds()
    if delay > 0:
        time.sleep(min(delay, 600))


if __name__ == "__main__":
    main(sys.argv[1:] or ["limit", "overhead"])
