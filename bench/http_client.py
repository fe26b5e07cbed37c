"""The notification HTTP client's cost per request: HttpClient against plain httpx.

Run from the repository root:  .venv/bin/python bench/http_client.py [--rounds N]

2,000 keep-alive POSTs of ~1 KB JSON (an Idempotency-Key header, as webhooks
send) with up to 10 in flight, to a minimal HTTP/1.1 receiver in its own
process (bench/notify.py's `receiver`, so that receiving costs this process
nothing), through
  (1) engine.httpclient.client.HttpClient: aiohttp (engine/httpclient/transport.py) with
      the deadline, the address policy and the reply handling every channel gets;
  (2) a plain httpx.AsyncClient (limits of 10 connections), the old transport.
Each path first sends 20 requests to open its connections, then the measured
2,000. Figures: wall time, and CPU time of this process per request
(getrusage, user + system: robust to other load on the machine, which wall
time is not); the median of --rounds runs. Target for (1): <= 100 µs CPU per
request (the burst of issue 4 sends 2,000 in 0.5 s beside everything else).

No asserts beyond a count of what arrived: this prints figures for a person.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from engine.httpclient.client import HttpClient, HttpOptions  # noqa: E402

REQUESTS = 2_000
WARMUP = 20
CONCURRENCY = 10
TARGET_US = 100.0

Send = Callable[[str, bytes, dict[str, str]], Awaitable[int]]


def body_of(i: int) -> bytes:
    """About 1 KB of webhook-like JSON."""
    alert = {
        "fingerprint": f"{i:016x}",
        "rule": "host_cpu_high",
        "status": "firing",
        "severity": "critical",
        "labels": {"host": f"web-{i % 50}", "team": "infra", "env": "prod"},
        "annotations": {"summary": f"CPU at 93.2% on web-{i % 50}", "runbook": "https://wiki/cpu"},
        "value": 93.2,
        "starts_at": "2026-11-22T20:00:00.000Z",
    }
    doc = {"version": 1, "channel": "bench", "status": "firing", "alerts": [alert, alert]}
    doc["pad"] = "x" * max(0, 1024 - len(json.dumps(doc)))
    return json.dumps(doc).encode()


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def drive(send: Send, url: str, bodies: list[bytes]) -> tuple[float, float]:
    """(wall s, CPU s) for sending `bodies` with CONCURRENCY workers."""
    queue = list(enumerate(bodies))
    queue.reverse()

    async def worker() -> None:
        while queue:
            i, body = queue.pop()
            headers = {"Content-Type": "application/json", "Idempotency-Key": f"k-{i}"}
            status = await send(f"{url}/hook", body, headers)
            assert status == 200, status

    t0, c0 = time.perf_counter(), cpu()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return time.perf_counter() - t0, cpu() - c0


async def vigil_path(url: str, bodies: list[bytes]) -> tuple[float, float]:
    client = HttpClient(HttpOptions(timeout=30.0))

    async def send(u: str, body: bytes, headers: dict[str, str]) -> int:
        return (await client.request("POST", u, content=body, headers=headers)).status

    try:
        await drive(send, url, bodies[:WARMUP])
        return await drive(send, url, bodies)
    finally:
        await client.aclose()


async def httpx_path(url: str, bodies: list[bytes]) -> tuple[float, float]:
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(limits=limits, timeout=30.0, trust_env=False) as client:

        async def send(u: str, body: bytes, headers: dict[str, str]) -> int:
            return (await client.post(u, content=body, headers=headers)).status_code

        await drive(send, url, bodies[:WARMUP])
        return await drive(send, url, bodies)


def line(name: str, runs: list[tuple[float, float]]) -> tuple[float, float]:
    wall = statistics.median(w for w, _ in runs)
    per = statistics.median(c for _, c in runs) / REQUESTS * 1e6
    print(
        f"{name:<28} {REQUESTS:,} POSTs in {wall:.3f} s wall "
        f"({REQUESTS / wall:,.0f}/s), {per:,.0f} µs CPU per request"
    )
    return wall, per


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    bodies = [body_of(i) for i in range(REQUESTS)]
    with tempfile.TemporaryDirectory() as tmp:
        received = Path(tmp) / "rx.jsonl"
        rx = subprocess.Popen(
            [sys.executable, str(REPO / "bench" / "notify.py"), "receiver", "ok", str(received)],
            stdout=subprocess.PIPE,
        )
        try:
            assert rx.stdout is not None
            url = f"http://127.0.0.1:{int(rx.stdout.readline())}"
            ours: list[tuple[float, float]] = []
            theirs: list[tuple[float, float]] = []
            for _ in range(args.rounds):  # interleaved: load on the machine hits both alike
                ours.append(asyncio.run(vigil_path(url, bodies)))
                theirs.append(asyncio.run(httpx_path(url, bodies)))
            deadline = time.monotonic() + 10
            expected = 2 * args.rounds * (WARMUP + REQUESTS)
            while (got := len(received.read_bytes().splitlines())) < expected:
                if time.monotonic() > deadline:
                    raise SystemExit(f"the receiver got {got:,} of {expected:,} requests")
                time.sleep(0.05)
        finally:
            rx.kill()
            rx.wait()
    print(
        f"{REQUESTS:,} keep-alive POSTs of {len(bodies[0]):,} bytes, "
        f"{CONCURRENCY} in flight; median of {args.rounds} rounds"
    )
    wall_ours, cpu_ours = line("HttpClient (aiohttp)", ours)
    wall_theirs, cpu_theirs = line("httpx.AsyncClient", theirs)
    print(
        f"httpx / HttpClient: {cpu_theirs / cpu_ours:.1f}x the CPU per request, "
        f"{wall_theirs / wall_ours:.1f}x the wall time"
    )
    verdict = "met" if cpu_ours <= TARGET_US else "NOT met"
    print(f"target <= {TARGET_US:.0f} µs CPU per request through HttpClient: {verdict}")


if __name__ == "__main__":
    main()
