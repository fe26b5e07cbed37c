"""The incremental top-k of DetectSink.snapshot (engine/detect/ranking.py) lists
exactly what scoring every key lists: the same keys, scores and order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.detect.settings import parse
from engine.detect.sink import DetectSink

SETTINGS: dict[str, Any] = {
    "format": "nginx",
    "packs": ["xss", "traversal"],
    "window": "1m",
    "idle": "2m",
    "max_keys": 12,
    "max_reported": 4,
    "windows": {
        "n_30s": {"kind": "count", "window": "30s"},
        "nf_rate": {"kind": "rate", "window": "10s", "where": {"status": ["404"]}},
        "paths": {"kind": "distinct", "field": "path", "window": "20s"},
        "b": {"kind": "bucket", "capacity": 3, "leak": 0.5, "lines": "hit"},
    },
}
TARGETS = ("/", "/a", "/b", "/<script>", "/../../etc/passwd")


@dataclass(frozen=True)
class Batch:
    path: str
    start: int
    lines: list[str]


def web(ip: int, target: str, status: str) -> str:
    return (
        f'192.0.2.{ip} - - [07/Dec/2026:01:02:03 +0000] "GET {target} HTTP/1.1" {status} 1 "-" "x"'
    )


def full_top(s: DetectSink, now: float) -> list[tuple[str, tuple[float, ...]]]:
    """Score every key, best first, ties by key: what the ranking must agree with."""
    scored = [(s._score(key, now)[0], key) for key in s.table.keys]
    scored.sort(key=lambda e: (tuple(-x for x in e[0]), e[1]))
    return [(key, score) for score, key in scored[: s.settings.max_reported]]


line = st.tuples(st.integers(0, 20), st.sampled_from(TARGETS), st.sampled_from(["200", "404"]))
step = st.tuples(st.floats(0, 15), st.lists(line, max_size=12), st.booleans())


@settings(max_examples=300, deadline=None)
@given(st.lists(step, min_size=1, max_size=25), st.booleans())
def test_incremental_top_agrees_with_scoring_every_key(
    steps: list[tuple[float, list[tuple[int, str, str]], bool]], back: bool
) -> None:
    ranked = DetectSink(parse(SETTINGS))
    full = DetectSink(parse(SETTINGS))
    now = 1000.0
    for i, (dt, lines, snap) in enumerate(steps):
        # the clock may step back once (a bucket read earlier is higher)
        now = now - 3.0 if back and i == len(steps) // 2 else now + dt
        batch = Batch("a", 0, [web(*ln) for ln in lines])
        ranked.feed(batch.lines, now)
        full.feed(batch.lines, now)
        if snap or i == len(steps) - 1:
            got = ranked.snapshot(now)
            t = full.time(now)  # the sink's time: it does not go back with the clock
            full.table.expire(t)
            want = full_top(full, t)
            assert [el["ip"] for el in got["keys"]] == [key for key, _ in want]
            for el, (_, score) in zip(got["keys"], want, strict=True):
                assert sum(el["hits"].values()) == score[0]
                assert (el["n_30s"], el["nf_rate"], el["paths"], el["b"]) == score[1:]
            assert got["totals"]["keys_unlisted"] == len(full.table) - len(want)


def test_an_untouched_key_is_rescored_only_once_its_score_may_have_changed() -> None:
    from engine.detect.ranking import Ranking

    ranking: Ranking[None] = Ranking()
    keys = {"a": 3.0, "b": 2.0, "c": 1.0}
    until = {"a": 50.0, "b": float("inf"), "c": float("inf")}
    calls: list[str] = []

    def score(key: str) -> tuple[tuple[float, ...], None, float]:
        calls.append(key)
        return (keys[key],), None, until[key]

    ranking.dirty.update(keys)
    assert [k for k, _, _ in ranking.top(2, 10.0, keys, score)] == ["a", "b"]
    assert sorted(calls) == ["a", "b", "c"]
    calls.clear()
    assert [k for k, _, _ in ranking.top(2, 20.0, keys, score)] == ["a", "b"]
    assert calls == []  # nothing touched, nothing left a window: the last scores hold
    keys["a"] = 0.5  # a's oldest event leaves its window at 50
    assert [k for k, _, _ in ranking.top(2, 60.0, keys, score)] == ["b", "c"]
    assert calls == ["a"]
