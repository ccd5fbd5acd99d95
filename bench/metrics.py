"""Metrics: how long one /metrics scrape takes, and how many queries, with 10,000 and then 1,000,000
stored calls (seeded with `manage.py seed_calls`), each size with a quarter as many attempts spread
over the calls' 30 days, RECENT_ATTEMPTS attempts in the last 15 minutes (more than the scrape
scans), one exchange per attempt, and DUE pending deliveries due now (more than it counts). Goals:
at most the suite's query bound (tests/forwarding/test_metrics.py), never a COUNT over the calls,
and a scrape at the largest size within GROWTH x its time at the smallest.

Each size has its own database and its own process (this script with --serve), which seeds it and
then answers the scrape through Django's test client with the bearer token. The sizes are timed
side by side, as bench/dashboard.py times its pages: one scrape at every size in turn, RUNS times
(the order of the sizes reversed every other run), and the median. Timed one size after the
other, minutes apart, the same code gave 1.20, 1.52 and 1.97 x in three runs on SQLite.

    PYTHONPATH=. .venv/bin/python bench/metrics.py             (or: make bench)
    BENCH_METRICS_SIZES=10000,100000 ...                        (other sizes)
    BENCH_METRICS_VERBOSE=1 ...                                 (each query of the scrape, timed)
"""

import contextlib
import gc
import io
import json
import os
import random
import statistics
import sys
import time
from datetime import timedelta

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import support  # noqa: E402
from bench.dashboard import PageServer, answer_page, label, paired_timings, reply  # noqa: E402

SIZES = [int(size) for size in os.environ.get("BENCH_METRICS_SIZES", "10000,1000000").split(",")]
RUNS = int(os.environ.get("BENCH_METRICS_RUNS", 11))  # scrapes at each size, in turns
TOKEN = "bench-metrics-token"
QUERY_BOUND = 16  # tests/forwarding/test_metrics.py's MAX_QUERIES
GROWTH = 1.5
ATTEMPTS_PER_CALL = 0.25
RECENT_ATTEMPTS = 30_000
DUE = 20_000
CHUNK = 50_000
SCRAPE = "metrics"  # the one "page" a size's server times


def main():
    if sys.argv[1:2] == ["--serve"]:
        return serve(int(sys.argv[2]))
    support.stop_on_sigterm()
    with contextlib.ExitStack() as stack:
        servers, ready = [], []
        for n, size in enumerate(SIZES):
            backend = stack.enter_context(support.fresh_backend(f"_{n}"))
            servers.append(stack.enter_context(PageServer(backend, size, __file__)))
            ready.append(servers[-1].ready())  # seeded one after the other, never side by side
        timings = paired_timings(servers, [SCRAPE], RUNS)
        figures, first = [], servers[0]
        first_ms = statistics.median(timings[first.size][SCRAPE])
        for server, seeded in zip(servers, ready, strict=True):
            at = label(server.size)
            notes = {"calls stored": server.size, "attempts added": seeded["attempts"]}
            figures.append(support.Figure(f"seed_calls @{at}", seeded["rate"], "calls/s", notes=notes))
            runs = timings[server.size][SCRAPE]
            median = round(statistics.median(runs), 1)
            queries = server.ask(queries=SCRAPE)
            baseline, baseline_label = (None, "") if server is first else (round(first_ms, 1), label(first.size))
            figures.append(
                support.page_figure(
                    f"/metrics scrape @{at}",
                    median,
                    (
                        f"<= {QUERY_BOUND} queries, no COUNT of calls",
                        queries["queries"] <= QUERY_BOUND and not queries["counts of calls"],
                    ),
                    {"queries": queries["queries"], "slowest run": f"{max(runs):.1f} ms", "bytes": seeded["bytes"]},
                    GROWTH,
                    baseline,
                    baseline_label,
                    f"the same scrape @{baseline_label}, timed in turns with it",
                )
            )
        support.report("metrics", servers[0].backend, figures)


def serve(size):
    """A size's server (bench.dashboard.PageServer): seeds its database as the module's docstring
    says, then answers {"time": SCRAPE} (ms of one scrape) and {"queries": SCRAPE}."""
    support.setup_served_django()
    from django.conf import settings
    from django.test import Client

    settings.RELAY_METRICS_TOKEN = TOKEN
    client = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    rate = seed(size)
    attempts = add_attempts(int(size * ATTEMPTS_PER_CALL), RECENT_ATTEMPTS)
    make_due(DUE)
    warm_up = client.get("/metrics", secure=True)
    assert warm_up.status_code == 200, warm_up.status_code
    if os.environ.get("BENCH_METRICS_VERBOSE"):
        print_queries(client, size)
    reply({"rate": round(rate), "attempts": attempts, "bytes": len(warm_up.content)})
    for line in sys.stdin:
        reply(answer_page(client, {SCRAPE: "/metrics"}, json.loads(line)))


def print_queries(client, size):
    """Each statement of one scrape with its time, on stderr (stdout answers the PageServer)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        client.get("/metrics", secure=True)
    for query in captured:
        print(f"    @{label(size)} {query['time']} s  {query['sql'][:150]}", file=sys.stderr)


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
    one exchange each (the ids from 1 in the order started, as the engine makes them: each size's
    database has no attempt before)."""
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
    for start in range(0, len(moments), CHUNK):
        attempts, exchanges = [], []
        for n, at in enumerate(moments[start : start + CHUNK], start=start + 1):
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


if __name__ == "__main__":
    main()
