"""Security monitoring speed (issue 16, Speed): the whole path a log line takes.

    .venv/bin/python bench/logtail.py [--lines 1000000] [--interval 1s] [--no-latency]
        [--no-ticks] [--no-baseline] [--crowdsec-lines 20000]

Throughput: bench/detect.py's generated nginx access log (realistic traffic, 1 %
attacks) read by the real `logtail` collector (follower, offsets, batches, the
reader thread) with the detection settings of the `web` collector of
deploy/security.yaml (the five shipped packs, its own admin pattern, four
windows, the allowlists), pass after pass (`collect()`, as the daemon calls it)
until every line is in. Printed: lines/s by wall clock and per CPU second of the
process (the reader thread included). Then the baselines on the same file
(bench/logtail_baselines.py; Debian's fail2ban and crowdsec unpacked into
.cache/baselines/ by deploy/baselines.sh, fetched on the first run, never
installed): fail2ban-regex with nginx-botsearch and with this pack's URL regexes,
and CrowdSec's one-shot file mode on the first --crowdsec-lines lines.

Latency (root, `nft` and `ip netns` needed; skipped otherwise): a real daemon
follows a log that a writer process fills with 10,000 benign lines/s; every
200 ms one SQL injection line from a new address is appended; the rule
(`each: web.keys`, `it.hits.sqli >= 1`) fires and routes to the `ban` channel,
whose `nft` runs inside a network namespace made here (never the host's
firewall). Measured: from the append to the address being in the nftables set
(`nft list set` polled every 10 ms, so figures are up to 10 ms late). Collector
and rule group interval: --interval (default 1s): the write wakes a collector
pass (`react: 50ms`), whose new hits wake an evaluation of the group at once
(engine/daemon/react.py), so the latency is about one pass plus one evaluation
plus one nft batch, whatever the interval. The sample lists the default
`max_reported: 500` keys (most hits first).

Punctuality: a real daemon (under bench/notify.py's probes) with the `web`
collector of deploy/security.yaml ingesting 10,000 lines/s of the generated
traffic (1 % attacks: its group is evaluated promptly all along) and an unrelated
100 ms `probe` group: how late the probe's ticks start (target: never over 10 ms).
On a shared machine that lateness mostly measures the other processes, so the run
also prints what the daemon itself decides (bench/cpu_probe.py, by threads' own
CPU time): the loop's callbacks over 1 ms, the logtail reader thread's CPU per
pass, the boundary walk's per sample, and garbage collections (each holds the GIL
in one piece); BENCH_CPU=<file> keeps the raw lines, BENCH_GIL=1 adds the reader
thread's longest C calls (profiled: its other figures are then slower).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import logtail_baselines as baselines  # noqa: E402
from bench.detect import benign_target, fail2ban, generate, quality  # noqa: E402
from engine.collectors.logtail.collector import LogtailCollector  # noqa: E402
from engine.config.build import ConfigLoader  # noqa: E402
from engine.config.model import CollectorConfig, frozen_map  # noqa: E402
from engine.detect.sink import DetectSink  # noqa: E402

RATE = 10_000  # background lines/s in the latency run

RULE = """\
  - id: web_sqli
    each: web.keys
    expr: it.hits.sqli >= 1
    severity: critical
    annotations:
      evidence: "{% for e in it.evidence %}{{ e.line }}\\n{% endfor %}"
"""


def web_settings() -> dict[str, Any]:
    """The `web` collector of deploy/security.yaml, as the loader gives it."""
    result = ConfigLoader().load(str(ROOT / "deploy" / "security.yaml"))
    assert result.config is not None and not result.problems, result.problems
    (web,) = [c for c in result.config.collectors if c.name == "web"]
    return dict(web.settings)


async def _drain(c: LogtailCollector, lines: int) -> dict[str, Any]:
    sample: dict[str, Any] = {}
    while sample.get("lines", 0) < lines:
        got = await c.collect(time.time())
        sample = dict(got) if not isinstance(got, dict) else got
    await c.aclose()
    return sample


def throughput(n: int, baseline: bool, crowdsec_lines: int) -> None:
    tmp = tempfile.mkdtemp(prefix="vigil-logtail-bench-")
    try:
        path = os.path.join(tmp, "access.log")
        attacks = generate(path, n)
        mib = os.path.getsize(path) / 2**20
        # in this process: its CPU time is what is measured (the daemon's child runs
        # the same Reader, answering per pass, not per line)
        settings = {**web_settings(), "paths": (path,), "start": "beginning", "isolate": False}
        config = CollectorConfig("web", "logtail", 1.0, 60.0, frozen_map(settings))
        c = LogtailCollector.from_config(config)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        sample = asyncio.run(_drain(c, n))
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        t = sample["totals"]
        print(
            f"log: {n:,} lines, {mib:.0f} MiB, {attacks:,} attack lines; web collector of "
            f"deploy/security.yaml ({len(c.settings.detect.patterns) if c.settings.detect else 0} "
            "patterns, 4 windows, allowlists)"
        )
        rate = n / cpu
        print(
            f"vigil logtail + detect: {wall:.2f} s wall, {cpu:.2f} s CPU -> {n / wall:,.0f} lines/s "
            f"wall, {rate:,.0f} lines/s per CPU second (target >= 100,000: "
            f"{'met' if rate >= 100_000 else f'missed by {100_000 / rate:.2f}x'})"
        )
        print(f"  parsed {t['parsed']:,}, allowed {t['allowed']:,}; hits by pack {t['hits']}")
        probe = DetectSink(c.settings.detect) if c.settings.detect else None
        if probe is not None:
            a, ah, b, bh = quality(path, probe)
            print(
                f"  attack lines hit: {ah:,}/{a:,} ({100 * ah / max(a, 1):.1f} %); "
                f"benign lines hit: {bh:,}/{b:,} ({100 * bh / max(b, 1):.3f} %)"
            )
        if baseline:
            baselines.fail2ban_env()
            fail2ban(path, n, rate)
            baselines.crowdsec(path, n, rate, crowdsec_lines)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- latency ---------------------------------------------------------------------------

WRITER = r"""
import sys, time
path, rate, lines = sys.argv[1], int(sys.argv[2]), sys.stdin.read().splitlines()
chunk = max(rate // 100, 1)
with open(path, "a", buffering=1) as f:
    t, i = time.monotonic(), 0
    while True:
        f.write("\n".join(lines[(i + k) % len(lines)] for k in range(chunk)) + "\n")
        f.flush()
        i += chunk
        t += chunk / rate
        time.sleep(max(t - time.monotonic(), 0))
"""


def _benign_lines(n: int) -> list[str]:
    r = random.Random(3)
    out = []
    for i in range(n):
        target, status = benign_target(r)
        ip = f"10.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}"
        out.append(
            f'{ip} - - [07/Dec/2026:10:00:{i % 60:02d} +0000] "GET {target} HTTP/1.1" {status} '
            f'{r.randrange(200, 90000)} "-" "Mozilla/5.0 (X11; Linux x86_64) Firefox/121.0"'
        )
    return out


def _nft_set(ns: str) -> set[str]:
    out = subprocess.run(
        ["ip", "netns", "exec", ns, "nft", "list", "set", "inet", "vigil", "banned4"],
        capture_output=True, text=True, timeout=10,
    )  # fmt: skip
    return set(re.findall(r"(\d+\.\d+\.\d+\.\d+) timeout", out.stdout))


def latency(attacks: int, interval: str) -> None:
    why = (
        "needs root" if os.geteuid() != 0
        else "needs nft and ip" if not (shutil.which("nft") and shutil.which("ip")) else None
    )  # fmt: skip
    if why:
        print(f"latency: skipped ({why})")
        return
    from tests.integration.daemon import Daemon

    ns = f"vigil-bench-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", ns], check=True, timeout=30)
    tmp = Path(tempfile.mkdtemp(prefix="vigil-ban-bench-"))
    writer = None
    d = None
    try:
        log = tmp / "access.log"
        log.touch()
        rules = f"group: web\ninterval: {interval}\nrules:\n{RULE}"
        ban = {
            "name": "fw", "type": "ban", "nft_command": ["ip", "netns", "exec", ns, "nft"],
            "bantime": "1h", "max_active": 100_000, "max_per_minute": 100_000,
        }  # fmt: skip
        channels = (
            f"channels:\n  - {json.dumps(ban)}\nroutes:\n  - match: {{rule: web_sqli}}\n"
            f"    channels: [fw]\n    group_by: [ip]\n    group_wait: 0s\n"
            f"    group_interval: 1h\n    repeat_interval: 1h\n"
        )
        d = Daemon(tmp, rules, channels)
        cfg = tmp / "vigil.yaml"
        collector = (
            f"  - {{name: web, type: logtail, paths: [{log}], interval: {interval}, "
            "start: end, format: nginx, packs: [sqli], evidence: 3}\n"
        )
        cfg.write_text(cfg.read_text().replace("collectors:\n", "collectors:\n" + collector))
        d.start()
        deadline = time.monotonic() + 30
        while "banned4" not in subprocess.run(
            ["ip", "netns", "exec", ns, "nft", "list", "table", "inet", "vigil"],
            capture_output=True, text=True, timeout=10,
        ).stdout:  # fmt: skip
            if time.monotonic() > deadline:
                raise SystemExit("the ban channel did not make its table")
            time.sleep(0.1)
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(log), str(RATE)], stdin=subprocess.PIPE, text=True
        )
        assert writer.stdin is not None
        writer.stdin.write("\n".join(_benign_lines(20_000)))
        writer.stdin.close()
        time.sleep(3.0)  # the background traffic is flowing and the collector keeps up
        written: dict[str, float] = {}
        seen: dict[str, float] = {}
        stop = threading.Event()

        def poll() -> None:
            while not stop.is_set():
                now_in = _nft_set(ns)
                t = time.monotonic()
                for ip in now_in:
                    seen.setdefault(ip, t)
                time.sleep(0.01)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        with open(log, "a") as f:
            for i in range(attacks):
                ip = f"203.0.{113 + i // 250}.{i % 250 + 1}"
                line = (
                    f'{ip} - - [07/Dec/2026:10:00:00 +0000] "GET /item?id=1%27%20OR%20%271%27%3D%271 '
                    'HTTP/1.1" 200 512 "-" "curl/8.5.0"\n'
                )
                f.write(line)
                f.flush()
                written[ip] = time.monotonic()
                time.sleep(0.2)
        end = time.monotonic() + 10
        while len(seen) < attacks and time.monotonic() < end:
            time.sleep(0.1)
        stop.set()
        poller.join(5)
        lat = sorted((seen[ip] - t) * 1000 for ip, t in written.items() if ip in seen)
        lines = log.stat().st_size
        if not lat:
            print("latency: no ban seen")
            return
        p = lambda q: lat[min(int(q * len(lat)), len(lat) - 1)]  # noqa: E731
        print(
            f"line written -> address in the nftables set, {len(lat)}/{attacks} banned, "
            f"{RATE:,} benign lines/s meanwhile ({lines / 2**20:.0f} MiB written), "
            f"collector and rule interval {interval}: p50 {p(0.5):.0f} ms, p90 {p(0.9):.0f} ms, "
            f"p99 {p(0.99):.0f} ms, max {lat[-1]:.0f} ms (target p99 <= 200 ms: "
            f"{'met' if p(0.99) <= 200 else 'missed'})"
        )
    finally:
        if writer is not None:
            writer.kill()
            writer.wait(10)
        if d is not None and d.proc is not None and d.proc.poll() is None:
            d.stop()
        subprocess.run(["ip", "netns", "del", ns], check=False, timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)


# -- the evaluation tick's punctuality ---------------------------------------------------


def punctuality(seconds: float, interval: str, react: str) -> None:
    """How late a 100 ms `probe` group (an unrelated rule) starts its ticks while a
    real daemon's logtail collector (the `web` collector of deploy/security.yaml)
    ingests 10,000 lines/s of bench/detect.py's traffic (1 % attacks, so its group
    is evaluated promptly on news all along). The daemon runs under bench/notify.py's
    probes (`tick`: how late the probe group's job started after its due time)."""
    import yaml

    from tests.integration.daemon import Daemon

    tmp = Path(tempfile.mkdtemp(prefix="vigil-tick-bench-"))
    writer = proc = None
    try:
        log, probe, source = tmp / "access.log", tmp / "probe.txt", tmp / "source.log"
        log.touch()
        generate(str(source), 20_000)
        d = Daemon(tmp, f"group: web\ninterval: {interval}\nrules:\n{RULE}")
        (tmp / "rules" / "probe.yaml").write_text(
            "group: probe\ninterval: 100ms\nrules:\n  - {id: probe, expr: fixed.limit > 1000}\n"
        )
        sec = yaml.safe_load((ROOT / "deploy" / "security.yaml").read_text())
        (web,) = [c for c in sec["collectors"] if c["name"] == "web"]
        web.update(paths=[str(log)], start="end", interval=interval, react=react)
        cfg = tmp / "vigil.yaml"
        cfg.write_text(
            cfg.read_text().replace("collectors:\n", f"collectors:\n  - {json.dumps(web)}\n")
        )
        # bench/cpu_probe.py: the load-independent figures (BENCH_CPU=<file> keeps them)
        cpu = Path(os.environ.get("BENCH_CPU") or tmp / "cpu.txt")
        with open(tmp / "daemon.log", "w") as out:
            proc = subprocess.Popen(
                [sys.executable, str(ROOT / "bench" / "notify.py"), "daemon", str(cfg), str(probe)],
                cwd=tmp, stdout=out, stderr=out, env={**os.environ, "BENCH_CPU": str(cpu)},
            )  # fmt: skip
        d.wait_for(lambda evs: any(e["event"] == "started" for e in evs), 60, "the start")
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(log), str(RATE)], stdin=subprocess.PIPE, text=True
        )
        assert writer.stdin is not None
        writer.stdin.write(source.read_text())
        writer.stdin.close()
        time.sleep(3.0)  # the traffic flows and the collector keeps up
        t0 = time.time()
        cpu0 = _cpu_of(proc.pid)
        time.sleep(seconds)
        cpu1 = _cpu_of(proc.pid)
        t1 = time.time()
        rows = [ln.split() for ln in probe.read_text().splitlines()]
        ticks = sorted(float(r[2]) * 1e3 for r in rows if r[0] == "tick" and t0 <= float(r[1]) < t1)
        starts = sorted(float(r[1]) for r in rows if r[0] == "tick" and t0 <= float(r[1]) < t1)
        web = sorted(
            float(r[2]) * 1e3 for r in rows if r[0] == "run-web" and t0 <= float(r[1]) < t1
        )
        # the loop's own work (its thread's CPU while the worst lag of each 100 ms
        # built up): what other processes on a shared machine do not change
        work = sorted(
            min(float(r[2]), float(r[3])) * 1e3
            for r in rows
            if r[0] == "lag" and len(r) >= 4 and t0 <= float(r[1]) < t1
        )
        if not ticks:
            print(f"tick lateness: no probe tick seen; see {tmp / 'daemon.log'}")
            return
        p = lambda q: ticks[min(int(q * len(ticks)), len(ticks) - 1)]  # noqa: E731
        gap = max((b - a for a, b in itertools.pairwise(starts)), default=0.1)
        print(
            f"evaluation tick of a 100 ms probe group while logtail ingests {RATE:,} lines/s "
            f"(web collector of deploy/security.yaml, interval {interval}, {seconds:.0f} s, "
            f"react {react}, {len(ticks)} ticks; the web group ran {len(web)} times, "
            f"{web[len(web) // 2] if web else 0:.1f} ms median): late p50 "
            f"{p(0.5):.1f} ms, p99 {p(0.99):.1f} ms, max {ticks[-1]:.1f} ms; longest gap "
            f"{gap * 1e3 - 100:.1f} ms over 100 ms (target: never late by more than 10 ms: "
            f"{'met' if ticks[-1] <= 10 else 'missed'})"
        )
        worst = sorted(
            (r for r in rows if r[0] == "tick" and len(r) >= 5 and t0 <= float(r[1]) < t1),
            key=lambda r: -float(r[2]),
        )[:3]
        print(
            "the latest ticks (late = the loop thread's CPU + its wait for a CPU + the rest: "
            "the GIL, timers): "
            + ", ".join(
                f"{float(r[2]) * 1e3:.1f} = {float(r[3]) * 1e3:.1f} + {float(r[4]) * 1e3:.1f} + "
                f"{(float(r[2]) - float(r[3]) - float(r[4])) * 1e3:.1f} ms"
                for r in worst
            )
        )
        pauses = sorted(
            (float(r[2]) * 1e3, r[3]) for r in rows if r[0] == "gc" and t0 <= float(r[1]) < t1
        )  # a collection holds the GIL whichever thread allocated
        print(
            f"garbage collections over 5 ms: {len(pauses)}"
            + (f" ({', '.join(f'{g} {ms:.1f} ms' for ms, g in pauses[-4:])})" if pauses else "")
        )
        if work:
            q = lambda f: work[min(int(f * len(work)), len(work) - 1)]  # noqa: E731
            print(
                f"the loop's own work in its worst lag per 100 ms: p50 {q(0.5):.1f} ms, "
                f"p99 {q(0.99):.1f} ms, max {work[-1]:.1f} ms"
            )
        _cpu_figures(cpu, t0, t1)
        print(
            "CPU over the run: the daemon "
            f"{(cpu1[0] - cpu0[0]) / (t1 - t0) * 100:.0f} %, its logtail reader process "
            f"{(cpu1[1] - cpu0[1]) / (t1 - t0) * 100:.0f} % (of one CPU)"
        )
    finally:
        for child in (writer, proc):
            if child is not None:
                child.terminate()
                child.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


def _cpu_of(pid: int) -> tuple[float, float]:
    """CPU seconds of the daemon and of its reader process(es) (their command line
    names engine.collectors.logtail.isolated)."""
    import psutil

    daemon = psutil.Process(pid)
    t = daemon.cpu_times()
    readers = 0.0
    for child in daemon.children(recursive=True):
        try:
            if "engine.collectors.logtail.isolated" in child.cmdline():
                c = child.cpu_times()
                readers += c.user + c.system
        except psutil.NoSuchProcess:
            pass
    return t.user + t.system, readers


def _cpu_figures(path: Path, t0: float, t1: float) -> None:
    """bench/cpu_probe.py's lines: the loop's longest callbacks (its thread's CPU)
    and the worker thread's passes, figures that other processes do not change."""
    rows = [ln.split() for ln in path.read_text().splitlines()] if path.exists() else []
    cbs = sorted(
        ((float(r[2]) * 1e3, r[3]) for r in rows if r[0] == "cb" and t0 <= float(r[1]) < t1),
        reverse=True,
    )
    by_name: dict[str, float] = {}
    for ms, name in cbs:
        by_name[name] = max(by_name.get(name, 0.0), ms)
    top = ", ".join(f"{n} {ms:.1f}" for n, ms in sorted(by_name.items(), key=lambda kv: -kv[1])[:4])
    print(
        f"loop callbacks over 1 ms of the loop thread's CPU: {len(cbs)} in {t1 - t0:.0f} s, "
        f"longest {cbs[0][0] if cbs else 0:.1f} ms ({top or '-'})"
    )
    passes = [r for r in rows if r[0] == "pass" and t0 <= float(r[1]) < t1]
    if passes:
        cpu = sorted(float(r[2]) * 1e3 for r in passes)
        q = lambda xs, f: xs[min(int(f * len(xs)), len(xs) - 1)]  # noqa: E731
        where = "asking the reader process" if passes[0][3] == "process" else "reading in it"
        print(
            f"logtail passes in the daemon's worker thread ({where}): {len(passes)}, CPU per "
            f"pass p50 {q(cpu, 0.5):.1f} ms, p99 {q(cpu, 0.99):.1f} ms, max {cpu[-1]:.1f} ms, "
            f"{sum(cpu) / (t1 - t0) / 10:.1f} % of a CPU"
        )
    walks = sorted(float(r[2]) * 1e3 for r in rows if r[0] == "clean" and t0 <= float(r[1]) < t1)
    if walks:
        print(
            f"boundary walk of a sample (worker thread): {len(walks)} walks, CPU p50 "
            f"{walks[len(walks) // 2]:.1f} ms, max {walks[-1]:.1f} ms, "
            f"{sum(walks) / (t1 - t0) / 10:.1f} % of a CPU"
        )
    gcs = sorted(
        (float(r[2]) * 1e3, r[3]) for r in rows if r[0] == "gccpu" and t0 <= float(r[1]) < t1
    )
    print(
        f"garbage collections over 1 ms of CPU: {len(gcs)}"
        + (f" (longest: {', '.join(f'{g} {ms:.1f} ms' for ms, g in gcs[-4:])})" if gcs else "")
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--attacks", type=int, default=100, help="banned addresses in the latency run")
    ap.add_argument("--interval", default="1s", help="collector and rule interval (1s)")
    ap.add_argument("--tick-seconds", type=float, default=20.0, help="the punctuality run's length")
    ap.add_argument("--react", default="50ms", help="the collector's react in the punctuality run")
    ap.add_argument("--no-ticks", action="store_true", help="skip the punctuality run")
    ap.add_argument(
        "--crowdsec-lines", type=int, default=20_000, help="lines of the log CrowdSec reads"
    )
    ap.add_argument("--no-latency", action="store_true")
    ap.add_argument("--no-throughput", action="store_true")
    ap.add_argument("--no-baseline", action="store_true")
    args = ap.parse_args()
    if not args.no_throughput:
        throughput(args.lines, not args.no_baseline, args.crowdsec_lines)
    if not args.no_latency:
        latency(args.attacks, args.interval)
    if not args.no_ticks:
        punctuality(args.tick_seconds, args.interval, args.react)


if __name__ == "__main__":
    main()
