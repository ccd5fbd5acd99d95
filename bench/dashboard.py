"""Dashboard: how long the pages take, and how many queries, with 10,000 and then 1,000,000 stored
calls (seeded with `manage.py seed_calls`). Goals: every page within the query bound its test
sets (tests/dashboard/), whatever the size, and never a COUNT over the calls; the log's first
page, its filtered pages, a user history and the event-names page at the largest size within
1.5 x their time at the smallest.

Pages are requested in-process through Django's test client as a Viewer (the role's permission
queries included): the median of a few runs after one warm-up.

    PYTHONPATH=. .venv/bin/python bench/dashboard.py           (or: make bench)
    BENCH_DASHBOARD_SIZES=10000,100000 ...                      (other sizes)
"""

import gc
import io
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import support  # noqa: E402

SIZES = [int(size) for size in os.environ.get("BENCH_DASHBOARD_SIZES", "10000,1000000").split(",")]
RUNS = int(os.environ.get("BENCH_DASHBOARD_RUNS", 5))
# (name, path, query bound): the bounds are the suite's (tests/dashboard/: the log's LOG_QUERIES,
# test_overview, test_user_history, test_call_detail); those the suite does not bound (the event
# names, the bulk count) are what the pages ask today.
PAGES = [
    ("overview", "/admin/", 18),
    ("log, first page", "/admin/log/", 12),
    ("log, next page", None, 12),
    ("log, state failed", "/admin/log/?state=failed", 12),
    ("log, failed track, 7 days", "/admin/log/?state=failed&type=track&range=7d", 12),
    ("log, event name", "/admin/log/?event=seeded+event+07", 12),
    ("log, HTTP 5xx", "/admin/log/?status=5xx", 12),
    ("log, search userId", "/admin/log/?q=seed-user-42", 12),
    ("log, search email", "/admin/log/?q=seed-user-42%40example.com", 12),
    ("user history", "/admin/users/?q=seed-user-42", 18),
    ("call detail", None, 16),
    ("bulk resend count, failed", "/admin/resend/?state=failed", 12),
    ("event names", "/admin/event-names/", 14),
]
# The pages of the growth goal: at the largest size <= GROWTH x their time at the smallest.
GROWTH = 1.5
GROWTH_PAGES = {name for name, *_ in PAGES if name.startswith("log") or name in ("user history", "event names")}


def main():
    support.stop_on_sigterm()
    with support.fresh_backend() as backend:
        support.setup_django(backend)
        client = viewer_client()
        figures, stored, first = [], 0, {}
        for size in SIZES:
            seeded = seed(size - stored)
            stored = size
            figures.append(
                support.Figure(f"seed_calls @{label(size)}", seeded, "calls/s", notes={"calls stored": size})
            )
            measured = measure(client, size, first, label(SIZES[0]))
            first = first or {name: figure.value for name, figure in measured.items()}
            figures += measured.values()
        support.report("dashboard", backend, figures)


def viewer_client():
    from django.contrib.auth.models import Group, User
    from django.test import Client

    user = User.objects.create_user("bench-viewer", "", "x", is_staff=True)
    user.groups.add(Group.objects.get(name="Viewers"))
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    return client


def seed(count):
    """Add `count` calls; returns calls stored per second."""
    from django.core.management import call_command

    started = time.monotonic()
    call_command(
        "seed_calls", str(count), "--users", str(max(count // 20, 1)), "--seed", str(count), stdout=io.StringIO()
    )
    rate = count / (time.monotonic() - started)
    gc.collect()  # the pages are timed in this process: not with the seeding's garbage
    return rate


def measure(client, size, first, first_label):
    """{page name: Figure} at this size; past the first size, each against its time there."""
    from django.utils import timezone

    from dashboard.filters import LogFilter
    from dashboard.queries import log_page
    from forwarding.models import Call

    paths = {
        "log, next page": f"/admin/log/?after={log_page(LogFilter(), timezone.now()).older}",
        "call detail": f"/admin/calls/{Call.objects.order_by('-id').values_list('id', flat=True).first()}/",
    }
    figures = {}
    # In turns (see time_pages), twice as many runs: the sizes are timed minutes apart on a shared
    # machine, and back to back one slow second was every run of a page.
    timed = time_pages(client, [path or paths[name] for name, path, _ in PAGES], 2 * RUNS + 1)
    for name, path, bound in PAGES:
        median, timings, captured = timed[path or paths[name]]
        counts = [q for q in captured if "COUNT(" in q["sql"].upper() and 'FROM "forwarding_call"' in q["sql"]]
        goal = f"<= {bound} queries, no COUNT of calls"
        met = len(captured) <= bound and not counts
        baseline = first.get(name)
        if baseline and name in GROWTH_PAGES:
            goal += f"; <= {GROWTH} x @{first_label}"
            met = met and median <= GROWTH * baseline
        figures[name] = support.Figure(
            f"{name} @{label(size)}",
            median,
            "ms",
            f"the same page @{first_label}" if baseline else "",
            baseline,
            support.ratio(median, baseline) if baseline else None,
            goal=goal,
            met=met,
            notes={"queries": len(captured), "slowest run": f"{max(timings):.1f} ms"},
        )
    return figures


def time_pages(client, paths, runs=RUNS):
    """{path: (median ms, every run's ms, the queries of one more request)} of pages, each after a
    warm-up, their runs taken in turns (each page once, then each again):
    a slow few seconds of a shared machine then fall on one run of many pages, not on every run
    of one page, and the medians keep out of them."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for path in paths:
        assert client.get(path, secure=True).status_code == 200, path
    timings = {path: [] for path in paths}
    for _ in range(runs):
        for path in paths:
            started = time.monotonic()
            client.get(path, secure=True)
            timings[path].append((time.monotonic() - started) * 1000)
    timed = {}
    for path in paths:
        with CaptureQueriesContext(connection) as captured:
            client.get(path, secure=True)
        timed[path] = (round(statistics.median(timings[path]), 1), timings[path], captured)
    return timed


def label(size):
    return f"{size // 1_000_000}M" if size >= 1_000_000 and size % 1_000_000 == 0 else f"{size // 1000}k"


if __name__ == "__main__":
    main()
