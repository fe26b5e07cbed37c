"""Per-key windows on an explicit clock: count, rate, distinct, leaky bucket, key caps."""

from __future__ import annotations

import pytest

from engine.detect.windows import (
    SLOTS,
    Bucket,
    Distinct,
    KeyTable,
    Slotted,
    WindowSpec,
    read,
    slot_of,
)


def count(w: Slotted, window: float, at: float) -> None:
    w.add(slot_of(window, at))


def test_count_over_a_sliding_window() -> None:
    w = Slotted(60.0)  # slots of 3 s
    for t in (0.0, 1.0, 10.0, 30.0, 59.0):
        count(w, 60.0, t)
    assert w.read(59.9) == 5
    assert w.read(62.9) == 3  # 0.0 and 1.0 are more than 60 s old
    # the window is the last SLOTS slots, the current one included: an event leaves
    # when its slot does, up to one slot (3 s) before it is 60 s old
    assert w.read(69.0) == 2  # 10.0 is in slot [9, 12), which left at 69
    assert w.read(200.0) == 0
    count(w, 60.0, 200.0)
    assert w.read(200.0) == 1


def test_count_memory_is_bounded_under_a_flood() -> None:
    w = Slotted(10.0)
    for i in range(100_000):
        count(w, 10.0, i / 1000)  # 1000 events/s for 100 s
    assert len(w.slots) <= SLOTS + 1
    assert 9_000 <= w.read(100.0) <= 10_500  # about the last 10 s, exact to one slot


def test_rate_is_count_per_second() -> None:
    spec = WindowSpec("rps", "rate", window=60.0)
    w = Slotted(60.0)
    for i in range(120):
        count(w, 60.0, 100.0 + i * 0.25)  # 4 per second for 30 s
    assert read(spec, w, 130.0) == {"rps": 2.0}


def test_distinct_values_expire_and_saturate() -> None:
    d = Distinct(window=60.0, cap=3)
    d.add(0.0, "/a")
    d.add(10.0, "/b")
    d.add(20.0, "/a")  # seen again: last seen moves to 20
    assert d.read(20.0) == 2
    assert d.read(65.0) == 2  # /b is 55 s old
    assert d.read(75.0) == 1  # /b (10) left, /a (20) stays
    d.add(76.0, "/c")
    d.add(77.0, "/d")
    d.add(78.0, "/e")  # over the cap: the oldest is forgotten
    assert d.read(78.0) == 3
    assert hash("/a") not in d.seen


def test_leaky_bucket_fills_and_drains() -> None:
    spec = WindowSpec("probes", "bucket", capacity=5.0, leak=0.5)
    b = Bucket(0.5)
    for i in range(5):
        b.add(100.0 + i * 0.1)
    v = read(spec, b, 100.4)
    assert v["probes"] == pytest.approx(5 - 0.5 * 0.4, abs=1e-3)
    assert v["probes_full"] is False
    b.add(100.5)
    assert read(spec, b, 100.5)["probes_full"] is True
    assert read(spec, b, 104.0)["probes_full"] is False  # drained below capacity: resolves
    assert read(spec, b, 1000.0)["probes"] == 0.0  # never below zero
    b.add(1000.0)
    assert read(spec, b, 1000.0)["probes"] == 1.0


def test_key_table_drops_least_recently_seen_and_counts_it() -> None:
    t = KeyTable((), max_keys=3, idle=600.0)
    for i, key in enumerate(("a", "b", "c")):
        t.touch(key, float(i))
    t.touch("a", 3.0)  # a is fresh again
    t.touch("d", 4.0)  # over the cap: b (least recently seen) goes
    assert [k for k, _ in t] == ["c", "a", "d"]
    assert t.dropped == 1


def test_idle_keys_expire_and_are_counted() -> None:
    t = KeyTable((WindowSpec("n", "count", window=60.0),), max_keys=10, idle=100.0)
    t.touch("old", 0.0)
    t.touch("new", 150.0)
    t.expire(150.0)
    assert [k for k, _ in t] == ["new"]
    assert t.expired == 1
    assert len(t) == 1


def test_each_key_gets_its_own_windows() -> None:
    specs = (WindowSpec("n", "count", window=60.0), WindowSpec("u", "distinct", 60.0, "user"))
    t = KeyTable(specs, max_keys=10, idle=100.0)
    a = t.touch("a", 0.0)
    a.windows[0].add(slot_of(60.0, 0.0))
    a.windows[1].add(0.0, "root")
    b = t.touch("b", 0.0)
    assert read(specs[0], a.windows[0], 1.0) == {"n": 1}
    assert read(specs[0], b.windows[0], 1.0) == {"n": 0}
    assert read(specs[1], a.windows[1], 1.0) == {"u": 1}
