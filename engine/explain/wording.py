"""How `vigil explain` words things: values, times, durations, labels, matchers and
one checked (sub-)expression, as short text. A leaf of the explain package: the
result's dataclasses, the text renderer and every part of the explanation word
values the same way, so they all read it from here and it imports none of them."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from engine.common import matchers
from engine.common.durations import format_duration
from engine.config.model import Matcher


def matchers_text(ms: Sequence[Matcher]) -> str:
    return ", ".join(matchers.to_text(m, quote=False) for m in ms)


def labels_text(labels: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}"


def check_line(source: str, outcome: str, shown: str, operands: Sequence[Sequence[str]]) -> str:
    if outcome == "no_data":
        return f"{source} → no data: {shown}"
    if outcome == "error":
        return f"{source} → error: {shown}"
    if outcome == "skipped":
        return f"{source} ({shown})"
    parts = [val if is_missing(val) else f"{src} = {val}" for src, val in operands]
    return f"{source} → {shown}" + (f" ({'; '.join(parts)})" if parts else "")


def is_missing(shown: str) -> bool:
    return " is missing" in shown or " has no value" in shown


def one_line(s: str) -> str:
    return " ".join(s.split()) if "\n" in s else s


def show_value(v: Any) -> str:
    if v is None or isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v) if v.bit_length() <= 64 else f"<int of {v.bit_length()} bits>"
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, str):
        return repr(v) if len(v) <= 60 else repr(v[:57]) + "..."
    if isinstance(v, list | tuple):
        return (
            f"<list of {len(v)}>" if len(v) > 5 else "[" + ", ".join(show_value(x) for x in v) + "]"
        )
    if isinstance(v, Mapping):
        return f"<map of {len(v)} keys>"
    return f"<{type(v).__name__}>"


def plain_value(v: Any) -> Any:
    if v is None or isinstance(v, bool | str):
        return v
    if isinstance(v, int):
        return v if v.bit_length() <= 64 else show_value(v)
    if isinstance(v, float):
        return v if math.isfinite(v) else str(v)
    return show_value(v)


def as_number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return float(v)
    return None


def parse_time(v: Any) -> float | None:
    if isinstance(v, str):
        try:
            d = datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            return None
        return (d if d.tzinfo else d.replace(tzinfo=UTC)).timestamp()
    return as_number(v)


def iso_time(t: float) -> str:
    try:
        return datetime.fromtimestamp(round(t), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return str(t)


def iso_or_none(t: float | None) -> str | None:
    return iso_time(t) if t is not None else None


def duration_text(seconds: float) -> str:
    return format_duration(round(seconds, 3))


def relative_time(t: float, now: float) -> str:
    d = t - now
    if abs(d) < 1:
        return "now"
    text = format_duration(round(abs(d)))
    return f"in {text}" if d > 0 else f"{text} ago"


def when_text(t: float | None, now: float) -> str:
    if t is None:
        return "an unknown time"
    return f"{iso_time(t)} ({relative_time(t, now)})"


# -- to_dict -------------------------------------------------------------------------------
