"""`reports:` of vigil.yaml: scheduled reports (engine/report/schedule.py).

Built after the channel files, because a report names channels and a time
interval that are defined there.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.common.durations import parse_duration
from engine.config import model as m
from engine.config.load import Document, Path
from engine.errors import Problem

DAY = 86400.0
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _minutes(doc: Document, path: Path, text: str, problems: list[Problem]) -> int:
    mt = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", str(text).strip())
    if mt is None:
        problems.append(doc.problem(path, f"expected a time of day HH:MM (08:30); got {text!r}"))
        return 0
    return int(mt.group(1)) * 60 + int(mt.group(2))


def build_reports(
    doc: Document | None,
    channels: Collection[str],
    intervals: Collection[str],
    problems: list[Problem],
) -> tuple[m.ReportSchedule, ...]:
    if doc is None:
        return ()
    out: list[m.ReportSchedule] = []
    seen: set[str] = set()
    for i, r in enumerate(doc.data.get("reports", [])):
        if r is None:  # an entry with schema problems (partial.config_doc)
            continue
        path: Path = ("reports", i)
        before = len(problems)
        name = r["name"]
        if name in seen:
            problems.append(doc.problem((*path, "name"), f"duplicate report name {name!r}"))
        seen.add(name)
        every = r["every"]
        calendar = every in ("daily", "weekly")
        period = {"daily": DAY, "weekly": 7 * DAY}.get(every, 0.0)
        if not calendar:
            try:
                period = parse_duration(every)
            except ValueError as e:
                problems.append(doc.problem((*path, "every"), str(e)))
            if "at" in r or "weekday" in r:
                key = "at" if "at" in r else "weekday"
                problems.append(
                    doc.problem((*path, key), f"{key} goes with every: daily or weekly only")
                )
        if "weekday" in r and every == "daily":
            problems.append(doc.problem((*path, "weekday"), "weekday goes with every: weekly"))
        at = _minutes(doc, (*path, "at"), r["at"], problems) if "at" in r else 0
        weekday = WEEKDAYS.index(r.get("weekday", "monday")) if every == "weekly" else None
        tz = r.get("timezone", "UTC")
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(doc.problem((*path, "timezone"), f"unknown time zone {tz!r}"))
        during = r.get("during")
        if during is not None and during not in intervals:
            known = ", ".join(sorted(intervals)) or "none are defined"
            problems.append(
                doc.problem((*path, "during"), f"no time interval named {during!r} ({known})")
            )
        for j, c in enumerate(r["channels"]):
            if c not in channels:
                known = ", ".join(sorted(channels)) or "none are defined"
                problems.append(
                    doc.problem((*path, "channels", j), f"unknown channel {c!r} ({known})")
                )
        if len(problems) != before:
            continue
        line, col = doc.mark(path)
        out.append(
            m.ReportSchedule(
                name,
                period,
                tuple(r["channels"]),
                calendar,
                at,
                weekday,
                tz,
                during,
                int(r.get("top", 5)),
                m.Source(doc.file, line, col),
            )
        )
    return tuple(out)
