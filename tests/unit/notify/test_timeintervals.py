"""Time intervals in their own zone, across daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, datetime

from engine.config.model import Route, TimeInterval, TimeRange
from engine.notify.timeintervals import active, any_active, muted

BUSINESS = TimeInterval(
    "business_hours",
    weekdays=frozenset(range(5)),
    times=(TimeRange(9 * 60, 18 * 60),),
    timezone="Europe/Berlin",
)


def utc(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


def test_last_sundays_of_2026_are_the_dst_days() -> None:
    assert datetime(2026, 3, 29).weekday() == 6
    assert datetime(2026, 10, 25).weekday() == 6


def test_business_hours_before_and_after_spring_forward() -> None:
    # Friday 27 March: CET, UTC+1
    assert not active(BUSINESS, utc(2026, 3, 27, 7, 59))
    assert active(BUSINESS, utc(2026, 3, 27, 8, 0))
    assert active(BUSINESS, utc(2026, 3, 27, 16, 59))
    assert not active(BUSINESS, utc(2026, 3, 27, 17, 0))
    # Monday 30 March: CEST, UTC+2 — the same local hours move an hour earlier in UTC
    assert not active(BUSINESS, utc(2026, 3, 30, 6, 59))
    assert active(BUSINESS, utc(2026, 3, 30, 7, 0))
    assert active(BUSINESS, utc(2026, 3, 30, 15, 59))
    assert not active(BUSINESS, utc(2026, 3, 30, 16, 0))


def test_business_hours_around_fall_back() -> None:
    assert active(BUSINESS, utc(2026, 10, 23, 7, 0))  # Friday, CEST
    assert not active(BUSINESS, utc(2026, 10, 23, 6, 59))
    assert active(BUSINESS, utc(2026, 10, 26, 8, 0))  # Monday, CET
    assert not active(BUSINESS, utc(2026, 10, 26, 7, 59))
    assert not active(BUSINESS, utc(2026, 10, 25, 10, 0))  # the Sunday itself


def test_skipped_hour_is_never_active_and_repeated_hour_twice() -> None:
    night = TimeInterval("night", times=(TimeRange(2 * 60, 3 * 60),), timezone="Europe/Berlin")
    spring = [utc(2026, 3, 28, 22, 0) + 60 * m for m in range(6 * 60)]  # 23:00..05:00 local
    assert not any(active(night, t) for t in spring)
    fall = [utc(2026, 10, 24, 22, 0) + 60 * m for m in range(6 * 60)]
    minutes = sum(active(night, t) for t in fall)
    assert minutes == 120  # 02:00-03:00 happens twice
    assert active(night, utc(2026, 10, 25, 0, 30)) and active(night, utc(2026, 10, 25, 1, 30))


def test_months_days_and_empty_criteria() -> None:
    always = TimeInterval("always")
    assert active(always, utc(2026, 1, 1))
    dec = TimeInterval("dec", months=frozenset({12}), days_of_month=frozenset({24, 25}))
    assert active(dec, utc(2026, 12, 24, 12))
    assert not active(dec, utc(2026, 12, 23, 12))
    assert not active(dec, utc(2026, 11, 24, 12))


def test_route_muting() -> None:
    intervals = {"business_hours": BUSINESS, "sunday": TimeInterval("sunday", frozenset({6}))}
    r_active = Route((), ("c",), active_time=("business_hours",))
    r_mute = Route((), ("c",), mute_time=("sunday",))
    monday_10 = utc(2026, 3, 30, 8, 0)
    sunday = utc(2026, 3, 29, 12, 0)
    assert not muted(r_active, intervals, monday_10)
    assert muted(r_active, intervals, sunday)
    assert muted(r_mute, intervals, sunday)
    assert not muted(r_mute, intervals, monday_10)
    assert not any_active(["unknown"], intervals, monday_10)
