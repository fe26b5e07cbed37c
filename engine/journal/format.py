"""The journal's format version and timestamps: what readers and `vigil test`
need without the journal itself (which brings asyncio and threads along)."""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime

FORMAT_VERSION = 1


@functools.lru_cache(maxsize=8)
def _second(sec: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))


def format_ts(t: float) -> str:
    """UTC ISO-8601 with milliseconds: 2026-11-22T20:00:00.123Z."""
    sec, ms = divmod(round(t * 1000), 1000)
    return f"{_second(sec)}.{ms:03d}Z"


def parse_ts(ts: str) -> float:
    """Seconds since the epoch for a journal timestamp (any ISO-8601; naive means UTC)."""
    d = datetime.fromisoformat(ts)
    if d.tzinfo is None:
        d = d.replace(tzinfo=UTC)
    return d.timestamp()
