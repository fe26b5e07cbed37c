"""Lock-free readers of a data_dir: every event, the last few, or new ones as they come.

Separate from the journal: `vigil log`, `vigil explain` and the API read the log
beside a running daemon, without taking the lock or starting a writer.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Generator, Iterator
from typing import BinaryIO

from engine.errors import JournalError
from engine.journal.files import (
    ACTIVE,
    Segment,
    last_newline_end,
    list_segments,
    reverse_lines,
    segment_edges,
)
from engine.journal.lines import BadLine, Event, corrupt, line_prefix, open_line


def _read_segment(seg: Segment, since_seq: int, f: BinaryIO) -> Iterator[Event]:
    """Events with seq > since_seq from an open segment, checksums verified."""
    offset = 0
    prev = 0
    for raw in f:
        n = len(raw)
        if not raw.endswith(b"\n"):
            if seg.active:
                return  # a write in progress (or a torn tail start-up will cut)
            raise corrupt(seg.path, offset, "incomplete final line")
        line = raw[:-1]
        p = line_prefix(line)
        if p is not None and p[0] <= since_seq:
            offset += n
            continue  # before the range asked for: skip without parsing
        try:
            ev = open_line(line)
        except BadLine as e:
            raise corrupt(seg.path, offset, e.reason) from None
        if ev["seq"] <= prev:
            raise corrupt(seg.path, offset, f"seq {ev['seq']} does not follow {prev}")
        prev = ev["seq"]
        yield ev
        offset += n


def iter_events(
    data_dir: str | os.PathLike[str], since_seq: int = 0, *, since_ts: str | None = None
) -> Iterator[Event]:
    """Every event with seq > since_seq, oldest first, across all segments.

    Read-only and lock-free, so it works beside a running daemon. `since_ts`
    (a journal timestamp) lets whole segments that end before it be skipped;
    callers still filter single events by ts. Raises JournalError on damage.
    """
    d = os.fspath(data_dir)
    last = since_seq
    while True:
        segs = list_segments(d)
        seen = {s.path for s in segs}
        restart = False
        for i, seg in enumerate(segs):
            nxt = segs[i + 1] if i + 1 < len(segs) else None
            if nxt is not None and nxt.first_seq is not None and nxt.first_seq - 1 <= last:
                continue
            if since_ts is not None and not seg.active:
                _first, _last, last_ts, _size = segment_edges(seg.path)
                if last_ts is not None and last_ts < since_ts:
                    continue
            try:
                f = open(seg.path, "rb")  # noqa: SIM115 - closed by the with below
            except FileNotFoundError:
                restart = True  # rotated or compacted under us: list again
                break
            with f:
                if seg.active and _rotated_since(d, seen, last):
                    restart = True  # we may have opened the segment after the one we listed
                    break
                for ev in _read_segment(seg, last, f):
                    last = ev["seq"]
                    yield ev
        if not restart:
            return


def _rotated_since(data_dir: str, seen: set[str], last: int) -> bool:
    for seg in list_segments(data_dir):
        if not seg.active and seg.path not in seen and (seg.first_seq or 0) > last:
            return True
    return False


def _lines_backwards(d: str) -> Generator[tuple[str, int, bytes]]:
    """(segment path, offset, line) of every complete line, newest first."""
    for seg in reversed(list_segments(d)):
        try:
            f = open(seg.path, "rb")  # noqa: SIM115 - closed by the with below
        except FileNotFoundError:
            continue
        with f:
            size = os.fstat(f.fileno()).st_size
            end = last_newline_end(f, size)
            if end != size and not seg.active:
                raise corrupt(seg.path, end, "incomplete final line")
            for off, line in reverse_lines(f, end):
                yield seg.path, off, line


def _open(path: str, off: int, line: bytes) -> Event:
    try:
        return open_line(line)
    except BadLine as e:
        raise corrupt(path, off, e.reason) from None


def tail_events(data_dir: str | os.PathLike[str], n: int) -> list[Event]:
    """The last `n` events, oldest first; reads the files backwards, not whole."""
    out: list[Event] = []
    if n <= 0:
        return out
    with contextlib.closing(_lines_backwards(os.fspath(data_dir))) as lines:
        for path, off, line in lines:
            out.append(_open(path, off, line))
            if len(out) >= n:
                break
    out.reverse()
    return out


def tail_matching(
    data_dir: str | os.PathLike[str],
    n: int,
    *,
    needle: bytes,
    keep: Callable[[Event], bool],
    scan: int,
) -> list[Event]:
    """The last `n` events that `keep`, oldest first, among the journal's last `scan`
    lines: a bounded read backwards. Only lines holding `needle` are parsed."""
    out: list[Event] = []
    with contextlib.closing(_lines_backwards(os.fspath(data_dir))) as lines:
        for i, (path, off, line) in enumerate(lines):
            if i >= scan or len(out) >= n:
                break
            if needle in line:
                ev = _open(path, off, line)
                if keep(ev):
                    out.append(ev)
    out.reverse()
    return out


def follow_events(
    data_dir: str | os.PathLike[str],
    since_seq: int = 0,
    *,
    poll_interval: float = 0.5,
    stop: Callable[[], bool] | None = None,
) -> Iterator[Event]:
    """Events with seq > since_seq as they are written, following rotation.

    Yields what exists, then polls for more every `poll_interval` seconds;
    returns when `stop()` is true after a poll found nothing new.
    """
    d = os.fspath(data_dir)
    active = os.path.join(d, ACTIVE)
    last = since_seq
    f: BinaryIO | None = None
    ino = -1
    partial = b""
    try:
        while True:
            if f is None:
                # open first, then catch up from every file: a rotation between the
                # two lands in the catch-up, a later one in the file we hold
                try:
                    f = open(active, "rb")  # noqa: SIM115 - closed in finally/on rotation
                    ino = os.fstat(f.fileno()).st_ino
                    partial = b""
                except FileNotFoundError:
                    f = None
                for ev in iter_events(d, last):
                    last = ev["seq"]
                    yield ev
            got = False
            if f is not None:
                chunk = f.read()
                if chunk:
                    got = True
                    data = partial + chunk
                    cut = data.rfind(b"\n") + 1
                    partial = data[cut:]
                    for line in data[:cut].split(b"\n")[:-1]:
                        p = line_prefix(line)
                        if p is not None and p[0] <= last:
                            continue
                        try:
                            ev = open_line(line)
                        except BadLine as e:
                            raise JournalError(f"{active}: {e.reason}") from None
                        last = ev["seq"]
                        yield ev
            if got:
                continue
            try:
                moved = os.stat(active).st_ino != ino
            except FileNotFoundError:
                moved = True
            if moved and f is not None:
                # drain what the old file got before its rename, then switch
                rest = f.read()
                if rest:
                    f.seek(-len(rest), os.SEEK_CUR)
                    continue
                f.close()
                f = None
                continue
            if stop is not None and stop():
                return
            time.sleep(poll_interval)
    finally:
        if f is not None:
            f.close()
