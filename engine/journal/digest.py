"""The report's rows of the journal, kept by the history follower beside its index.

`vigil report` over a year reads a million lines; parsing them is most of its
time (engine/journal/rows.py). The history follower (engine/journal/history.py,
in the daemon's child process) already reads every line as it is written, so it
also keeps their rows, a block of lines at a time, and the report reads those
instead of the lines (engine/report/scan.py).

    data_dir/history/rows/<inode>-<start, 12 digits>.rows

holds the Rows of the bytes [start, end) of the segment file with that inode (a
rotation renames a file: its inode and bytes stay). A segment's chunks follow one
another from byte 0; what no chunk covers yet (the active segment's last lines,
a segment not digested yet) the report reads from the journal itself.

A chunk is used only if all of these hold, else the report reads those bytes from
the journal (and the follower writes the chunk anew): its CRC-32 over its content
matches; its range lies inside the segment file; and the journal's first and last
bytes of that range (a line's seq, time stamp and checksum at each end) are the
ones the chunk recorded. So a journal replaced, copied elsewhere, compacted or cut
short is read, never mistaken for the one the chunks were made of. Files are
written whole (temporary name, then rename): readers never wait for the writer
and never see half a file.
"""

from __future__ import annotations

import contextlib
import logging
import marshal
import math
import os
import struct
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from engine.errors import JournalError
from engine.journal.files import FILE_MODE, list_segments
from engine.journal.rows import BLOCK, Row, blocks, rows

__all__ = ["Chunk", "Digester", "chain", "listing", "rows_dir"]

log = logging.getLogger("vigil.history")

_MAGIC = b"VIGILRD1"  # a new Row shape is a new magic: older files are then rebuilt
_HEAD = struct.Struct(">8sI")  # magic, CRC-32 of everything after
# start, end, first and last time of its rows, lengths of the journal's edge bytes
_META = struct.Struct(">QQddHH")
_EDGE = 64  # bytes of the journal kept from each end of a chunk's range
ACTIVE_MIN = 1 << 20  # the active segment's lines are kept once a block is this long
RECHECK = 3600.0  # seconds between checks of every chunk's content (~0.1 s a year's)


def rows_dir(data_dir: str) -> str:
    return os.path.join(data_dir, "history", "rows")


@dataclass(frozen=True, slots=True)
class Chunk:
    path: str
    start: int
    end: int
    first: float  # its rows' earliest and latest times (inf, -inf: none)
    last: float

    def rows(self) -> list[Row] | None:
        """Its rows; None when the file is gone or fails its check."""
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except OSError:
            return None
        body = _body(data)
        if body is None or _META.unpack_from(data, _HEAD.size)[:2] != (self.start, self.end):
            return None  # damaged, or written anew since its header was read
        try:
            got = marshal.loads(body)
        except (EOFError, ValueError, TypeError):
            return None
        return got if isinstance(got, list) else None


def _body(data: bytes) -> bytes | None:
    """The rows' bytes of a whole chunk file, if its magic and CRC hold."""
    if len(data) < _HEAD.size + _META.size:
        return None
    magic, crc = _HEAD.unpack_from(data)
    if magic != _MAGIC or zlib.crc32(memoryview(data)[_HEAD.size :]) != crc:
        return None
    _s, _e, _f, _l, nh, nt = _META.unpack_from(data, _HEAD.size)
    return data[_HEAD.size + _META.size + nh + nt :]


def _edges(fd: int, start: int, end: int) -> tuple[bytes, bytes]:
    head = os.pread(fd, min(_EDGE, end - start), start)
    n = min(_EDGE, end - start)
    return head, os.pread(fd, n, end - n)


def _header(path: str, fd: int, size: int) -> Chunk | None:
    """A chunk file's range and times, if it still describes the segment open as `fd`
    (of `size` bytes)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(_HEAD.size + _META.size + 2 * _EDGE)
    except OSError:
        return None
    if len(raw) < _HEAD.size + _META.size or raw[:8] != _MAGIC:
        return None
    start, end, first, last, nh, nt = _META.unpack_from(raw, _HEAD.size)
    at = _HEAD.size + _META.size
    if not start < end <= size or len(raw) < at + nh + nt:
        return None
    if _edges(fd, start, end) != (raw[at : at + nh], raw[at + nh : at + nh + nt]):
        return None
    return Chunk(path, start, end, first, last)


def listing(folder: str, *, sweep: bool = False) -> dict[int, dict[int, str]]:
    """inode -> start -> chunk file, of the files in `folder`; `sweep`: remove the
    temporary files a writer killed mid-write left (the writer only)."""
    out: dict[int, dict[int, str]] = {}
    try:
        names = os.listdir(folder)
    except OSError:
        return out
    for name in names:
        if name.endswith(".tmp"):
            if not sweep:
                continue
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(folder, name))
            continue
        stem, dot, ext = name.partition(".")
        ino, dash, start = stem.partition("-")
        if dot and ext == "rows" and dash and ino.isdigit() and start.isdigit():
            out.setdefault(int(ino), {})[int(start)] = os.path.join(folder, name)
    return out


def chain(fd: int, files: dict[int, dict[int, str]]) -> Iterator[Chunk]:
    """The chunks of the segment open as `fd` that follow one another from its byte 0
    and still describe it (their content is checked as they are read: Chunk.rows)."""
    st = os.fstat(fd)
    mine = files.get(st.st_ino, {})
    at = 0
    while (path := mine.get(at)) is not None:
        c = _header(path, fd, st.st_size)
        if c is None:
            return
        yield c
        at = c.end


def _shared(got: Iterable[Row]) -> list[Row]:
    """Rows whose equal bytes (kinds, alerts, rules, labels) are one object each:
    marshal then writes each once (half the size of a chunk; the same values)."""
    one: dict[Any, Any] = {}
    out = []
    for t, kind, a, b, labels, since in got:
        out.append(
            (
                t,
                one.setdefault(kind, kind),
                one.setdefault(a, a) if isinstance(a, bytes) else a,
                one.setdefault(b, b) if isinstance(b, bytes) else b,
                one.setdefault(labels, labels) if isinstance(labels, bytes) else labels,
                since,
            )
        )
    return out


class Digester:
    """Writes the chunks of the journal's new lines; the one writer (the history
    follower's thread)."""

    def __init__(
        self,
        data_dir: str,
        *,
        block: int = BLOCK,
        active_min: int = ACTIVE_MIN,
        recheck: float = RECHECK,
    ) -> None:
        self.data_dir = data_dir
        self.block = block  # bytes of journal per chunk (smaller in tests)
        self.active_min = active_min
        self.recheck = recheck
        self._checked = -math.inf  # when every chunk was last read whole and checked
        self.folder = rows_dir(data_dir)
        # (inode, the segment's first bytes) -> end of its checked chunks
        self._ends: dict[tuple[int, bytes], int] = {}
        self._count: dict[tuple[int, bytes], int] = {}  # and the number of its chunks
        self.written = 0  # chunks written since start
        self._error = ""  # the last damaged line seen, logged once

    def update(self, stop: Callable[[], bool] = lambda: False) -> int:
        """Keep the rows of every segment's lines not kept yet (the active segment's
        once a block of ACTIVE_MIN bytes is there); drop the files of segments gone.
        Returns the number of chunks written."""
        os.makedirs(self.folder, mode=0o750, exist_ok=True)
        if time.monotonic() - self._checked >= self.recheck:
            # a chunk damaged at rest is read past by reports (the journal instead):
            # checked again now and then, so that it is written anew
            self._ends.clear()
            self._checked = time.monotonic()
        kept = listing(self.folder, sweep=True)
        live: set[int] = set()
        before = self.written
        for seg in list_segments(self.data_dir):
            if stop():
                break
            try:
                f = open(seg.path, "rb")  # noqa: SIM115 - closed by the with below
            except FileNotFoundError:
                continue  # rotated or compacted meanwhile: the next pass sees it
            with f:
                fd = f.fileno()
                st = os.fstat(fd)
                live.add(st.st_ino)
                key = (st.st_ino, os.pread(fd, _EDGE, 0))
                files = kept.get(st.st_ino, {})
                end = self._ends.get(key)
                if end is None or end > st.st_size or len(files) != self._count.get(key):
                    # not seen yet (a start, a new segment), cut short (another file
                    # with its inode and first line), or files gone meanwhile
                    self._ends[key], self._count[key] = self._check(fd, st.st_size, files)
                try:
                    self._extend(seg.path, seg.active, f, key, stop)
                except JournalError as e:  # a damaged line: the report says so if it reads it
                    if str(e) != self._error:
                        log.warning("history rows: %s", e)
                    self._error = str(e)
        self._ends = {k: v for k, v in self._ends.items() if k[0] in live}
        self._count = {k: v for k, v in self._count.items() if k in self._ends}
        for ino, files in kept.items():
            if ino not in live:
                for path in files.values():
                    with contextlib.suppress(OSError):
                        os.unlink(path)
        return self.written - before

    def _check(self, fd: int, size: int, files: dict[int, str]) -> tuple[int, int]:
        """The end and number of the segment's chunks that hold whole; the others
        are removed."""
        at = 0
        good: set[str] = set()
        while (path := files.get(at)) is not None:
            c = _header(path, fd, size)
            try:
                with open(path, "rb") as f:
                    whole = _body(f.read()) is not None
            except OSError:
                whole = False
            if c is None or not whole:
                break
            good.add(path)
            at = c.end
        for path in files.values():
            if path not in good:
                with contextlib.suppress(OSError):
                    os.unlink(path)
        return at, len(good)

    def _extend(
        self,
        segment: str,
        active: bool,
        f: BinaryIO,
        key: tuple[int, bytes],
        stop: Callable[[], bool],
    ) -> None:
        """Chunks of the segment's lines past the end of its chunks, one per block."""
        for offset, block in blocks(segment, active, self._ends[key], f, self.block):
            if stop() or (active and len(block) < self.active_min):
                break
            if not block:
                continue  # a line longer than a block: read on
            got = _shared(rows(segment, offset, block, b"", b"~"))
            end = offset + len(block)
            head, tail = _edges(f.fileno(), offset, end)
            self._write(key[0], offset, end, head + tail, len(head), got)
            self._ends[key] = end
            self._count[key] += 1

    def _write(
        self, ino: int, start: int, end: int, edges: bytes, n_head: int, got: list[Row]
    ) -> None:
        times = [r[0] for r in got]
        meta = _META.pack(
            start,
            end,
            min(times, default=float("inf")),
            max(times, default=float("-inf")),
            n_head,
            len(edges) - n_head,
        )
        rest = meta + edges + marshal.dumps(got)
        path = os.path.join(self.folder, f"{ino}-{start:012d}.rows")
        tmp = path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(_HEAD.pack(_MAGIC, zlib.crc32(rest)))
                out.write(rest)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self.written += 1
