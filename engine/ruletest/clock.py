"""The simulated clock of `vigil test`: its constants and how its times are shown.

A leaf of engine/ruletest/: the loader, the simulation, the checks and the
results all read these, so they live below all of them (no circles)."""

from __future__ import annotations

from engine.common.durations import format_duration
from engine.notify.base import iso

# Simulated clocks, made so that a duration of k steps is reached on step k
# whatever rounding does (for: 600ms over 200ms steps fires on the third step):
#   mono(i) = MONO0 + i * interval * (1 + DRIFT): the state machine's timers see
#     each step a hair (a billionth) longer than the interval, which outweighs the
#     rounding of decimal durations and of the sums;
#   wall(i) = start + i * interval: the evaluation's `now`; every sample (a
#     collector's, and an `each` element's the evaluator records) is kept
#     SAMPLE_AGE before it (collected just before the evaluation, as in the
#     daemon), so a sample exactly one window old is out of the window.
# Times shown and compared are rounded to the microsecond (EPS).
MONO0 = 100.0
DRIFT = 1e-9
SAMPLE_AGE = 1e-6
EPOCH0 = 1767225600.0  # default start: 2026-01-01T00:00:00Z (a Thursday)
EPS = 1e-6
MAX_TEST_STEPS = 1_000_000  # steps one test may simulate


def offset(t: float | None) -> str:
    """Seconds since the start as a duration: 2m30s, 1.2s, 200ms."""
    if t is None:
        return "-"
    if 0 < t < 1:
        return f"{round(t * 1000, 3):g}ms"
    return format_duration(round(t, 6))


def iso_time(t: float | None) -> str:
    if t is None:
        return "-"
    text = iso(t) or "-"
    return text.replace(".000Z", "Z")
