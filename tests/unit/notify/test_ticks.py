"""A group's ticks (engine/notify/ticks.py), as Alertmanager's aggrGroup timer."""

from __future__ import annotations

from engine.notify.pipeline import Pipeline
from engine.notify.ticks import next_tick, repeat_tick
from tests.unit.notify.test_pipeline import T0, fire, fps, pipe, resolve, route, step


def test_next_tick_is_on_the_grid_and_after_the_last_flush() -> None:
    assert next_tick(10.0, 2.0, 13.5) == 14.0
    assert next_tick(10.0, 2.0, 14.0) == 14.0
    assert next_tick(10.0, 2.0, 14.0, after=14.0) == 16.0
    assert next_tick(10.0, 2.0, 3.0) == 10.0
    assert next_tick(10.0, 0.0, 13.5, after=12.0) == 13.5


def test_a_reminder_goes_on_the_first_tick_once_repeat_interval_passed() -> None:
    assert repeat_tick(2.0, 2.0, 2.0, 5.0) == 8.0  # 5s repeat, 2s ticks: every 6s
    assert repeat_tick(2.0, 2.0, 2.05, 4.0) == 8.0  # delivered a moment after its tick


def test_a_change_between_ticks_waits_for_the_next_one() -> None:
    p: Pipeline = pipe(route("ops", group_interval=60, repeat_interval=10_000))
    p.ingest(fire("a"), T0)
    [n] = step(p, T0)
    p.ingest(fire("b", T0 + 70), T0 + 70)  # more than group_interval after the send
    assert step(p, T0 + 70) == []
    assert p.next_deadline() == T0 + 120
    [n] = step(p, T0 + 120)
    assert fps(n) == [("a", "firing"), ("b", "firing")]
    p.ingest(resolve("b", T0 + 125), T0 + 125)
    assert step(p, T0 + 179) == []
    [n] = step(p, T0 + 180)
    assert fps(n) == [("a", "firing"), ("b", "resolved")]
