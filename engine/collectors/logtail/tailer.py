"""Following a set of paths and globs through rotations; the offsets to save.

Each pass, for every followed path:

1. the open file is checked for copytruncate (shorter than the offset, or no
   longer starting with the fingerprinted bytes); the lines not read yet are then
   read from the copy (a sibling that starts with those bytes) before starting
   over at 0;
2. the open file is read to its end (bounded by the pass's byte budget);
3. the name is looked up again: another inode there (rename rotation, recreate,
   symlink swap) or none (deleted) means the open file is done with its name. It
   was read to its end in step 2 and stays open as "draining" (a writer that
   reopens late, as nginx does on USR1, still appends to it) until it has not
   grown for `DRAIN_IDLE` seconds; the new file at the name is read from 0.

At the first pass, `start` says where an existing file is read from: `end`,
`beginning`, or `saved` (the journaled offset when the file is the same one;
when it was rotated while the daemon was down, the rest of the old file is found
next to it and read first, and the new file is read from 0; a file never seen
before starts at its end). A file that appears later is read from 0.

Not thread-safe: one pass at a time (the collector's OneThread).
"""

from __future__ import annotations

import fnmatch
import glob
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from engine.collectors.logtail.follow import Counters, Limits, OpenFile
from engine.collectors.logtail.identity import FileId, find_elsewhere, same_start
from engine.collectors.logtail.sink import LineBatch, LineSink, hand_over

log = logging.getLogger("vigil")

DRAIN_IDLE = 5.0  # seconds a rotated-away file must stay unchanged before it is closed
STARTS = ("saved", "end", "beginning")


@dataclass(slots=True)
class Followed:
    path: str
    counters: Counters = field(default_factory=Counters)
    file: OpenFile | None = None
    error: str | None = None
    saved: dict[str, Any] | None = None  # the last record handed out for the journal
    saved_at: float = float("-inf")  # clock() then


class Tailer:
    def __init__(
        self,
        patterns: Sequence[str],
        limits: Limits,
        start: str,
        sinks: list[LineSink],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.patterns = tuple(patterns)
        self.limits = limits
        self.start = start
        self.sinks = sinks  # shared: the collector may add sinks later
        self.clock = clock
        self.followed: dict[str, Followed] = {}
        self.draining: list[tuple[OpenFile, Followed]] = []
        self.sink_errors = 0
        self._restored: dict[str, Mapping[str, Any]] = {}
        self._forget: set[str] = set()
        self._started = False
        self._budget = 0

    # -- state across restarts ---------------------------------------------------------

    def restore(self, saved: Mapping[str, Any]) -> None:
        """The records `changes()` handed out before, as the journal kept them."""
        for path, rec in saved.items():
            if not self._configured(path):
                self._forget.add(path)  # no longer in `paths`: its record goes
            elif isinstance(rec, Mapping):
                self._restored[path] = rec
                f = self.followed.setdefault(path, Followed(path))
                f.counters = _counters(rec)
                f.saved = dict(rec)

    def changes(self, every: float = 0.0) -> dict[str, dict[str, Any] | None]:
        """path -> its record, for every path whose offset or counters moved since its
        last record, at most one per `every` seconds; None for a path no longer followed."""
        now = self.clock()
        out: dict[str, dict[str, Any] | None] = dict.fromkeys(self._forget)
        self._forget.clear()
        for path, f in list(self.followed.items()):
            if (
                f.file is None
                and not self._configured(path, literal_only=True)
                and not any(fl is f for _, fl in self.draining)
                and not os.path.exists(path)
            ):
                del self.followed[path]  # a glob's file that is gone
                out[path] = None
                continue
            rec = _record(f)
            if rec != f.saved and now - f.saved_at >= every:
                f.saved, f.saved_at = rec, now
                out[path] = rec
        return out

    # -- one pass ----------------------------------------------------------------------

    def poll(self, budget: int, deadline: float) -> None:
        """Read what was written since the last pass: at most `budget` bytes, and
        stop starting reads after `deadline` (monotonic); the rest is for the next pass."""
        self._budget = budget
        self._deadline = deadline
        first = not self._started
        for path in self._expand():
            self.followed.setdefault(path, Followed(path))
        for f in list(self.followed.values()):
            try:
                self._step(f, first)
                f.error = None
            except OSError as e:
                f.error = f"{e.strerror or e}"
        self._started = True
        now = self.clock()
        for item in list(self.draining):
            of, f = item
            before = of.offset
            try:
                self._read(of, f, final=False)
            except OSError:
                of.idle_since = now - DRAIN_IDLE
            if of.offset != before:
                of.idle_since = now
            elif of.idle_since is not None and now - of.idle_since >= DRAIN_IDLE:
                self._read(of, f, final=True)  # a last line without its newline
                of.close()
                self.draining.remove(item)

    def _step(self, f: Followed, first: bool) -> None:
        of = f.file
        if of is None:
            self._open(f, first)
            of = f.file
            if of is None:
                return
        elif of.restarted():
            self._copytruncated(f, of)
        if not self._read(of, f, final=False):
            return  # the budget ran out first: the name is looked at next pass
        try:
            st: os.stat_result | None = os.stat(f.path)
        except FileNotFoundError:
            st = None
        if st is not None and of.ident.same_inode(st):
            return
        # rotated away: read to its end above; keep it open for late writes
        f.counters.rotations += 1
        of.idle_since = self.clock()
        self.draining.append((of, f))
        f.file = None
        if st is not None:
            self._open(f, False)
            if f.file is not None:
                self._read(f.file, f, final=False)

    def _open(self, f: Followed, first: bool) -> None:
        try:
            of = OpenFile.open(f.path, 0, self.limits)
        except FileNotFoundError:
            return
        st = os.fstat(of.fd)
        of.name = os.path.realpath(f.path)
        for item in self.draining:  # a file seen before under another name (glob rename)
            old, _ = item
            if old.ident.same_inode(st) and same_start(old.fd, old.ident):
                self.draining.remove(item)
                of.close()
                old.idle_since = None
                f.file = old
                return
        f.file = of
        if first:
            self._start_at(f, of, st.st_size)

    def _start_at(self, f: Followed, of: OpenFile, size: int) -> None:
        rec = self._restored.pop(f.path, None)
        if self.start == "beginning":
            return
        if self.start == "end" or rec is None:
            of.offset = _line_start(of.fd, size)
            return
        ident = FileId.from_record(rec.get("file"))
        offset, skip = rec.get("offset"), rec.get("skip") is True
        if ident is None or type(offset) is not int or offset < 0:
            return  # no file there when it was saved: this one is new, read all of it
        if ident.same_inode(os.fstat(of.fd)) and same_start(of.fd, ident) and size >= offset:
            of.offset, of.skipping = offset, skip
            return
        # rotated while the daemon was down: the rest of the old file first
        real = rec.get("real")
        found = find_elsewhere(
            ident, f.path, (real,) if isinstance(real, str) else (), min_size=offset
        )
        f.counters.rotations += 1
        if found is not None:
            old = OpenFile(found[0], found[1], offset, self.limits, skip=skip)
            old.idle_since = self.clock() - DRAIN_IDLE  # closed once read to its end
            self.draining.append((old, f))

    def _copytruncated(self, f: Followed, of: OpenFile) -> None:
        found = find_elsewhere(of.ident, f.path, min_size=of.offset)
        if found is not None:  # the copy holds the lines not read yet
            copy = OpenFile(found[0], found[1], of.offset, self.limits, skip=of.skipping)
            try:
                self._read(copy, f, final=True)
            finally:
                copy.close()
        of.start_over()
        f.counters.rotations += 1

    def _read(self, of: OpenFile, f: Followed, *, final: bool) -> bool:
        """Read `of` to its end; False when the budget or deadline stopped it first."""
        while self._budget > 0 and time.monotonic() <= self._deadline:
            batch = of.read_batch(f.path, f.counters, final=final)
            if batch is None:
                return True
            self._budget -= batch.end - batch.start
            if batch.lines:
                self._deliver(batch)
        return False

    def _deliver(self, batch: LineBatch) -> None:
        self.sink_errors += hand_over(self.sinks, batch, self.sink_errors)

    # -- paths -------------------------------------------------------------------------

    def _expand(self) -> list[str]:
        out: list[str] = []
        for p in self.patterns:
            out.extend(sorted(glob.glob(p)) if glob.has_magic(p) else [p])
        return list(dict.fromkeys(out))

    def _configured(self, path: str, *, literal_only: bool = False) -> bool:
        return any(
            path == p or (not literal_only and glob.has_magic(p) and fnmatch.fnmatchcase(path, p))
            for p in self.patterns
        )

    def reading(self) -> list[str]:
        """The real paths of the files open now (followed and draining)."""
        out = [f.file.name for f in self.followed.values() if f.file is not None]
        return out + [of.name for of, _ in self.draining]

    def lines(self) -> int:
        return sum(f.counters.lines for f in self.followed.values())

    def close(self) -> None:
        for f in self.followed.values():
            if f.file is not None:
                f.file.close()
                f.file = None
        for of, _ in self.draining:
            of.close()
        self.draining.clear()


def _record(f: Followed) -> dict[str, Any]:
    of = f.file
    rec: dict[str, Any] = asdict(f.counters)
    if of is None:
        rec["file"] = None
    else:
        rec.update(file=of.ident.to_record(), real=of.name, offset=of.offset, skip=of.skipping)
    return rec


def _counters(rec: Mapping[str, Any]) -> Counters:
    def n(key: str) -> int:
        v = rec.get(key)
        return v if type(v) is int and v >= 0 else 0

    return Counters(n("lines"), n("bytes"), n("truncated"), n("rotations"))


def _line_start(fd: int, size: int) -> int:
    """Where the line being written at `size` starts: `end` skips a half line."""
    back = min(size, 64 * 1024)
    tail = os.pread(fd, back, size - back)
    nl = tail.rfind(b"\n")
    return size - back + nl + 1 if nl >= 0 else size
