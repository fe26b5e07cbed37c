"""What the scan read from each rotated segment, kept between reports.

A rotated segment never changes (only the active one is appended to; compaction
and repair replace files, which changes their inode, size or time), so the rows
engine/report/scan.py reads from one are the same every time: a year's report
then costs one pass over the year once, and reading these files after (about a
tenth of the time). The key is the segment's name, inode, size and modification
time; a file is written whole (temporary name, then rename) with a CRC-32 of its
content, and one that fails the check is read past: the segment is scanned again.

Kept under $XDG_CACHE_HOME/vigil/report (default ~/.cache), one folder per
data_dir, never inside data_dir (the daemon's). Not writable: no cache, same report.
"""

from __future__ import annotations

import contextlib
import hashlib
import marshal
import os
import struct
import zlib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from engine.report.scan import Row

__all__ = ["SegmentCache"]

_MAGIC = b"VIGILRC3"
_HEAD = struct.Struct(">8sI")
# each chunk: its length and its rows' earliest and latest times, then a
# marshal.dumps of its rows (a chunk wholly inside a report's range is given whole)
_LEN = struct.Struct(">Idd")


def _root(data_dir: str) -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    tag = hashlib.sha256(os.path.realpath(data_dir).encode()).hexdigest()[:16]
    return os.path.join(base, "vigil", "report", tag)


class SegmentCache:
    def __init__(self, data_dir: str) -> None:
        self.root = _root(data_dir)

    def _path(self, segment: str) -> str | None:
        try:
            st = os.stat(segment)
        except OSError:
            return None
        name = os.path.basename(segment)
        return os.path.join(self.root, f"{name}.{st.st_ino}-{st.st_size}-{st.st_mtime_ns}")

    def load(self, segment: str) -> Iterator[tuple[float, float, list[Row]]] | None:
        """The rows of `segment`, chunk by chunk (first, last time, rows); None when
        not kept (or not whole).
        The file is checked whole first, then read one chunk at a time (never a
        segment's rows, nor the file, in memory at once)."""
        path = self._path(segment)
        if path is None:
            return None
        try:
            f = open(path, "rb")  # noqa: SIM115 - closed by _chunks or below
        except OSError:
            return None
        try:
            head = f.read(_HEAD.size)
            if len(head) < _HEAD.size:
                f.close()
                return None
            magic, crc = _HEAD.unpack(head)
            got = 0
            while block := f.read(1 << 20):
                got = zlib.crc32(block, got)
        except OSError:
            f.close()
            return None
        if magic != _MAGIC or got != crc:
            f.close()
            return None
        f.seek(_HEAD.size)
        return self._chunks(f)

    @staticmethod
    def _chunks(f: BinaryIO) -> Iterator[tuple[float, float, list[Row]]]:
        with f:
            while head := f.read(_LEN.size):
                n, first, last = _LEN.unpack(head)
                yield first, last, marshal.loads(f.read(n))

    def writer(self, segment: str) -> _Writer | None:
        """A writer of `segment`'s rows, chunk by chunk (not a segment's rows held at
        once); None when the cache folder cannot be written."""
        path = self._path(segment)
        if path is None:
            return None
        try:
            os.makedirs(self.root, exist_ok=True)
            name = os.path.basename(segment) + "."
            for old in os.listdir(self.root):  # this segment's older versions
                if old.startswith(name):
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(self.root, old))
            return _Writer(path)
        except OSError:
            return None

    def forget_others(self, segments: Iterable[str]) -> None:
        """Drop what is kept for segments that are gone (compacted away)."""
        names = {os.path.basename(s) for s in segments}
        try:
            kept = os.listdir(self.root)
        except OSError:
            return
        for k in kept:
            if k.rsplit(".", 1)[0] not in names:
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(self.root, k))


class _Writer:
    def __init__(self, path: str) -> None:
        self.path = path
        self.tmp = f"{path}.tmp{os.getpid()}"
        self.f = open(self.tmp, "wb")  # noqa: SIM115 - closed by done() or drop()
        self.f.write(_HEAD.pack(_MAGIC, 0))  # the CRC is written last
        self.crc = 0
        self.broken = False

    def add(self, rows: list[Row]) -> None:
        """Keep `rows`; a cache that cannot be written is given up, never an error."""
        if self.broken:
            return
        try:
            blob = marshal.dumps(rows)
            times = [r[0] for r in rows] or [0.0]
            head = _LEN.pack(len(blob), min(times), max(times))
            self.crc = zlib.crc32(blob, zlib.crc32(head, self.crc))
            self.f.write(head)
            self.f.write(blob)
        except (OSError, ValueError):
            self.drop()

    def done(self) -> None:
        if self.broken:
            return
        try:
            self.f.seek(0)
            self.f.write(_HEAD.pack(_MAGIC, self.crc))
            self.f.close()
            os.replace(self.tmp, self.path)
        except OSError:
            self.drop()

    def drop(self) -> None:
        self.broken = True
        with contextlib.suppress(OSError):
            self.f.close()
        with contextlib.suppress(OSError):
            os.unlink(self.tmp)
