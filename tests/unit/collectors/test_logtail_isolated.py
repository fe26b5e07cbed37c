"""logtail's reader process (engine/collectors/logtail/isolated.py), a real child:
it answers what the in-thread reader answers, and an unchanged key's element
comes back as the same object (the boundary's Memo skips it, as it does in-thread)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import psutil
import pytest

from engine.collectors.logtail.collector import LogtailCollector
from engine.collectors.logtail.isolated import MODULE, ReaderProcess
from engine.collectors.logtail.reader import Reader
from engine.common.boundary import MAX_STR
from engine.config.model import CollectorConfig, frozen_map


def failed(ip: str) -> str:
    return f"Dec  7 03:00:00 host sshd[1]: Failed password for root from {ip} port 22 ssh2\n"


def collector(log: Path, isolate: bool) -> LogtailCollector:
    settings = {
        "paths": [str(log)],
        "start": "beginning",
        "format": "sshd",
        "key": "ip",
        "windows": {
            "failures": {"kind": "count", "window": "1h", "where": {"outcome": ["failed"]}}
        },
        "isolate": isolate,
    }
    return LogtailCollector.from_config(
        CollectorConfig("auth", "logtail", None, 30.0, frozen_map(settings))
    )


def by_ip(values: Any) -> dict[str, Any]:
    return {el["labels"]["ip"]: el for el in values["keys"]}


def test_the_child_answers_what_the_thread_answers_sharing_unchanged_keys(
    tmp_path: Path,
) -> None:
    log = tmp_path / "auth.log"
    log.write_text(failed("192.0.2.1") * 3 + failed("192.0.2.2"))
    child, thread = collector(log, isolate=True), collector(log, isolate=False)
    assert isinstance(child.reader, ReaderProcess) and isinstance(thread.reader, Reader)

    async def both() -> tuple[Any, Any]:
        return await child.collect(0), await thread.collect(0)

    try:
        first, mine = asyncio.run(both())
        for k in ("lines", "bytes", "totals", "recent"):
            assert first[k] == mine[k], k
        assert {ip: el["failures"] for ip, el in by_ip(first).items()} == {
            "192.0.2.1": 3,
            "192.0.2.2": 1,
        }
        assert by_ip(first).keys() == by_ip(mine).keys()
        again = asyncio.run(child.collect(0))
        assert all(by_ip(again)[ip] is el for ip, el in by_ip(first).items())
        with log.open("a") as f:
            f.write(failed("192.0.2.2"))
        third = asyncio.run(child.collect(0))
        assert by_ip(third)["192.0.2.1"] is by_ip(first)["192.0.2.1"]
        assert by_ip(third)["192.0.2.2"] is not by_ip(first)["192.0.2.2"]
        assert by_ip(third)["192.0.2.2"]["failures"] == 2
        pid = child.reader.pid
        assert pid is not None and MODULE in psutil.Process(pid).cmdline()
    finally:
        asyncio.run(child.aclose())
        asyncio.run(thread.aclose())
    assert pid is not None and not psutil.pid_exists(pid), "the closed child is reaped"
    # the close handed the last records to the collector, to be journaled at the stop
    assert child.state_changes()[str(log)]["lines"] == 5


def test_building_a_collector_starts_no_process(tmp_path: Path) -> None:
    # validation and reloads that may be refused build collectors they never run
    c = collector(tmp_path / "auth.log", isolate=True)
    assert isinstance(c.reader, ReaderProcess) and c.reader.pid is None
    asyncio.run(c.aclose())
    assert c.reader.pid is None


def test_the_child_cleans_the_sample_at_the_boundary_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The daemon does not walk a reader process's sample again (collecting.py reads
    `cleaned`): the child cuts what the boundary cuts (a recent line over 64 KiB of
    text) and its warning reaches the daemon's log, once for repeated cuts."""
    log = tmp_path / "auth.log"
    log.write_text("x" * 100_000 + "\n" + failed("192.0.2.1"))
    c = LogtailCollector.from_config(
        CollectorConfig(
            "auth", "logtail", None, 30.0,
            frozen_map({"paths": [str(log)], "start": "beginning", "max_line_bytes": "1MiB"}),
        )
    )  # fmt: skip
    assert c.cleaned
    try:
        with caplog.at_level(logging.WARNING, logger="vigil"):
            first = asyncio.run(c.collect(0))
            again = asyncio.run(c.collect(0))
    finally:
        asyncio.run(c.aclose())
    for sample in (first, again):
        long = sample["recent"][0]["line"]
        assert long.startswith("x" * MAX_STR) and long.endswith("[34464 characters cut]")
    cuts = [r.getMessage() for r in caplog.records if "cut at the boundary" in r.getMessage()]
    assert len(cuts) == 1 and cuts[0].startswith("collector auth: values cut"), cuts
