"""`system`: host metrics through psutil.

Every psutil call of one collect runs in a single worker thread (one hop off the
event loop, not a dozen). CPU percentages are computed here from `cpu_times()`
deltas kept on the collector, not with `psutil.cpu_percent(interval=None)`: psutil
keeps that baseline per calling thread, and `asyncio.to_thread` hands us whichever
pool thread is free, so its "since the last call" would be since some other call.
The first collect reports the average since boot.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, Self

import psutil

from engine.collectors._util import OneThread, Settings
from engine.collectors.base import Sample
from engine.config.model import CollectorConfig

METRICS = frozenset(
    {
        "cpu_percent",
        "cpu_percent_per_core",
        "cpu_count",
        "load1",
        "load5",
        "load15",
        "mem_percent",
        "mem_available",
        "mem_total",
        "swap_percent",
        "disks",
        "disk_io",
        "net",
        "process_count",
        "processes",
        "open_fds",
        "fds_system_used",
        "fds_system_max",
        "boot_time",
        "uptime_seconds",
    }
)

# Filesystems that are never "a disk that fills up": read-only images (always 100 %),
# and virtual ones in case the platform's all=False filter lets them through.
PSEUDO_FS = frozenset(
    {
        "squashfs", "iso9660", "udf", "erofs", "overlay", "tmpfs", "devtmpfs", "ramfs",
        "proc", "sysfs", "cgroup", "cgroup2", "nsfs", "tracefs", "debugfs", "securityfs",
        "autofs", "devpts", "mqueue", "hugetlbfs", "pstore", "bpf", "configfs", "fusectl",
        "binfmt_misc", "rpc_pipefs", "efivarfs", "devfs", "nullfs",
    }
)  # fmt: skip
FILE_NR = "/proc/sys/fs/file-nr"
LINUX = sys.platform.startswith("linux")


@dataclass(frozen=True, slots=True)
class SystemSettings:
    processes: tuple[str, ...] = ()
    disks: tuple[str, ...] = ()  # mountpoints; empty: every real disk
    interfaces: tuple[str, ...] = ()  # empty: every interface


class _Busy(NamedTuple):
    busy: float
    total: float


class _Tracked(NamedTuple):
    proc: psutil.Process
    comm: str  # as last read, to notice an exec
    matches: tuple[str, ...]  # configured names this process counts for


class SystemCollector:
    type_name: ClassVar[str] = "system"

    def __init__(self, config: CollectorConfig, settings: SystemSettings) -> None:
        self.name = config.name
        self.interval = config.interval
        self.timeout = config.timeout
        self.settings = settings
        self._thread = OneThread()
        # state below is touched only inside the worker thread, one read at a time
        self._cpu: _Busy | None = None
        self._cores: list[_Busy] = []
        self._tracked: dict[int, _Tracked] = {}
        self._me: psutil.Process | None = None
        self._boot: float | None = None

    @classmethod
    def from_config(cls, config: CollectorConfig) -> Self:
        s = Settings(cls.type_name, config.settings)
        settings = SystemSettings(
            processes=s.str_list("processes", []),
            disks=s.str_list("disks", []),
            interfaces=s.str_list("interfaces", []),
        )
        s.done()
        return cls(config, settings)

    @classmethod
    def metric_names(cls, config: CollectorConfig) -> frozenset[str]:
        return METRICS

    async def collect(self, now: float) -> Sample:
        return await self._thread.run(self._read, self.timeout)

    async def aclose(self) -> None:
        self._tracked.clear()

    # --- the worker thread ------------------------------------------------------

    def _read(self) -> dict[str, Any]:
        cpu = _busy(psutil.cpu_times())
        cores = [_busy(t) for t in psutil.cpu_times(percpu=True)]
        cpu_percent = _percent(self._cpu, cpu)
        per_core = [
            _percent(self._cores[i] if i < len(self._cores) else None, c)
            for i, c in enumerate(cores)
        ]
        self._cpu, self._cores = cpu, cores
        load1, load5, load15 = psutil.getloadavg()
        mem = psutil.virtual_memory()
        swap = psutil.swap_memory()
        pids = psutil.pids()
        if self._me is None:
            self._me = psutil.Process()
        if self._boot is None:
            self._boot = psutil.boot_time()
        used, limit = _file_nr()
        return {
            "cpu_percent": cpu_percent,
            "cpu_percent_per_core": per_core,
            "cpu_count": len(cores),
            "load1": load1,
            "load5": load5,
            "load15": load15,
            "mem_percent": mem.percent,
            "mem_available": mem.available,
            "mem_total": mem.total,
            "swap_percent": swap.percent,
            "disks": self._disks(),
            "disk_io": _disk_io(),
            "net": self._net(),
            "process_count": len(pids),
            "processes": self._processes(pids) if self.settings.processes else [],
            "open_fds": _num_fds(self._me),
            "fds_system_used": used,
            "fds_system_max": limit,
            "boot_time": self._boot,
            "uptime_seconds": round(time.time() - self._boot, 3),
        }

    def _disks(self) -> list[dict[str, Any]]:
        wanted = self.settings.disks
        if wanted:
            # listed by the operator: any filesystem, reported even when not mounted
            found = {p.mountpoint: p for p in psutil.disk_partitions(all=True)}
            out = []
            for mp in wanted:
                p = found.get(mp)
                out.append(_disk(mp, p.device, p.fstype) if p else _unmounted(mp))
            return out
        # every real disk once: bind mounts and btrfs subvolumes repeat a device, and
        # its shortest mountpoint is the one people know it by
        by_device: dict[str, Any] = {}
        for p in psutil.disk_partitions(all=False):
            if p.fstype in PSEUDO_FS or p.mountpoint.startswith("/snap/"):
                continue
            seen = by_device.get(p.device)
            if seen is None or len(p.mountpoint) < len(seen.mountpoint):
                by_device[p.device] = p
        return [
            _disk(p.mountpoint, p.device, p.fstype)
            for p in sorted(by_device.values(), key=lambda p: p.mountpoint)
        ]

    def _net(self) -> list[dict[str, Any]]:
        counters = psutil.net_io_counters(pernic=True)
        names = self.settings.interfaces or sorted(counters)
        out = []
        for nic in names:
            c = counters.get(nic)
            if c is None:
                continue
            out.append(
                {
                    "labels": {"interface": nic},
                    "bytes_sent": c.bytes_sent,
                    "bytes_recv": c.bytes_recv,
                    "errin": c.errin,
                    "errout": c.errout,
                    "dropin": c.dropin,
                    "dropout": c.dropout,
                }
            )
        return out

    def _processes(self, pids: Sequence[int]) -> list[dict[str, Any]]:
        wanted = self.settings.processes
        tracked: dict[int, _Tracked] = {}
        for pid in pids:
            t = self._tracked.get(pid)
            try:
                if t is None:
                    t = _identify(psutil.Process(pid), wanted)
                elif _comm(t.proc) != t.comm:
                    # an exec (a wrapper script ending in `exec nginx`) keeps the
                    # pid but becomes another program
                    t = _identify(t.proc, wanted)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue  # gone, or not ours to look at: try again next time
            tracked[pid] = t
        # keep the Process objects: their cpu_percent() measures since the last call
        self._tracked = tracked
        stats = {n: [0, 0.0, 0] for n in wanted}  # count, cpu, rss
        for t in tracked.values():
            if not t.matches:
                continue
            try:
                with t.proc.oneshot():
                    if t.proc.status() == psutil.STATUS_ZOMBIE:
                        continue  # exited, not yet reaped: not running
                    cpu = t.proc.cpu_percent(None)
                    rss = t.proc.memory_info().rss
            except psutil.NoSuchProcess:  # gone since
                continue
            except psutil.AccessDenied:  # running, but not ours to measure
                cpu, rss = 0.0, 0
            for n in t.matches:
                st = stats[n]
                st[0] += 1
                st[1] += cpu
                st[2] += rss
        return [
            {
                "labels": {"name": n},
                "running": stats[n][0] > 0,
                "count": stats[n][0],
                "cpu_percent": round(stats[n][1], 1),
                "rss": stats[n][2],
            }
            for n in wanted
        ]


def _identify(proc: psutil.Process, wanted: tuple[str, ...]) -> _Tracked:
    comm = _comm(proc)
    name = proc.name()
    try:
        cmdline = proc.cmdline()
    except (psutil.AccessDenied, psutil.ZombieProcess):
        cmdline = []
    arg0 = os.path.basename(cmdline[0]) if cmdline else ""
    return _Tracked(proc, comm, tuple(n for n in wanted if n in (name, arg0)))


def _comm(proc: psutil.Process) -> str:
    """The kernel's short name of the process, which an exec changes. Read directly
    on Linux: psutil's name() also reads the command line for names of 15 or more
    characters, which doubles the cost of checking every process every collect."""
    if not LINUX:
        return proc.name()
    try:
        with open(f"/proc/{proc.pid}/comm", "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        raise psutil.NoSuchProcess(proc.pid) from None
    except OSError:
        raise psutil.AccessDenied(proc.pid) from None


def _busy(t: Any) -> _Busy:
    total = sum(t)
    # Linux counts guest time inside user/nice already (psutil subtracts it too)
    total -= getattr(t, "guest", 0.0) + getattr(t, "guest_nice", 0.0)
    idle = t.idle + getattr(t, "iowait", 0.0)
    return _Busy(total - idle, total)


def _percent(prev: _Busy | None, cur: _Busy) -> float:
    base = prev or _Busy(0.0, 0.0)
    dt = cur.total - base.total
    if dt <= 0:
        return 0.0
    return round(min(100.0, max(0.0, 100.0 * (cur.busy - base.busy) / dt)), 1)


def _disk(mountpoint: str, device: str, fstype: str) -> dict[str, Any]:
    labels = {"mountpoint": mountpoint, "device": device, "fstype": fstype}
    try:
        st = os.statvfs(mountpoint)
    except OSError:
        return {"labels": labels, "mounted": True, "percent": None, "free": None,
                "total": None, "inodes_percent": None}  # fmt: skip
    # the same arithmetic as psutil.disk_usage, from the one statvfs we need anyway
    total = st.f_blocks * st.f_frsize
    free = st.f_bavail * st.f_frsize
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    percent = round(100.0 * used / (used + free), 1) if used + free else 0.0
    # btrfs and some network filesystems report no inode counts
    inodes = round(100.0 * (st.f_files - st.f_ffree) / st.f_files, 1) if st.f_files > 0 else None
    return {"labels": labels, "mounted": True, "percent": percent, "free": free,
            "total": total, "inodes_percent": inodes}  # fmt: skip


def _unmounted(mountpoint: str) -> dict[str, Any]:
    return {"labels": {"mountpoint": mountpoint, "device": "", "fstype": ""}, "mounted": False,
            "percent": None, "free": None, "total": None, "inodes_percent": None}  # fmt: skip


def _disk_io() -> dict[str, Any]:
    try:
        io = psutil.disk_io_counters(perdisk=False)
    except (RuntimeError, OSError):  # no disk statistics (some containers)
        io = None
    if io is None:
        return {"read_bytes": None, "write_bytes": None, "read_count": None, "write_count": None}
    return {
        "read_bytes": io.read_bytes,
        "write_bytes": io.write_bytes,
        "read_count": io.read_count,
        "write_count": io.write_count,
    }


def _num_fds(me: psutil.Process) -> int | None:
    try:
        return me.num_fds()
    except (AttributeError, psutil.Error):  # not on this platform
        return None


def _file_nr() -> tuple[int | None, int | None]:
    """System-wide open files: allocated minus free handles, and the limit (Linux)."""
    try:
        with open(FILE_NR, "rb") as f:
            allocated, free, limit = (int(x) for x in f.read().split()[:3])
    except (OSError, ValueError):
        return None, None
    return allocated - free, limit
