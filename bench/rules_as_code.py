"""Rules as code in CI: `vigil validate && vigil test` on 100 rules, one test each.

    .venv/bin/python bench/rules_as_code.py

Generates a rules repository (vigil.yaml, 10 rule files of 10 rules, a channel
file, 10 test files with one test per rule: 5 minutes at 15s steps, alert and
notification assertions), then times both commands as fresh processes, as CI and
pre-commit run them (median of 5 runs each). Target: both together <= 1 s.

Then the same work in one process, split into where the time goes: Python start
and imports (`build_parser` imports every command), fastjsonschema compiling each
schema (what a process without the disk cache pays, once; with it, a process loads
the compiled validator instead), loading the configuration, and the simulation
itself.

Also shown: `vigil test -j 1` (the tests in one process; by default `vigil test`
runs files in one process per CPU), and both commands once with an empty disk
cache, as the first run after an install or a schema change is.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

FILES, PER_FILE = 10, 10
TARGET = 1.0
RUNS = 5


def rule(i: int) -> str:
    return (
        f"  - id: rule_{i}\n"
        f"    expr: app.m{i} > {50 + i % 40}\n"
        f"    for: 1m\n"
        f"    severity: {('warning', 'critical')[i % 2]}\n"
        f"    labels: {{team: team{i % 7}}}\n"
        f'    annotations: {{summary: "m{i} at {{{{ value }}}}"}}\n'
    )


def test(i: int) -> str:
    hi = 95
    return (
        f"  - name: rule_{i} fires after a minute above {50 + i % 40}\n"
        f'    series: {{app.m{i}: "10 {hi}x12 10x6"}}\n'
        f"    alerts:\n"
        f"      - {{at: 15s, expect: [{{rule: rule_{i}, state: pending}}]}}\n"
        f"      - at: 1m15s\n"
        f"        expect: [{{rule: rule_{i}, labels: {{team: team{i % 7}}},"
        f' annotations: {{summary: "m{i} at {hi}"}}}}]\n'
        f"      - {{at: 3m30s, expect: []}}\n"
        f"    notifications:\n"
        f"      - at: 2m\n"
        f"        expect: [{{channel: console, status: firing, alerts: [rule_{i}]}}]\n"
    )


def generate(tmp: str) -> None:
    os.makedirs(f"{tmp}/rules/tests")
    os.makedirs(f"{tmp}/channels")
    with open(f"{tmp}/vigil.yaml", "w") as f:
        f.write(
            "rules: [rules]\nchannels: [channels]\n"
            "collectors:\n  - {name: app, type: file, path: /var/lib/app/metrics.json}\n"
        )
    with open(f"{tmp}/channels/c.yaml", "w") as f:
        f.write(
            "channels:\n  - {name: console, type: log}\n"
            "routes:\n  - {channels: [console], group_wait: 30s}\n"
        )
    for n in range(FILES):
        ids = range(n * PER_FILE, (n + 1) * PER_FILE)
        with open(f"{tmp}/rules/g{n:02}.yaml", "w") as f:
            f.write(f"group: g{n}\ninterval: 15s\nrules:\n" + "".join(rule(i) for i in ids))
        with open(f"{tmp}/rules/tests/g{n:02}.yaml", "w") as f:
            f.write(
                f"rule_files: [../g{n:02}.yaml]\nchannel_files: [../../channels/c.yaml]\n"
                "tests:\n" + "".join(test(i) for i in ids)
            )


def timed(
    cmd: list[str], cwd: str, runs: int = RUNS, env: dict[str, str] | None = None
) -> list[float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
        times.append(time.perf_counter() - t0)
        if r.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed: {r.stdout[-800:]}{r.stderr[-800:]}")
    return times


def breakdown(tmp: str) -> None:
    """Where one process's time goes (in this process: imports are cold only once)."""
    t0 = time.perf_counter()
    from engine.cli.main import build_parser

    build_parser()
    t_imports = time.perf_counter() - t0
    from engine.config import schema as sc

    compiles = {}
    cached = {}
    for name in ("config", "rules", "channels", "ruletest"):
        t = time.perf_counter()
        sc._compile(name)
        compiles[name] = time.perf_counter() - t
        t = time.perf_counter()
        sc._cached(name)
        cached[name] = time.perf_counter() - t
    from engine.config.build import ConfigLoader
    from engine.ruletest import ruletest

    t = time.perf_counter()
    result = ConfigLoader().load(f"{tmp}/vigil.yaml")
    t_load = time.perf_counter() - t
    assert result.ok, result.problems[:3]
    cwd = os.getcwd()
    os.chdir(tmp)
    try:
        t = time.perf_counter()
        results, problems = ruletest.run_files(["rules/tests"])
        t_run = time.perf_counter() - t
    finally:
        os.chdir(cwd)
    cases = [c for r in results for c in r.cases]
    assert not problems and all(c.passed for c in cases) and len(cases) == FILES * PER_FILE
    steps = sum(len(c.events) for c in cases)
    print("in one process:")
    print(f"  imports and argument parser (every command module): {t_imports * 1000:6.0f} ms")
    for name, s in compiles.items():
        print(
            f"  fastjsonschema compiles the {name:<8} schema:         {s * 1000:6.0f} ms"
            f" (loaded from the disk cache: {cached[name] * 1000:.0f} ms)"
        )
    print(f"  vigil validate's load of the configuration:          {t_load * 1000:6.0f} ms")
    print(
        f"  vigil test: {len(cases)} tests, {steps} journal events (config loads included): "
        f"{t_run * 1000:.0f} ms"
    )


def main() -> None:
    tmp = tempfile.mkdtemp(prefix="vigil-bench-rac-")
    try:
        generate(tmp)
        vigil = os.path.join(os.path.dirname(sys.executable), "vigil")
        if not os.path.exists(vigil):
            vigil = os.path.join(ROOT, ".venv", "bin", "vigil")
        t_py = statistics.median(timed([sys.executable, "-c", "pass"], tmp))
        t_val = timed([vigil, "validate"], tmp)
        t_test = timed([vigil, "test", "rules/tests"], tmp)
        both = [a + b for a, b in zip(t_val, t_test, strict=True)]
        n = FILES * PER_FILE
        print(f"{n} rules in {FILES} files, {n} tests in {FILES} files (median of {RUNS} runs)")
        print(f"  python -c pass:                 {t_py * 1000:6.0f} ms")
        print(f"  vigil validate:                 {statistics.median(t_val) * 1000:6.0f} ms")
        print(f"  vigil test rules/tests:         {statistics.median(t_test) * 1000:6.0f} ms")
        total = statistics.median(both)
        verdict = "meets" if total <= TARGET else "MISSES"
        print(
            f"  validate + test:                {total * 1000:6.0f} ms "
            f"(best {min(both) * 1000:.0f} ms; target <= {TARGET * 1000:.0f} ms: {verdict})"
        )
        t_serial = timed([vigil, "test", "-j", "1", "rules/tests"], tmp)
        print(f"  vigil test -j 1 (one process):  {statistics.median(t_serial) * 1000:6.0f} ms")
        cold_env = {**os.environ, "XDG_CACHE_HOME": os.path.join(tmp, "empty-cache")}
        t_cold = timed([vigil, "validate"], tmp, 1, cold_env)[0]
        t_cold += timed([vigil, "test", "rules/tests"], tmp, 1, cold_env)[0]
        print(f"  validate + test, empty cache:   {t_cold * 1000:6.0f} ms (first run only)")
        breakdown(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
