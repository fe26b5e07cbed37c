"""Validation speed: 10,000 rules in 100 files, and re-validation after one edit.

    .venv/bin/python bench/validate.py

Prints `vigil validate` (a fresh process, as CI runs it) against `promtool check
rules` on an equivalent 10k-rule file when promtool is installed (Debian package
`prometheus`), and the in-process re-validation after one of the 100 files
changed (the hot-reload path, served from the per-file content-hash cache).
Targets: validate <= 2x promtool; re-validation <= 50 ms.
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

FILES, PER_FILE = 100, 100


def rule(i: int) -> str:
    shapes = [
        f"system.cpu_percent > {50 + i % 50}",
        f"system.cpu_percent > 90 and system.mem_percent > {i % 100} * 0.9",
        f'avg_over(system.cpu_percent, "5m") > {60 + i % 40}',
        f"system.load1 > {i % 16} or system.swap_percent > {i % 90}",
    ]
    return (
        f"  - id: rule_{i}\n"
        f"    expr: {shapes[i % len(shapes)]}\n"
        f"    for: {1 + i % 10}m\n"
        f"    severity: {('info', 'warning', 'critical')[i % 3]}\n"
        f"    labels: {{team: team{i % 7}, service: svc{i % 13}}}\n"
        f"    annotations:\n"
        f'      summary: "value {{{{ value }}}} on {{{{ labels.service }}}} ({i})"\n'
    )


def prom_rule(i: int) -> str:
    return (
        f"  - alert: rule_{i}\n"
        f"    expr: vector({i % 100}) > {50 + i % 50}\n"
        f"    for: {1 + i % 10}m\n"
        f"    labels: {{severity: {('info', 'warning', 'critical')[i % 3]}, team: team{i % 7}}}\n"
        f"    annotations:\n"
        f'      summary: "value {{{{ $value }}}} on {{{{ $labels.service }}}} ({i})"\n'
    )


def timed(cmd: list[str], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if r.returncode != 0:
            raise SystemExit(f"{cmd[0]} failed: {r.stdout[-500:]}{r.stderr[-500:]}")
    return statistics.median(times)


def main() -> None:
    tmp = tempfile.mkdtemp(prefix="vigil-bench-")
    try:
        os.makedirs(f"{tmp}/rules")
        os.makedirs(f"{tmp}/channels")
        with open(f"{tmp}/vigil.yaml", "w") as f:
            f.write("rules: [rules]\nchannels: [channels]\n")
        with open(f"{tmp}/channels/c.yaml", "w") as f:
            f.write("channels:\n  - {name: console, type: log}\nroutes:\n  - channels: [console]\n")
        for n in range(FILES):
            with open(f"{tmp}/rules/g{n:03}.yaml", "w") as f:
                f.write(f"group: g{n}\ninterval: 15s\nrules:\n")
                for i in range(n * PER_FILE, (n + 1) * PER_FILE):
                    f.write(rule(i))
        with open(f"{tmp}/prom.yaml", "w") as f:
            f.write("groups:\n")
            for n in range(FILES):
                f.write(f"- name: g{n}\n  rules:\n")
                for i in range(n * PER_FILE, (n + 1) * PER_FILE):
                    f.write("  " + prom_rule(i).replace("\n  ", "\n    "))
        vigil = os.path.join(ROOT, ".venv", "bin", "vigil")
        t_vigil = timed([vigil, "validate", "-c", f"{tmp}/vigil.yaml"])
        print(
            f"vigil validate, {FILES * PER_FILE} rules in {FILES} files: {t_vigil * 1000:.0f} ms (median of 5)"
        )
        promtool = shutil.which("promtool")
        if promtool:
            t_prom = timed([promtool, "check", "rules", f"{tmp}/prom.yaml"])
            print(
                f"promtool check rules, {FILES * PER_FILE} rules in 1 file: {t_prom * 1000:.0f} ms"
            )
            print(f"ratio vigil/promtool: {t_vigil / t_prom:.2f}x (target <= 2x)")
        else:
            print("promtool not installed (Debian package `prometheus`): no baseline")

        from engine.config.build import ConfigLoader

        loader = ConfigLoader()
        t0 = time.perf_counter()
        first = loader.load(f"{tmp}/vigil.yaml")
        t_cold = time.perf_counter() - t0
        assert first.ok, first.problems[:3]
        revs = []
        for k in range(7):
            path = f"{tmp}/rules/g{k:03}.yaml"
            with open(path, "a") as f:
                f.write(rule(10_000_000 + k))
            t0 = time.perf_counter()
            again = loader.load(f"{tmp}/vigil.yaml")
            revs.append(time.perf_counter() - t0)
            assert again.ok, again.problems[:3]
        print(f"in-process cold load: {t_cold * 1000:.0f} ms")
        print(
            f"re-validate after one file changed: {statistics.median(revs) * 1000:.1f} ms median of 7 (target <= 50 ms)"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
