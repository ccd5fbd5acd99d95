"""Plumbing shared by the benchmarks: a fresh database, the relay's processes, traffic, figures.

A benchmark script runs on one backend, chosen by the environment (bench/run_all.py sets it):

    BENCH_DATABASE_URL   postgres://user:pass@host:port/db  -> a fresh database on that server
                         (the role needs CREATEDB); unset -> a SQLite file in a temp dir
    BENCH_REDIS_URL      redis://host:port/n -> the django-q2 Redis broker; unset -> ORM broker

Every figure is printed for people, then once more as a `BENCH-RESULT {json}` line that
run_all.py collects into the summary table and bench/RESULTS.md (see `report`).
"""

import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MANAGE = str(ROOT / "manage.py")
SETTINGS = "bench.settings"
SECRET_KEY = "bench-secret-key-not-for-production-" + "x" * 20
SANDBOX_TOKEN = "bench-sandbox-token"
NOWHERE = "http://127.0.0.1:9"  # the discard port: nothing listens
RESULT_PREFIX = "BENCH-RESULT "
# gunicorn exactly as `make run` starts it (forwarding/management/commands/run_relay.py).
GUNICORN_OPTIONS = ["--workers=2", "--threads=4", "--timeout=30", "--graceful-timeout=10", "--no-control-socket"]
INGEST_RATE_LIMIT = "1000000000/10s"
START_TIMEOUT = 60
STOP_TIMEOUT = 15


# -- the backend ---------------------------------------------------------------------------------


@dataclass
class Backend:
    """Where one benchmark run keeps its data: a database made for it, and its queue."""

    database_url: str
    redis_url: str
    workdir: Path
    queue_name: str

    @property
    def name(self):
        return "postgresql" if self.database_url.startswith("postgres") else "sqlite"

    @property
    def label(self):
        return f"{self.name} + {'Redis' if self.redis_url else 'ORM'} broker"


@contextlib.contextmanager
def fresh_backend(suffix=""):
    """A new, empty database (and queue name) for this run; dropped and removed afterwards.
    `suffix` tells apart the databases of one run that keeps several at once."""
    workdir = Path(tempfile.mkdtemp(prefix="relay-bench-"))
    queue_name = f"relay-bench-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    server_url = os.environ.get("BENCH_DATABASE_URL", "")
    database_url, drop = f"sqlite:///{workdir / 'relay.sqlite3'}", None
    if server_url:
        database_url, drop = create_postgres_database(server_url, f"relay_bench_{os.getpid()}{suffix}")
    backend = Backend(database_url, os.environ.get("BENCH_REDIS_URL", ""), workdir, queue_name)
    try:
        yield backend
    finally:
        close_django_connections()
        if drop:
            drop()
        if backend.redis_url:
            delete_redis_queue(backend.redis_url, queue_name)
        shutil.rmtree(workdir, ignore_errors=True)


def create_postgres_database(server_url, name):
    """Create database `name` on the server of `server_url`; returns (its URL, a function that drops it)."""
    import psycopg

    def admin():
        return psycopg.connect(server_url.replace("postgres://", "postgresql://", 1), autocommit=True)

    with admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop():
        # An autovacuum worker may still be on the database after a heavy run; the bench's role
        # cannot end it (FORCE fails), so wait for it to finish.
        for attempt in range(30):
            try:
                with admin() as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                return
            except psycopg.errors.InsufficientPrivilege:
                if attempt == 29:
                    raise
                time.sleep(1)

    parts = urllib.parse.urlsplit(server_url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}")), drop


def delete_redis_queue(redis_url, queue_name):
    """Remove the tasks and statistics a run left under its queue name."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        keys = [queue_name, *client.scan_iter(f"django_q:{queue_name}:*")]
        client.delete(*keys)
    finally:
        client.close()


def setup_django(backend):
    """Point this process at the backend, set Django up and migrate the fresh database."""
    os.environ.update(child_env(backend))
    if not backend.redis_url:
        os.environ.pop("REDIS_URL", None)
    setup_served_django()


def setup_served_django():
    """Set Django up and migrate, in a process whose environment is already `child_env`'s (a
    bench's server process, or this one after setup_django)."""
    import logging

    import django
    from django.core.management import call_command

    django.setup()
    # This process stores calls as ingestion does: not one log line per task it enqueues.
    logging.getLogger("django-q").setLevel(logging.WARNING)
    call_command("migrate", interactive=False, verbosity=0)


def close_django_connections():
    if "django" in sys.modules and "django.db" in sys.modules:
        from django.db import connections

        with contextlib.suppress(Exception):
            connections.close_all()


def child_env(backend, **extra):
    """The environment of the relay's processes for this backend (production settings)."""
    env = {key: value for key, value in os.environ.items() if key not in ("REDIS_URL", "DJANGO_DEBUG")}
    env.update(
        DJANGO_SETTINGS_MODULE=SETTINGS,
        DJANGO_SECRET_KEY=SECRET_KEY,
        DATABASE_URL=backend.database_url,
        BENCH_Q_NAME=backend.queue_name,
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
        # Never the real Intercom, whatever this shell holds: the sandbox (start_qcluster and
        # start_sandbox pass its address), else a closed port.
        INTERCOM_API_BASE=NOWHERE,
        INTERCOM_ACCESS_TOKEN=SANDBOX_TOKEN,
    )
    env.pop("INTERCOM_ACCESS_TOKEN_FILE", None)
    if backend.redis_url:
        env["REDIS_URL"] = backend.redis_url
    # The per-write-key ingestion limit out of reach: its counting still runs and costs what it
    # costs, but the benchmarks measure capacity, not the limit.
    env.setdefault("RELAY_INGEST_RATE_LIMIT", INGEST_RATE_LIMIT)
    env.update({key: str(value) for key, value in extra.items()})
    return env


# -- processes -----------------------------------------------------------------------------------


def stop_on_sigterm():
    """SIGTERM (run_all's timeout) unwinds like Ctrl-C, so every `finally` stops its processes."""

    def interrupt(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


class Process:
    """A child in its own process group, logging to a file; stop() ends the whole group."""

    def __init__(self, name, args, env, workdir):
        self.name = name
        self.log_path = Path(workdir) / f"{name}.log"
        self.log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop)
        self.popen = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self):
        return self.popen.pid

    def output(self):
        return self.log_path.read_text(errors="replace")

    def check_alive(self):
        if self.popen.poll() is not None:
            raise RuntimeError(f"{self.name} exited ({self.popen.returncode}):\n{self.output()[-3000:]}")

    def stop(self):
        """SIGTERM to the leader (gunicorn and qcluster stop their own children), then SIGKILL the group."""
        if self.popen.poll() is None:
            self.popen.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(STOP_TIMEOUT)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait()
        self.log.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, what, interval=0.1, process=None):
    """Poll until `predicate()` is truthy (returns it); RuntimeError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if process is not None:
            process.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def answers(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def start_gunicorn(stack, backend, **env):
    """gunicorn config.wsgi as `make run` runs it; returns (process, base URL) once /health answers."""
    port = free_port()
    args = ["-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}", *GUNICORN_OPTIONS]
    process = Process("gunicorn", args, child_env(backend, **env), backend.workdir)
    stack.callback(process.stop)
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: answers(f"{base}/health"), START_TIMEOUT, "gunicorn /health", 0.2, process)
    return process, base


def start_qcluster(stack, backend, sandbox_url, **env):
    """`manage.py qcluster`, forwarding to the sandbox; returns the process once it guards its workers."""
    env = {"INTERCOM_API_BASE": sandbox_url, "INTERCOM_ACCESS_TOKEN": SANDBOX_TOKEN, **env}
    process = Process("qcluster", [MANAGE, "qcluster"], child_env(backend, **env), backend.workdir)
    stack.callback(process.stop)
    wait_for(lambda: "guarding cluster" in process.output(), START_TIMEOUT, "qcluster to start", 0.2, process)
    return process


def start_sandbox(stack, backend, *options):
    """`manage.py intercom_sandbox` in its own process; returns (process, base URL)."""
    port = free_port()
    args = [MANAGE, "intercom_sandbox", "--port", str(port), "--token", SANDBOX_TOKEN, *options]
    process = Process("sandbox", args, child_env(backend), backend.workdir)
    stack.callback(process.stop)
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: answers(f"{base}/_sandbox/health"), START_TIMEOUT, "the sandbox", 0.2, process)
    return process, base


def worker_pids(qcluster):
    """The pids of the cluster's task workers, from its log ("... ready for work at <pid>")."""
    return [int(pid) for pid in re.findall(r"ready for work at (\d+)", qcluster.output())]


# -- memory --------------------------------------------------------------------------------------


def memory_kb(pid):
    """{"rss": VmRSS, "peak": VmHWM} of a live process, in kB; None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    values = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", text, re.MULTILINE))
    return {"rss": int(values.get("VmRSS", 0)), "peak": int(values.get("VmHWM", 0))}


def group_members(pgid):
    """Live pids whose process group is `pgid` (a child started with its own session)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # The command name may hold spaces and parentheses: split after the last ")".
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            pids.append(int(entry.name))
    return sorted(pids)


class PeakSampler:
    """Samples VmHWM of every process in a group every `interval` s from a thread, so that a
    worker that exits (django-q2 recycles workers) still counts. peaks(): {pid: peak kB}."""

    def __init__(self, pgid, interval=0.5):
        import threading

        self.pgid = pgid
        self.interval = interval
        self._peaks = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self):
        for pid in group_members(self.pgid):
            memory = memory_kb(pid)
            if memory:
                self._peaks[pid] = max(self._peaks.get(pid, 0), memory["peak"])

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=5)
        self.sample()
        return dict(self._peaks)


def group_cpu_seconds(pgid):
    """CPU time (user + system) used so far by a process group, children it reaped included."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in group_members(pgid):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # utime, stime, cutime, cstime: fields 14-17 of stat(5), 11-14 after the command name.
        total += sum(int(value) for value in fields[11:15])
    return total / ticks


def peak_rss_mb(pids):
    """The largest VmHWM among `pids`, in MB (0 when none is alive)."""
    peaks = [m["peak"] for m in map(memory_kb, pids) if m]
    return round(max(peaks, default=0) / 1024, 1)


# -- traffic -------------------------------------------------------------------------------------

EVENT_NAMES = [f"Bench Event {n}" for n in range(20)]


def user_ids(count):
    return [f"bench-user-{n}" for n in range(count)]


def track_message(user_id, n, at=None):
    """A realistic track call: a few properties, revenue, a library context."""
    at = at or datetime.now(UTC)
    return {
        "type": "track",
        "messageId": uuid.uuid4().hex,
        "userId": user_id,
        "event": EVENT_NAMES[n % len(EVENT_NAMES)],
        "properties": {"revenue": 19.99, "currency": "EUR", "items": n % 7, "sku": f"SKU-{n}", "plan": "pro"},
        "context": {"library": {"name": "bench", "version": "1"}, "page": {"url": "https://example.com/p"}},
        # A distinct second per call, so that Intercom never collapses two bench events.
        "timestamp": datetime.fromtimestamp(at.timestamp() - n, UTC).isoformat(),
    }


def basic_auth(write_key):
    import base64

    return "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()


class KeepAlive:
    """One keep-alive HTTP/1.1 connection (http.client: cheap for a load generator)."""

    def __init__(self, base, headers=None):
        parts = urllib.parse.urlsplit(base)
        self.host, self.port = parts.hostname, parts.port
        self.headers = headers or {}
        self.conn = None

    def post(self, path, body):
        """POST `body` (bytes); returns the status, or 0 on a network error."""
        return self.request("POST", path, body)

    def get(self, path):
        return self.request("GET", path, None)

    def request(self, method, path, body):
        """The answer's status, or 0 on a network error. A kept-alive connection the server closed
        while idle is retried once on a new one, as HTTP clients do (the relay deduplicates on
        messageId, so a repeat is harmless)."""
        reused = self.conn is not None
        status = self._send(method, path, body)
        if status == 0 and reused:
            status = self._send(method, path, body)
        return status

    def _send(self, method, path, body):
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            self.conn.request(method, path, body, self.headers)
            response = self.conn.getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException):
            self.close()
            return 0

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def seed_contacts(sandbox_url, users):
    """Create the users' contacts in the sandbox (Intercom's API) and cache them as the relay
    would (ContactLink), so that deliveries make one request each. Returns {user_id: contact_id}."""
    import requests

    from forwarding.models import ContactLink

    session = requests.Session()
    session.headers.update(
        {"Authorization": f"Bearer {SANDBOX_TOKEN}", "Intercom-Version": "2.16", "Content-Type": "application/json"}
    )
    links = {}
    for user_id in users:
        body = {"role": "user", "external_id": user_id, "email": f"{user_id}@example.com"}
        response = session.post(f"{sandbox_url}/contacts", data=json.dumps(body), timeout=10)
        response.raise_for_status()
        links[user_id] = response.json()["id"]
    session.close()
    ContactLink.objects.bulk_create([ContactLink(user_id=u, contact_id=c) for u, c in links.items()])
    return links


def store_calls(messages, chunk=100):
    """Accept calls as ingestion does (storage.store: calls, deliveries, event names, enqueue)."""
    from django.utils import timezone

    from forwarding.ingestion import storage, validation
    from forwarding.models import Source

    source = Source.objects.first() or Source.create_with_key("Bench")[0]
    for start in range(0, len(messages), chunk):
        now = timezone.now()
        body = {"batch": messages[start : start + chunk]}
        accepted, rejected = validation.batch_messages(body, received_at=now, ip="127.0.0.1")
        assert not rejected, rejected
        storage.store(source, accepted, [], received_at=now)


def sandbox_control(sandbox_url, action, payload=None):
    """GET (payload None) or POST the sandbox's control API; returns the decoded answer."""
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(
        f"{sandbox_url}/_sandbox/{action}", data=data, method="GET" if data is None else "POST"
    )
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


# -- queries -------------------------------------------------------------------------------------


def count_queries(action, redis_url=""):
    """Run `action()` in this process and count what it asked of the database (and of Redis):
    {"queries", "writes", "most": "100 INSERT django_q_ormq, ...", "redis connections"}."""
    from collections import Counter

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    connections_before = redis_connections(redis_url)
    with CaptureQueriesContext(connection) as captured:
        action()
    kinds = Counter(statement_kind(query["sql"]) for query in captured.captured_queries)
    writes = sum(n for kind, n in kinds.items() if kind.startswith(("INSERT", "UPDATE", "DELETE")))
    top = ", ".join(f"{n} {kind}" for kind, n in kinds.most_common(6))
    counts = {"queries": len(captured.captured_queries), "writes": writes, "most": top}
    if redis_url:
        # Less the one that asked the second time.
        counts["redis connections"] = redis_connections(redis_url) - connections_before - 1
    return counts


def counts_of_calls(captured):
    """The captured statements that COUNT rows of the calls' table: a COUNT whose SQL reads
    forwarding_call outside an EXISTS probe (a probe of one call by key, under a count of
    deliveries, reads no more calls as they grow)."""
    return [
        query
        for query in captured
        if "COUNT(" in query["sql"].upper() and 'FROM "forwarding_call"' in unprobed(query["sql"])
    ]


def unprobed(sql):
    """`sql` without its EXISTS (...) subqueries."""
    while match := re.search(r"EXISTS\s*\(", sql, re.IGNORECASE):
        depth, end = 0, match.end() - 1
        while True:
            depth += {"(": 1, ")": -1}.get(sql[end], 0)
            if depth == 0 or end == len(sql) - 1:
                break
            end += 1
        sql = sql[: match.start()] + sql[end + 1 :]
    return sql


def statement_kind(sql):
    """'UPDATE forwarding_delivery' from a statement (one executemany counts as one)."""
    words = re.sub(r"^\d+ times: ", "", sql).replace('"', " ").split()
    verb = words[0].upper() if words else "?"
    table = next((w for w in words[1:] if w.startswith(("forwarding_", "django_", "dashboard_"))), "")
    return f"{verb} {table}".strip()


def redis_connections(redis_url):
    """Connections the Redis server has accepted so far, this one included (0 without Redis)."""
    if not redis_url:
        return 0
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        return client.info("stats")["total_connections_received"]
    finally:
        client.close()


# -- figures -------------------------------------------------------------------------------------


@dataclass
class Figure:
    """One measured figure beside the baseline measured in the same run."""

    name: str
    value: float
    unit: str
    baseline_name: str = ""
    baseline: float | None = None
    ratio: float | None = None
    goal: str = ""  # e.g. ">= 0.5 x baseline"
    met: bool | None = None
    notes: dict = field(default_factory=dict)


def page_figure(name, median, bound, notes, growth, baseline=None, baseline_label="", baseline_name=""):
    """A page's (or a scrape's) median time in ms: within its query bound (`bound`: (goal, met))
    and, against a baseline measured at `baseline_label`, within `growth` x it."""
    goal, met = bound
    if baseline:
        goal += f"; <= {growth} x @{baseline_label}"
        met = met and median <= growth * baseline
    return Figure(
        name,
        median,
        "ms",
        baseline_name if baseline else "",
        baseline,
        ratio(median, baseline) if baseline else None,
        goal=goal,
        met=met,
        notes=notes,
    )


def report(bench, backend, figures, extra=None):
    """Print the figures, then one machine-readable line for run_all.py."""
    print(f"\n{bench} on {backend.label}:")
    for f in figures:
        line = f"  {f.name}: {fmt(f.value)} {f.unit}"
        if f.baseline is not None:
            line += f"   baseline {f.baseline_name}: {fmt(f.baseline)}"
        if f.ratio is not None:
            line += f"   ratio {f.ratio:.2f}"
        if f.goal:
            line += f"   goal {f.goal}: {'met' if f.met else 'MISSED'}"
        print(line)
        for key, value in f.notes.items():
            print(f"      {key}: {value}")
    payload = {"bench": bench, "backend": backend.label, "figures": [asdict(f) for f in figures], **(extra or {})}
    print(RESULT_PREFIX + json.dumps(payload), flush=True)


def fmt(value):
    if value is None:
        return "-"
    if isinstance(value, float) and abs(value) < 100:
        return f"{value:,.2f}"
    return f"{value:,.0f}"


def ratio(value, baseline):
    return round(value / baseline, 3) if baseline else None


def percentile(sorted_values, p):
    """The p-th percentile (0-100) of sorted values, nearest rank."""
    if not sorted_values:
        return None
    rank = max(0, min(len(sorted_values) - 1, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]
