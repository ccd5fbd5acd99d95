"""Run every benchmark on SQLite and, when one is available, on PostgreSQL + Redis; print a
summary table and write the figures and the machine to bench/RESULTS.md.

    make bench                                   (= .venv/bin/python bench/run_all.py)
    .venv/bin/python bench/run_all.py --only ingestion --backend sqlite
    BENCH_DATABASE_URL=postgres://relay:relay@127.0.0.1:5432/relay \\
    BENCH_REDIS_URL=redis://127.0.0.1:6379/0 make bench

PostgreSQL: BENCH_DATABASE_URL, else postgres://relay:relay@127.0.0.1:5432/relay if it answers
(the role needs CREATEDB: each benchmark creates and drops a database of its own). Redis:
BENCH_REDIS_URL, else redis://127.0.0.1:6379/0 if it answers (each run uses a queue name of its
own); without Redis, PostgreSQL runs with the ORM broker.

A benchmark is any script in BENCHMARKS (or bench/dashboard.py once it exists). It reads its
backend from the environment (see support.py) and reports through `support.report`, which
prints `BENCH-RESULT {json}` lines; a script that prints none has the tail of its output put
in RESULTS.md as it is. Each script gets TIMEOUT seconds (those seeding a million rows more,
see LONG), then SIGTERM (it stops what it
started), then SIGKILL.
"""

import argparse
import datetime
import json
import os
import platform
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "RESULTS.md"
BENCHMARKS = ["single_call", "ingestion", "forwarding", "latency", "storage", "anonymous"]
# Written by another engineer; run when it exists (same environment, same protocol).
OPTIONAL_BENCHMARKS = ["dashboard", "metrics"]
TIMEOUT = int(os.environ.get("BENCH_TIMEOUT", 480))
# Scripts that seed a million calls: their seconds, as a multiple of TIMEOUT.
LONG = {"anonymous": 2.5, "dashboard": 1.5}
RESULT_PREFIX = "BENCH-RESULT "
DEFAULT_POSTGRES = "postgres://relay:relay@127.0.0.1:5432/relay"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
KEPT_MARKER = "<!-- Everything below this line is written by hand and kept by bench/run_all.py. -->"


def main():
    args = parse_args()
    backends = available_backends(args.backend)
    scripts = [name for name in BENCHMARKS + OPTIONAL_BENCHMARKS if (BENCH / f"{name}.py").exists()]
    if args.only:
        scripts = [name for name in scripts if name in args.only]
    started = time.monotonic()
    machine = describe_machine(backends)
    runs = []
    for backend in backends:
        for name in scripts:
            runs.append(run_script(name, backend))
    machine["load average (after)"] = load_average()
    machine["total time"] = f"{time.monotonic() - started:.0f} s"
    print_summary(runs, machine)
    if args.only or args.backend:
        print(f"\n(partial run: {RESULTS.relative_to(ROOT)} not written)")
    else:
        write_results(runs, machine, [name for name in OPTIONAL_BENCHMARKS if name not in scripts])
        print(f"\nWrote {RESULTS.relative_to(ROOT)}")
    return 1 if any(run["error"] for run in runs) else 0


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", help="run only this benchmark (repeatable)")
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgresql"], help="(repeatable)")
    return parser.parse_args()


# -- backends ----------------------------------------------------------------------------------


def available_backends(wanted=None):
    """[{"name", "env"}]: SQLite always, PostgreSQL (+ Redis) when reachable."""
    backends = [{"name": "sqlite", "env": {"BENCH_DATABASE_URL": "", "BENCH_REDIS_URL": ""}}]
    postgres = os.environ.get("BENCH_DATABASE_URL") or (DEFAULT_POSTGRES if reachable(DEFAULT_POSTGRES) else "")
    redis = os.environ.get("BENCH_REDIS_URL") or (DEFAULT_REDIS if reachable(DEFAULT_REDIS) else "")
    if postgres:
        backends.append({"name": "postgresql", "env": {"BENCH_DATABASE_URL": postgres, "BENCH_REDIS_URL": redis}})
    else:
        print("PostgreSQL: none reachable (set BENCH_DATABASE_URL); running on SQLite only.")
    return [b for b in backends if not wanted or b["name"] in wanted]


def reachable(url):
    parts = urllib.parse.urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=1):
            return True
    except OSError:
        return False


# -- running -----------------------------------------------------------------------------------


def run_script(name, backend):
    """Run bench/<name>.py on `backend`, echoing its output; returns its results."""
    print(f"\n==== {name} on {backend['name']} ====", flush=True)
    env = {**os.environ, **backend["env"], "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, str(BENCH / f"{name}.py")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output, error = read_bounded(process, int(TIMEOUT * LONG.get(name, 1)))
    results = [json.loads(line[len(RESULT_PREFIX) :]) for line in output if line.startswith(RESULT_PREFIX)]
    if process.returncode and not error:
        error = f"exited with status {process.returncode}"
    return {
        "name": name,
        "backend": backend["name"],
        "results": results,
        "tail": output[-40:],
        "error": error,
        "seconds": round(time.monotonic() - started),
    }


def read_bounded(process, timeout):
    """Echo the process's output until it exits or `timeout` passes (then stop it). Returns
    (lines, error)."""
    import selectors

    lines, error = [], ""
    deadline = time.monotonic() + timeout
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            error = f"timed out after {timeout} s"
            stop(process)
            break
        if selector.select(timeout=min(remaining, 1.0)):
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
            if not line.startswith(RESULT_PREFIX):
                print(line, end="", flush=True)
    selector.close()
    process.wait()
    return lines, error


def stop(process):
    """SIGTERM (the script stops its own processes), then SIGKILL."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()


# -- the machine ---------------------------------------------------------------------------------


def describe_machine(backends):
    import django

    info = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": git_commit(),
        "CPU": cpu_model(),
        "cores": os.cpu_count(),
        "RAM": f"{mem_total_gb():.0f} GB",
        "Python": platform.python_version(),
        "Django": django.get_version(),
        "SQLite": sqlite3.sqlite_version,
        "load average (before)": load_average(),
    }
    for backend in backends:
        url = backend["env"].get("BENCH_DATABASE_URL")
        if url:
            info["PostgreSQL"] = postgres_version(url)
        if backend["env"].get("BENCH_REDIS_URL"):
            info["Redis"] = redis_version(backend["env"]["BENCH_REDIS_URL"])
    return info


def cpu_model():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def mem_total_gb():
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 / 1024
    return 0


def load_average():
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def git_commit():
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True)
    except OSError:
        return "unknown"
    return commit.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def postgres_version(url):
    try:
        import psycopg

        with psycopg.connect(url.replace("postgres://", "postgresql://", 1), connect_timeout=3) as conn:
            return conn.execute("SHOW server_version").fetchone()[0]
    except Exception as exc:  # the figures still come; the version is only a label
        return f"unknown ({exc.__class__.__name__})"


def redis_version(url):
    try:
        import redis

        client = redis.Redis.from_url(url, socket_timeout=3)
        try:
            return client.info("server")["redis_version"]
        finally:
            client.close()
    except Exception as exc:  # a label only
        return f"unknown ({exc.__class__.__name__})"


# -- output ------------------------------------------------------------------------------------


def table_rows(runs):
    """[(backend, bench, figure, value, baseline, ratio, goal)] for every figure, and a row per failure."""
    rows = []
    for run in runs:
        if run["error"] and not run["results"]:
            rows.append((run["backend"], run["name"], f"FAILED: {run['error']}", "", "", "", ""))
        for result in run["results"]:
            for f in result["figures"]:
                value = f"{fmt(f['value'])} {f['unit']}"
                baseline = f"{fmt(f['baseline'])} ({f['baseline_name']})" if f["baseline"] is not None else ""
                ratio = f"{f['ratio']:.2f}" if f["ratio"] is not None else ""
                goal = f"{f['goal']}: {'met' if f['met'] else '**missed**'}" if f["goal"] else ""
                rows.append((result["backend"], result["bench"], f["name"], value, baseline, ratio, goal))
    return rows


def fmt(value):
    if isinstance(value, float) and abs(value) < 100:
        return f"{value:,.2f}"
    return f"{value:,.0f}" if isinstance(value, int | float) else str(value)


def print_summary(runs, machine):
    print("\n==== summary ====")
    for key, value in machine.items():
        print(f"  {key}: {value}")
    rows = table_rows(runs)
    headers = ("backend", "bench", "figure", "value", "baseline", "ratio", "goal")
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]
    for row in [headers, *rows]:
        print("  " + " | ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)))


def write_results(runs, machine, missing):
    kept = ""
    if RESULTS.exists() and KEPT_MARKER in RESULTS.read_text():
        kept = RESULTS.read_text().split(KEPT_MARKER, 1)[1]
    lines = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`bench/run_all.py`); the section after the marker at the end is",
        "written by hand. Each figure is measured beside its baseline in the same run.",
        "",
        "## Machine",
        "",
        *[f"- {key}: {value}" for key, value in machine.items()],
        "",
        "## Figures",
        "",
        "| backend | bench | figure | value | baseline | ratio | goal |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *["| " + " | ".join(str(cell).replace("|", "/") for cell in row) + " |" for row in table_rows(runs)],
        "",
        "## Details",
        "",
    ]
    for run in runs:
        lines.append(f"### {run['name']} on {run['backend']} ({run['seconds']} s)")
        lines.append("")
        for result in run["results"]:
            for f in result["figures"]:
                if f["notes"]:
                    lines.append(f"- {f['name']}: " + "; ".join(f"{k}: {v}" for k, v in f["notes"].items()))
        if not run["results"] or run["error"]:
            lines += ["", "```", *run["tail"], "```"]
        lines.append("")
    for name in missing:
        lines += [f"`bench/{name}.py` does not exist yet: `make bench` runs it once it does.", ""]
    lines += [KEPT_MARKER, kept.lstrip("\n") if kept else "\n## Notes\n"]
    RESULTS.write_text("\n".join(lines).rstrip("\n") + "\n")


if __name__ == "__main__":
    sys.exit(main())
