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


def to_epoch(ts: Any) -> float | None:
    """Epoch seconds from a number or an ISO-8601 text (a trailing Z allowed); None otherwise."""
    if isinstance(ts, int | float):
        return float(ts)
    if isinstance(ts, str):
        try:
            return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None
