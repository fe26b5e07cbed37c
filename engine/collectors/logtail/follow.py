"""One open log file: read it from an offset in bounded batches, cut into lines.

The file is read through its descriptor, not its name, so a file renamed or
deleted by a rotation is still read to its end. A line is consumed only once its
newline is there (a writer's half-written line waits for the next pass), except
at the end of a file nobody writes any more. A line longer than
`max_line_bytes` is cut: its first `max_line_bytes` bytes are a line, the rest is
skipped up to its newline and counted in `truncated`.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from engine.collectors.logtail.identity import FileId, grown, identify, same_start
from engine.collectors.logtail.sink import LineBatch


@dataclass(slots=True)
class Counters:
    """Per followed path; kept in the journal with the offset, so they survive restarts."""

    lines: int = 0
    bytes: int = 0
    truncated: int = 0  # lines longer than max_line_bytes, cut
    rotations: int = 0  # rename, recreate, symlink swap or copytruncate seen


@dataclass(frozen=True, slots=True)
class Limits:
    max_line_bytes: int
    batch_bytes: int  # one read, one LineBatch


class OpenFile:
    """A file being read; `offset` is the start of the first byte not yet consumed."""

    def __init__(self, fd: int, name: str, offset: int, limits: Limits, *, skip: bool = False):
        self.fd = fd
        self.name = name  # where it was opened (may be renamed since)
        st = os.fstat(fd)
        self.ident: FileId = identify(fd, st)
        self.offset = offset
        self.skipping = skip  # inside a cut line: drop bytes up to the next newline
        self.limits = limits
        self.idle_since: float | None = None  # monotonic; set while draining without growth

    @classmethod
    def open(cls, name: str, offset: int, limits: Limits, *, skip: bool = False) -> OpenFile:
        # O_NONBLOCK: a FIFO matching a glob must not hang the reader
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError("not a regular file")
            return cls(fd, name, offset, limits, skip=skip)
        except BaseException:
            os.close(fd)
            raise

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def restarted(self) -> bool:
        """Whether the content started over under the same inode (copytruncate, or
        a rewrite): shorter than what was read, or no longer the same first bytes."""
        size = self.size()
        if size < self.offset or not same_start(self.fd, self.ident):
            return True
        self.ident = grown(self.fd, self.ident, size)
        return False

    def start_over(self) -> None:
        self.offset = 0
        self.skipping = False
        self.ident = identify(self.fd)

    def read_batch(self, path: str, counters: Counters, *, final: bool) -> LineBatch | None:
        """The next complete lines (one read of at most batch_bytes), or None at the
        end. `final`: nobody writes this file any more, so a last line without a
        newline is a line too. A batch may have no lines (only a cut line's rest)."""
        lim = self.limits
        want = max(lim.batch_bytes, lim.max_line_bytes + 2)
        start = self.offset
        data = os.pread(self.fd, want, start)
        if not data:
            return None
        at_end = final and len(data) < want  # this read reached the end of a finished file
        pos = 0
        if self.skipping:
            pos = data.find(b"\n") + 1
            if pos == 0:  # still inside the cut line
                self.skipping = not at_end
                return self._done(path, counters, start, start + len(data), [])
            self.skipping = False
        last = max(data.rfind(b"\n") + 1, pos)  # the end of the complete lines
        parts = data[pos : last - 1].split(b"\n") if last > pos else []
        end = last
        rest = len(data) - last
        if rest > lim.max_line_bytes:  # cannot wait for its newline: cut it now
            parts.append(data[last : last + lim.max_line_bytes + 1])  # +1: counted as cut below
            self.skipping = not at_end
            end = len(data)
        elif rest and at_end:
            parts.append(data[last:])
            end = len(data)
        if parts and max(map(len, parts)) > lim.max_line_bytes:
            for i, p in enumerate(parts):
                if len(p) > lim.max_line_bytes:
                    parts[i] = p[: lim.max_line_bytes]
                    counters.truncated += 1
        if not parts:  # only a line still being written, or a cut line's newline
            return self._done(path, counters, start, start + end, []) if end else None
        text = b"\n".join(parts).decode("utf-8", "replace")
        if "\r" in text:  # CRLF logs
            text = text.replace("\r\n", "\n").removesuffix("\r")
        return self._done(path, counters, start, start + end, text.split("\n"))

    def _done(
        self, path: str, counters: Counters, start: int, end: int, lines: list[str]
    ) -> LineBatch:
        self.offset = end
        counters.lines += len(lines)
        counters.bytes += end - start
        return LineBatch(path, start, end, lines)
