"""The system collector against this machine's real psutil readings."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from engine.collectors.system import METRICS, SystemCollector
from engine.config.model import CollectorConfig, frozen_map
from engine.errors import CollectorError


def make(**settings: Any) -> SystemCollector:
    return SystemCollector.from_config(
        CollectorConfig("system", "system", None, 5.0, frozen_map(settings))
    )


def collect(c: SystemCollector, times: int = 1) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        sample: Any = None
        for _ in range(times):
            sample = await c.collect(time.monotonic())
        return dict(sample)

    return asyncio.run(run())


def is_plain(v: Any) -> bool:
    if v is None or isinstance(v, str | int | float | bool):
        return True
    if isinstance(v, list):
        return all(is_plain(x) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, str) and is_plain(x) for k, x in v.items())
    return False


def test_every_metric_with_its_type() -> None:
    s = collect(make())
    assert set(s) == METRICS
    assert is_plain(s)
    assert 0.0 <= s["cpu_percent"] <= 100.0
    assert len(s["cpu_percent_per_core"]) == s["cpu_count"] == psutil.cpu_count()
    assert all(isinstance(x, float) for x in s["cpu_percent_per_core"])
    for key in ("load1", "load5", "load15", "mem_percent", "swap_percent", "boot_time"):
        assert isinstance(s[key], float), key
    assert 0 < s["mem_available"] <= s["mem_total"]
    assert s["process_count"] > 1
    assert s["processes"] == []
    assert isinstance(s["open_fds"], int) and s["open_fds"] > 0
    assert s["uptime_seconds"] > 0
    assert set(s["disk_io"]) == {"read_bytes", "write_bytes", "read_count", "write_count"}
    if os.path.exists("/proc/sys/fs/file-nr"):
        assert 0 < s["fds_system_used"] < s["fds_system_max"]


def test_disks_and_net_are_lists_for_each() -> None:
    s = collect(make())
    assert s["disks"], "this machine has at least one real disk"
    for d in s["disks"]:
        assert set(d["labels"]) == {"mountpoint", "device", "fstype"}
        assert d["mounted"] is True
        assert 0.0 <= d["percent"] <= 100.0
        assert 0 <= d["free"] <= d["total"]
        assert d["inodes_percent"] is None or 0.0 <= d["inodes_percent"] <= 100.0
    assert len({d["labels"]["mountpoint"] for d in s["disks"]}) == len(s["disks"])
    assert s["net"] and all(set(n["labels"]) == {"interface"} for n in s["net"])
    assert all(
        {"bytes_sent", "bytes_recv", "errin", "errout", "dropin", "dropout"} <= set(n)
        for n in s["net"]
    )


def test_disks_and_interfaces_settings_filter() -> None:
    s = collect(make(disks=["/", "/not/mounted/here"], interfaces=["lo", "nope0"]))
    root, missing = s["disks"]
    assert root["labels"]["mountpoint"] == "/" and root["mounted"] is True
    assert root["percent"] is not None
    assert missing == {
        "labels": {"mountpoint": "/not/mounted/here", "device": "", "fstype": ""},
        "mounted": False,
        "percent": None,
        "free": None,
        "total": None,
        "inodes_percent": None,
    }
    assert [n["labels"]["interface"] for n in s["net"]] == ["lo"]


def test_cpu_percent_is_measured_between_collects() -> None:
    c = make()

    async def run() -> float:
        await c.collect(0)
        end = time.monotonic() + 0.3
        while time.monotonic() < end:  # keep one core busy
            pass
        return float((await c.collect(0))["cpu_percent"])

    busy = asyncio.run(run())
    assert busy > 100.0 / (psutil.cpu_count() or 1) / 4  # at least a share of one busy core


def test_named_process_of_this_test_is_running() -> None:
    me = psutil.Process()
    name = me.name()
    arg0 = os.path.basename(me.cmdline()[0])
    s = collect(make(processes=[name, arg0, "no-such-process-xyz"]), times=2)
    by_name = {p["labels"]["name"]: p for p in s["processes"]}
    for n in (name, arg0):
        p = by_name[n]
        assert p["running"] is True and p["count"] >= 1, n
        assert p["rss"] >= me.memory_info().rss // 2
        assert isinstance(p["cpu_percent"], float)
    gone = by_name["no-such-process-xyz"]
    assert gone == {
        "labels": {"name": "no-such-process-xyz"},
        "running": False,
        "count": 0,
        "cpu_percent": 0.0,
        "rss": 0,
    }


def test_process_matched_by_argv0_and_seen_to_stop() -> None:
    child = subprocess.Popen(
        ["vigil-test-argv0", "-c", "import time; time.sleep(30)"], executable=sys.executable
    )
    try:
        c = make(processes=["vigil-test-argv0"])

        async def run() -> tuple[Any, Any, Any]:
            first = (await c.collect(0))["processes"][0]
            child.kill()
            while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:
                await asyncio.sleep(0.01)
            zombie = (await c.collect(0))["processes"][0]  # dead, not yet reaped
            child.wait()
            return first, zombie, (await c.collect(0))["processes"][0]

        running, zombie, stopped = asyncio.run(run())
    finally:
        child.kill()
        child.wait()
    assert running["running"] is True and running["count"] == 1
    assert zombie["running"] is False and zombie["count"] == 0
    assert stopped["running"] is False and stopped["count"] == 0


def test_collect_is_fast() -> None:
    c = make(processes=["python", "sshd"])
    collect(c)  # the first one also starts the worker thread

    async def timed() -> float:
        start = time.perf_counter()
        for _ in range(5):
            await c.collect(0)
        return (time.perf_counter() - start) / 5

    per_collect = asyncio.run(timed())
    # ~2-8 ms here; the bound only catches something pathological
    assert per_collect < 0.5


def test_a_stuck_read_does_not_pile_up_threads() -> None:
    c = make()
    c.timeout = 0.1
    unblock = threading.Event()
    calls = []

    def stuck() -> dict[str, Any]:  # a statvfs on a dead NFS mount, say
        calls.append(1)
        unblock.wait(5)
        return {"done": True}

    c._read = stuck  # type: ignore[method-assign]

    async def run() -> Any:
        with pytest.raises(CollectorError, match=r"timed out after 0\.1s"):
            await c.collect(0)
        with pytest.raises(CollectorError, match="previous read is still running"):
            await c.collect(0)
        unblock.set()
        await asyncio.sleep(0.1)
        return await c.collect(0)  # the thread is free again

    assert asyncio.run(run()) == {"done": True}
    assert len(calls) == 2


@pytest.mark.parametrize("bad", [{"disks": "/"}, {"interfaces": [1]}, {"extra": 1}])
def test_bad_settings(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        make(**bad)


def test_process_that_execs_into_the_program_is_noticed(tmp_path: Path) -> None:
    program = tmp_path / "vigil-exec"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", program)
    # a wrapper that becomes the program later, keeping its pid (`exec nginx`)
    code = f"import os, time; time.sleep(0.6); os.execv({str(program)!r}, [{str(program)!r}, '30'])"
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        c = make(processes=["vigil-exec"])

        async def run() -> tuple[bool, bool]:
            before = (await c.collect(0))["processes"][0]["running"]
            await asyncio.sleep(1.2)
            after = (await c.collect(0))["processes"][0]["running"]
            return before, after

        assert asyncio.run(run()) == (False, True)
    finally:
        child.kill()
        child.wait()
