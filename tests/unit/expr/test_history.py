"""engine/expr/history.py: ring buffers and the queries behind the window functions."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from engine.expr.history import MAX_TREE_DEPTH, MAX_TREE_LEAVES, History, key_part

NOW = 1_800_000_000.0


def filled(key: str, points: list[tuple[float, float]], **kw: int) -> History:
    h = History(3600, **kw)
    for ts, v in points:
        h.record(key, ts, v)
    return h


def test_key_part_spells_steps_like_expressions() -> None:
    assert key_part("cpu_percent") == ".cpu_percent"
    assert key_part(0) == "[0]"
    assert key_part("in box") == "['in box']"
    assert key_part("9lives") == "['9lives']"


def test_record_keeps_order_replaces_same_timestamp_and_drops_older() -> None:
    h = filled("a", [(10, 1.0), (20, 2.0)])
    h.record("a", 20, 2.5)  # same time: a re-read replaces
    h.record("a", 15, 9.0)  # late sample: dropped
    assert h.samples("a", 100, 100) == [(10, 1.0), (20, 2.5)]
    assert h.latest("a") == (20, 2.5)
    assert h.latest("b") is None
    assert "a" in h and "b" not in h and len(h) == 1 and h.keys() == ["a"]


def test_window_is_left_open_right_closed() -> None:
    h = filled("a", [(NOW - 300, 1.0), (NOW - 299, 2.0), (NOW, 3.0), (NOW + 1, 100.0)])
    assert h.samples("a", NOW, 300) == [(NOW - 299, 2.0), (NOW, 3.0)]
    assert h.count("a", NOW, 300) == 2
    assert h.avg("a", NOW, 300) == 2.5
    assert h.sum("a", NOW, 300) == 5.0
    assert h.max("a", NOW, 300) == 3.0
    assert h.min("a", NOW, 300) == 2.0
    # "as of" an earlier time sees only what was there then
    assert h.samples("a", NOW - 299, 1) == [(NOW - 299, 2.0)]


def test_empty_window_answers_none_or_zero() -> None:
    h = filled("a", [(NOW - 1000, 1.0)])
    for q in (h.avg, h.sum, h.max, h.min, h.delta, h.rate):
        assert q("a", NOW, 60) is None
        assert q("missing", NOW, 60) is None
    assert h.count("a", NOW, 60) == 0
    assert h.changes("a", NOW, 60) == 0
    assert h.count("missing", NOW, 60) == 0
    assert h.samples("missing", NOW, 60) == []


def test_rate_handles_counter_reset_like_prometheus() -> None:
    # 0 -> 10 -> 20, restart, 5 -> 15: increase 10 + 10 + 5 + 10 = 35 over 40 s
    pts = [(NOW - 40, 0.0), (NOW - 30, 10.0), (NOW - 20, 20.0), (NOW - 10, 5.0), (NOW, 15.0)]
    h = filled("c", pts)
    assert h.rate("c", NOW, 60) == pytest.approx(35 / 40)
    assert h.delta("c", NOW, 60) == 15.0  # a gauge's change: no reset handling
    assert h.changes("c", NOW, 60) == 4


def test_rate_needs_two_samples_at_different_times() -> None:
    h = filled("c", [(NOW, 5.0)])
    assert h.rate("c", NOW, 60) is None
    assert h.delta("c", NOW, 60) is None


def test_changes_counts_value_changes_of_any_type() -> None:
    h = History(600)
    for i, v in enumerate(["ok", "ok", "down", "ok", "ok"]):
        h.record("api.status", NOW - 50 + i * 10, v)
    assert h.changes("api.status", NOW, 600) == 2


def test_cap_trims_oldest_in_chunks() -> None:
    h = History(10**9, max_samples_per_series=10)
    for i in range(1000):
        h.record("a", float(i), float(i))
    kept = h.samples("a", 1000, 10**9)
    assert 10 <= len(kept) <= 10 + 16  # cap plus the trimming slack
    assert kept[-1] == (999.0, 999.0)
    assert h.count("a", 999, 10) == 10


def test_prune_drops_old_samples_and_forgets_silent_series() -> None:
    h = History(60)
    for i in range(10):
        h.record("live", NOW - 90 + i * 10, float(i))
    h.record("gone", NOW - 120, 1.0)
    assert h.prune(NOW) == 1
    assert "gone" not in h
    assert [ts for ts, _ in h.samples("live", NOW, 10**6)] == [NOW - 50 + i * 10 for i in range(6)]
    h.clear()
    assert len(h) == 0


def test_record_tree_uses_expression_keys() -> None:
    h = History(60)
    n = h.record_tree(
        "system",
        NOW,
        {
            "cpu_percent": 3.5,
            "up": True,
            "name": "web-1",  # strings are not series
            "load": [0.5, 0.7],
            "net": {"eth0": {"rx": 10}},
            "odd key": 1,
            "nothing": None,
        },
    )
    assert n == 6
    assert sorted(h.keys()) == sorted(
        [
            "system.cpu_percent",
            "system.up",
            "system.load[0]",
            "system.load[1]",
            "system.net.eth0.rx",
            "system['odd key']",
        ]
    )
    assert h.latest("system.net.eth0.rx") == (NOW, 10)


def test_record_tree_caps_depth_and_leaves() -> None:
    h = History(60)
    deep: dict[str, object] = {"v": 1}
    for _ in range(MAX_TREE_DEPTH + 5):
        deep = {"d": deep}
    assert h.record_tree("x", NOW, deep) == 0
    assert h.record_tree("y", NOW, list(range(MAX_TREE_LEAVES * 2))) == MAX_TREE_LEAVES


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError):
        History(-1)
    with pytest.raises(ValueError):
        History(60, max_samples_per_series=1)


def test_the_daemon_records_only_collectors_a_window_reads(tmp_path: Path) -> None:
    """A collection of 10,000 values costs ~200 ms to record; a collector no
    window function reads is not recorded at all (and a reload that adds such a
    rule starts recording it)."""
    from engine.config.build import ConfigLoader
    from engine.daemon.app import App

    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "group: g\ninterval: 1m\nrules:\n"
        "  - {id: avg_high, expr: 'avg_over(fixed.limit, \"5m\") > 100'}\n"
        "  - {id: plain, expr: 'spare.n > 5'}\n"
    )
    (tmp_path / "vigil.yaml").write_text(
        "collectors:\n  - {name: app, type: push}\n"
        "  - {name: fixed, type: static, values: {limit: 10}}\n"
        "  - {name: spare, type: static, values: {n: 1}}\n"
        f"rules: [{rules}]\nchannels: []\ndata_dir: {tmp_path / 'data'}\n"
    )
    cfg = ConfigLoader().load(str(tmp_path / "vigil.yaml"))
    assert cfg.config is not None, cfg.problems
    app = App(cfg.config)
    assert app.collecting.recorded == {"fixed"}
    app.collecting.start(cfg.config)

    async def collect_all() -> None:
        await asyncio.gather(*(app.collect(n) for n in app.collectors))

    asyncio.run(collect_all())
    assert "fixed.limit" in app.history
    assert "spare.n" not in app.history and "app.load" not in app.history
