"""The journal events a report needs, as Rows (engine/journal/rows.py), oldest first.

Where the daemon's history follower has kept a segment's rows
(engine/journal/digest.py), they are read from there; the rest (what it has not
reached yet, a chunk that no longer matches the journal or fails its check, no
index at all) is read from the journal's lines. Both give the same rows, so the
report is the same either way, only faster with the index.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from engine.journal.digest import chain, listing, rows_dir
from engine.journal.files import list_segments, segment_edges
from engine.journal.rows import Row, blocks, epoch, rows

__all__ = ["Row", "scan"]


def scan(data_dir: str, start: str, end: str, *, index: bool = True) -> Iterator[Row]:
    """Every event the report reads with start <= ts < end (journal timestamps),
    oldest first. Raises JournalError on a line read whose checksum fails.
    `index`: use the rows the history follower kept (else read every line)."""
    lo, hi = start.encode(), end.encode()
    t_lo, t_hi = epoch(lo), epoch(hi)
    data_dir = os.fspath(data_dir)
    kept = listing(rows_dir(data_dir)) if index else {}
    for seg in list_segments(data_dir):
        if not seg.active:
            _first, _last, last_ts, _size = segment_edges(seg.path)
            if last_ts is not None and last_ts < start:
                continue  # wholly before the range
        try:
            f = open(seg.path, "rb")  # noqa: SIM115 - closed by the with below
        except FileNotFoundError:
            continue  # rotated or compacted under us; a report is a snapshot in time
        with f:
            at = 0
            for c in chain(f.fileno(), kept) if kept else ():
                if c.last < t_lo or c.first >= t_hi:
                    at = c.end  # none of its rows in range
                    continue
                got = c.rows()
                if got is None:
                    break  # damaged or gone: the journal's lines from here
                if t_lo <= c.first and c.last < t_hi:
                    yield from got
                else:
                    yield from (r for r in got if t_lo <= r[0] < t_hi)
                at = c.end
            for offset, block in blocks(seg.path, seg.active, at, f):
                yield from rows(seg.path, offset, block, lo, hi)
