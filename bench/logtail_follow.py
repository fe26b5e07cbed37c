"""logtail follower benchmark: how fast the collector turns a log into lines.

Run from the repository root:  .venv/bin/python bench/logtail_follow.py [--lines N]

Writes an nginx-like access log of N numbered lines (tests/integration/logwriter.py's
lines, one in 97 with invalid UTF-8), then reads it with the real LogtailCollector
(`start: beginning`, default batch and line limits) pass after pass until every
line is in, with a sink that only counts. Prints lines/s by wall clock and per CPU
second of this process. This is the follower alone: parsing and detection (issue
16 point 2) come on top, through the LineSink hook.

The rotation acceptance at full size (100 rotations of each kind at 10,000
lines/s) is `pytest -m slow tests/integration/test_logtail_rotation.py -k full_size`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.collectors.logtail.collector import LogtailCollector
from engine.collectors.logtail.sink import LineBatch
from engine.config.model import CollectorConfig, frozen_map
from tests.integration.logwriter import line


class Count:
    def __init__(self) -> None:
        self.n = 0

    def lines(self, batch: LineBatch) -> None:
        self.n += len(batch.lines)

    def values(self) -> dict[str, object]:
        return {}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    n = ap.parse_args().lines
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "access.log")
        with open(path, "wb") as f:
            for i in range(0, n, 10_000):
                f.write(b"".join(line(k) for k in range(i, min(n, i + 10_000))))
        size = os.path.getsize(path)
        cfg = frozen_map({"paths": [path], "start": "beginning", "isolate": False})
        c = LogtailCollector.from_config(CollectorConfig("logs", "logtail", None, 60.0, cfg))
        sink = Count()
        c.add_sink(sink)

        async def run() -> None:
            while sink.n < n:
                await c.collect(time.time())
            await c.aclose()

        t0, c0 = time.perf_counter(), time.process_time()
        asyncio.run(run())
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(
        f"{n:,} lines ({size / 1e6:.1f} MB): {wall:.2f} s wall, {cpu:.2f} s CPU; "
        f"{n / wall:,.0f} lines/s, {n / cpu:,.0f} lines per CPU second"
    )


if __name__ == "__main__":
    main()
