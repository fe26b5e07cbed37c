"""What the machine did during a measurement, for benchmarks to print beside
their figures: on a virtual machine the hypervisor may take the vCPU away
("steal"), which delays an event loop whatever the program does."""

from __future__ import annotations


def cpu_ticks() -> tuple[int, int]:
    """(all, steal) jiffies of the machine so far, from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    return sum(fields[:8]), fields[7] if len(fields) > 7 else 0


def steal_pct(before: tuple[int, int], after: tuple[int, int]) -> float:
    """The share of the machine's CPU time the hypervisor took between two readings."""
    total = after[0] - before[0]
    return 100.0 * (after[1] - before[1]) / total if total > 0 else 0.0


def process_cpu(pid: int) -> float:
    """Seconds of CPU (user + system) process `pid` has used so far, from /proc."""
    import os

    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu(pid: int) -> float:
    """Seconds of CPU the live children of `pid` have used so far (the daemon's
    sender process), from /proc."""
    import os

    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            total += process_cpu(int(entry))
    return total


def speed_ms(rounds: int = 3) -> float:
    """Milliseconds a fixed piece of pure-Python work takes (the fastest of `rounds`).

    This VM's speed drifts: the same loop takes from about 1x to 1.8x its best time
    from one second to the next, with no steal reported. Benchmarks print this
    beside their figures, so a slow figure can be told from a slow machine."""
    import time

    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        acc: dict[int, int] = {}
        for i in range(60_000):
            acc[i & 1023] = acc.get(i & 1023, 0) + i
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def pair_speed_ms() -> float:
    """speed_ms() in two processes at once, the slower of the two: about speed_ms()
    when the VM has two CPUs to give, about twice it when the host lets it run
    only one at a time (seen here: 10 ms alone and 10 ms in pairs at one time,
    21 ms alone and 44 ms in pairs at another). The daemon sends from a second
    process, so this says how much a burst can run in parallel."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        return max(pool.map(_speed_once, [0, 1]))


def _speed_once(_: int) -> float:
    return speed_ms(2)
