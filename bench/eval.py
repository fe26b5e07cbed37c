"""Evaluate 10,000 threshold rules: vigil's closures against the alternatives.

Run from the repository root:  .venv/bin/python bench/eval.py

One pass = every rule evaluated once against the same snapshot. Prints the
median of several passes for:
  vigil         Expression.evaluate_bool (the closures compiled at load)
  raw eval      eval() of compile()d code objects: the unsafe floor
  simpleeval    SimpleEval.eval(expr, previously_parsed=...) (AST walk per call)
  simple_eval   simple_eval(expr, names=...) per call (parses every time)
and the ratios. No asserts: this prints figures for a person to read.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simpleeval import SimpleEval, simple_eval

from engine.expr.compiler import compile_expr
from engine.expr.history import History
from engine.expr.scope import EvalScope

RULES = 10_000
PASSES = 7
SLOW_PASSES = 3  # simple_eval re-parses every call: fewer passes keep the run short
NOW = 1_800_000_000.0


def make_rules(n: int, rng: random.Random) -> list[str]:
    rules = []
    for i in range(n):
        x = round(rng.uniform(50, 99), 2)  # mostly distinct sources, as in a real rule set
        shape = i % 10
        if shape == 0:
            rules.append(f'avg_over(system.cpu_percent, "5m") > {x}')
        elif shape in (1, 2, 3):
            rules.append(f"system.cpu_percent > 90 and system.mem_percent > {x} * 0.9")
        elif shape in (4, 5):
            rules.append(f"system.mem_percent > {x}")
        elif shape == 6:
            rules.append(f"system.load1 >= {x / 10:.1f} or system.swap_percent > {x}")
        elif shape == 7:
            rules.append(f"system.disk_percent < {x} and system.procs != {int(x * 10)}")
        elif shape == 8:
            rules.append(f"not system.cpu_percent <= {x}")
        else:
            rules.append(f"system.temp_c - 20 > {x} / 2")
    return rules


def once(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    rng = random.Random(7)
    rules = make_rules(RULES, rng)
    metrics: dict[str, Any] = {
        "cpu_percent": 93.5,
        "mem_percent": 71.2,
        "load1": 3.4,
        "swap_percent": 12.0,
        "disk_percent": 64.0,
        "procs": 412,
        "temp_c": 61.0,
    }
    values = {"system": metrics}
    history = History(600)
    for i in range(40):  # 10 minutes at 15 s
        history.record("system.cpu_percent", NOW - 600 + i * 15, 50.0 + i)
    scope = EvalScope(values=values, now=NOW, history=history)

    t0 = time.perf_counter()
    compiled = [compile_expr(r, names={"system"}) for r in rules]
    compile_s = time.perf_counter() - t0

    def avg_over(_value: object, _window: str) -> Any:
        # The unsafe and simpleeval baselines get the same history lookup.
        return history.avg("system.cpu_percent", NOW, 300.0)

    # --- vigil ---
    def run_vigil() -> None:
        for e in compiled:
            e.evaluate_bool(scope)

    # --- raw eval() floor ---
    codes = [compile(r, "<rule>", "eval") for r in rules]
    env: dict[str, Any] = {"__builtins__": {}, "system": _Obj(metrics), "avg_over": avg_over}

    def run_raw() -> None:
        for c in codes:
            eval(c, env)

    # --- simpleeval, pre-parsed ---
    s = SimpleEval(names={"system": metrics}, functions={"avg_over": avg_over})
    parsed = [s.parse(r) for r in rules]
    pairs = list(zip(rules, parsed, strict=True))

    def run_simpleeval() -> None:
        for r, p in pairs:
            s.eval(r, previously_parsed=p)

    # --- simple_eval per call ---
    names = {"system": metrics}
    functions = {"avg_over": avg_over}

    def run_simple_eval() -> None:
        for r in rules:
            simple_eval(r, names=names, functions=functions)

    # The figures only mean something if all three give the same answers.
    ours = [e.evaluate_bool(scope) for e in compiled]
    agree = (
        ours == [eval(c, env) for c in codes] == [s.eval(r, previously_parsed=p) for r, p in pairs]
    )

    # Round-robin passes, so load from other processes hits every contender alike.
    times: dict[str, list[float]] = {"vigil": [], "raw": [], "se": [], "se_call": []}
    for i in range(PASSES):
        times["vigil"].append(once(run_vigil))
        times["raw"].append(once(run_raw))
        times["se"].append(once(run_simpleeval))
        if i < SLOW_PASSES:
            times["se_call"].append(once(run_simple_eval))
    vigil, raw, se, se_call = (
        statistics.median(times[k]) for k in ("vigil", "raw", "se", "se_call")
    )

    shapes = sum(1 for r in rules if "avg_over" in r)
    print(f"rules: {RULES} ({shapes} with avg_over); true: {sum(ours)}; answers agree: {agree}")
    distinct = len(set(rules))
    print(f"compile_expr of all rules: {compile_s * 1000:.0f} ms ({distinct} distinct sources)")
    print(f"median of {PASSES} passes (simple_eval: {SLOW_PASSES}):")
    rows = [
        ("vigil evaluate_bool", vigil),
        ("raw eval() (unsafe floor)", raw),
        ("simpleeval pre-parsed", se),
        ("simple_eval per call", se_call),
    ]
    for name, sec in rows:
        print(f"  {name:<28} {sec * 1000:8.2f} ms/pass  {sec / RULES * 1e6:6.2f} us/rule")
    print(f"ratio vigil / raw eval:           {vigil / raw:5.2f}x  (target <= 3.5x)")
    print(f"ratio simpleeval pre-parsed / vigil: {se / vigil:5.2f}x")
    print(f"ratio simple_eval per call / vigil:  {se_call / vigil:5.2f}x")
    print(f"target <= 50 ms/pass: {'met' if vigil <= 0.050 else 'NOT met'} ({vigil * 1000:.2f} ms)")

    full = full_pass(rules, values, history)
    print(
        f"full pass (evaluation + state step, no transitions), Evaluator.run_group over {RULES} rules:"
    )
    print(
        f"  median {full * 1000:.2f} ms  (target <= 50 ms: {'met' if full <= 0.050 else 'NOT met'})"
    )
    prom = prometheus_group_seconds(RULES)
    if prom is None:
        print("prometheus not installed (Debian package `prometheus`): no baseline")
    else:
        print(
            f"prometheus 10,000 `vector(N) > M` rules, rule_group_last_duration: {prom * 1000:.2f} ms"
        )
        print(f"per-rule ratio vigil full pass / prometheus: {full / prom:.2f}x")


def full_pass(rules: list[str], values: dict[str, Any], history: History) -> float:
    """The daemon's tick: Evaluator.run_group (expressions + state.step) over all rules,
    on values where the true rules have been firing for a while (no transitions)."""
    from engine.config.model import Rule, RuleGroup
    from engine.rules.evaluator import Evaluator, Snapshot

    group = RuleGroup(
        "bench",
        15.0,
        tuple(
            Rule(id=f"r{i}", group="bench", expr=r, compiled=compile_expr(r, names={"system"}))
            for i, r in enumerate(rules)
        ),
    )
    ev = Evaluator(history)
    mono = 1000.0
    # two passes first, so that firing rules are steady (no transitions in the timed passes)
    for _ in range(2):
        ev.run_group(group, Snapshot(values, frozenset(), NOW, mono))
        mono += 15
    times = []
    for _ in range(PASSES):
        t0 = time.perf_counter()
        out = ev.run_group(group, Snapshot(values, frozenset(), NOW, mono))
        times.append(time.perf_counter() - t0)
        assert not out, "the timed passes must have no transitions"
        mono += 15
    return statistics.median(times)


def prometheus_group_seconds(n: int) -> float | None:
    """Prometheus' own prometheus_rule_group_last_duration_seconds for n rules."""
    import shutil
    import socket
    import subprocess
    import tempfile
    import urllib.request

    binary = shutil.which("prometheus")
    if binary is None:
        return None
    tmp = tempfile.mkdtemp(prefix="vigil-bench-prom-")
    with open(f"{tmp}/rules.yml", "w") as f:
        f.write("groups:\n- name: bench\n  interval: 2s\n  rules:\n")
        for i in range(n):
            f.write(f"  - alert: r{i}\n    expr: vector({i % 100}) > {50 + i % 50}\n")
    with open(f"{tmp}/prometheus.yml", "w") as f:
        f.write("global: {evaluation_interval: 2s}\nrule_files: [rules.yml]\n")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [binary, f"--config.file={tmp}/prometheus.yml", f"--storage.tsdb.path={tmp}/data",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    seen: list[float] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(seen) < 5:
            time.sleep(2)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    text = r.read().decode()
            except OSError:
                continue
            for line in text.splitlines():
                if line.startswith("prometheus_rule_group_last_duration_seconds{"):
                    v = float(line.rsplit(" ", 1)[1])
                    if v > 0 and (not seen or v != seen[-1]):
                        seen.append(v)
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    return statistics.median(seen) if seen else None


class _Obj:
    """Dotted access for raw eval(): attributes over a dict, like our sandbox."""

    __slots__ = ("__dict__",)

    def __init__(self, d: dict[str, Any]) -> None:
        self.__dict__ = d


if __name__ == "__main__":
    main()
