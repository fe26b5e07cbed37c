"""The one time format vigil writes on the wire."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any


@functools.lru_cache(maxsize=16384)  # an alert's start: once per channel and notification
def iso(ts: float | None) -> str | None:
    """UTC ISO-8601 with milliseconds and Z, the one time format on the wire."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_epoch(v: Any) -> float | None:
    """Epoch seconds from a number, or from RFC 3339 / ISO-8601 text (a trailing Z
    allowed, naive means UTC: journals written before 13.18 hold numbers, later ones
    text); None for anything else, a bool included."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str):
        try:
            d = datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            return None
        return (d if d.tzinfo is not None else d.replace(tzinfo=UTC)).timestamp()
    return None
