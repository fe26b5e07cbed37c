"""Writing a list of (epoch, event) into a real journal (engine/journal/ writer)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from engine.config.model import LogConfig
from engine.journal.journal import Journal


def write_journal(d: str, events: Iterable[tuple[float, dict[str, Any]]]) -> None:
    """`events` in order of time, each stamped with its own time."""
    now = [0.0]
    j = Journal(d, LogConfig(fsync="never"), clock=lambda: now[0])
    j.open()
    try:
        for t, ev in sorted(events, key=lambda x: x[0]):
            now[0] = t
            j.append_sync([ev], durable=False)
    finally:
        j.close_sync()
