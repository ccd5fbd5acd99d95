"""Metrics: how long one /metrics scrape takes, and how many queries, with 10,000 and then 1,000,000
stored calls (seeded with `manage.py seed_calls`), each size with a quarter as many attempts spread
over the calls' 30 days, RECENT_ATTEMPTS attempts in the last 15 minutes (more than the scrape
scans), one exchange per attempt, and DUE pending deliveries due now (more than it counts). Goals:
at most the suite's query bound (tests/forwarding/test_metrics.py), never a COUNT over the calls,
and a scrape at the largest size within GROWTH x its time at the smallest.

The scrape is requested in-process through Django's test client with the bearer token, as
bench/dashboard.py requests its pages: the median of a few runs after one warm-up.

    PYTHONPATH=. .venv/bin/python bench/metrics.py             (or: make bench)
    BENCH_METRICS_SIZES=10000,100000 ...                        (other sizes)
    BENCH_METRICS_VERBOSE=1 ...                                 (each query of the scrape, timed)
"""

import gc
import io
import os
import random
import statistics
import sys
import time
from datetime import timedelta

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import support  # noqa: E402

SIZES = [int(size) for size in os.environ.get("BENCH_METRICS_SIZES", "10000,1000000").split(",")]
RUNS = int(os.environ.get("BENCH_METRICS_RUNS", 5))
TOKEN = "bench-metrics-token"
QUERY_BOUND = 16  # tests/forwarding/test_metrics.py's MAX_QUERIES
GROWTH = 1.5
ATTEMPTS_PER_CALL = 0.25
RECENT_ATTEMPTS = 30_000
DUE = 20_000
CHUNK = 50_000


def main():
    support.stop_on_sigterm()
    with support.fresh_backend() as backend:
        support.setup_django(backend)
        from django.conf import settings
        from django.test import Client

        settings.RELAY_METRICS_TOKEN = TOKEN
        client = Client(HTTP_HOST="localhost")
        figures, stored, first = [], 0, None
        for size in SIZES:
            seeded = seed(size - stored)
            attempts = add_attempts(int((size - stored) * ATTEMPTS_PER_CALL), RECENT_ATTEMPTS)
            make_due(DUE)
            stored = size
            figures.append(
                support.Figure(
                    f"seed_calls @{label(size)}",
                    seeded,
                    "calls/s",
                    notes={"calls stored": size, "attempts added": attempts},
                )
            )
            figure = measure_scrape(client, label(size), first, label(SIZES[0]))
            first = first or figure.value
            figures.append(figure)
        support.report("metrics", backend, figures)


def seed(count):
    """Add `count` calls; returns calls stored per second."""
    from django.core.management import call_command

    started = time.monotonic()
    call_command(
        "seed_calls", str(count), "--users", str(max(count // 20, 1)), "--seed", str(count), stdout=io.StringIO()
    )
    rate = count / (time.monotonic() - started)
    gc.collect()
    return rate


def add_attempts(old, recent):
    """`old` attempts spread over 30 days and `recent` in the last 15 minutes, of stored deliveries,
    one exchange each (the ids in the order started, as the engine makes them)."""
    from django.core.management.color import no_style
    from django.db import connection, transaction
    from django.db.models import Max
    from django.utils import timezone

    from forwarding.management.commands.seed_calls import insert
    from forwarding.models import Attempt, Delivery, Exchange

    rng = random.Random(old + recent)
    now = timezone.now()
    top = Delivery.objects.aggregate(top=Max("call_id"))["top"]
    moments = sorted(now - timedelta(days=30) * rng.random() for _ in range(old))
    moments += sorted(now - timedelta(minutes=15) * rng.random() for _ in range(recent))
    next_id = (Attempt.objects.aggregate(top=Max("id"))["top"] or 0) + 1
    for start in range(0, len(moments), CHUNK):
        attempts, exchanges = [], []
        for n, at in enumerate(moments[start : start + CHUNK], start=next_id + start):
            failed = rng.random() < 0.05
            status = 503 if failed else 202
            attempts.append(
                dict(
                    id=n,
                    delivery_id=rng.randint(1, top),
                    started_at=at,
                    duration_ms=rng.randint(20, 400),
                    outcome="retry" if failed else "delivered",
                    status=status,
                    error="503 Service Unavailable" if failed else "",
                )
            )
            exchanges.append(
                dict(id=n, attempt_id=n, method="POST", path="/events", status=status, duration_ms=rng.randint(20, 400))
            )
        with transaction.atomic():
            insert(Attempt, attempts)
            insert(Exchange, exchanges)
    with connection.cursor() as cursor:
        for sql in connection.ops.sequence_reset_sql(no_style(), [Attempt, Exchange]):
            cursor.execute(sql)
        if connection.vendor == "postgresql":
            cursor.execute("VACUUM (ANALYZE) forwarding_attempt, forwarding_exchange, forwarding_delivery")
    return len(moments)


def make_due(count):
    """`count` of the newest delivered deliveries pending and due (the tallies follow by trigger,
    and are folded)."""
    from django.utils import timezone

    from forwarding import tallies
    from forwarding.models import Delivery, State

    now = timezone.now()
    newest = Delivery.objects.filter(state=State.DELIVERED).order_by("-created_at").values_list("pk", flat=True)
    due = list(newest[:count])
    for start in range(0, len(due), 1000):
        Delivery.objects.filter(pk__in=due[start : start + 1000]).update(
            state=State.PENDING, next_attempt_at=now - timedelta(minutes=5), delivered_at=None
        )
    tallies.fold()  # as the sweeper does every few seconds


def measure_scrape(client, size_label, baseline=None, baseline_label=""):
    """One /metrics scrape, as bench/dashboard.py measures a page: a warm-up, the median of RUNS,
    and the queries of one more. Returns a Figure (against `baseline` ms when given)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    headers = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}
    response = client.get("/metrics", secure=True, **headers)
    assert response.status_code == 200, response.status_code  # warm-up
    timings = []
    for _ in range(RUNS):
        started = time.monotonic()
        client.get("/metrics", secure=True, **headers)
        timings.append((time.monotonic() - started) * 1000)
    with CaptureQueriesContext(connection) as captured:
        client.get("/metrics", secure=True, **headers)
    if os.environ.get("BENCH_METRICS_VERBOSE"):
        for q in captured:
            print(f"    {q['time']} s  {q['sql'][:150]}")
    counts = support.counts_of_calls(captured)
    median = round(statistics.median(timings), 1)
    return support.page_figure(
        f"/metrics scrape @{size_label}",
        median,
        (f"<= {QUERY_BOUND} queries, no COUNT of calls", len(captured) <= QUERY_BOUND and not counts),
        {"queries": len(captured), "slowest run": f"{max(timings):.1f} ms", "bytes": len(response.content)},
        GROWTH,
        baseline,
        baseline_label,
        f"the same scrape @{baseline_label}",
    )


def label(size):
    return f"{size // 1_000_000}M" if size >= 1_000_000 and size % 1_000_000 == 0 else f"{size // 1000}k"


if __name__ == "__main__":
    main()
