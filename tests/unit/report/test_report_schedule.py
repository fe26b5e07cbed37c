"""Scheduled reports: the `reports:` config (good and bad) and when each report is
due, sent and caught up, on an explicit clock (engine/report/schedule.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.config.build import ConfigLoader
from engine.config.model import ReportSchedule, TimeInterval, TimeRange
from engine.report.deliver import Scheduled, notifications
from engine.report.schedule import due_after, due_at_or_before, plan, send_time

CHANNELS = """channels:
  - {name: mail, type: email, smtp_host: 127.0.0.1, smtp_port: 2525, from: a@b.c, to: [x@y.z]}
  - {name: hook, type: webhook, url: http://127.0.0.1:9/x}
time_intervals:
  - {name: business, weekdays: [mon-fri], times: ["09:00-17:00"]}
"""


def load(tmp_path: Path, reports: str) -> tuple[object, list[str]]:
    (tmp_path / "rules").mkdir()
    (tmp_path / "channels").mkdir()
    (tmp_path / "channels" / "c.yaml").write_text(CHANNELS)
    (tmp_path / "vigil.yaml").write_text("rules: [rules]\nchannels: [channels]\n" + reports)
    r = ConfigLoader().load(str(tmp_path / "vigil.yaml"))
    return r.config, [p.format().replace(str(tmp_path) + "/", "") for p in r.problems]


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_good_reports_config(tmp_path: Path) -> None:
    config, problems = load(
        tmp_path,
        "reports:\n"
        "  - {name: ops, every: daily, at: '08:30', timezone: Europe/Paris, channels: [mail, hook]}\n"
        "  - {name: week, every: weekly, weekday: friday, during: business, channels: [hook], top: 3}\n"
        "  - {name: quick, every: 2s, channels: [hook]}\n",
    )
    assert problems == []
    ops, week, quick = config.reports  # type: ignore[attr-defined]
    assert (ops.period, ops.at, ops.timezone, ops.weekday, ops.calendar) == (
        86400.0, 510, "Europe/Paris", None, True,
    )  # fmt: skip
    assert ops.channels == ("mail", "hook")
    assert (week.period, week.weekday, week.during, week.top) == (604800.0, 4, "business", 3)
    assert (quick.period, quick.calendar) == (2.0, False)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            "{name: r, every: daily, channels: [mail, nope]}",
            "vigil.yaml:4:46: reports[0].channels[1]: unknown channel 'nope' (hook, mail)",
        ),
        (
            "{name: r, every: daily, at: '25:00', channels: [mail]}",
            "vigil.yaml:4:33: reports[0].at: expected a time of day HH:MM (08:30); got '25:00'",
        ),
        (
            "{name: r, every: daily, during: nights, channels: [mail]}",
            "vigil.yaml:4:37: reports[0].during: no time interval named 'nights' (business)",
        ),
        (
            "{name: r, every: daily, timezone: Mars/Base, channels: [mail]}",
            "vigil.yaml:4:39: reports[0].timezone: unknown time zone 'Mars/Base'",
        ),
        (
            "{name: r, every: 2s, at: '08:00', channels: [mail]}",
            "vigil.yaml:4:30: reports[0].at: at goes with every: daily or weekly only",
        ),
    ],
)
def test_bad_reports_config_is_one_line(tmp_path: Path, entry: str, expected: str) -> None:
    config, problems = load(tmp_path, f"reports:\n  - {entry}\n")
    assert config is None
    assert problems == [expected]


def test_bad_every_is_a_schema_problem(tmp_path: Path) -> None:
    config, problems = load(tmp_path, "reports:\n  - {name: r, every: monthly, channels: [mail]}\n")
    assert config is None
    assert len(problems) == 1 and problems[0].startswith("vigil.yaml:4:"), problems
    assert "every" in problems[0]


DAILY = ReportSchedule("d", 86400.0, ("mail",), at=8 * 60 + 30)
WEEKLY = ReportSchedule("w", 7 * 86400.0, ("mail",), at=9 * 60, weekday=0)
PARIS = ReportSchedule("p", 86400.0, ("mail",), at=8 * 60, timezone="Europe/Paris")
QUICK = ReportSchedule("q", 2.0, ("mail",), calendar=False)
BUSINESS = TimeInterval(
    "business", weekdays=frozenset(range(5)), times=(TimeRange(9 * 60, 17 * 60),)
)


def test_next_due_times() -> None:
    now = ts("2026-12-02T10:00:00")  # a Wednesday
    assert due_after(DAILY, now) == ts("2026-12-03T08:30:00")
    assert due_at_or_before(DAILY, now) == ts("2026-12-02T08:30:00")
    assert due_after(DAILY, ts("2026-12-02T08:30:00")) == ts("2026-12-03T08:30:00")
    assert due_at_or_before(DAILY, ts("2026-12-02T08:30:00")) == ts("2026-12-02T08:30:00")
    assert due_after(WEEKLY, now) == ts("2026-12-07T09:00:00")  # Monday
    assert due_at_or_before(WEEKLY, now) == ts("2026-11-30T09:00:00")
    # 08:00 in Paris is 07:00 UTC in winter, 06:00 UTC in summer
    assert due_after(PARIS, now) == ts("2026-12-03T07:00:00")
    assert due_after(PARIS, ts("2026-07-01T10:00:00")) == ts("2026-07-02T06:00:00")
    assert due_after(QUICK, 1001.5) == 1002.0 and due_at_or_before(QUICK, 1001.5) == 1000.0


def test_plan_waits_for_the_next_due_time() -> None:
    now = ts("2026-12-02T10:00:00")
    # never sent: nothing at start, the next due time
    assert plan(DAILY, now, None) == (ts("2026-12-03T08:30:00"), ts("2026-12-03T08:30:00"))
    # the last one sent is today's: the next is tomorrow's
    assert plan(DAILY, now, ts("2026-12-02T08:30:00"))[0] == ts("2026-12-03T08:30:00")


def test_catch_up_sends_the_latest_missed_report_once_at_start() -> None:
    now = ts("2026-12-02T10:00:00")
    # down since before yesterday's: only today's is sent, at once
    assert plan(DAILY, now, ts("2026-11-29T08:30:00")) == (ts("2026-12-02T08:30:00"), now)
    assert plan(WEEKLY, now, ts("2026-11-23T09:00:00")) == (ts("2026-11-30T09:00:00"), now)


def test_during_delays_a_due_time_to_the_interval() -> None:
    sat = ReportSchedule("s", 86400.0, ("mail",), at=0, during="business")
    # due Saturday 00:00: sent on Monday at 09:00, its period still the day before Saturday
    due = ts("2026-12-05T00:00:00")
    assert send_time(sat, due, BUSINESS) is None  # not within a day
    weekday = ts("2026-12-02T00:00:00")
    assert send_time(sat, weekday, BUSINESS) == ts("2026-12-02T09:00:00")
    # planned at 03:00 on the Wednesday: pending until 09:00 though never sent before
    now = ts("2026-12-02T03:00:00")
    assert plan(sat, now, None, BUSINESS) == (weekday, ts("2026-12-02T09:00:00"))
    # on a Friday evening: the Saturday and Sunday due times are skipped, Monday's kept
    fri = ts("2026-12-04T18:00:00")
    assert plan(sat, fri, weekday, BUSINESS) == (fri - 18 * 3600, fri)  # Friday's, missed
    assert plan(sat, fri, fri - 18 * 3600, BUSINESS) == (
        ts("2026-12-07T00:00:00"), ts("2026-12-07T09:00:00"),
    )  # fmt: skip


def test_email_gets_the_html_and_chat_the_summary() -> None:
    s = Scheduled("ops", 0.0, 86400.0, "<html>R</html>", ("vigil report a – b", "3 incidents"))
    mail, hook = notifications(s, {"mail": "email", "hook": "webhook"})
    assert mail.html == "<html>R</html>" and hook.html is None
    assert hook.title == "vigil report ops: a – b" and hook.body == "3 incidents\n"
    assert hook.as_dict()["kind"] == "report" and hook.as_dict()["body"] == "3 incidents\n"
    # the same report again: the same keys (a re-send is recognised)
    assert [n.key for n in notifications(s, {"mail": "email", "hook": "webhook"})] == [
        mail.key, hook.key,
    ]  # fmt: skip
