"""Ingestion: calls/s through gunicorn, single calls (/v1/track, and /v1/t as text/plain as
browsers send it) and /v1/batch with 100 calls.

Single calls are measured as websites send them, with a qcluster delivering them to the sandbox
at the same time (their users are its contacts), against `GET /health` of the same server in the
same run. Goal: >= 0.5 x /health.
Batches are measured without a qcluster (the tasks pile up in the broker, and that cost counts),
against bulk-inserting the same number of Call + Delivery rows. Goal: >= 0.5 x that. Also the
peak RSS of a gunicorn web worker.

    PYTHONPATH=. .venv/bin/python bench/ingestion.py          (or: make bench)
"""

import contextlib
import functools
import itertools
import json
import os
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import support  # noqa: E402

THREADS = 8  # gunicorn serves 2 processes x 4 threads
SECONDS = float(os.environ.get("BENCH_INGESTION_SECONDS", 6))
WARMUP_REQUESTS = 3  # per thread, before the clock starts: gunicorn workers import lazily
BATCH_SIZE = 100
USERS = 1000
BASELINE_CHUNK = 100  # rows per transaction, as one /v1/batch request commits them
BASELINE_MAX_ROWS = 100_000
GOAL = 0.5


def main():
    support.stop_on_sigterm()
    with support.fresh_backend() as backend:
        support.setup_django(backend)
        from forwarding.models import Source

        source, write_key = Source.create_with_key("Bench")
        with contextlib.ExitStack() as stack:
            gunicorn, base = support.start_gunicorn(stack, backend)
            headers = {"Authorization": support.basic_auth(write_key), "Content-Type": "application/json"}
            with contextlib.ExitStack() as delivering:
                sandbox, sandbox_url = support.start_sandbox(delivering, backend)
                # Every user a contact: the worker sends each call to the sandbox over HTTP, as it
                # would to Intercom (without one, a track call waits for an identify, sending nothing).
                support.seed_contacts(sandbox_url, [f"bench-user-{n}" for n in range(USERS)])
                qcluster = support.start_qcluster(delivering, backend, sandbox_url)
                # Where the machine's CPU goes meanwhile: the worker and the sandbox share it with gunicorn.
                load = functools.partial(run_load, watched={"qcluster": qcluster.pid, "sandbox": sandbox.pid})
                health = load(base, {}, "/health", None, 1, gunicorn)
                single = load(
                    base, headers, "/v1/track", single_bodies, 1, gunicorn, lambda: web_worker_memory(gunicorn)
                )
                browser = {**headers, "Content-Type": "text/plain"}
                beacon = load(base, browser, "/v1/t", functools.partial(single_bodies, prefix="t"), 1, gunicorn)
            batch = run_load(base, headers, "/v1/batch", batch_bodies, BATCH_SIZE, gunicorn)
            workers = [pid for pid in support.group_members(gunicorn.pid) if pid != gunicorn.pid]
            web = {"peak_mb": support.peak_rss_mb(workers), "idle_mb": max(single["warm"].values(), default=0)}
        web["queued"] = queue_length(backend)
        stored = check_stored(single, beacon, batch)
        single["queries"] = queries_per_request(backend, write_key, "/v1/track", single_bodies)
        beacon["queries"] = single["queries"]
        batch["queries"] = queries_per_request(backend, write_key, "/v1/batch", batch_bodies)
        baseline = bulk_insert_rate(source, min(batch["calls"], BASELINE_MAX_ROWS))
        support.report("ingestion", backend, figures(health, single, beacon, batch, baseline, web, stored))


def single_bodies(thread, counter, prefix="s"):
    """An endless supply of /v1/track bodies (a new messageId each)."""
    message = support.track_message(f"bench-user-{thread}", thread)
    while True:
        n = next(counter)
        message["messageId"] = f"{prefix}-{thread}-{n}"
        message["userId"] = f"bench-user-{n % USERS}"
        yield json.dumps(message).encode()


def batch_bodies(thread, counter):
    """An endless supply of /v1/batch bodies of BATCH_SIZE track calls."""
    messages = [support.track_message(f"bench-user-{n % USERS}", n) for n in range(BATCH_SIZE)]
    while True:
        n = next(counter)
        for i, message in enumerate(messages):
            message["messageId"] = f"b-{thread}-{n}-{i}"
        yield json.dumps({"batch": messages, "sentAt": messages[0]["timestamp"]}).encode()


def run_load(base, headers, path, bodies, calls_per_request, gunicorn, on_warm=None, watched=None):
    """THREADS keep-alive clients post as fast as answers come (or GET, without `bodies`), for
    SECONDS; returns counts, gunicorn's CPU time per call, and the share of the machine's CPU
    that gunicorn, the clients (this process) and each `watched` process group ({name: pgid}) used.

    `on_warm()` runs once every client has sent its warm-up requests, before the clock starts.
    """
    groups = {"gunicorn": gunicorn.pid, **(watched or {})}
    tallies = [{"ok": 0, "statuses": {}} for _ in range(THREADS)]
    warmed = threading.Barrier(THREADS + 1)
    go = threading.Event()
    stop_at = [0.0]

    def client(index):
        conn = support.KeepAlive(base, headers)
        if bodies is None:  # GET
            send = lambda: conn.get(path)  # noqa: E731
        else:
            supply = bodies(index, itertools.count())
            send = lambda: conn.post(path, next(supply))  # noqa: E731
        for _ in range(WARMUP_REQUESTS):
            send()
        warmed.wait()
        go.wait()
        tally = tallies[index]
        while time.monotonic() < stop_at[0]:
            status = send()
            if status == 200:
                tally["ok"] += 1
            else:
                tally["statuses"][status] = tally["statuses"].get(status, 0) + 1
        conn.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    warmed.wait(timeout=120)
    warm = on_warm() if on_warm else None
    cpu_before = {name: support.group_cpu_seconds(pgid) for name, pgid in groups.items()}
    clients_before = time.process_time()
    started = time.monotonic()
    stop_at[0] = started + SECONDS
    go.set()
    for thread in threads:
        thread.join(timeout=SECONDS + 90)
    elapsed = time.monotonic() - started
    used = {name: support.group_cpu_seconds(pgid) - cpu_before[name] for name, pgid in groups.items()}
    used["clients"] = time.process_time() - clients_before
    cpu = used["gunicorn"]
    machine = elapsed * (os.cpu_count() or 1)
    ok = sum(t["ok"] for t in tallies)
    failed = {}
    for tally in tallies:
        for status, count in tally["statuses"].items():
            failed[status] = failed.get(status, 0) + count
    return {
        "requests": ok,
        "failed": failed,
        "calls": ok * calls_per_request,
        "sent_calls": (ok + THREADS * WARMUP_REQUESTS) * calls_per_request,
        "calls_per_s": ok * calls_per_request / elapsed,
        "requests_per_s": ok / elapsed,
        "cpu_ms_per_call": 1000 * cpu / max(ok * calls_per_request, 1),
        "cpu_share": {name: f"{100 * seconds / machine:.0f} %" for name, seconds in used.items()},
        "warm": warm,
    }


def queries_per_request(backend, write_key, path, bodies):
    """What one request asks of the database (and Redis), served in this process."""
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=support.basic_auth(write_key))
    body = next(bodies(THREADS + 1, itertools.count(10**6)))

    def post():
        response = client.post(path, body, content_type="application/json")
        assert response.status_code == 200, response.content

    return support.count_queries(post, backend.redis_url)


def check_stored(*loads):
    """Calls in the database against calls answered 200 (warm-up included)."""
    from forwarding.models import Call, Delivery

    expected = sum(load["sent_calls"] for load in loads)
    return {"calls": Call.objects.count(), "deliveries": Delivery.objects.count(), "expected_at_most": expected}


def queue_length(backend):
    """Tasks waiting in the broker (they pile up: no qcluster runs)."""
    if backend.redis_url:
        import redis

        client = redis.Redis.from_url(backend.redis_url)
        try:
            return client.llen(f"django_q:{backend.queue_name}:q")
        finally:
            client.close()
    from django_q.models import OrmQ

    return OrmQ.objects.count()


def bulk_insert_rate(source, rows):
    """Rows/s of Call.objects.bulk_create + Delivery rows, BASELINE_CHUNK rows per transaction:
    the database's own cost of storing what ingestion stores, without HTTP, parsing or queue."""
    from django.db import transaction
    from django.utils import timezone

    from forwarding.models import Call, Delivery

    now = timezone.now()
    prefix = uuid.uuid4().hex[:8]
    calls = [baseline_call(source, n, now, prefix) for n in range(rows)]
    started, cpu_started = time.monotonic(), time.process_time()
    for start in range(0, rows, BASELINE_CHUNK):
        chunk = calls[start : start + BASELINE_CHUNK]
        with transaction.atomic():
            Call.objects.bulk_create(chunk)
            Delivery.objects.bulk_create([baseline_delivery(call, now) for call in chunk])
    elapsed, cpu = time.monotonic() - started, time.process_time() - cpu_started
    return {"rows": rows, "rows_per_s": rows / elapsed if elapsed else 0.0, "cpu_ms_per_row": 1000 * cpu / max(rows, 1)}


def baseline_call(source, n, now, prefix):
    from forwarding.models import Call

    message = support.track_message(f"bench-user-{n % USERS}", n)
    message["messageId"] = f"{prefix}-{n}"
    return Call(
        source=source,
        message_id=message["messageId"],
        type="track",
        user_id=message["userId"],
        event=message["event"],
        timestamp=now,
        sent_at=now,
        received_at=now,
        payload={**message, "receivedAt": now.isoformat()},
    )


def baseline_delivery(call, now):
    from forwarding.models import Delivery

    return Delivery(
        call=call,
        user_id=call.user_id,
        event_key=call.event.lower(),
        created_at=now,
        next_attempt_at=now,
        enqueued_at=now,
    )


def web_worker_memory(gunicorn):
    """{pid: VmRSS MB} of the gunicorn workers (every process in its group but the master)."""
    pids = [pid for pid in support.group_members(gunicorn.pid) if pid != gunicorn.pid]
    return {pid: round(m["rss"] / 1024, 1) for pid in pids if (m := support.memory_kb(pid))}


def figures(health, single, beacon, batch, baseline, web, stored):
    base = baseline["rows_per_s"]
    batch_ratio = support.ratio(batch["calls_per_s"], base)
    health_rate = health["requests_per_s"]
    notes = lambda load: {  # noqa: E731
        "requests/s": round(load["requests_per_s"], 1),
        "non-200 answers": load["failed"] or "none",
        "gunicorn CPU per call": f"{load['cpu_ms_per_call']:.2f} ms",
        f"share of the {os.cpu_count()} cores' CPU": load["cpu_share"],
        "per request": load["queries"],
    }
    singles = []
    for load, what in ((single, "/v1/track, JSON"), (beacon, "/v1/t, text/plain")):
        single_ratio = support.ratio(load["calls_per_s"], health_rate)
        singles.append(
            support.Figure(
                f"single calls ({what}, {THREADS} keep-alive clients, worker delivering)",
                round(load["calls_per_s"], 1),
                "calls/s",
                "GET /health of the same server, same run",
                round(health_rate, 1),
                single_ratio,
                f">= {GOAL} x /health",
                single_ratio is not None and single_ratio >= GOAL,
                notes={**notes(load), "/health's run, share of the CPU": health["cpu_share"]},
            )
        )
    return [
        *singles,
        support.Figure(
            f"batch (/v1/batch x{BATCH_SIZE}, {THREADS} keep-alive clients)",
            round(batch["calls_per_s"], 1),
            "calls/s",
            f"bulk insert ({baseline['rows']:,} Call + Delivery rows, {BASELINE_CHUNK}/transaction)",
            round(base, 1),
            batch_ratio,
            f">= {GOAL} x baseline",
            batch_ratio is not None and batch_ratio >= GOAL,
            notes={
                **notes(batch),
                "bulk insert CPU per row (this process)": f"{baseline['cpu_ms_per_row']:.2f} ms",
                "stored": stored,
                "tasks left queued (no qcluster)": web["queued"],
            },
        ),
        support.Figure(
            "web worker peak RSS (VmHWM, gunicorn worker)",
            web["peak_mb"],
            "MB",
            "same worker warm, before load (VmRSS)",
            web["idle_mb"],
            support.ratio(web["peak_mb"], web["idle_mb"]),
        ),
    ]


if __name__ == "__main__":
    main()
