"""The report as CSV: one row per rule, with a header row. Columns (durations in
seconds, empty when there is nothing to average):

    rule, incidents, open, acknowledged, actionable_rate,
    mtta_mean_s, mtta_median_s, mtta_p95_s, mttr_mean_s, mttr_median_s, mttr_p95_s,
    time_firing_pct, escalations, notifications, notification_failures,
    off_hours, sleep_hours
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

__all__ = ["COLUMNS", "render_csv"]

_HEAD = ("incidents", "open", "acknowledged", "actionable_rate")
_STATS = tuple(f"{k}_{q}_s" for k in ("mtta", "mttr") for q in ("mean", "median", "p95"))
_TAIL = (
    "time_firing_pct",
    "escalations",
    "notifications",
    "notification_failures",
    "off_hours",
    "sleep_hours",
)
COLUMNS = ("rule", *_HEAD, *_STATS, *_TAIL)


def _cell(v: Any) -> str:
    return "" if v is None else str(v)


def render_csv(report: Mapping[str, Any]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in report["rules"]:
        st = [(r[k] or {}).get(q) for k in ("mtta", "mttr") for q in ("mean", "median", "p95")]
        w.writerow(
            [_cell(v) for v in (r["name"], *(r[k] for k in _HEAD), *st, *(r[k] for k in _TAIL))]
        )
    return out.getvalue()
