"""The journal's files in data_dir: their names, segments in seq order, and the
low-level reads and writes every part of the journal shares.

Files in ``data_dir``::

    alerts.jsonl                       the active segment, appended to
    alerts-<first seq, 12 digits>.jsonl  rotated segments, oldest first
    snapshot-<seq, 12 digits>.json     folded state up to and including <seq>
    quarantine-<UTC stamp>.jsonl       damaged lines moved aside by repair()
    lock                               flock()ed by the one process using the dir; holds its PID

Separate from the journal so that the lock-free readers and the offline tools
find segments and read their ends without the writer (asyncio, threads).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from engine.errors import JournalError
from engine.journal.lines import line_prefix

ACTIVE = "alerts.jsonl"
FILE_MODE = 0o640

_SEGMENT_RE = re.compile(r"alerts-(\d{12,})\.jsonl\Z")
_SNAPSHOT_RE = re.compile(r"snapshot-(\d{12,})\.json\Z")
_BLOCK = 1 << 16


@dataclass(frozen=True, slots=True)
class Segment:
    path: str
    first_seq: int | None  # from the file name; None for the active segment

    @property
    def active(self) -> bool:
        return self.first_seq is None


def list_segments(data_dir: str) -> list[Segment]:
    """Rotated segments by first seq, then the active one if it exists."""
    try:
        names = os.listdir(data_dir)
    except FileNotFoundError:
        raise JournalError(f"{data_dir}: no such directory; is data_dir right?") from None
    rotated = sorted((int(m.group(1)), n) for n in names if (m := _SEGMENT_RE.match(n)))
    out = [Segment(os.path.join(data_dir, n), first) for first, n in rotated]
    if ACTIVE in names:
        out.append(Segment(os.path.join(data_dir, ACTIVE), None))
    return out


def snapshot_files(data_dir: str) -> list[tuple[int, str]]:
    """(seq, path) of every snapshot, newest first."""
    names = os.listdir(data_dir)
    found = [(int(m.group(1)), n) for n in names if (m := _SNAPSHOT_RE.match(n))]
    return [(seq, os.path.join(data_dir, n)) for seq, n in sorted(found, reverse=True)]


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_file(path: str, data: bytes, *, sync: bool = True) -> None:
    """Write `path` whole via a temporary file and rename, so readers see old or new."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        write_all(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if sync:
        fsync_dir(os.path.dirname(path) or ".")


def reverse_lines(f: BinaryIO, end: int) -> Iterator[tuple[int, bytes]]:
    """(offset, line without newline) of each line before `end`, last first.

    `end` must be 0 or just after a newline. Reads backwards in blocks, so the
    cost is the size of the part consumed, not of the file.
    """
    buf_start, buf = end, b""
    line_end = end  # just past the newline of the next line to yield
    block = _BLOCK
    while line_end > 0:
        nl = buf.rfind(b"\n", 0, max(line_end - 1 - buf_start, 0))
        if nl < 0 and buf_start > 0:
            n = min(block, buf_start)
            block = min(block * 2, 1 << 24)  # long lines: keep refills linear
            buf_start -= n
            f.seek(buf_start)
            buf = f.read(n) + buf[: line_end - buf_start - n]
            continue
        start = buf_start + nl + 1
        yield start, buf[start - buf_start : line_end - 1 - buf_start]
        line_end = start


def last_newline_end(f: BinaryIO, size: int) -> int:
    """Offset just past the last newline before `size` (0 if there is none)."""
    pos = size
    while pos > 0:
        n = min(_BLOCK, pos)
        pos -= n
        f.seek(pos)
        i = f.read(n).rfind(b"\n")
        if i >= 0:
            return pos + i + 1
    return 0


def segment_edges(path: str) -> tuple[int | None, int | None, str | None, int]:
    """(first seq, last seq, last ts, size) of a segment, read from its ends only."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below; FileNotFoundError handled by caller
    except FileNotFoundError:
        return None, None, None, 0
    with f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(256)
        p = line_prefix(head)
        first = p[0] if p else None
        end = last_newline_end(f, size)
        for _off, line in reverse_lines(f, end):
            q = line_prefix(line)
            if q is not None:
                return first, q[0], q[1], size
            break
        return first, None, None, size


def tail_start(f: BinaryIO, end: int, after_seq: int) -> tuple[int, int | None]:
    """(offset of the first line with seq > after_seq, seq of the last line).

    Walks back from the end, so only the tail is read. A line we cannot place
    stops the walk there: the forward pass then reports it with its offset.
    """
    start, last = end, None
    for off, line in reverse_lines(f, end):
        p = line_prefix(line)
        if p is None:
            return off, last
        if last is None:
            last = p[0]
        if p[0] <= after_seq:
            return start, last
        start = off
    return start, last
