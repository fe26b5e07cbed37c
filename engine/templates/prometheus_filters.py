"""The extra filters people expect from Prometheus templates: humanize,
humanize_duration, humanize_percentage and iso.

Separate from the sandbox (sandbox.py adds them to every environment): plain
formatting of one value, with no caps or budget of their own (the sandbox
wraps them like every other filter).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _humanize(v: Any) -> str:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return str(v)
    for unit in ("", "k", "M", "G", "T", "P"):
        if abs(x) < 1000:
            return f"{x:.4g}{unit}"
        x /= 1000
    return f"{x:.4g}E"


def _humanize_duration(v: Any) -> str:
    try:
        s = float(v)
    except (TypeError, ValueError):
        return str(v)
    if abs(s) < 60:
        return f"{s:.4g}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, s = divmod(s, size)
        if n:
            parts.append(f"{int(n)}{unit}")
    return "".join(parts)


def _humanize_percentage(v: Any) -> str:
    try:
        return f"{float(v) * 100:.4g}%"
    except (TypeError, ValueError):
        return str(v)


def _iso(v: Any) -> str:
    from engine.common.timefmt import iso

    try:
        return iso(float(v)) or ""
    except (TypeError, ValueError, OverflowError, OSError):
        return str(v)


EXTRA_FILTERS: dict[str, Callable[..., Any]] = {
    "humanize": _humanize,
    "humanize_duration": _humanize_duration,
    "humanize_percentage": _humanize_percentage,
    "iso": _iso,
}
