"""Issue 17's acceptance line for the web console: "the daemon's tick never late by
more than 10 ms while 20 browsers follow live updates".

A real daemon (bench/notify.py's launcher: `vigil run` plus probes; the 100 ms
`probe` group's lateness is read from when APScheduler runs its job against
when it was due) with 200 rules `app.level > i` in a 1 s group, which fire all
together and resolve all together as `app.level` goes from 0 to 200 and back
every WAVE seconds: 400 alert events a wave through the live stream. Meanwhile
the followers:

  sse       (default) CLIENTS clients in one child process, each doing what the
            console does on its alerts view: a ticket (POST /api/v1/events/ticket),
            GET /api/v1/events?ticket=, and on events (debounced 250-750 ms, its
            own per client as in app.js) GET again what they changed: alert and
            silence events the alert list; deliveries and audit lines nothing;
            other kinds also /silences?all=true and /status.
  chromium  CLIENTS pages of Debian's headless chromium (one browser process,
            a page each) running the real console, logged in on the alerts
            view. Run in variants (--variants, all by default), since on this
            machine the 20 renderers share its 2 CPUs with the daemon while in
            production they run on the operators' machines:
              normal  browsers and daemon at the same priority;
              idle    the browsers at SCHED_IDLE (`chrt --idle 0`): they only
                      get CPU the daemon does not want, a stand-in for remote
                      browsers (printed: how many of their processes took it);
              pinned  the daemon (all its threads and processes) on CPU 0, the
                      browsers on CPU 1 (`taskset`);
              realtime  the browsers at SCHED_IDLE and the daemon at SCHED_FIFO 1
                      (`chrt -f`, needs root): no other process takes the CPU
                      from it, so the lateness left is the daemon's own.
            Other processes of the machine (other users) still compete in the
            first three: see the load average printed.

Printed, per variant: the probe group's tick lateness (max, p99, median) over
the waves; the loop thread's own CPU time while each tick was due and waiting
and its wait on a run queue (/proc/thread-self/schedstat), from the loop's
last 5 ms lag step before it was due until it ran: what of the lateness was the
daemon's own work, whatever the load, and what other processes holding the
CPUs; the event loop's worst lag; the events and reads the followers
made (chromium: each page's API requests per burst); the daemon's CPU and the
machine's steal.

    python bench/console.py [sse|chromium] [--clients 20] [--waves 10]
                            [--variants normal,idle,pinned,realtime]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from machine import children_cpu, cpu_ticks, process_cpu, steal_pct  # noqa: E402
from notify import Daemon, wait  # noqa: E402

RULES = 200
WAVE = 3.0  # seconds between a rise and a fall of app.level
TOKEN = "bench-console-viewer-token-5b1e"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def tree_cpu(pid: int) -> float:
    """Seconds of CPU of process `pid` and all its live descendants (Playwright's
    driver, Chromium's browser, renderer and GPU processes)."""
    return sum(process_cpu(p) for p in _tree(pid))


def lay_out(root: Path, port: int) -> None:
    etc, run = root / "etc", root / "run"
    for p in (etc / "rules", etc / "channels", run, root / "data"):
        p.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    (etc / "vigil.yaml").write_text(
        f"rules: [rules]\nchannels: [channels]\ndata_dir: {root / 'data'}\n"
        "collectors:\n"
        "  - {name: system, type: system, enabled: false}\n"
        f"  - {{name: app, type: file, path: {run / 'metrics.json'}, format: json,"
        " interval: 100ms}\n"
        "  - {name: fixed, type: static, values: {limit: 10}}\n"
        f"api: {{listen: '127.0.0.1:{port}', tokens: [{{name: bench, sha256: {digest},"
        " role: viewer}]}\n"
    )
    lines = ["group: burst", "interval: 1s", "rules:"]
    lines += [
        f"  - {{id: wave_{i:03d}, expr: 'app.level > {i}', severity: warning,"
        f" labels: {{id: a{i:03d}, team: t{i % 5}}},"
        " annotations: {summary: 'element {{ labels.id }} is on'}}"
        for i in range(RULES)
    ]
    (etc / "rules" / "wave.yaml").write_text("\n".join(lines) + "\n")
    (etc / "rules" / "probe.yaml").write_text(
        "group: probe\ninterval: 100ms\nrules:\n  - {id: probe, expr: fixed.limit > 1000}\n"
    )


# --- followers: SSE clients ------------------------------------------------------------


def stopped(out: str, stop_at: float) -> bool:
    """The run told the followers to stop (or its bound passed)."""
    return time.time() >= stop_at or Path(out + ".stop").exists()


# what app.js reads again on the alerts view for an event of each kind
_QUIET = {"notified", "notify_failed", "report_sent", "audit"}
_ALERT_LIST = {"pending", "firing", "resolved", "inactive", "flapping", "flapping_end"}
_ALERT_LIST |= {"no_data", "error", "stale", "stale_end", "acknowledged", "unacknowledged"}
_ALERT_LIST |= {"escalated", "silenced", "unsilenced", "inhibited", "uninhibited"}
_ALERT_LIST |= {"silence_created", "silence_expired"}


def _changes(kind: str | None) -> tuple[str, ...]:
    if kind in _QUIET:
        return ()
    if kind in _ALERT_LIST:
        return ("/api/v1/alerts",)
    return ("/api/v1/alerts", "/api/v1/silences?all=true", "/api/v1/status")


async def _follow(url: str, stop_at: float, counts: dict[str, int]) -> None:
    import httpx

    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=url, headers=auth, timeout=30) as c:
        pending: asyncio.Task[None] | None = None
        wait_s = 0.25 + random.random() * 0.5  # spreads the clients
        wanted: set[str] = set()

        async def reread() -> None:
            await asyncio.sleep(wait_s)  # the console's debounce: its own for each tab
            paths = sorted(wanted)
            wanted.clear()
            for path in paths:
                (await c.get(path)).raise_for_status()
            counts["reads"] += 1

        while time.time() < stop_at:
            ticket = (await c.post("/api/v1/events/ticket", json={})).json()["ticket"]
            left = stop_at - time.time()
            try:
                async with c.stream(
                    "GET", f"/api/v1/events?ticket={ticket}", timeout=max(1.0, left)
                ) as r:
                    async for line in r.aiter_lines():
                        if line.startswith("event: dropped"):
                            counts["dropped"] += 1
                            break
                        if not line.startswith("data:"):
                            continue
                        counts["events"] += 1
                        wanted.update(_changes(json.loads(line[5:]).get("event")))
                        if wanted and (pending is None or pending.done()):
                            pending = asyncio.create_task(reread())
                        if time.time() >= stop_at:
                            break
            except httpx.ReadTimeout:
                pass
        if pending is not None:
            pending.cancel()


def sse_main(url: str, clients: int, stop_at: float, out: str) -> None:
    counts = {"events": 0, "reads": 0, "dropped": 0}

    async def all_of_them() -> None:
        tasks = [asyncio.create_task(_follow(url, stop_at, counts)) for _ in range(clients)]
        # a quiet stream sends only a heartbeat every 15 s: stop when told, not then
        while not stopped(out, stop_at) and not all(t.done() for t in tasks):
            await asyncio.sleep(0.2)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t

    asyncio.run(all_of_them())
    Path(out).write_text(json.dumps(counts))


# --- followers: Chromium pages ---------------------------------------------------------


def chromium_main(url: str, clients: int, stop_at: float, out: str) -> None:
    from playwright.sync_api import sync_playwright

    counts: dict[str, Any] = {"events": 0, "reads": 0, "dropped": 0, "pages_live": 0}
    paths: dict[str, int] = {}  # API requests by path, once every page is live
    live = [False]

    def seen(r: Any) -> None:
        path = r.url.removeprefix(url).partition("?")[0]
        if live[0] and path.startswith("/api/"):
            paths[path] = paths.get(path, 0) + 1
        if live[0] and path == "/api/v1/alerts":
            counts["reads"] += 1

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        pages = []
        for _ in range(clients):
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.on("request", seen)
            page.goto(url + "/")
            page.locator("#token").fill(TOKEN)
            page.get_by_role("button", name="Open").click()
            page.locator("#live").get_by_text("● live").wait_for(timeout=60_000)
            pages.append(page)
        counts["pages_live"] = len(pages)
        Path(out + ".ready").write_text("1")
        while not Path(out + ".go").exists() and not stopped(out, stop_at):
            pages[0].wait_for_timeout(50)
        live[0] = True  # the waves start: count from here
        while not stopped(out, stop_at):
            pages[0].wait_for_timeout(200)
        counts["paths"] = paths
        browser.close()
    Path(out).write_text(json.dumps(counts))


# --- the run ---------------------------------------------------------------------------


def set_level(root: Path, level: int) -> None:
    tmp = root / "run" / "metrics.tmp"
    tmp.write_text(json.dumps({"level": level}))
    os.replace(tmp, root / "run" / "metrics.json")


VARIANTS = {
    "normal": "browsers and daemon at the same priority, as today",
    "idle": "browsers at SCHED_IDLE (chrt --idle 0): they get only the CPU the daemon"
    " leaves, as browsers on operators' machines would",
    "pinned": "daemon on CPU 0 alone, browsers on CPU 1 (taskset); other processes of"
    " the machine still share both",
    "realtime": "daemon at SCHED_FIFO 1 (chrt -f), browsers at SCHED_IDLE: no other"
    " process of the machine takes the CPU from the daemon, so its ticks are late"
    " only by its own work (a host that runs the daemon, browsers elsewhere)",
}


def _tree(pid: int) -> list[int]:
    """`pid` and its live descendants."""
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with (
                contextlib.suppress(OSError, IndexError, ValueError),
                open(f"/proc/{entry}/stat") as f,
            ):
                parent[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
    tree, grew = {pid}, True
    while grew:
        more = {p for p, pp in parent.items() if pp in tree} - tree
        tree |= more
        grew = bool(more)
    return sorted(tree)


def _idle_share(pid: int) -> str:
    """How many of `pid`'s tree run at SCHED_IDLE (policy 5), to check chrt took."""
    procs = _tree(pid)
    idle = 0
    for p in procs:
        with contextlib.suppress(OSError, IndexError, ValueError), open(f"/proc/{p}/stat") as f:
            idle += int(f.read().rsplit(")", 1)[1].split()[38]) == 5
    return f"{idle} of {len(procs)} follower processes at SCHED_IDLE"


def run(mode: str, clients: int, waves: int, variant: str) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="vigil-bench-console-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    lay_out(root, port)
    set_level(root, 0)
    d = Daemon(root)
    follower: subprocess.Popen[bytes] | None = None
    try:
        d.start()
        pid = d.proc.pid if d.proc else 0
        prefix: list[str] = []
        if variant in ("idle", "realtime"):
            prefix = ["chrt", "--idle", "0"]
        if variant == "realtime":  # needs CAP_SYS_NICE (root): chrt says so if not
            for p in _tree(pid):
                subprocess.run(["chrt", "-f", "-a", "-p", "1", str(p)], check=True)
        elif variant == "pinned":
            for p in _tree(pid):  # the daemon, its threads and its sender process
                subprocess.run(
                    ["taskset", "-a", "-cp", "0", str(p)], check=True, capture_output=True
                )
            prefix = ["taskset", "-c", "1"]
        span = waves * 2 * WAVE
        setup = 120.0 if mode == "chromium" else 5.0  # 20 pages take a while to open
        stop_at = time.time() + setup + span + 2
        counts_file = root / "run" / "followers.json"
        argv = (clients, stop_at, counts_file)
        follower = subprocess.Popen(
            [*prefix, sys.executable, __file__, "follow", mode, url, *map(str, argv)],
            cwd=root / "run",
        )
        if mode == "chromium":
            wait(lambda: Path(str(counts_file) + ".ready").exists(), setup)
        else:
            time.sleep(2.0)  # connected
        fpid = follower.pid
        checked = _idle_share(fpid) if variant in ("idle", "realtime") else ""

        def cpu() -> tuple[float, float, float]:
            # the daemon, its children (history index, sender), the followers (and chromium)
            return process_cpu(pid), children_cpu(pid), tree_cpu(fpid)

        Path(str(counts_file) + ".go").write_text("1")
        t0, ticks0, cpu0 = time.time(), cpu_ticks(), cpu()
        for _ in range(waves):
            set_level(root, RULES)
            time.sleep(WAVE)
            set_level(root, 0)
            time.sleep(WAVE)
        fired = sum(e["event"] == "firing" for e in d.events())
        t1, ticks1, cpu1 = time.time(), cpu_ticks(), cpu()
        load = os.getloadavg()
        Path(str(counts_file) + ".stop").write_text("1")
        follower.wait(timeout=60)
        counts = json.loads(counts_file.read_text())
        ticks = [(late, own, queued) for t, late, own, queued in d.ticks(t0) if t <= t1]
        return {
            "ticks": ticks,
            "lag": max((x for t, x in d.probes("lag", t0) if t <= t1), default=0.0),
            "lag_own": d.lag_work(t0),
            "fired": fired,
            "span": t1 - t0,
            "load": load,
            "counts": counts,
            "cpu": [(b - a) / (t1 - t0) for a, b in zip(cpu0, cpu1, strict=True)],
            "steal": steal_pct(ticks0, ticks1),
            "checked": checked,
        }
    finally:
        if follower is not None and follower.poll() is None:
            follower.kill()
            follower.wait(10)
        d.stop()
        shutil.rmtree(root, ignore_errors=True)


def report(mode: str, clients: int, waves: int, variant: str, r: dict[str, Any]) -> None:
    ticks = r["ticks"]
    late = sorted(x for x, _, _ in ticks)
    p99 = late[min(len(late) - 1, int(len(late) * 0.99))]
    worst_late, worst_own, worst_queued = max(ticks)
    own = sorted(o for _, o, _ in ticks)
    counts, cpu = r["counts"], r["cpu"]
    edges = 2 * waves
    if mode == "sse":
        who = "SSE clients re-reading what the console reads on its alerts view"
        reads = (
            f"  followers: {counts['events']} events received, {counts['reads']} re-reads "
            f"(after a debounce), {counts['dropped']} dropped streams\n"
        )
    else:
        who = "Chromium pages running the console"
        paths = counts.get("paths", {})
        each = ", ".join(
            f"{p} {n / edges / clients:.2f}" for p, n in sorted(paths.items(), key=lambda x: -x[1])
        )
        reads = (
            f"  followers: {counts['pages_live']} pages live; API requests per page per "
            f"burst (a rise or a fall): {each or 'none'}\n"
        )
    print(
        f"[{variant}] {clients} {mode} followers ({who}): {VARIANTS[variant]}\n"
        + (f"  checked: {r['checked']}\n" if r["checked"] else "")
        + f"  {waves} waves of {RULES} alerts firing then resolving ({r['fired']} firing events)"
        f" in {r['span']:.0f} s; load average {r['load'][0]:.1f} {r['load'][1]:.1f}\n"
        f"  probe group (100 ms) tick lateness over {len(late)} ticks: max {late[-1] * 1e3:.1f} ms, "
        f"p99 {p99 * 1e3:.1f} ms, median {statistics.median(late) * 1e3:.1f} ms (budget: 10 ms)\n"
        "  the loop thread's own CPU from its last 5 ms lag step before a tick was due until"
        " it ran (load-independent; bounds what of its lateness was the daemon's own work): "
        f"worst tick's {worst_own * 1e3:.1f} ms of its {worst_late * 1e3:.1f} ms; "
        f"max over all ticks {own[-1] * 1e3:.1f} ms, p99 "
        f"{own[min(len(own) - 1, int(len(own) * 0.99))] * 1e3:.1f} ms\n"
        f"  meanwhile the worst tick's loop thread waited {worst_queued * 1e3:.1f} ms on a run"
        " queue (runnable, the CPUs taken by other processes: /proc/thread-self/schedstat)\n"
        f"  event loop's worst lag: {r['lag'] * 1e3:.1f} ms, of which its own work at most "
        f"{r['lag_own'] * 1e3:.1f} ms (the rest: its thread not running)\n"
        + reads
        + f"  CPU, % of a core: daemon {100 * cpu[0]:.1f} ({1e3 * cpu[0] * r['span'] / edges:.0f} ms"
        " per burst, its idle ticks included), its children "
        f"{100 * cpu[1]:.0f}, "
        f"followers {100 * cpu[2]:.0f}; machine steal {r['steal']:.1f} %"
    )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", nargs="?", choices=("sse", "chromium"), default="sse")
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--waves", type=int, default=10)
    ap.add_argument(
        "--variants",
        default=None,
        help="comma-separated, of " + ", ".join(VARIANTS) + " (chromium: all; sse: normal)",
    )
    args = ap.parse_args()
    every = ",".join(VARIANTS)
    chosen = (args.variants or (every if args.mode == "chromium" else "normal")).split(",")
    for v in chosen:
        if v not in VARIANTS:
            ap.error(f"--variants: {v!r} is none of {', '.join(VARIANTS)}")
    for v in chosen:
        r = run(args.mode, args.clients, args.waves, v)
        if not r["ticks"]:
            print(f"[{v}] no probe ticks recorded", file=sys.stderr)
            return 1
        report(args.mode, args.clients, args.waves, v, r)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["follow"]:
        mode, url, n, stop, out = sys.argv[2:7]
        (sse_main if mode == "sse" else chromium_main)(url, int(n), float(stop), out)
    else:
        sys.exit(main())
