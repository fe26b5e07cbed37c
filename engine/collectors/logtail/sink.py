"""The hook between following files and reading what the lines mean.

The follower hands every batch of decoded lines to each `LineSink`, in file
order, from the reader thread. The parsing and detection layer (regexes, fields,
per-key windows) is a LineSink: it plugs in without changing the follower.

Contract for a sink
-------------------
- `lines(batch)` is called in the collector's reader thread, never on the event
  loop, one call at a time per collector: CPU work there does not delay ticks.
  It must not block on I/O and must return quickly (the batch is bounded by
  `batch_bytes`).
- `batch.lines` are valid text (invalid UTF-8 became U+FFFD), without their
  newline, each at most `max_line_bytes` long (longer lines are cut).
- Delivery is at least once: lines handed over after the last saved offset and
  before a crash are handed over again after the restart (at most one pass).
- `values()` is what the sink adds to the collector's sample (plain data); it
  runs in the reader thread at the end of every pass.
- An exception in a sink is logged and counted (`sink_errors`); it never stops
  the follower.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger("vigil")


@dataclass(frozen=True, slots=True)
class LineBatch:
    """Consecutive lines of one file."""

    path: str  # the path as followed (a glob's match), the name rules see
    start: int  # byte offset of the first line in the file
    end: int  # byte offset just past the last line's newline
    lines: list[str]


class LineSink(Protocol):
    def lines(self, batch: LineBatch) -> None: ...

    def values(self) -> Mapping[str, Any]: ...


class RecentLines:
    """The built-in sink: the newest lines of every file, at most `size` of them."""

    def __init__(self, size: int) -> None:
        self._recent: deque[tuple[str, str]] = deque(maxlen=size)
        self._size = size

    def lines(self, batch: LineBatch) -> None:
        if self._size == 0:
            return
        path = batch.path
        self._recent.extend((path, line) for line in batch.lines[-self._size :])

    def values(self) -> Mapping[str, Any]:
        return {"recent": [{"path": p, "line": line} for p, line in self._recent]}


def hand_over(sinks: Sequence[LineSink], batch: LineBatch, failed_before: int) -> int:
    """Give `batch` to every sink; how many raised (counted by the caller in
    `sink_errors`; the first failure of a source, `failed_before == 0`, is logged)."""
    failed = 0
    for sink in sinks:
        try:
            sink.lines(batch)
        except Exception:
            if failed_before + failed == 0:
                log.exception("logtail: a line sink failed (counted in sink_errors)")
            failed += 1
    return failed
