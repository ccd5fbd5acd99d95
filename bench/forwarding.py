"""Forwarding: deliveries/s of a real `qcluster` to the Intercom sandbox (its own process), in
three phases over one backlog, one cluster and one sandbox whose limit changes between them:

1. Under the goal's limit, 100 requests per 2-second window (50/s): deliveries/s as a share of
   the limit (goal >= 0.95), and the share of requests answered 429 (goal < 1%).
2. Under 20 per 2 s (10/s), below what the relay can do even on a small machine: the limiter's
   own behaviour, apart from the relay's speed.
3. No limit: deliveries/s against a bare single-threaded `requests` loop that replays the very
   HTTP calls the relay made (goal >= 1.0), side by side: in segments where the cluster runs, or
   is stopped (SIGSTOP to its process group) while the loop runs, in the order relay, loop, loop,
   relay, repeated, so that a drift of the machine's speed weighs on both alike (timed one after
   the other, minutes apart, the ratio moved with the machine). Also the qcluster's CPU time per
   delivery, the queries of one delivery, and the peak RSS of a task worker.
4. No limit, with 20 transformation rules: a second cluster over a new backlog (RULE_USERS
   users, so that each has about as many calls queued as in phase 3), in segments where the
   rules are all enabled or all disabled (the same as none: disabled rules are not compiled), in
   the order off, on, on, off, repeated, so that a drift of the machine's speed weighs on both
   alike. Deliveries/s with the rules against without (goal >= 0.95). Most rules match none of
   the bench's calls (other event names, another source, other call types); three match: a
   set_constant and a change_type on every call, a rename_property on one name in 20.

Users are identified and their contacts cached (ContactLink rows, contacts in the sandbox), so
each delivery is one POST /events. The calls are stored and queued as ingestion does before the
cluster starts. Each phase is measured over whole windows of the sandbox (aligned on the epoch)
after two windows of settling, so that the relay has learnt the new limit from the headers.

    PYTHONPATH=. .venv/bin/python bench/forwarding.py
"""

import contextlib
import itertools
import os
import signal
import sys
import time
from datetime import UTC, datetime, timedelta

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import support  # noqa: E402

USERS = 200
WINDOW = 2  # seconds, the sandbox's rate-limit window in every phase
LIMITS = [100, 20]  # requests per WINDOW: 50/s (the goal's), then 10/s
LIMIT_SECONDS = int(os.environ.get("BENCH_LIMIT_SECONDS", 10))  # a whole number of windows
# Phase 3: FREE_ROUNDS times relay, loop, loop, relay, segments of FREE_SEGMENT_SECONDS; a relay
# segment is measured FREE_RESUME_SECONDS after the cluster is let go on again.
FREE_ROUNDS = int(os.environ.get("BENCH_FREE_ROUNDS", 3))
FREE_SEGMENT_SECONDS = float(os.environ.get("BENCH_FREE_SEGMENT_SECONDS", 1.5))
FREE_RESUME_SECONDS = 0.3
# Calls queued for phase 3: its relay segments' worth at FREE_PACE deliveries/s, and a margin.
FREE_PACE = 1200
FREE_CALLS = int(2 * FREE_ROUNDS * (FREE_SEGMENT_SECONDS + FREE_RESUME_SECONDS) * FREE_PACE * 1.2)
SETTLE_WINDOWS = 2
# Phase 4: segments of RULE_SEGMENT_SECONDS, each after RULE_SETTLE_SECONDS for the workers to read
# the rules again (they do at their next task); RULE_ROUNDS times off, on, on, off.
RULE_SEGMENT_SECONDS = float(os.environ.get("BENCH_RULE_SEGMENT_SECONDS", 1.5))
RULE_SETTLE_SECONDS = 0.5
RULE_WARMUP_SECONDS = 4  # after the cluster's first delivery (the first seconds run slower)
RULE_ROUNDS = int(os.environ.get("BENCH_RULE_ROUNDS", 3))
# Tally rows left once a sweep has folded them: a few thousand keys, and the 2,000 or so rows a
# second of deliveries adds until the next sweep.
TALLIES_FOLDED = 30_000
# Phase 4's users: its backlog is five or six times phase 3's, spread so that each user has 25-30
# calls queued. (With 200 users, some 150 calls each, the SQLite run used to deliver nothing after
# a few seconds: the workers went through hundreds of queued tasks whose calls were each held
# back by the call before, while the users' next calls were handed on at the back of the queue.
# Tasks now carry on with their users' next calls, loop.carry_on; the spread is kept, so that
# the figure compares with earlier runs.)
RULE_USERS = 1200
TASK_SIZE = 25  # deliveries per task in the bench: ingestion's 100 calls split over 4 workers


def main():
    support.stop_on_sigterm()
    with support.fresh_backend() as backend:
        support.setup_django(backend)
        with contextlib.ExitStack() as stack:
            _, sandbox = support.start_sandbox(stack, backend)
            users = support.user_ids(USERS)
            support.seed_contacts(sandbox, users)
            store_tracks(users, backlog_size())
            configure_limit(sandbox, LIMITS[0])
            qcluster = support.start_qcluster(stack, backend, sandbox)
            sampler = support.PeakSampler(qcluster.pid)
            wait_first_delivery()
            figures = []
            for limit in LIMITS:
                figures += under_limit(sandbox, limit)
            free = without_limit(sandbox, qcluster)
            peaks = sampler.stop()
            workers = support.worker_pids(qcluster)
            qcluster.stop()
            free["per delivery"] = queries_per_delivery(backend, sandbox)
            rules = with_and_without_rules(stack, backend, sandbox, free["rate"])
        figures += free_figures(free) + [memory_figure(peaks, workers), rules_figure(rules)]
        support.report("forwarding", backend, figures)


def backlog_size():
    """Calls for the three phases: each limited phase runs SETTLE_WINDOWS + its measured windows
    (+1 for alignment) at the limit; the last gets FREE_CALLS."""
    windows = SETTLE_WINDOWS + LIMIT_SECONDS // WINDOW + 1
    return sum(limit * windows for limit in LIMITS) + FREE_CALLS


def configure_limit(sandbox, limit):
    support.sandbox_control(sandbox, "config", {"rate_limit": limit, "rate_limit_window": WINDOW})


# -- phases 1 and 2: under a limit -----------------------------------------------------------------


def under_limit(sandbox, limit):
    """Set the sandbox's limit at a window boundary, settle, measure whole windows."""
    boundary = next_window(datetime.now(UTC))
    sleep_until(boundary)
    configure_limit(sandbox, limit)
    start = boundary + timedelta(seconds=SETTLE_WINDOWS * WINDOW)
    end = start + timedelta(seconds=LIMIT_SECONDS)
    sleep_until(end + timedelta(seconds=0.3))
    delivered = delivered_between(start, end)
    statuses = exchange_statuses(start, end)
    total = sum(statuses.values())
    share_429 = statuses.get(429, 0) / total if total else 0.0
    allowed = limit / WINDOW
    rate = delivered / LIMIT_SECONDS
    measured = f"{LIMIT_SECONDS} s = {LIMIT_SECONDS // WINDOW} windows of {WINDOW} s, {delivered} deliveries"
    return [
        support.Figure(
            f"deliveries under a limit of {limit}/{WINDOW} s",
            round(rate, 2),
            "deliveries/s",
            "the limit",
            allowed,
            support.ratio(rate, allowed),
            ">= 0.95 x limit",
            rate >= 0.95 * allowed,
            {"measured": measured, "requests by status": statuses},
        ),
        support.Figure(
            f"requests answered 429 under the limit of {limit}/{WINDOW} s",
            round(100 * share_429, 2),
            "% of requests",
            goal="< 1%",
            met=share_429 < 0.01,
        ),
    ]


def next_window(moment):
    """The first window boundary at or after `moment`."""
    boundary = -(-moment.timestamp() // WINDOW) * WINDOW
    return datetime.fromtimestamp(boundary, UTC)


# -- phase 3: without a limit ----------------------------------------------------------------------


def without_limit(sandbox, qcluster):
    """Deliveries/s and qcluster CPU per delivery with no limit, and the bare loop's rate, in
    alternating segments (see the module's docstring). The loop replays the requests the relay
    made in its first segment; the deliveries are counted once the cluster has stopped, when
    every outcome it buffered is written."""
    from forwarding.models import Delivery, State

    support.sandbox_control(sandbox, "config", {"rate_limit": None})
    # One window for the relay's last known window to run out.
    began = datetime.now(UTC) + timedelta(seconds=WINDOW)
    sleep_until(began)
    relay_segments, bare_segments = [], []
    replay, ran_out = None, False
    try:
        for runs_relay in [True, False, False, True] * FREE_ROUNDS:
            if not runs_relay:
                pause(qcluster, True)
                replay = replay or replay_requests(began, datetime.now(UTC))
                bare_segments.append(bare_loop(sandbox, replay, FREE_SEGMENT_SECONDS))
                continue
            if Delivery.objects.exclude(state=State.DELIVERED).count() < FREE_PACE * FREE_SEGMENT_SECONDS:
                ran_out = True
                break
            pause(qcluster, False)
            time.sleep(FREE_RESUME_SECONDS)
            relay_segments.append(timed_segment(qcluster, FREE_SEGMENT_SECONDS))
    finally:
        pause(qcluster, False)
    time.sleep(1.0)  # the last delivered outcomes flushed (every half second)
    relay = relay_totals(relay_segments)
    done, bare_seconds, bare_cpu = (sum(column) for column in zip(*bare_segments, strict=True))
    ran_out_note = "; the backlog ran out" if ran_out else ""
    return {
        **relay,
        "bare_rate": done / bare_seconds,
        "measured": f"{relay['segments']} relay segments, {relay['seconds']:.1f} s, {relay['delivered']} deliveries;"
        f" loop {len(bare_segments)} segments, {bare_seconds:.1f} s, {done} requests{ran_out_note}",
        "by segment": ", ".join(f"{rate:.0f}" for rate in relay["rates"]),
        "bare_cpu_ms": 1000 * bare_cpu / max(done, 1),
        "distinct": len(replay),
    }


def pause(qcluster, stopped):
    """Stop the cluster's whole process group (SIGSTOP), or let it go on (SIGCONT)."""
    os.killpg(qcluster.pid, signal.SIGSTOP if stopped else signal.SIGCONT)


def replay_requests(start, end):
    """The HTTP requests the relay made in [start, end), in order: (method, path, body)."""
    from forwarding.models import Exchange

    rows = (
        Exchange.objects.filter(status__lt=300, attempt__started_at__gte=start, attempt__started_at__lt=end)
        .order_by("id")
        .values_list("method", "path", "request_body")
    )
    requests_made = [(method, path, body.encode()) for method, path, body in rows]
    if not requests_made:
        raise RuntimeError("the relay made no request in its first segment: nothing for the bare loop to replay")
    return requests_made


def bare_loop(sandbox, requests_to_make, seconds):
    """One thread replaying the requests (in a loop, for `seconds`) with a keep-alive
    requests.Session, as the relay's client sends them: (requests answered 2xx, seconds, CPU
    seconds)."""
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
    started, cpu_started = time.monotonic(), time.process_time()
    done = 0
    for method, path, body in itertools.cycle(requests_to_make):
        response = session.request(method, sandbox + path, data=body, timeout=30)
        # What the relay's client does with an answer: parse it when there is one.
        _ = response.json() if response.content else None
        done += response.ok
        if time.monotonic() - started > seconds:
            break
    elapsed, cpu = time.monotonic() - started, time.process_time() - cpu_started
    session.close()
    return done, elapsed, cpu


def queries_per_delivery(backend, sandbox):
    """What a delivery asks of the database (and Redis), on average in one task of TASK_SIZE
    deliveries of different users, as the bench's tasks are; run in this process once the cluster
    has stopped. Each user's first call goes first, so that the names have their slots and the
    counted calls are each user's second."""
    from django.conf import settings

    from forwarding import intercom
    from forwarding.delivery import loop
    from forwarding.models import Delivery

    settings.INTERCOM_API_BASE = sandbox
    settings.INTERCOM_ACCESS_TOKEN = support.SANDBOX_TOKEN
    intercom.reset_client()
    users = [f"probe-user-{n}" for n in range(TASK_SIZE)]
    support.seed_contacts(sandbox, users)
    store_tracks(users, 2 * TASK_SIZE)
    pks = list(Delivery.objects.filter(user_id__in=users).order_by("created_at", "pk").values_list("pk", flat=True))
    loop.deliver_many(pks[:TASK_SIZE])
    counts = support.count_queries(lambda: loop.deliver_many(pks[TASK_SIZE:]), backend.redis_url)
    return {
        "queries": round(counts.pop("queries") / TASK_SIZE, 2),
        "writes": round(counts.pop("writes") / TASK_SIZE, 2),
        f"a task of {TASK_SIZE}": counts.pop("most"),
        **counts,
    }


def free_figures(free):
    from django.conf import settings

    return [
        support.Figure(
            f"deliveries without a limit ({settings.Q_CLUSTER['workers']} workers)",
            round(free["rate"], 1),
            "deliveries/s",
            f"bare requests loop replaying the relay's {free['distinct']} requests",
            round(free["bare_rate"], 1),
            support.ratio(free["rate"], free["bare_rate"]),
            ">= 1.0 x baseline",
            free["rate"] >= free["bare_rate"],
            {
                "measured": free["measured"],
                "relay's deliveries/s by segment": free["by segment"],
                "CPU per delivery": f"{free['cpu_ms']:.1f} ms in the qcluster processes "
                f"(bare loop: {free['bare_cpu_ms']:.1f} ms per request)",
                "statements per delivery": free["per delivery"],
            },
        )
    ]


def memory_figure(peaks, workers):
    worker_peak = round(max((peaks.get(pid, 0) for pid in workers), default=0) / 1024, 1)
    other_peak = round(max((kb for pid, kb in peaks.items() if pid not in workers), default=0) / 1024, 1)
    return support.Figure(
        "worker peak RSS (VmHWM, qcluster task worker)",
        worker_peak,
        "MB",
        notes={"largest other qcluster process (guard, pusher, monitor)": f"{other_peak} MB"},
    )


# -- phase 4: with and without transformation rules -------------------------------------------------


def with_and_without_rules(stack, backend, sandbox, rate):
    """Deliveries/s and qcluster CPU per delivery of a new cluster over a new backlog, in segments
    with the 20 rules enabled or disabled; `rate`, phase 3's, sizes the backlog."""
    from forwarding.models import Delivery, State

    users = support.user_ids(RULE_USERS)
    support.seed_contacts(sandbox, users[USERS:])  # the first USERS have their contacts already
    save_rules()
    toggle_rules(False)
    order = [False, True, True, False] * RULE_ROUNDS
    per_segment = RULE_SETTLE_SECONDS + RULE_SEGMENT_SECONDS
    # The pace it may reach: phase 4 often runs faster than phase 3 (or phase 3 was slowed down).
    pace = max(1.3 * rate, 1000)
    store_tracks(users, int(pace * (1.25 * per_segment * len(order) + RULE_WARMUP_SECONDS + 2)))
    started = datetime.now(UTC)
    qcluster = support.start_qcluster(stack, backend, sandbox)
    support.wait_for(lambda: delivered_between(started, datetime.now(UTC)), 60, "phase 4's first delivery", 0.1)
    time.sleep(RULE_WARMUP_SECONDS)
    # The new cluster's first sweep folds the tallies of phases 3 and 4's stores and deliveries
    # (some 120,000 rows, 4 s on SQLite, the write lock left free half the time). Deliveries/s
    # halved meanwhile, on whichever segments it met (the first two "on" ones: 0.86 and 0.78).
    support.wait_for(lambda: tallies_folded(started), 90, "phase 4's first sweep to fold the tallies", 0.2)
    segments, ran_out = [], False
    for enabled in order:
        if Delivery.objects.exclude(state=State.DELIVERED).count() < pace * per_segment:
            ran_out = True
            break
        toggle_rules(enabled)
        time.sleep(RULE_SETTLE_SECONDS)
        segments.append((enabled, timed_segment(qcluster, RULE_SEGMENT_SECONDS)))
    time.sleep(1.0)  # the last delivered outcomes flushed (every half second)
    qcluster.stop()
    toggle_rules(False)
    totals = {"on": segment_totals(segments, True), "off": segment_totals(segments, False)}
    in_order = relay_totals([segment for _, segment in segments])["rates"]
    rates = [f"{'on' if enabled else 'off'} {rate:.0f}" for (enabled, _), rate in zip(segments, in_order, strict=True)]
    return {**totals, "by segment": ", ".join(rates), "ran_out": ran_out}


def tallies_folded(since):
    """Whether a sweep began `since` and the tallies are folded."""
    from forwarding.models import DeliveryTally, SweepRun

    began = SweepRun.objects.filter(name="sweep", started_at__gte=since).exists()
    return began and DeliveryTally.objects.count() < TALLIES_FOLDED


def segment_totals(segments, enabled):
    """`relay_totals` over the segments with the rules `enabled` (or not), and their attempts,
    those that applied a rule among them."""
    from forwarding.models import Attempt

    chosen = [segment for flag, segment in segments if flag == enabled]
    totals = {**relay_totals(chosen), "attempts": 0, "with rules": 0}
    for start, end, _ in chosen:
        rules = list(Attempt.objects.filter(started_at__gte=start, started_at__lt=end).values_list("rules", flat=True))
        totals["attempts"] += len(rules)
        totals["with rules"] += sum(bool(applied) for applied in rules)
    return totals


def save_rules():
    """The 20 rules, saved as the dashboard saves them: 17 match none of the bench's calls, 3 do."""
    from forwarding.models import Rule, Source
    from forwarding.transformations import store

    # Its name sorts after "Bench": support.store_calls (the first source by name) keeps storing as Bench.
    mobile = Source.create_with_key("Mobile App")[0]
    specs = [
        (
            "track",
            "Order Completed",
            None,
            {"op": "rename_property", "from": "properties.cart_total", "to": "properties.revenue"},
        ),
        ("track", "Signed Up", None, {"op": "set_constant", "path": "properties.channel", "value": "web"}),
        ("track", "Product Viewed", None, {"op": "delete_property", "path": "properties.debug"}),
        ("track", "Checkout Started", None, {"op": "change_type", "path": "properties.value", "to": "number"}),
        (  # matches every bench call (they all have plan "pro")
            "track",
            "",
            {"path": "properties.plan", "equals": "pro"},
            {"op": "set_constant", "path": "properties.tier", "value": "gold"},
        ),
        ("track", "Cart Viewed", None, {"op": "change_case", "path": "properties.coupon", "to": "upper"}),
        ("track", "Debug Ping", None, {"op": "drop"}),
        ("track", "Signup", None, {"op": "rename_event", "to": "Signed Up"}),
        ("track", "Page Scrolled", None, {"op": "drop"}),
        ("track", "Video Played", None, {"op": "copy_field", "from": "context.page.url", "to": "properties.page_url"}),
        ("track", "Search", None, {"op": "change_case", "path": "properties.query", "to": "lower"}),
        (  # matches one bench call in 20
            "track",
            support.EVENT_NAMES[3],
            None,
            {"op": "rename_property", "from": "properties.sku", "to": "properties.product_sku"},
        ),
        ("track", "", None, {"op": "set_constant", "path": "properties.app", "value": "ios"}, mobile),
        ("track", "Crash Report", None, {"op": "drop"}, mobile),
        ("page", "", None, {"op": "copy_field", "from": "context.campaign.source", "to": "properties.utm_source"}),
        ("page", "Pricing", None, {"op": "set_constant", "path": "properties.section", "value": "sales"}),
        ("identify", "", None, {"op": "change_case", "path": "traits.email", "to": "lower"}),
        ("track", "", None, {"op": "change_type", "path": "properties.items", "to": "text"}),  # every bench call
        (
            "identify",
            "",
            {"path": "traits.company_name", "exists": True},
            {"op": "rename_property", "from": "traits.company_name", "to": "traits.company"},
        ),
        ("group", "", None, {"op": "change_type", "path": "traits.employees", "to": "number"}),
    ]
    for call_type, event, condition, operation, *source in specs:
        rule = Rule(call_type=call_type, event=event, condition=condition, operations=[operation])
        rule.source = source[0] if source else None
        store.save(rule)
    assert Rule.objects.count() == 20


def toggle_rules(enabled):
    """Every rule enabled (or disabled) and the rule set's version bumped, in one transaction: each
    worker compiles the rules again at its next task."""
    from django.db import transaction

    from forwarding.models import Rule
    from forwarding.transformations import store

    with transaction.atomic():
        Rule.objects.update(enabled=enabled)
        store.bump()


def rules_figure(rules):
    on, off = rules["on"], rules["off"]
    notes = {
        "measured": f"{on['segments']} segments with the rules, {off['segments']} without, "
        f"{RULE_SEGMENT_SECONDS:g} s each (order off, on, on, off); {on['delivered']} and "
        f"{off['delivered']} deliveries",
        "CPU per delivery": f"{on['cpu_ms']:.2f} ms in the qcluster processes with the rules, "
        f"{off['cpu_ms']:.2f} ms without",
        "deliveries/s by segment": rules["by segment"],
        "attempts that applied a rule": f"{on['with rules']} of {on['attempts']} with the rules enabled, "
        f"{off['with rules']} of {off['attempts']} without",
    }
    if rules["ran_out"]:
        notes["warning"] = "the backlog ran low: fewer segments than planned"
    return support.Figure(
        "forwarding with 20 enabled rules (3 matching)",
        round(on["rate"], 1),
        "deliveries/s",
        "the same run without rules",
        round(off["rate"], 1),
        support.ratio(on["rate"], off["rate"]),
        ">= 0.95 x the run without rules",
        bool(off["rate"]) and on["rate"] >= 0.95 * off["rate"],
        notes,
    )


# -- shared ----------------------------------------------------------------------------------------


def timed_segment(qcluster, seconds):
    """Let the cluster deliver for `seconds`: (start, end, CPU seconds of its processes)."""
    start, cpu = datetime.now(UTC), support.group_cpu_seconds(qcluster.pid)
    time.sleep(seconds)
    return start, datetime.now(UTC), support.group_cpu_seconds(qcluster.pid) - cpu


def relay_totals(segments):
    """Over `timed_segment`s: their number, deliveries, seconds and CPU seconds, the rate of each,
    and the rate and CPU milliseconds per delivery of all together."""
    totals = {"segments": len(segments), "delivered": 0, "seconds": 0.0, "cpu": 0.0, "rates": []}
    for start, end, cpu in segments:
        delivered, seconds = delivered_between(start, end), (end - start).total_seconds()
        totals["delivered"] += delivered
        totals["seconds"] += seconds
        totals["cpu"] += cpu
        totals["rates"].append(delivered / seconds)
    totals["rate"] = totals["delivered"] / totals["seconds"] if totals["seconds"] else 0.0
    totals["cpu_ms"] = 1000 * totals["cpu"] / max(totals["delivered"], 1)
    return totals


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


def exchange_statuses(start, end):
    """{status: count} of the requests whose attempt started in [start, end)."""
    from django.db.models import Count

    from forwarding.models import Exchange

    rows = (
        Exchange.objects.filter(attempt__started_at__gte=start, attempt__started_at__lt=end)
        .values_list("status")
        .annotate(n=Count("id"))
    )
    return {status: n for status, n in rows}


def sleep_until(moment):
    delay = (moment - datetime.now(UTC)).total_seconds()
    if delay > 0:
        time.sleep(min(delay, 600))


if __name__ == "__main__":
    main()
