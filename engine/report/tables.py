"""What the Markdown and HTML renderings share: the tables' columns and cells, and
durations in words a person reads (seconds stay seconds in JSON and CSV)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["GROUP_COLUMNS", "duration", "group_cells", "pct", "summary_lines"]

GROUP_COLUMNS = (
    "incidents",
    "open",
    "MTTA mean / median / p95",
    "MTTR mean / median / p95",
    "time firing",
    "actionable",
    "escalations",
    "notifications",
    "failed",
    "off-hours",
    "sleep-hours",
)


def duration(s: float | None) -> str:
    """`45s`, `12m 05s`, `3h 04m`, `2d 03h`; `–` for none."""
    if s is None:
        return "–"
    n = round(s)
    if n < 60:
        return f"{s:.0f}s" if s >= 1 or s == 0 else f"{s:.1f}s"
    if n < 3600:
        return f"{n // 60}m {n % 60:02d}s"
    if n < 86400:
        return f"{n // 3600}h {n % 3600 // 60:02d}m"
    return f"{n // 86400}d {n % 86400 // 3600:02d}h"


def _triple(st: Mapping[str, float] | None) -> str:
    if st is None:
        return "–"
    return f"{duration(st['mean'])} / {duration(st['median'])} / {duration(st['p95'])}"


def pct(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{x:.{digits}f}%"


def group_cells(row: Mapping[str, Any]) -> list[str]:
    """The cells of a rule/route/team row, in GROUP_COLUMNS' order."""
    rate = row["actionable_rate"]
    return [
        str(row["incidents"]),
        str(row["open"]),
        _triple(row["mtta"]),
        _triple(row["mttr"]),
        pct(row["time_firing_pct"], 2),
        "–" if rate is None else f"{100 * rate:.0f}%",
        str(row["escalations"]),
        str(row["notifications"]),
        str(row["notification_failures"]),
        str(row["off_hours"]),
        str(row["sleep_hours"]),
    ]


def summary_lines(report: Mapping[str, Any], top: int = 3) -> list[str]:
    """A few lines for a chat message: the period, the totals, the noisiest rules."""
    p, t = report["period"], report["totals"]
    rate = t["actionable_rate"]
    lines = [
        f"vigil report {p['since']} – {p['until']}",
        f"{t['incidents']} incidents ({t['open']} open), MTTA {_triple(t['mtta'])}, "
        f"MTTR {_triple(t['mttr'])}, actionable {'–' if rate is None else f'{100 * rate:.0f}%'}",
        f"{t['notifications']} notifications, {t['notification_failures']} failed, "
        f"{t['escalations']} escalations",
    ]
    for n in report["noisiest"][:top]:
        lines.append(f"noisy: {n['rule']} {n['incidents']} incidents ({n['change']:+d})")
    return lines
