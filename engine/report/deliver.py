"""Scheduled reports go out (`reports:` of vigil.yaml): build the report of a due
time's period off the event loop, make one notification per channel, send each
through the daemon's channels, journal `report_sent`.

Email gets the whole HTML report as its HTML part, with the summary as its text
part; every other channel gets the summary (the period, the totals, the top
noisiest rules) as title and body. The content is a function of the journal and
the due time only, and so is each notification's key (a re-send carries the same
Idempotency-Key).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.common.records import JournalEvent, ReportSentEvent
from engine.config.model import Config, ReportSchedule
from engine.notify.base import Notification
from engine.report.schedule import plan

__all__ = ["ReportRunner", "Scheduled", "http_rules", "make_scheduled", "notifications"]

log = logging.getLogger("vigil")

DAY = 86400.0
# the time intervals `vigil report` takes by these names when they exist
DEFAULT_INTERVALS = ("off_hours", "sleep_hours", "maintenance")


def http_rules(config: Config) -> tuple[str, ...]:
    """The rules reading an http collector: their alerts mean a target is down."""
    http = {c.name for c in config.collectors if c.type == "http"}
    return tuple(sorted(r.id for r in config.rules() if http & set(r.compiled.names)))


@dataclass(frozen=True, slots=True)
class Scheduled:
    """A built scheduled report: its period, the HTML and the summary lines."""

    name: str
    since: float
    due: float
    html: str
    lines: tuple[str, ...]


def make_scheduled(config: Config, s: ReportSchedule, due: float) -> Scheduled:
    """The report of [due - period, due) (blocking: reads the journal)."""
    # the report's modules load in the thread that builds it, not at the daemon's start
    from engine.report.build import make_report
    from engine.report.metrics import Options
    from engine.report.render_html import render_html
    from engine.report.tables import summary_lines

    since = due - s.period
    iv = {i.name: i for i in config.time_intervals}
    known = {k: (k if k in iv else None) for k in DEFAULT_INTERVALS}
    o = Options(
        since=since,
        until=due,
        top=s.top,
        bucket=3600.0 if s.period <= 2 * DAY else DAY,
        off_hours=known["off_hours"],
        sleep_hours=known["sleep_hours"],
        maintenance=known["maintenance"],
        availability_rules=http_rules(config),
        availability_source="rules reading an http collector",
    )
    report = make_report(config.data_dir, o, iv)
    return Scheduled(s.name, since, due, render_html(report), tuple(summary_lines(report, s.top)))


def notifications(sched: Scheduled, channels: Mapping[str, str]) -> list[Notification]:
    """One notification per channel ({name: type}): the HTML report for email."""
    title = f"vigil report {sched.name}: {sched.lines[0].removeprefix('vigil report ')}"
    body = "\n".join(sched.lines[1:]) + "\n"
    out = []
    for name, type_ in channels.items():
        key = hashlib.sha256(f"report|{sched.name}|{sched.due!r}|{name}".encode()).hexdigest()
        out.append(
            Notification(
                channel=name,
                group_key=f"report|{sched.name}",
                status="resolved",
                alerts=(),
                key=key,
                title=title,
                body=body,
                html=sched.html if type_ == "email" else None,
                kind="report",
                extra={"report": sched.name, "since": sched.since, "until": sched.due},
            )
        )
    return out


Send = Callable[[Notification], Awaitable[tuple[bool, str | None]]]
Emit = Callable[[list[JournalEvent]], Awaitable[Any]]


class ReportRunner:
    """Sends each schedule's reports when due: `next(name)` says when, `run(name)`
    builds (in a thread) and sends the one due then. `last` holds the due time of
    each schedule's last report sent (the journal's state, `reports`)."""

    def __init__(
        self, config: Config, send: Send, emit: Emit, wall: Callable[[], float],
        last: Mapping[str, float] | None = None,
    ) -> None:  # fmt: skip
        self.config = config
        self.send = send
        self.emit = emit
        self.wall = wall
        self.last: dict[str, float] = dict(last or {})

    def schedules(self) -> dict[str, ReportSchedule]:
        return {s.name: s for s in self.config.reports}

    def next(self, name: str) -> tuple[float, float] | None:
        """(due, when) of the schedule's next report; None: never."""
        s = self.schedules().get(name)
        if s is None:
            return None
        iv = {i.name: i for i in self.config.time_intervals}
        due, when = plan(s, self.wall(), self.last.get(name), iv.get(s.during or ""))
        return None if math.isinf(when) else (due, when)

    async def run(self, name: str, due: float) -> ReportSentEvent | None:
        s = self.schedules().get(name)
        if s is None or self.last.get(name, -math.inf) >= due:
            return None
        self.last[name] = due  # not twice, even when a channel fails
        try:
            # a report over a big journal takes seconds: not on the loop
            sched = await asyncio.to_thread(make_scheduled, self.config, s, due)
        except Exception as e:  # noqa: BLE001 - a report that cannot be built must not stop the daemon
            log.error("report %s: could not build the report due at %s: %s", name, due, e)
            return None
        types = {c.name: c.type for c in self.config.channels if c.name in s.channels}
        outcomes = await asyncio.gather(*(self.send(n) for n in notifications(sched, types)))
        sent = [n for n, (ok, _) in zip(types, outcomes, strict=True) if ok]
        failed = [n for n in types if n not in sent]
        for n, (ok, err) in zip(types, outcomes, strict=True):
            if not ok:
                log.warning("report %s: channel %s failed: %s", name, n, err)
        ev: ReportSentEvent = {
            "event": "report_sent",
            "report": name,
            "due": due,
            "since": sched.since,
            "sent": sent,
            "failed": failed,
        }
        await self.emit([ev])
        return ev
