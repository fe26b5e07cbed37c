"""API benchmark: GET /api/v1/alerts with 10,000 active alerts.

Run from the repository root:  .venv/bin/python bench/api.py [--alerts N] [--requests N]
Against a running daemon:      .venv/bin/python bench/api.py --url http://127.0.0.1:9595 --token-file T

Without --url, a real uvicorn server (engine.api.server.serve, the daemon's code
path) runs in a child process over the in-memory fake facade of the tests,
holding N active alerts with realistic labels and annotations, 5% acknowledged
and a silence matching 10% of them. The client is a keep-alive httpx client in
this process; each figure is the time from sending the request to having read
the whole body (not parsing it). Also prints where the server's time goes
(building the alert views, encoding the JSON, measured in process) and the
server process's CPU time per request, which other load on the machine does
not change. Between evaluations the alert list does not change, so the server
reuses the previous encoding (after checking the lists are equal); the first
figure line says what a changed list costs.

Target: median <= 100 ms for 10,000 alerts. No asserts: figures for a person.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import psutil

from engine.api.routes import encode
from engine.api.server import bound_address, create_app, serve
from engine.metrics import Metrics
from tests.unit.test_api_fakes import TOKENS, FakeFacade, api_config

TARGET_MS = 100.0
SEVERITIES = ("info", "warning", "critical", "emergency")


def fake_with_alerts(n: int, seed: int = 1) -> FakeFacade:
    rng = random.Random(seed)
    f = FakeFacade()
    now = time.time()
    for i in range(n):
        rule = f"rule_{i % 200:03d}"
        fp = f.add_alert(
            rule,
            {
                "host": f"web-{i:05d}",
                "service": f"svc{i % 17}",
                "env": "prod",
                "team": ("infra", "app", "data")[i % 3],
            },
            severity=SEVERITIES[i % 4],
            state="firing" if i % 10 else "pending",
            value=round(rng.uniform(0, 100), 2),
            starts_at=now - rng.uniform(0, 86400),
        )
        f.alerts[fp]["annotations"] = {
            "summary": f"{rule} at {f.alerts[fp]['value']} on web-{i:05d}",
            "runbook": f"https://wiki.example.org/runbooks/{rule}",
        }
        if i % 20 == 0:
            f.alerts[fp]["ack"] = {"by": "oncall", "note": "looking", "until": None, "at": now}
    f.silences["s1"] = {
        "matchers": [{"label": "service", "value": "svc3"}],
        "starts": None,
        "until": now + 86400,
        "reason": "maintenance",
        "created_by": "bench",
    }
    return f


def _serve_fake(n: int, port_q: Any) -> None:
    async def main() -> None:
        app = create_app(fake_with_alerts(n), api_config(), registry=Metrics().registry)
        server, task = await serve(app, "127.0.0.1", 0)
        port_q.put(bound_address(server)[1])
        await task

    asyncio.run(main())


def in_process_breakdown(n: int, repeats: int = 10) -> tuple[float, float, int]:
    f = fake_with_alerts(n)
    filters: dict[str, Any] = {
        "state": None,
        "severity": None,
        "rule": None,
        "labels": {},
        "silenced": None,
        "acknowledged": None,
    }
    views_ms, encode_ms, size = [], [], 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        alerts = f.list_alerts(**filters)
        t1 = time.perf_counter()
        body = encode({"alerts": alerts})
        t2 = time.perf_counter()
        views_ms.append((t1 - t0) * 1000)
        encode_ms.append((t2 - t1) * 1000)
        size = len(body)
    return statistics.median(views_ms), statistics.median(encode_ms), size


def measure(
    url: str, token: str, requests: int, server_pid: int | None = None
) -> tuple[list[float], int, int, float | None]:
    """Latencies (ms), body size, alert count, and the server's CPU ms per request
    (when it runs here): CPU time does not depend on what else the machine runs."""
    headers = {"Authorization": f"Bearer {token}"}
    server = psutil.Process(server_pid) if server_pid else None
    with httpx.Client(base_url=url, headers=headers, timeout=30.0, trust_env=False) as c:
        for _ in range(3):  # warm-up: connection, caches
            c.get("/api/v1/alerts").raise_for_status()
        times = []
        size = count = 0
        cpu0 = sum(server.cpu_times()[:2]) if server else 0.0
        for _ in range(requests):
            t0 = time.perf_counter()
            r = c.get("/api/v1/alerts")
            body = r.read()
            times.append((time.perf_counter() - t0) * 1000)
            r.raise_for_status()
            size = len(body)
        cpu = (sum(server.cpu_times()[:2]) - cpu0) * 1000 / requests if server else None
        count = len(r.json()["alerts"])
    return times, size, count, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--alerts", type=int, default=10_000)
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--url", help="a running daemon instead of the fake")
    ap.add_argument("--token-file", help="viewer token for --url")
    args = ap.parse_args()

    proc = None
    if args.url:
        token = Path(args.token_file).read_text().strip() if args.token_file else ""
        token = token or os.environ.get("VIGIL_TOKEN", "")
        url = args.url
        print(f"target: {url} (a running daemon)")
    else:
        ctx = mp.get_context("spawn")
        q = ctx.Queue()
        proc = ctx.Process(target=_serve_fake, args=(args.alerts, q), daemon=True)
        t0 = time.perf_counter()
        proc.start()
        port = q.get(timeout=120)
        url, token = f"http://127.0.0.1:{port}", TOKENS["viewer"]
        print(
            f"target: fake daemon with {args.alerts:,} active alerts, uvicorn in a child "
            f"process (ready in {time.perf_counter() - t0:.1f}s)"
        )
        views, enc, size = in_process_breakdown(args.alerts)
        print(
            f"server work, in process: alert views {views:.1f} ms + JSON encoding {enc:.1f} ms "
            f"for {size / 1e6:.2f} MB"
        )
    try:
        times, size, count, cpu = measure(url, token, args.requests, proc.pid if proc else None)
    finally:
        if proc is not None:
            proc.terminate()
            proc.join(5)
    times.sort()
    med = statistics.median(times)
    p90 = times[int(len(times) * 0.9) - 1]
    print(
        f"GET /api/v1/alerts: {count:,} alerts, {size / 1e6:.2f} MB, {len(times)} requests: "
        f"median {med:.1f} ms, p90 {p90:.1f} ms, min {times[0]:.1f} ms, max {times[-1]:.1f} ms"
    )
    if cpu is not None:
        print(f"server CPU per request: {cpu:.1f} ms (load average now {os.getloadavg()[0]:.2f})")
    verdict = "meets" if med <= TARGET_MS else "MISSES"
    print(f"target median <= {TARGET_MS:.0f} ms: {verdict} it (ratio {med / TARGET_MS:.2f})")


if __name__ == "__main__":
    main()
