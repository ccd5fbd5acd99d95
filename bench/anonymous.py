"""A week of anonymous traffic: N anonymous page and track calls waiting for an identify that
never comes (most website visitors), seeded with `manage.py seed_calls --waiting-anonymous` over
the last 6.9 days (none yet past RELAY_WAIT_FOR_IDENTIFY), beside a few thousand ordinary calls.

Each size has its own database, Intercom sandbox and process (this script with --serve), which
seeds it, then times what it is asked for. The sizes are timed side by side, as bench/dashboard.py
times them: every figure once at every size, in turns, PAGE_RUNS times (the order of the sizes
reversed every other run), and the median. Timed one size after the other, minutes apart, a
slow spell of this shared machine became a size's ratio (a fixed Python loop once ran 1.8 x
slower during the 1k measures than during the 1M ones).

1. An identify that links 5 waiting anonymous calls: from its ingestion (storage.store, the
   ingestion's own path) to its delivery and its 5 calls' being delivered to the Intercom
   sandbox (its own process, over HTTP). The tasks the relay enqueues are taken from the broker
   and run in the size's process, in order, until the queue is empty.
2. One pass of the sweeper (sweeper.sweep).
3. The dashboard's pages (bench/dashboard.py's PAGES) and the log filtered by state=waiting.
4. Their expiry: at every size, before the timed figures, on waits of the smallest size seeded
   for it (its failed calls are then the same for every size's pages; the smallest size's
   figure), and at the other sizes after them, on their own waits: RELAY_WAIT_FOR_IDENTIFY set
   to 0, the sweeper's expiry (sweeper.expire_waits) run pass after pass until none is left
   waiting or EXPIRED_AT_MOST are failed (a million take minutes, and what is measured, each
   slice and the memory, does not change past that), then the tallies folded as the sweep folds
   them. Total time, rows/s, the longest slice (one transaction, commit included), the process's
   peak memory growth (VmHWM reset before; SQLite's page cache included) and tracemalloc's peak
   (Python objects); meanwhile a thread stores a call every 50 ms through storage.store, as
   ingestion would: its slowest store.

Goals: at the largest size, 1-3 within 1.5 x their time at the smallest; the expiry's peak
memory growth within 1.5 x the smallest's or under 50 MB.

    PYTHONPATH=. .venv/bin/python bench/anonymous.py
    BENCH_ANONYMOUS_SIZES=1000,100000 ...                       (other sizes)
"""

import contextlib
import gc
import io
import itertools
import json
import os
import statistics
import sys
import threading
import time
import tracemalloc
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import support  # noqa: E402
from bench.dashboard import (  # noqa: E402
    PAGES,
    PageServer,
    answer_page,
    elapsed_ms,
    label,
    page_paths,
    paired_timings,
    reply,
    viewer_client,
    warm_pages,
)

SIZES = [int(size) for size in os.environ.get("BENCH_ANONYMOUS_SIZES", "1000,1000000").split(",")]
RUNS = int(os.environ.get("BENCH_ANONYMOUS_RUNS", 5))
PAGE_RUNS = 2 * RUNS + 1  # each figure's runs, every size in turn (bench.dashboard.paired_timings)
ORDINARY_CALLS = 3000  # seeded once, so that the pages are not empty
SEED_DAYS = 6.9  # a week of traffic, the oldest not yet past RELAY_WAIT_FOR_IDENTIFY (7 days)
LINKED = 5  # anonymous calls an identify links
GROWTH = 1.5
MEMORY_BOUND_MB = 50
STORE_EVERY = 0.05  # seconds between the calls stored during the expiry
INGESTING_USER = "bench-ingesting-user"
WAITING_PAGE = ("log, state waiting", "/admin/log/?state=waiting", None)
EXPIRED_AT_MOST = int(os.environ.get("BENCH_ANONYMOUS_EXPIRED", 100_000))


def main():
    if sys.argv[1:2] == ["--serve"]:
        return serve(int(sys.argv[2]), sys.argv[3])
    support.stop_on_sigterm()
    with contextlib.ExitStack() as stack:
        servers, ready = [], []
        for n, size in enumerate(SIZES):
            backend = stack.enter_context(support.fresh_backend(f"_{n}"))
            _, sandbox = support.start_sandbox(stack, backend)
            servers.append(stack.enter_context(PageServer(backend, size, __file__, [sandbox])))
            # One after the other: the smallest size's expiry, measured as it seeds, never beside
            # a larger size's seeding.
            ready.append(servers[-1].ready())
        timings = paired_timings(servers, ["identify", "sweep", *PAGE_NAMES], PAGE_RUNS)
        figures, first = [], None
        for n, (server, seeded) in enumerate(zip(servers, ready, strict=True)):
            measured = {
                "seed": (round(seeded["rate"]), {"waiting anonymous calls": seeded["waiting"]}),
                "identify": summary(timings[server.size]["identify"], {"how": IDENTIFY_HOW}),
                "sweep": summary(timings[server.size]["sweep"]),
            }
            for name in PAGE_NAMES:
                measured[name] = summary(timings[server.size][name], {"queries": server.ask(queries=name)["queries"]})
            # The smallest size's expiry was measured as it was seeded; the others' come last.
            measured["expiry"] = seeded["expiry"] if n == 0 else server.ask(expiry=True)
            first = first or measured
            figures += size_figures(measured, first, server.size)
        support.report("anonymous", servers[0].backend, figures)


def serve(size, sandbox):
    """A size's server (bench.dashboard.PageServer): its database seeded as the module's docstring
    says, then one answer a request: {"time": "identify" | "sweep" | page name}, {"queries": page
    name}, {"expiry": true}."""
    support.setup_served_django()
    from forwarding.delivery import sweeper
    from forwarding.models import Delivery, State

    use_sandbox(sandbox)
    support.seed_contacts(sandbox, [INGESTING_USER])
    client = viewer_client()
    seed(ORDINARY_CALLS)
    expire_all()  # the ordinary calls' old waits: not this bench's
    # The smallest size's expiry first, on waits of its own, at every size: expired, they are
    # failed calls that every size's pages then show alike.
    seed(SIZES[0], "--waiting-anonymous", "--days", str(SEED_DAYS), rng_seed=0)
    first_expiry = expiry()
    rate = seed(size, "--waiting-anonymous", "--days", str(SEED_DAYS))
    waiting = Delivery.objects.filter(state=State.WAITING, user_id="").count()
    paths = {**page_paths(), WAITING_PAGE[0]: WAITING_PAGE[1]}
    runs = itertools.count()
    identify_once(size, next(runs))  # warm-ups
    sweeper.sweep()
    warm_pages(client, paths)
    reply({"rate": rate, "waiting": waiting, "expiry": first_expiry})
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("time") == "identify":
            reply({"ms": identify_once(size, next(runs))})
        elif request.get("time") == "sweep":
            reply({"ms": elapsed_ms(sweeper.sweep)})
        elif "expiry" in request:
            reply(expiry())
        else:
            reply(answer_page(client, paths, request))


def seed(count, *options, rng_seed=None):
    """Add `count` calls with `manage.py seed_calls`; returns calls stored per second."""
    from django.core.management import call_command

    started = time.monotonic()
    rng_seed = count if rng_seed is None else rng_seed
    call_command("seed_calls", str(count), "--seed", str(rng_seed), *options, stdout=io.StringIO())
    rate = count / (time.monotonic() - started)
    gc.collect()  # the measures run in this process: not with the seeding's garbage
    return rate


def use_sandbox(sandbox):
    from django.conf import settings

    from forwarding import intercom

    settings.INTERCOM_API_BASE = sandbox
    settings.INTERCOM_ACCESS_TOKEN = support.SANDBOX_TOKEN
    intercom.reset_client()


def summary(runs, notes=None):
    """(median ms, notes with the slowest run) of one figure's paired runs."""
    return round(statistics.median(runs), 1), {**(notes or {}), "slowest run": f"{max(runs):.1f} ms"}


# -- 1. an identify releasing its anonymous calls ------------------------------------------------


IDENTIFY_HOW = "in process: storage.store, then the enqueued tasks run in order"


def identify_once(size, run):
    """ms from an identify's ingestion to it and its LINKED anonymous calls delivered (the
    anonymous calls stored and left waiting first, untimed)."""
    visitor = f"bench-visitor-{size}-{run}"
    support.store_calls([anonymous_message(visitor, n) for n in range(LINKED)])
    drain()
    pks = waiting_of(visitor)
    assert len(pks) == LINKED, f"{len(pks)} of {visitor}'s calls waiting"
    started = time.monotonic()
    support.store_calls([identify_message(visitor, f"bench-identified-{size}-{run}")])
    drain()
    elapsed = (time.monotonic() - started) * 1000
    assert delivered_of(visitor) == LINKED + 1, f"{visitor}: {delivered_of(visitor)} delivered"
    return elapsed


def anonymous_message(visitor, n):
    now = datetime.now(UTC).isoformat()
    message = {"messageId": uuid.uuid4().hex, "anonymousId": visitor, "timestamp": now}
    if n % 2:
        return {**message, "type": "track", "event": "Bench Visitor Event", "properties": {"n": n}}
    return {**message, "type": "page", "name": "Pricing", "properties": {"path": "/pricing", "n": n}}


def identify_message(visitor, user_id):
    return {
        "type": "identify",
        "messageId": uuid.uuid4().hex,
        "anonymousId": visitor,
        "userId": user_id,
        "traits": {"email": f"{user_id}@example.com"},
        "timestamp": datetime.now(UTC).isoformat(),
    }


def drain():
    """Run the broker's tasks in this process, as a worker would, until none is left."""
    from django_q.signing import SignedPackage

    from forwarding.delivery import queue

    broker = queue.queue_broker()
    while broker.queue_size():
        for task_id, payload in broker.dequeue() or []:
            task = SignedPackage.loads(payload)
            assert task["func"] == queue.DELIVER_TASK, task["func"]
            from forwarding import tasks

            tasks.deliver_many(*task["args"], **task["kwargs"])
            broker.acknowledge(task_id)


def waiting_of(visitor):
    from forwarding.models import Delivery, State

    return list(Delivery.objects.filter(anonymous_id=visitor, state=State.WAITING).values_list("pk", flat=True))


def delivered_of(visitor):
    from forwarding.models import Delivery, State

    return Delivery.objects.filter(anonymous_id=visitor, state=State.DELIVERED).count()


# -- 3. the dashboard's pages --------------------------------------------------------------------


PAGE_NAMES = [name for name, *_ in [*PAGES, WAITING_PAGE]]


# -- 4. the expiry ---------------------------------------------------------------------------------


def expiry():
    """Every waiting delivery failed by the sweeper's expiry, a sweep pass's worth at a time, then
    the tallies folded; with a call stored every STORE_EVERY s meanwhile."""
    from unittest import mock

    from django.conf import settings

    from forwarding import tallies
    from forwarding.delivery import sweeper
    from forwarding.models import Delivery, State

    waiting = Delivery.objects.filter(state=State.WAITING)
    count = waiting.count()
    kept = settings.RELAY_WAIT_FOR_IDENTIFY
    settings.RELAY_WAIT_FOR_IDENTIFY = 0
    gc.collect()
    rss_before = reset_peak_rss()
    tracemalloc.start()
    timed, passes, expired = TimedTransactions(), 0, 0
    ingestion = Ingestion()
    started = time.monotonic()
    try:
        with mock.patch.object(sweeper, "transaction", timed):
            while expired < EXPIRED_AT_MOST and waiting.exists():
                expired += sweeper.expire_waits(datetime.now(UTC))
                passes += 1
        fold_started = time.monotonic()
        tallies.fold()
        fold_seconds = time.monotonic() - fold_started
    finally:
        elapsed = time.monotonic() - started
        timed_stores = ingestion.stop()
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        settings.RELAY_WAIT_FOR_IDENTIFY = kept
    rss_growth = (support.memory_kb(os.getpid())["peak"] - rss_before) / 1024
    drain()  # the calls stored meanwhile: delivered now, not in the next size's measures
    slices = timed.durations
    stores = [seconds for _, seconds in timed_stores]
    # The stores that began while the slices ran, and those that began during the fold.
    beside_slices = [seconds for began, seconds in timed_stores if began < fold_started]
    beside_fold = [seconds for began, seconds in timed_stores if began >= fold_started]
    return {
        "seconds": round(elapsed, 2),
        "rows/s": round(expired / elapsed),
        "longest slice ms": round(max(slices) * 1000, 1),
        "rss growth MB": round(rss_growth, 1),
        "traced peak MB": round(traced_peak / 2**20, 2),
        "slowest store ms": round(max(stores, default=0) * 1000),
        "slowest store beside the slices ms": round(max(beside_slices, default=0) * 1000),
        "slowest store beside the fold ms": round(max(beside_fold, default=0) * 1000),
        "notes": {
            "waiting before": count,
            "failed": expired,
            "slices": f"{len(slices)} transactions of up to {sweeper.EXPIRE_SLICE} rows,"
            f" median {statistics.median(slices) * 1000:.1f} ms",
            "sweep passes": f"{passes}, of {sweeper.EXPIRE_PASS_SECONDS} s of expiry each at most",
            "tallies fold": f"{fold_seconds:.2f} s (included)",
            "calls stored meanwhile": f"{len(stores)}, median {statistics.median(stores or [0]) * 1000:.0f} ms",
            "tracemalloc": "on (slows the Python side)",
        },
    }


class TimedTransactions:
    """Stands in for `django.db.transaction` in the sweeper: each atomic block's time, commit
    included, in `durations` (seconds)."""

    def __init__(self):
        self.durations = []

    def atomic(self, *args, **kwargs):
        return self._timed(*args, **kwargs)

    @contextlib.contextmanager
    def _timed(self, *args, **kwargs):
        from django.db import transaction

        started = time.monotonic()
        with transaction.atomic(*args, **kwargs):
            yield
        self.durations.append(time.monotonic() - started)


def expire_all():
    """Fail the waits already past RELAY_WAIT_FOR_IDENTIFY, as the sweeper would."""
    from forwarding.delivery import sweeper

    while sweeper.expire_waits(datetime.now(UTC)) == sweeper.EXPIRE_SLICE:
        pass


def reset_peak_rss():
    """Reset this process's VmHWM to its VmRSS (Linux: clear_refs 5); returns it, in kB."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    return support.memory_kb(os.getpid())["peak"]


class Ingestion:
    """A thread storing one call every STORE_EVERY s through storage.store; stop() returns when
    each store began (time.monotonic()) and how long it took (seconds)."""

    def __init__(self):
        self.timings = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        from django.db import connection

        try:
            n = 0
            while not self._stop.wait(STORE_EVERY):
                message = support.track_message(INGESTING_USER, n)
                started = time.monotonic()
                support.store_calls([message])
                self.timings.append((started, time.monotonic() - started))
                n += 1
        finally:
            connection.close()

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=60)
        return self.timings


# -- figures -------------------------------------------------------------------------------------


def size_figures(measured, first, size):
    """The figures at one size; past the first, each against the same figure there."""
    at, first_label = label(size), label(SIZES[0])
    baseline = measured is not first
    rate, seed_notes = measured["seed"]
    figures = [support.Figure(f"seed_calls --waiting-anonymous @{at}", rate, "calls/s", notes=seed_notes)]
    timed = [("identify releasing 5 anonymous calls", "identify"), ("sweeper pass", "sweep")]
    timed += [(f"page: {name}", name) for name in PAGE_NAMES]
    for title, key in timed:
        value, notes = measured[key]
        figures.append(growth(f"{title} @{at}", value, "ms", first[key][0] if baseline else None, first_label, notes))
    expiry_now, expiry_first = measured["expiry"], first["expiry"]
    figures.append(
        support.Figure(
            f"expiry of waiting calls @{at}",
            expiry_now["rows/s"],
            "rows/s",
            notes={
                "total": f"{expiry_now['seconds']} s",
                "longest slice": f"{expiry_now['longest slice ms']} ms",
                **expiry_now["notes"],
            },
        )
    )
    figures.append(
        support.Figure(
            f"expiry, longest slice (one transaction) @{at}",
            expiry_now["longest slice ms"],
            "ms",
            f"the same @{first_label}" if baseline else "",
            expiry_first["longest slice ms"] if baseline else None,
            support.ratio(expiry_now["longest slice ms"], expiry_first["longest slice ms"]) if baseline else None,
        )
    )
    figures.append(
        support.Figure(
            f"expiry, slowest call stored meanwhile @{at}",
            expiry_now["slowest store ms"],
            "ms",
            f"the same @{first_label}" if baseline else "",
            expiry_first["slowest store ms"] if baseline else None,
            notes={
                "stored": expiry_now["notes"]["calls stored meanwhile"],
                "slowest beside the slices": f"{expiry_now['slowest store beside the slices ms']} ms",
                "slowest beside the tallies' fold": f"{expiry_now['slowest store beside the fold ms']} ms",
            },
        )
    )
    memory = expiry_now["rss growth MB"]
    memory_first = expiry_first["rss growth MB"]
    met = memory < MEMORY_BOUND_MB or (baseline and memory <= GROWTH * max(memory_first, 1))
    figures.append(
        support.Figure(
            f"expiry, peak memory growth @{at}",
            memory,
            "MB",
            f"the same @{first_label}" if baseline else "",
            memory_first if baseline else None,
            support.ratio(memory, memory_first) if baseline else None,
            goal=f"< {MEMORY_BOUND_MB} MB" + (f" or <= {GROWTH} x @{first_label}" if baseline else ""),
            met=bool(met),
            notes={"tracemalloc peak": f"{expiry_now['traced peak MB']} MB"},
        )
    )
    return figures


def growth(name, value, unit, baseline, baseline_label, notes):
    if baseline is None:
        return support.Figure(name, value, unit, notes=notes)
    return support.Figure(
        name,
        value,
        unit,
        f"the same @{baseline_label}",
        baseline,
        support.ratio(value, baseline),
        goal=f"<= {GROWTH} x @{baseline_label}",
        met=value <= GROWTH * baseline,
        notes=notes,
    )


if __name__ == "__main__":
    main()
