"""Latency: from accepted (Call.received_at) to delivered (Delivery.delivered_at), p50 and p99,
for single /v1/track calls sent at a steady rate through gunicorn, forwarded by a real qcluster
to the Intercom sandbox (its own process, no rate limit).

Two runs: the goal's 50 calls/s, and 10 calls/s. When the relay cannot deliver 50/s, the first
measures a growing queue; the second shows the latency of the pipeline itself (queue polling,
claim, request, writes).

Baseline: the p50 of a bare POST /events round trip to the same sandbox (the floor a delivery
cannot beat). Users are identified and their contacts cached, so a delivery is one request.
Goal on SQLite with the ORM broker: p50 <= 50 ms and p99 <= 250 ms at 50 calls/s, with the
worker idle at most 2 % of a core: the CPU of the whole qcluster (guard, pusher, workers, monitor,
its schedules) over IDLE_SECONDS with nothing to deliver, measured after the runs.

    PYTHONPATH=. .venv/bin/python bench/latency.py
"""

import contextlib
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import support  # noqa: E402

# (calls/s, seconds)
RUNS = [(50, float(os.environ.get("BENCH_LATENCY_SECONDS", 15))), (10, 8.0)]
USERS = 50
SENDERS = 8  # keep-alive clients sharing one schedule (gunicorn serves 8 at once)
WARMUP_CALLS = 10
DRAIN_TIMEOUT = 20  # calls still queued after this are reported as not delivered
IDLE_SECONDS = float(os.environ.get("BENCH_IDLE_SECONDS", 20))
GOALS = {50: (50, 250)}  # calls/s: (p50, p99) in ms, on SQLite
IDLE_GOAL = 2.0  # % of a core


def main():
    support.stop_on_sigterm()
    with support.fresh_backend() as backend:
        support.setup_django(backend)
        from forwarding.models import Source

        _, write_key = Source.create_with_key("Bench")
        users = support.user_ids(USERS)
        runs = []
        with contextlib.ExitStack() as stack:
            _, sandbox = support.start_sandbox(stack, backend)
            support.seed_contacts(sandbox, users)
            gunicorn, base = support.start_gunicorn(stack, backend)
            qcluster = support.start_qcluster(stack, backend, sandbox)
            headers = {"Authorization": support.basic_auth(write_key)}
            warm_up(support.KeepAlive(base, headers), users)
            for rate, seconds in RUNS:
                prefix = f"lat{rate}-"
                sent = send_paced(base, headers, users, rate, seconds, prefix)
                sent["delivered"] = wait_delivered(sent["ok"], prefix)
                runs.append((rate, prefix, sent))
            floor = bare_round_trip(sandbox)
            idle = idle_cpu_percent(qcluster)
            memory = {
                "gunicorn worker peak": support.peak_rss_mb(
                    [pid for pid in support.group_members(gunicorn.pid) if pid != gunicorn.pid]
                ),
                "qcluster worker peak": support.peak_rss_mb(support.worker_pids(qcluster)),
            }
        figures = []
        for rate, prefix, sent in runs:
            sent["delivered_rate"] = delivery_rate(prefix)
            figures += run_figures(rate, sorted(latencies_ms(prefix)), sent, floor, backend)
        figures[0].notes.update({name: f"{mb} MB" for name, mb in memory.items()})
        figures.append(
            support.Figure(
                f"worker idle CPU ({IDLE_SECONDS:.0f} s, nothing to deliver)",
                idle,
                "% of a core",
                goal=f"<= {IDLE_GOAL} %",
                met=idle <= IDLE_GOAL,
            )
        )
        support.report("latency", backend, figures)


def warm_up(client, users):
    """A few calls delivered before the clock starts (imports, connections, first queries)."""
    for n in range(WARMUP_CALLS):
        message = support.track_message(users[n % len(users)], n)
        message["messageId"] = f"warm-{n}"
        client.post("/v1/track", json.dumps(message).encode())
    client.close()
    wait_delivered(WARMUP_CALLS, "warm-")


def send_paced(base, headers, users, rate, seconds, prefix):
    """Send call n at start + n/rate, for `seconds`; returns counts and the rate achieved."""
    slots = iter(range(int(rate * seconds)))
    lock = threading.Lock()
    tally = {"ok": 0, "failed": 0}
    started = time.monotonic()
    give_up = started + seconds + DRAIN_TIMEOUT

    def sender():
        client = support.KeepAlive(base, headers)
        while time.monotonic() < give_up:
            with lock:
                n = next(slots, None)
            if n is None:
                break
            delay = started + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            message = support.track_message(users[n % len(users)], n)
            message["messageId"] = f"{prefix}{n}"
            status = client.post("/v1/track", json.dumps(message).encode())
            with lock:
                tally["ok" if status == 200 else "failed"] += 1
        client.close()

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + DRAIN_TIMEOUT + 30)
    elapsed = time.monotonic() - started
    return {**tally, "rate": round(tally["ok"] / elapsed, 1)}


def wait_delivered(count, prefix, timeout=DRAIN_TIMEOUT):
    """Wait (bounded) until `count` of the calls are delivered; returns how many were."""
    from forwarding.models import Delivery, State

    deadline = time.monotonic() + timeout
    while True:
        done = Delivery.objects.filter(state=State.DELIVERED, call__message_id__startswith=prefix).count()
        if done >= count or time.monotonic() > deadline:
            return done
        time.sleep(0.2)


def latencies_ms(prefix):
    from forwarding.models import Delivery, State

    rows = Delivery.objects.filter(state=State.DELIVERED, call__message_id__startswith=prefix).values_list(
        "call__received_at", "delivered_at"
    )
    return [(delivered - received).total_seconds() * 1000 for received, delivered in rows]


def delivery_rate(prefix):
    """Deliveries/s from the first call received to the last delivered: below the rate sent
    means the relay did not keep up, and the latencies are mostly time spent queued."""
    from django.db.models import Count, Max, Min

    from forwarding.models import Delivery

    span = Delivery.objects.filter(call__message_id__startswith=prefix).aggregate(
        first=Min("call__received_at"), last=Max("delivered_at"), n=Count("pk")
    )
    if not span["last"]:
        return 0.0
    return round(span["n"] / max((span["last"] - span["first"]).total_seconds(), 1e-3), 1)


def bare_round_trip(sandbox, count=200):
    """p50 in ms of POST /events with a keep-alive requests.Session (the body the relay sends)."""
    import requests

    from forwarding.models import Exchange

    exchange = Exchange.objects.filter(status__lt=300, path="/events").order_by("id").first()
    session = requests.Session()
    session.headers.update(
        {
            "Authorization": f"Bearer {support.SANDBOX_TOKEN}",
            "Intercom-Version": "2.16",
            "Content-Type": "application/json",
        }
    )
    times = []
    for _ in range(count):
        started = time.monotonic()
        session.post(f"{sandbox}/events", data=exchange.request_body.encode(), timeout=30)
        times.append((time.monotonic() - started) * 1000)
    session.close()
    return support.percentile(sorted(times), 50)


def idle_cpu_percent(qcluster):
    """The qcluster's CPU over IDLE_SECONDS with nothing queued (after a settling second)."""
    time.sleep(1.0)
    before, started = support.group_cpu_seconds(qcluster.pid), time.monotonic()
    time.sleep(IDLE_SECONDS)
    used = support.group_cpu_seconds(qcluster.pid) - before
    return round(100 * used / (time.monotonic() - started), 2)


def run_figures(rate, latencies, sent, floor, backend):
    kept_up = sent["delivered_rate"] >= 0.95 * rate
    notes = {
        "calls": f"{sent['ok']} accepted at {sent['rate']} calls/s ({sent['failed']} failed), "
        f"{sent['delivered']} delivered",
        "delivered at": f"{sent['delivered_rate']} deliveries/s"
        + ("" if kept_up else " (did not keep up: the latency is mostly queueing)"),
        "max": f"{max(latencies, default=0):.0f} ms",
    }
    figures = []
    goals = GOALS.get(rate) if backend.name == "sqlite" and not backend.redis_url else None
    for index, p in enumerate((50, 99)):
        value = support.percentile(latencies, p) or 0.0
        goal = goals[index] if goals else None
        figures.append(
            support.Figure(
                f"accepted -> delivered p{p} at {rate} calls/s",
                round(value, 1),
                "ms",
                "bare POST /events round trip p50",
                round(floor, 2),
                support.ratio(value, floor),
                goal=f"<= {goal} ms" if goal else "",
                met=value <= goal if goal else None,
                notes=notes if p == 50 else {},
            )
        )
    return figures


if __name__ == "__main__":
    main()
