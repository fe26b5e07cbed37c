"""How the API client commands print: JSON for --format json, tables for a
terminal, one aligned line per row for a pipe (engine/cli/tables.py), and the
small formatters of labels, matchers, values, marks and times they share with
`vigil dashboard` and `vigil bans`."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from engine.cli.tables import Rows


def dump(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


NO_WRAP = {"fingerprint", "id", "severity", "state", "value", "since", "starts", "until"}


def new_table(*columns: str) -> Rows:
    return Rows(*columns, no_wrap=frozenset(NO_WRAP))


def print_table(table: Rows, caption: str) -> None:
    table.show(caption)


def labels_text(labels: Any) -> str:
    if not isinstance(labels, dict):
        return ""
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def matchers_text(matchers: Any) -> str:
    out = []
    for m in matchers or []:
        neg = "!" if m.get("negate") else ""
        if "regex" in m:
            out.append(f"{m.get('label')}{neg or '='}~{m['regex']}")
        else:
            out.append(f"{m.get('label')}{neg}={m.get('value')}")
    return ", ".join(out)


def value_text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def marks_text(a: Mapping[str, Any]) -> str:
    marks = []
    ack = a.get("acknowledged")
    if ack:
        marks.append(f"acked by {ack.get('by')}")
    if a.get("silenced"):
        marks.append("silenced")
    if a.get("inhibited"):
        marks.append("inhibited")
    if a.get("flapping"):
        marks.append("flapping")
    if a.get("stale"):
        marks.append("stale")
    return ", ".join(marks)


def parse_time(ts: Any) -> datetime | None:
    if not isinstance(ts, str):
        return None
    try:
        return datetime.fromisoformat(ts)
    except ValueError:
        return None


def when_text(ts: Any) -> str:
    """A time from the API in the reader's local time zone."""
    dt = parse_time(ts)
    if dt is None:
        return "" if ts is None else str(ts)
    return dt.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def age_text(ts: Any, now: float) -> str:
    """Two units are enough to read an age: 45s, 12m3s, 5h12m, 3d4h."""
    dt = parse_time(ts)
    if dt is None:
        return ""
    s = max(0, int(now - dt.timestamp()))
    for big, small, size, sub in (("d", "h", 86400, 3600), ("h", "m", 3600, 60), ("m", "s", 60, 1)):
        if s >= size:
            rest = (s % size) // sub
            return f"{s // size}{big}" + (f"{rest}{small}" if rest else "")
    return f"{s}s"


def plain(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else str(v)
