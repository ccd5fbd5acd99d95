"""The single-call path in one process, without a network or other load: CPU time per /v1/t
request (text/plain, as browsers send it), its statements, and where the time goes (cProfile's
top functions by cumulative time, printed). A lock wait or a busy machine does not change these
figures, so they show what a change to the path buys; bench/ingestion.py measures the
throughput against /health. Beside it, the CPU of one GET /health in the same process: when both
are CPU-bound, their ratio is the most single calls can reach of /health's throughput (the
issue's goal is 0.5), before the worker's own share of the cores.

    PYTHONPATH=. .venv/bin/python bench/single_call.py [--profile]   (BENCH_PROFILE_SORT=tottime: by own time)
"""

import cProfile
import io
import json
import os
import pstats
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import support  # noqa: E402

REQUESTS = int(os.environ.get("BENCH_SINGLE_CALL_REQUESTS", 2000))
WARMUP = 50
PROFILE_TOP = 30


def main():
    support.stop_on_sigterm()
    with support.fresh_backend() as backend:
        support.setup_django(backend)
        from django.test import Client

        from forwarding.models import Source

        _, write_key = Source.create_with_key("Bench")
        client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=support.basic_auth(write_key))
        bodies = iter(browser_bodies())

        def post():
            response = client.post("/v1/t", next(bodies), content_type="text/plain")
            assert response.status_code == 200, response.content

        for _ in range(WARMUP):
            post()
        cpu_before, wall_before = time.process_time(), time.perf_counter()
        for _ in range(REQUESTS):
            post()
        cpu = (time.process_time() - cpu_before) / REQUESTS
        wall = (time.perf_counter() - wall_before) / REQUESTS
        health = health_cpu(client)
        queries = support.count_queries(post, backend.redis_url)
        if "--profile" in sys.argv:
            print(profile(post))
        figures = [
            support.Figure(
                "one /v1/t request (text/plain), in process: CPU", round(cpu * 1000, 3), "ms", notes=queries
            ),
            support.Figure("one /v1/t request (text/plain), in process: wall", round(wall * 1000, 3), "ms"),
            support.Figure(
                "CPU bound on /v1/t against /health (their CPU per request, inverted)",
                round(health / cpu, 3),
                "x /health",
                notes={"GET /health, in process: CPU": f"{health * 1000:.3f} ms"},
            ),
        ]
        support.report("single call", backend, figures)


def health_cpu(client):
    """CPU seconds per GET /health in this process (after a warm-up)."""
    for _ in range(WARMUP):
        client.get("/health")
    before = time.process_time()
    for _ in range(REQUESTS):
        assert client.get("/health").status_code == 200
    return (time.process_time() - before) / REQUESTS


def browser_bodies():
    """analytics.js-like track calls: a new messageId each, 1,000 visitors."""
    n = 0
    while True:
        n += 1
        yield json.dumps(
            {
                "type": "track",
                "event": "Product Viewed",
                "userId": f"visitor-{n % 1000}",
                "messageId": f"single-{n}",
                "properties": {"sku": f"X-{n % 50}", "price": 9.5},
                "context": {
                    "library": {"name": "analytics.js", "version": "npm:next-1.84.3"},
                    "page": {"path": "/shop/", "url": "https://shop.example/shop/", "title": "Shop"},
                    "userAgent": "Mozilla/5.0",
                },
                "timestamp": "2026-12-06T10:00:00.000Z",
                "sentAt": "2026-12-06T10:00:00.050Z",
            }
        )


def profile(post):
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(500):
        post()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats(os.environ.get("BENCH_PROFILE_SORT", "cumulative")).print_stats(
        PROFILE_TOP
    )
    return out.getvalue()


if __name__ == "__main__":
    main()
