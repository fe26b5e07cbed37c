"""Writing a list of (epoch, event) into a real journal (engine/journal/ writer)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from engine.config.model import LogConfig
from engine.journal.journal import Journal


def write_journal(
    d: str, events: Iterable[tuple[float, dict[str, Any]]], segment_bytes: int | None = None
) -> None:
    """`events` in order of time, each stamped with its own time (appended to a
    journal already in `d`); `segment_bytes`: rotate segments at that size."""
    now = [0.0]
    log = LogConfig(fsync="never")
    if segment_bytes is not None:
        log = LogConfig(fsync="never", segment_bytes=segment_bytes)
    j = Journal(d, log, clock=lambda: now[0])
    j.open()
    try:
        for t, ev in sorted(events, key=lambda x: x[0]):
            now[0] = t
            j.append_sync([ev], durable=False)
    finally:
        j.close_sync()
