"""14.E.15: the expression sandbox's growth limits hold for every value.

Collectors hand out read-only list and dict subclasses (FrozenList,
FrozenDict); the limits used to test `type(x) in (str, list, tuple)`, so
`fixed.lst * 100000000 == 1` passed and `vigil run --once` reached 17 GB.
Folded constants were not bounded as a whole: `[[0]*99999, ...]` in 3.6 KB of
source kept ~290 MB per compiled rule.

Every attack runs in a child process capped by RLIMIT_AS (sandbox_bounded.py),
so a regression fails the test with MemoryError instead of exhausting the host,
and each asserts the memory the attack allocated (tracemalloc peak).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.adversarial.sandbox_bounded import limit_memory, run_bounded

VIGIL = str(Path(sys.executable).parent / "vigil")
PEAK = 8 << 20  # bytes an attack may allocate before it is refused

# Evaluated on values from the real static and push collectors (FrozenList,
# FrozenDict) and, through `each`, as `it`.
RUNTIME_ATTACKS: list[tuple[str, str]] = [
    ("fixed.lst * 100000000 == 1", "the result would be longer than 100000"),
    ("fixed.lst * fixed.n", "the result would be longer than 100000"),
    ("fixed.n * fixed.lst", "the result would be longer than 100000"),
    ("fixed.pair * 100000000", "the result would be longer than 100000"),
    ("fixed.s * fixed.n", "the result would be longer than 100000"),
    ("fixed.many + fixed.many", "the result would be longer than 100000"),
    ("fixed.many + [1] * 50000", "the result would be longer than 100000"),
    ("fixed.nested * 50000", "repeating a list that holds"),
    ("fixed.dicts * 50000", "repeating a list that holds"),
    ("[fixed.lst] * 50000", "repeating a list that holds"),
    ("fixed.big ** fixed.big", "operands are limited to 4000000"),
    ("fixed.b ** fixed.b", "would have more than 32768 bits"),
    ("1 << fixed.shift", "shifts are limited to 10000"),
    ("fixed.big >> fixed.shift", "shifts are limited to 10000"),
    ("biz.lst * 100000000", "the result would be longer than 100000"),
    ("biz.nested * 50000", "repeating a list that holds"),
    ("it.lst * 100000000", "the result would be longer than 100000"),
]


def test_limits_hold_for_collector_values() -> None:
    results = run_bounded(
        f"""
        import asyncio
        from engine.collectors.push import PushCollector
        from engine.collectors.static import StaticCollector
        from engine.config.model import CollectorConfig, frozen_map
        from engine.errors import ExprError
        from engine.expr.compiler import compile_expr
        from engine.expr.scope import EvalScope

        data = {{
            "lst": [1, 2], "pair": [1, 2], "n": 100000000, "s": "ab",
            "many": list(range(60000)), "nested": [[1], [2]], "dicts": [{{"a": 1}}],
            "big": 2**63, "b": 1999999, "shift": 25000,
        }}
        static = StaticCollector.from_config(
            CollectorConfig("fixed", "static", None, 5.0, frozen_map({{"values": data}})))
        push = PushCollector.from_config(CollectorConfig("biz", "push", None, 5.0, frozen_map({{}})))
        push.push({{"lst": [1, 2], "nested": [[1], [2]]}}, now=0.0)
        values = {{
            "fixed": asyncio.run(static.collect(0.0)),
            "biz": asyncio.run(push.collect(0.0)),
        }}
        assert type(values["fixed"]["lst"]) is not list  # the subclass under attack
        scope = EvalScope(values=values, now=0.0).for_element(values["fixed"], "k")
        out = {{}}
        for source, _ in {RUNTIME_ATTACKS!r}:
            expr = compile_expr(source, names={{"fixed", "biz", "it"}})
            tracemalloc.start()
            try:
                expr.evaluate(scope)
                message = None
            except ExprError as e:
                message = e.message
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            out[source] = [message, peak]
        print(json.dumps(out))
        """
    )
    failures = []
    for source, expected in RUNTIME_ATTACKS:
        message, peak = results[source]
        if message is None or expected not in message or "refused" not in message:
            failures.append(f"{source}: {message!r}")
        elif peak > PEAK:
            failures.append(f"{source}: allocated {peak} bytes before refusing")
    assert not failures, failures


def bomb(n: int = 330, item: str = "[0]*99999") -> str:
    return "fixed.q != [" + ", ".join([item] * n) + "]"


FOLD_BOMBS: list[str] = [
    bomb(),  # the reported one: 3.6 KB of source
    bomb(2),  # two inner lists: 200,000 elements
    bomb(200, "'ab'*49999"),
    "fixed.q in {1: [0]*99999, 2: [0]*99999}",
    "fixed.q == ('x'*60000, 'y'*60000)",
    "fixed.q == ([0]*60000)[1:] + [1] * 50000",
    "len([0]*99999) + len([0]*99999) > fixed.q",
]


def test_folded_constants_are_bounded_before_they_are_built() -> None:
    assert len(FOLD_BOMBS[0]) < 3700
    results = run_bounded(
        f"""
        from engine.errors import ExprError
        from engine.expr.compiler import compile_expr

        out = {{}}
        for source in {FOLD_BOMBS!r}:
            tracemalloc.start()
            try:
                expr = compile_expr(source, names={{"fixed"}})
                message, col = None, None
            except ExprError as e:
                message, col = e.message, e.col
            now, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            out[source] = [message, col, now, peak]
        print(json.dumps(out))
        """
    )
    failures = []
    for source in FOLD_BOMBS:
        message, col, kept, peak = results[source]
        if message is None or "refused: the constants of this expression" not in message:
            failures.append(f"{source[:50]}: {message!r} (kept {kept} bytes)")
        elif peak > PEAK or col is None:
            failures.append(f"{source[:50]}: peak {peak} bytes, col {col}")
    assert not failures, failures


def test_sensible_constants_still_fold() -> None:
    results = run_bounded(
        """
        from engine.expr.compiler import compile_expr
        from engine.expr.scope import EvalScope

        scope = EvalScope(values={"app": {"q": "b"}}, now=0.0)
        out = [
            compile_expr(s, names={"app"}).evaluate(scope)
            for s in ("'-' * 80 + app.q", "app.q in ['a', 'b'] * 10", "len([0] * 99999)")
        ]
        print(json.dumps(out))
        """
    )
    assert results == ["-" * 80 + "b", True, 99999]


def _config(root: Path, rules: str) -> Path:
    (root / "rules").mkdir()
    (root / "channels").mkdir()
    (root / "rules" / "r.yaml").write_text(rules)
    cfg = root / "vigil.yaml"
    cfg.write_text(
        "rules: [rules]\nchannels: [channels]\ndata_dir: data\ncollectors:\n"
        "  - {name: fixed, type: static, values: {lst: [1, 2], q: 1}}\n"
    )
    return cfg


def _vigil(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [VIGIL, *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit_memory,
        env={**os.environ, "COLUMNS": "400"},  # one table row per rule
    )


def test_run_once_refuses_repeating_a_static_list(tmp_path: Path) -> None:
    cfg = _config(
        tmp_path,
        "group: g\ninterval: 10s\nrules:\n  - id: rep\n    expr: fixed.lst * 100000000 == 1\n",
    )
    assert _vigil(tmp_path, "validate", "-c", cfg.name).returncode == 0
    p = _vigil(tmp_path, "run", "--once", "-c", cfg.name)
    assert p.returncode == 0, p.stderr[-2000:]
    out = p.stdout
    assert "refused: the result would be longer than" in out, out
    assert "MemoryError" not in out


def test_validate_refuses_fold_bombs_with_their_place(tmp_path: Path) -> None:
    rules: list[str] = []
    for i in range(4):  # four of them took `vigil validate` to 1.1 GB
        rules.append(f'  - id: bomb{i}\n    expr: "{bomb()}"\n')
    cfg = _config(tmp_path, "group: g\ninterval: 10s\nrules:\n" + "".join(rules))
    p = _vigil(tmp_path, "validate", "-c", cfg.name)
    assert p.returncode == 1
    lines = [ln for ln in (p.stdout + p.stderr).splitlines() if "refused: the constants" in ln]
    # column 35: the second inner list, the one that goes over the budget
    expected: list[Any] = [
        f"rules/r.yaml:{5 + 2 * i}:35: rules[{i}].expr: expression: refused: the constants"
        for i in range(4)
    ]
    assert [ln.split(" of this")[0] for ln in lines] == expected, p.stdout + p.stderr
    assert "Traceback" not in p.stderr


def test_subclass_lists_are_lists_for_reading() -> None:
    # The same subclass used to be refused where a list is read: subscripts, min().
    results = run_bounded(
        """
        from engine.collectors.base import freeze
        from engine.expr.compiler import compile_expr
        from engine.expr.scope import EvalScope

        values = {"fixed": freeze({"lst": [3, 1, 2], "d": {"a": [5]}})}
        scope = EvalScope(values=values, now=0.0)
        out = [
            compile_expr(s, names={"fixed"}).evaluate(scope)
            for s in ("fixed.lst[0]", "min(fixed.lst)", "fixed.d.a[0]", "fixed.lst[1:]")
        ]
        print(json.dumps(out))
        """
    )
    assert results == [3, 1, 5, [1, 2]]
