"""Dashboard: how long the pages take, and how many queries, with 10,000 and with 1,000,000
stored calls (seeded with `manage.py seed_calls`). Goals: every page within the query bound its
test sets (tests/dashboard/), whatever the size, and never a COUNT over the calls; every page at
the largest size within 1.5 x its time at the smallest.

Each size has its own database and its own process (this script with --serve), which seeds it and
then answers the pages through Django's test client as a Viewer (the role's permission queries
included). The sizes are timed side by side: each page once at every size, in turns over the
pages, then again (the order of the sizes reversed every other run), and the median. Timed one
size after the other, minutes apart, a slow spell of this shared machine became a size's ratio:
1.1-1.3 x in one run and 1.4-1.9 x in the next, for the same code.

    PYTHONPATH=. .venv/bin/python bench/dashboard.py           (or: make bench)
    BENCH_DASHBOARD_SIZES=10000,100000 ...                      (other sizes)
"""

import contextlib
import gc
import io
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import support  # noqa: E402

SIZES = [int(size) for size in os.environ.get("BENCH_DASHBOARD_SIZES", "10000,1000000").split(",")]
RUNS = int(os.environ.get("BENCH_DASHBOARD_RUNS", 11))
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
# Every page's growth goal: at the largest size <= GROWTH x its time at the smallest.
GROWTH = 1.5
PROTOCOL = "PAGES "  # the prefix of the lines a page server answers with


def main():
    if sys.argv[1:2] == ["--serve"]:
        return serve(int(sys.argv[2]))
    support.stop_on_sigterm()
    with contextlib.ExitStack() as stack:
        servers = []
        for n, size in enumerate(SIZES):
            backend = stack.enter_context(support.fresh_backend(f"_{n}"))
            servers.append(stack.enter_context(PageServer(backend, size)))  # they seed at once
        ready = [server.ready() for server in servers]
        timings = paired_timings(servers, [name for name, *_ in PAGES])
        figures = []
        for server, seeded in zip(servers, ready, strict=True):
            figures.append(
                support.Figure(
                    f"seed_calls @{label(server.size)}", seeded["rate"], "calls/s", notes={"calls stored": server.size}
                )
            )
            figures += page_figures(server, timings, servers[0], timings[servers[0].size])
        support.report("dashboard", servers[0].backend, figures)


class PageServer:
    """A bench script (this one unless `script`) with `--serve size *args` in a process of its own,
    on its own database: it seeds `size` calls, then times what it is asked for, one request
    each, and answers each on a line that starts with PROTOCOL."""

    def __init__(self, backend, size, script=__file__, args=()):
        self.backend, self.size = backend, size
        env = support.child_env(backend)
        args = [sys.executable, os.path.abspath(script), "--serve", str(size), *args]
        self.process = subprocess.Popen(args, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        try:
            self.process.wait(support.STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        support.close_django_connections()

    def ready(self):
        """{"rate": calls seeded per second} once seeded and warm."""
        return self._answer()

    def ask(self, **request):
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return self._answer()

    def _answer(self):
        for line in self.process.stdout:
            if line.startswith(PROTOCOL):
                return json.loads(line[len(PROTOCOL) :])
        raise RuntimeError(f"the page server @{label(self.size)} exited ({self.process.wait()})")


def paired_timings(servers, names, runs=RUNS):
    """{size: {name: [ms of each run]}}: everything named once at every size in turn, `runs` times."""
    timings = {server.size: {name: [] for name in names} for server in servers}
    for run in range(runs):
        for name in names:
            for server in servers if run % 2 == 0 else servers[::-1]:
                timings[server.size][name].append(server.ask(time=name)["ms"])
    return timings


def page_figures(server, timings, first, first_timings):
    """The figures of one size; past the first, each page against its time there."""
    figures = []
    baseline_size = label(first.size)
    for name, _, bound in PAGES:
        runs = timings[server.size][name]
        median = round(statistics.median(runs), 1)
        queries = server.ask(queries=name)
        met = queries["queries"] <= bound and not queries["counts of calls"]
        baseline = None if server is first else round(statistics.median(first_timings[name]), 1)
        figures.append(
            support.page_figure(
                f"{name} @{label(server.size)}",
                median,
                (f"<= {bound} queries, no COUNT of calls", met),
                {"queries": queries["queries"], "slowest run": f"{max(runs):.1f} ms"},
                GROWTH,
                baseline,
                baseline_size,
                f"the same page @{baseline_size}, timed in turns with it",
            )
        )
    return figures


def serve(size):
    """The page server's side (see PageServer): seed, warm every page up, then answer each request
    ({"time": page name} or {"queries": page name}) with one line."""
    support.setup_served_django()
    rate = seed(size)
    client = viewer_client()
    paths = page_paths()
    warm_pages(client, paths)
    reply({"rate": rate})
    for line in sys.stdin:
        reply(answer_page(client, paths, json.loads(line)))


def reply(answer):
    """One line of a size's server to its PageServer."""
    print(PROTOCOL + json.dumps(answer), flush=True)


def warm_pages(client, paths):
    for path in paths.values():
        assert client.get(path, secure=True).status_code == 200, path


def answer_page(client, paths, request):
    """A size's server's answer to {"time": page name} (ms of one request) or {"queries": page
    name} (its statements, and those that COUNT calls)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    if "time" in request:
        return {"ms": elapsed_ms(client.get, paths[request["time"]], secure=True)}
    with CaptureQueriesContext(connection) as captured:
        client.get(paths[request["queries"]], secure=True)
    return {"queries": len(captured), "counts of calls": len(support.counts_of_calls(captured))}


def elapsed_ms(action, *args, **kwargs):
    """Milliseconds `action(*args, **kwargs)` took."""
    started = time.monotonic()
    action(*args, **kwargs)
    return (time.monotonic() - started) * 1000


def page_paths():
    """{page name: path}, the log's next page and a call's detail found in the data."""
    from django.utils import timezone

    from dashboard.filters import LogFilter
    from dashboard.queries.log import log_page
    from forwarding.models import Call

    found = {
        "log, next page": f"/admin/log/?after={log_page(LogFilter(), timezone.now()).older}",
        "call detail": f"/admin/calls/{Call.objects.order_by('-id').values_list('id', flat=True).first()}/",
    }
    return {name: path or found[name] for name, path, _ in PAGES}


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


def label(size):
    return f"{size // 1_000_000}M" if size >= 1_000_000 and size % 1_000_000 == 0 else f"{size // 1000}k"


if __name__ == "__main__":
    main()
