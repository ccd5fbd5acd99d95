"""Storage: bytes on disk per delivered call (the call, its delivery, attempts, HTTP exchanges and
their indexes; every other table that grew is reported beside it) against the size of the call's
payload. Goal: <= 3 x the payload.

A website's traffic goes through gunicorn as analytics.js (analytics-next 1.x) sends it: one
text/plain POST per call to /v1/i, /v1/p or /v1/t with the write key in the body and the full
browser context (library, page, userAgent, locale; the relay adds the ip). Each user identifies
first, then views pages and tracks events (BENCH_STORAGE_CALLS calls, about 1 identify, 6 pages
and 3 tracks in 10). A qcluster delivers them all to the Intercom sandbox (its own process), then
stops, and the database is measured against the empty, migrated one:

- SQLite: `dbstat` (bytes of every table and index) after VACUUM;
- PostgreSQL: pg_table_size + pg_indexes_size of every table after VACUUM FULL (dead tuples and
  free space do not count; a plain VACUUM leaves the space to reuse, not to the disk).

The delivery tallies are folded before each measure, as the sweeper does every few seconds.

Then retention as an operator would run it once the calls are old enough: prune_payloads past
RELAY_PAYLOAD_RETENTION_DAYS, measured again; prune_logs past RELAY_LOG_RETENTION_DAYS, again.

    PYTHONPATH=. .venv/bin/python bench/storage.py
"""

import contextlib
import hashlib
import itertools
import json
import os
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import support  # noqa: E402

CALLS = int(os.environ.get("BENCH_STORAGE_CALLS", 5000))
CALLS_PER_USER = 10  # a session: identify, then pages and tracks
SENDERS = 4  # keep-alive clients, each with its own users (a user's calls stay in order)
DELIVERY_TIMEOUT = 240
GOAL = 3.0
LIBRARY = {"name": "analytics.js", "version": "next-1.70.0"}
USER_AGENT = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
PAGES = [
    ("Home", "/", ""),
    ("Pricing", "/pricing", ""),
    ("Docs", "/docs/getting-started", "?ref=nav"),
    ("Blog", "/blog/shipping-faster-with-webhooks", "?utm_source=newsletter&utm_medium=email"),
    ("Changelog", "/changelog", ""),
    ("Integrations", "/integrations/intercom", ""),
]
TRACKS = [
    ("Signed In", {"method": "password"}),
    ("Button Clicked", {"label": "Start free trial", "location": "pricing_hero"}),
    ("Product Viewed", {"product_id": "pro-annual", "sku": "PRO-12", "name": "Pro plan", "price": 49.0}),
    ("Added to Cart", {"product_id": "pro-annual", "price": 49.0, "currency": "USD", "quantity": 1}),
    ("Search Performed", {"query": "webhooks retry", "results": 12}),
    ("Invite Sent", {"role": "member", "seats": 3}),
]
PLANS = ["free", "starter", "pro", "business"]
# Tables measured as the relay's: everything in the database, so that nothing growing per call is
# missed; the ones that did not grow are left out of the breakdown.


def main():
    support.stop_on_sigterm()
    with support.fresh_backend() as backend:
        support.setup_django(backend)
        from forwarding.models import Source

        _, write_key = Source.create_with_key("Website")
        empty = measure(backend)
        with contextlib.ExitStack() as stack:
            _, sandbox = support.start_sandbox(stack, backend)
            _, base = support.start_gunicorn(stack, backend)
            qcluster = support.start_qcluster(stack, backend, sandbox)
            sent = send_traffic(base, write_key)
            states = wait_finished(sent["calls"])
            time.sleep(1.0)  # the last buffered outcomes flushed
            qcluster.stop()
        delivered = states.get("delivered", 0)
        stored = measure(backend)
        columns = column_bytes(backend)
        payload_days, log_days = retention_days()
        now = datetime.now(UTC)
        freed_payloads = prune("payloads", now + timedelta(days=payload_days + 1))
        after_payloads = measure(backend)
        freed_logs = prune("logs", now + timedelta(days=log_days + 1))
        after_logs = measure(backend)
        figures = [
            stored_figure(empty, stored, sent, delivered, states, columns),
            prune_figure(
                f"bytes on disk per call after prune_payloads ({payload_days} days)",
                empty,
                stored,
                after_payloads,
                sent,
                delivered,
                f"{freed_payloads} payloads removed",
            ),
            prune_figure(
                f"bytes on disk per call after prune_logs ({log_days} days)",
                empty,
                after_payloads,
                after_logs,
                sent,
                delivered,
                f"{freed_logs} log entries deleted",
            ),
        ]
        support.report("storage", backend, figures)


# -- traffic ---------------------------------------------------------------------------------------


def send_traffic(base, write_key):
    """Post CALLS calls from SENDERS clients; returns {"calls": accepted, "payload_bytes": their bodies' bytes}."""
    users = [f"storage-user-{n}-{uuid.uuid4().hex[:6]}" for n in range(max(1, CALLS // CALLS_PER_USER))]
    totals = [{"calls": 0, "payload_bytes": 0, "failed": 0} for _ in range(SENDERS)]

    def sender(index):
        conn = support.KeepAlive(base, {"Content-Type": "text/plain"})
        mine = users[index::SENDERS]
        sessions = [session(user, write_key) for user in mine]
        # Round robin over this sender's users: their sessions interleave, each in order.
        for calls in itertools.zip_longest(*sessions):
            for call in calls:
                if call is None:
                    continue
                path, body = call
                if conn.post(path, body) == 200:
                    totals[index]["calls"] += 1
                    totals[index]["payload_bytes"] += len(body)
                else:
                    totals[index]["failed"] += 1
        conn.close()

    threads = [threading.Thread(target=sender, args=(i,), daemon=True) for i in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sent = {key: sum(t[key] for t in totals) for key in totals[0]}
    if sent["failed"]:
        print(f"warning: {sent['failed']} calls were not accepted", file=sys.stderr)
    return sent


def session(user_id, write_key):
    """A user's calls as (path, body bytes): an identify, then pages and tracks."""
    anonymous_id = str(uuid.uuid4())
    started = time.time() - 3600
    n = int(hashlib.sha256(user_id.encode()).hexdigest()[:8], 16)
    calls = [("/v1/i", identify(user_id, anonymous_id, write_key, n, started))]
    for step in range(1, CALLS_PER_USER):
        at = started + 20 * step
        if step % 3 == 0:
            calls.append(("/v1/t", track(user_id, anonymous_id, write_key, n + step, at)))
        else:
            calls.append(("/v1/p", page(user_id, anonymous_id, write_key, n + step, at)))
    return iter(calls)


def envelope(call_type, user_id, anonymous_id, write_key, at, page_index, extra):
    """What analytics-next puts around every call."""
    name, path, search = PAGES[page_index % len(PAGES)]
    url = f"https://www.example.com{path}{search}"
    iso = datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    message = {
        "timestamp": iso,
        "integrations": {},
        "type": call_type,
        **extra,
        "context": {
            "page": {
                "path": path,
                "referrer": "https://www.google.com/",
                "search": search,
                "title": f"{name} | Example",
                "url": url,
            },
            "userAgent": USER_AGENT,
            "locale": "en-US",
            "library": LIBRARY,
        },
        "messageId": f"ajs-next-{uuid.uuid4().hex}",
        "anonymousId": anonymous_id,
        "userId": user_id,
        "writeKey": write_key,
        "sentAt": iso,
        "_metadata": {"bundled": ["Segment.io"], "unbundled": [], "bundledIds": []},
    }
    return json.dumps(message, separators=(",", ":")).encode()


def identify(user_id, anonymous_id, write_key, n, at):
    traits = {
        "email": f"{user_id}@example.com",
        "name": f"Ada Lovelace {n % 1000}",
        "plan": PLANS[n % len(PLANS)],
        "createdAt": datetime.fromtimestamp(at - 86400 * (n % 400), UTC).isoformat(),
        "logins": n % 50,
    }
    return envelope("identify", user_id, anonymous_id, write_key, at, n, {"traits": traits})


def page(user_id, anonymous_id, write_key, n, at):
    name, path, search = PAGES[n % len(PAGES)]
    properties = {
        "name": name,
        "path": path,
        "referrer": "https://www.google.com/",
        "search": search,
        "title": f"{name} | Example",
        "url": f"https://www.example.com{path}{search}",
    }
    return envelope("page", user_id, anonymous_id, write_key, at, n, {"name": name, "properties": properties})


def track(user_id, anonymous_id, write_key, n, at):
    event, properties = TRACKS[n % len(TRACKS)]
    return envelope("track", user_id, anonymous_id, write_key, at, n, {"event": event, "properties": properties})


def wait_finished(count):
    """Wait until every stored call's delivery is final; returns {state: count}."""
    from django.db.models import Count

    from forwarding.models import Delivery
    from forwarding.retention import UNFINISHED

    def finished():
        stored = Delivery.objects.count()
        return stored >= count and not Delivery.objects.filter(state__in=UNFINISHED).exists()

    support.wait_for(finished, DELIVERY_TIMEOUT, f"{count} deliveries to finish", 0.5)
    return dict(Delivery.objects.values_list("state").annotate(n=Count("pk")))


# -- measuring -------------------------------------------------------------------------------------


def measure(backend):
    """{table: {"data", "indexes", "by index"}} in bytes, of every table, once the space is
    compacted; the delivery tallies folded first, as the sweeper folds them every few seconds."""
    from forwarding import tallies

    tallies.fold()
    return measure_postgres() if backend.name == "postgresql" else measure_sqlite()


def measure_sqlite():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM")
        cursor.execute("SELECT name, tbl_name, type FROM sqlite_master WHERE type IN ('table', 'index')")
        owners = {name: (table, kind) for name, table, kind in cursor.fetchall()}
        cursor.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name")
        sizes = {}
        for name, size in cursor.fetchall():
            table, kind = owners.get(name, (name, "table"))
            entry = sizes.setdefault(table, {"data": 0, "indexes": 0, "by index": {}})
            entry["data" if kind == "table" else "indexes"] += size
            if kind == "index":
                entry["by index"][name] = size
    return sizes


def measure_postgres():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT relname FROM pg_stat_user_tables WHERE schemaname = 'public'")
        tables = [row[0] for row in cursor.fetchall()]
        for table in tables:
            cursor.execute(f'VACUUM FULL "{table}"')
        cursor.execute(
            "SELECT relname, pg_table_size(relid), pg_indexes_size(relid) FROM pg_stat_user_tables "
            "WHERE schemaname = 'public'"
        )
        sizes = {name: {"data": data, "indexes": indexes, "by index": {}} for name, data, indexes in cursor.fetchall()}
        cursor.execute(
            "SELECT relname, indexrelname, pg_relation_size(indexrelid) FROM pg_stat_user_indexes "
            "WHERE schemaname = 'public'"
        )
        for table, index, size in cursor.fetchall():
            sizes[table]["by index"][index] = size
        return sizes


def grown(before, after):
    """{table: {"data", "indexes"}} of what grew (or shrank) between two measures."""
    delta = {}
    for table in set(before) | set(after):
        b = before.get(table, {"data": 0, "indexes": 0})
        a = after.get(table, {"data": 0, "indexes": 0})
        change = {key: a[key] - b[key] for key in ("data", "indexes")}
        if any(change.values()):
            delta[table] = change
    return delta


def index_growth(before, after, calls, top=8):
    """'index N' bytes per call of the indexes that grew most."""
    grown_by = {}
    for table, entry in after.items():
        for index, size in entry["by index"].items():
            change = size - before.get(table, {"by index": {}})["by index"].get(index, 0)
            if change > 0:
                grown_by[index] = change
    largest = sorted(grown_by.items(), key=lambda item: -item[1])[:top]
    return ", ".join(f"{index} {size / calls:,.0f}" for index, size in largest)


# What the goal counts: a call, its delivery, attempts and exchanges, with their indexes. The
# other tables that grew are one-page caches and bookkeeping (event names, heartbeats, the
# sweeper's run, a contact link per user) whose 8 KB pages are fixed costs, not a call's: they
# are reported beside it.
PER_CALL_TABLES = ("forwarding_call", "forwarding_delivery", "forwarding_attempt", "forwarding_exchange")


def total(delta, tables=None):
    return sum(e["data"] + e["indexes"] for table, e in delta.items() if tables is None or table in tables)


def breakdown(delta, calls):
    """'table: N B/call (data D + indexes I)' for each table, largest first."""
    rows = sorted(delta.items(), key=lambda item: -(item[1]["data"] + item[1]["indexes"]))
    return "; ".join(
        f"{table} {(e['data'] + e['indexes']) / calls:,.0f} (data {e['data'] / calls:,.0f} "
        f"+ indexes {e['indexes'] / calls:,.0f})"
        for table, e in rows
    )


def column_bytes(backend):
    """Bytes per call of the large columns (as text): where the rows' space goes."""
    from django.db import connection

    def size(column):
        if backend.name == "postgresql":
            return f"COALESCE(SUM(octet_length({column}::text)), 0)"
        return f"COALESCE(SUM(LENGTH(CAST({column} AS BLOB))), 0)"

    queries = {
        "call.payload": ("forwarding_call", "payload"),
        "exchange.request_body": ("forwarding_exchange", "request_body"),
        "exchange.response_body": ("forwarding_exchange", "response_body"),
        "exchange.request_headers": ("forwarding_exchange", "request_headers"),
        "exchange.response_headers": ("forwarding_exchange", "response_headers"),
    }
    found = {}
    with connection.cursor() as cursor:
        for label, (table, column) in queries.items():
            cursor.execute(f"SELECT {size(column)} FROM {table}")  # noqa: S608 (names above)
            found[label] = cursor.fetchone()[0]
        for table in ("forwarding_call", "forwarding_delivery", "forwarding_attempt", "forwarding_exchange"):
            cursor.execute(f"SELECT COUNT(*) FROM {table}")  # noqa: S608
            found[table] = cursor.fetchone()[0]
    return found


# -- retention -------------------------------------------------------------------------------------


def retention_days():
    from django.conf import settings

    return settings.RELAY_PAYLOAD_RETENTION_DAYS, settings.RELAY_LOG_RETENTION_DAYS


def prune(what, now):
    """prune_payloads or prune_logs as `manage.py prune` runs them, at `now`; returns how many."""
    from forwarding import retention

    return retention.prune_payloads(now) if what == "payloads" else retention.prune_logs(now)


# -- figures ---------------------------------------------------------------------------------------


def stored_figure(empty, stored, sent, delivered, states, columns):
    calls = max(sent["calls"], 1)
    delta = grown(empty, stored)
    per_call = total(delta, PER_CALL_TABLES) / max(delivered, 1)
    payload = sent["payload_bytes"] / calls
    exchanges = max(columns["forwarding_exchange"], 1)
    everything = total(delta) / max(delivered, 1)
    notes = {
        "counted": "call, delivery, attempts, exchanges and their indexes",
        "every table that grew": f"{everything:,.0f} bytes per call ({everything / payload:.2f} x)",
        "measured": f"{sent['calls']} calls accepted, {delivered} delivered, states {states}; "
        f"{columns['forwarding_attempt']} attempts, {columns['forwarding_exchange']} exchanges",
        "by table, bytes per call": breakdown(delta, calls),
        "largest indexes, bytes per call": index_growth(empty, stored, calls),
        "columns, bytes per call (as text)": ", ".join(
            f"{label} {value / calls:,.0f}" for label, value in columns.items() if "." in label
        ),
        "per exchange": f"request body {columns['exchange.request_body'] / exchanges:,.0f} B, "
        f"response body {columns['exchange.response_body'] / exchanges:,.0f} B, headers "
        f"{(columns['exchange.request_headers'] + columns['exchange.response_headers']) / exchanges:,.0f} B",
    }
    return support.Figure(
        "bytes on disk per delivered call",
        round(per_call),
        "bytes",
        "payload bytes per call (the request bodies as received)",
        round(payload),
        support.ratio(per_call, payload),
        f"<= {GOAL:g} x baseline",
        bool(delivered) and per_call <= GOAL * payload,
        notes,
    )


def prune_figure(name, empty, before, after, sent, delivered, what):
    calls = max(sent["calls"], 1)
    per_call = total(grown(empty, after), PER_CALL_TABLES) / max(delivered, 1)
    payload = sent["payload_bytes"] / calls
    freed = total(before) - total(after)
    return support.Figure(
        name,
        round(per_call),
        "bytes",
        "payload bytes per call",
        round(payload),
        support.ratio(per_call, payload),
        notes={
            "pruned": what,
            "freed": f"{freed / calls:,.0f} bytes per call ({freed / 1024:,.0f} KiB in all)",
            "by table, bytes per call": breakdown(grown(empty, after), calls) or "nothing left",
        },
    )


if __name__ == "__main__":
    main()
