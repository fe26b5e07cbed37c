"""A report from a data_dir: read the journal, aggregate, compute; and render it.

Deterministic: the output is a function of the journal, the options and the
config's time intervals only. The period's end is the one clock reading, and it
is an option (`--until`); nothing else (no "generated at") enters the report.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from engine.config.model import TimeInterval
from engine.journal.format import format_ts
from engine.report.aggregate import aggregate
from engine.report.before import firing_throughout
from engine.report.metrics import Options, build
from engine.report.scan import scan
from engine.report.spans import inside, spans

__all__ = ["FORMATS", "make_report", "render"]

FORMATS = ("html", "md", "json", "csv")


def _member(
    intervals: Mapping[str, TimeInterval], name: str | None, start: float, end: float
) -> Callable[[float], bool] | None:
    if name is None:
        return None
    sp = spans(intervals[name], start, end)
    starts = [a for a, _ in sp]
    return lambda t: inside(sp, starts, t)


def make_report(
    data_dir: str,
    o: Options,
    intervals: Mapping[str, TimeInterval] | None = None,
    *,
    index: bool = True,
) -> dict[str, Any]:
    """The report (metrics.build's dict) of the journal in data_dir; `index`: read
    the rows the history index keeps where they match the journal (else every line:
    the same report, slower)."""
    iv = intervals or {}
    for name in (o.off_hours, o.sleep_hours, o.maintenance):
        if name is not None and name not in iv:
            known = ", ".join(sorted(iv)) or "none"
            raise KeyError(f"no time interval named {name!r} (known: {known})")
    length = o.until - o.since
    scan_start = o.since - length  # the previous period, for the change
    if o.maintenance is not None:
        o = replace(o, maintenance_spans=spans(iv[o.maintenance], o.since, o.until))
    agg = aggregate(
        scan(data_dir, format_ts(scan_start), format_ts(o.until), index=index),
        start=o.since,
        end=o.until,
        team_label=o.team_label,
        off_hours=_member(iv, o.off_hours, o.since, o.until),
        sleep_hours=_member(iv, o.sleep_hours, o.since, o.until),
        bucket=o.bucket,
    )
    agg.incidents += firing_throughout(
        data_dir, scan_start, o.until, agg.seen, o.team_label, index=index
    )
    return build(agg, o)


def render(report: Mapping[str, Any], fmt: str) -> bytes:
    """The report in `fmt` (one of FORMATS)."""
    if fmt == "json":
        from engine.report.render_json import render_json

        return render_json(report)
    if fmt == "md":
        from engine.report.render_md import render_md

        return render_md(report).encode()
    if fmt == "csv":
        from engine.report.render_csv import render_csv

        return render_csv(report).encode()
    if fmt == "html":
        from engine.report.render_html import render_html

        return render_html(report).encode()
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
