"""Reading the journal from where the history index stopped, without scanning for it.

engine/journal/reader.py's `iter_events(data_dir, since_seq)` finds its place by
reading the segment that holds `since_seq` from its start: fine once, but the
follower asks every second, and the active segment grows to 64 MiB. So the follower
keeps a cursor: the active segment's inode and the byte offset just past the last
line it read. While the active segment is the same file, a pass reads only the
lines written since. Otherwise (a rotation, the first pass) it reads through
iter_events once, then places the cursor by walking back from the active segment's
end (files.tail_start reads only the tail).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from engine.journal.files import ACTIVE, last_newline_end, tail_start
from engine.journal.lines import BadLine, Event, corrupt, line_prefix, open_line
from engine.journal.reader import iter_events


@dataclass(slots=True)
class Cursor:
    ino: int = -1
    offset: int = 0
    seq: int = -1  # the seq of the last line before `offset` (-1: not placed)


def events_after(data_dir: str, seq: int, cursor: Cursor) -> Iterator[Event]:
    """Events with seq > `seq`, oldest first; moves `cursor` along as they are taken."""
    path = os.path.join(data_dir, ACTIVE)
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed by the with below
    except FileNotFoundError:
        f = None
    if f is not None:
        with f:
            ino = os.fstat(f.fileno()).st_ino
            if cursor.ino == ino and cursor.seq == seq:
                yield from _read_from(f, path, cursor)
                return
    # the slow way, then place the cursor for the next pass
    cursor.seq = -1
    last = seq
    for ev in iter_events(data_dir, seq):
        last = ev["seq"]
        yield ev
    _place(path, last, cursor)


def _read_from(f: BinaryIO, path: str, cursor: Cursor) -> Iterator[Event]:
    f.seek(cursor.offset)
    data = f.read()
    cut = data.rfind(b"\n") + 1  # a line being written is left for the next pass
    at = cursor.offset
    for line in data[:cut].split(b"\n")[:-1]:
        start, at = at, at + len(line) + 1
        try:
            ev = open_line(line)
        except BadLine as e:
            cursor.seq = -1
            raise corrupt(path, start, e.reason) from None
        if ev["seq"] <= cursor.seq:
            cursor.seq = -1
            raise corrupt(path, start, f"seq {ev['seq']} does not follow {cursor.seq}")
        cursor.offset, cursor.seq = at, ev["seq"]
        yield ev


def _place(path: str, last: int, cursor: Cursor) -> None:
    """Point the cursor just after seq `last` in the active segment, if it is there to
    be found: a line after it must be `last + 1`, so that nothing written between the
    slow pass and now (in a segment rotated meanwhile) is skipped."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed by the with below
    except FileNotFoundError:
        return
    with f:
        st = os.fstat(f.fileno())
        end = last_newline_end(f, st.st_size)
        start, tail = tail_start(f, end, last)
        if start < end:
            f.seek(start)
            p = line_prefix(f.readline())
            if p is None or p[0] != last + 1:
                return
        elif tail is not None and tail != last:
            return
        cursor.ino, cursor.offset, cursor.seq = st.st_ino, start, last
