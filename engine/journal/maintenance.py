"""Offline maintenance of a data_dir: inspect, verify, repair and compact it.

The `vigil log` commands that look at or fix the files as a whole. Separate from
the journal, which only appends and replays; `compact_offline` drives a Journal
to write its snapshot, so this module sits above it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.config.model import LogConfig
from engine.errors import JournalError
from engine.journal import lock as _lock
from engine.journal.files import fsync_dir, list_segments, segment_edges, snapshot_files, write_file
from engine.journal.journal import DEFAULT_RETENTION, Journal
from engine.journal.lines import BadLine, Event, location, open_line
from engine.journal.snapshots import BadSnapshot, read_snapshot_file

MAX_PROBLEMS_PER_FILE = 100


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    path: str
    first_seq: int | None
    last_seq: int | None
    last_ts: str | None
    bytes: int
    active: bool


@dataclass(frozen=True, slots=True)
class JournalInfo:
    """A cheap overview of a data_dir, read from file names and segment ends."""

    data_dir: str
    segments: list[SegmentInfo] = field(default_factory=list)
    snapshots: list[tuple[int, str]] = field(default_factory=list)  # (seq, path), newest first

    @property
    def first_seq(self) -> int | None:
        return next((s.first_seq for s in self.segments if s.first_seq is not None), None)

    @property
    def last_seq(self) -> int | None:
        return next((s.last_seq for s in reversed(self.segments) if s.last_seq is not None), None)

    @property
    def bytes(self) -> int:
        return sum(s.bytes for s in self.segments)


def inspect(data_dir: str | os.PathLike[str]) -> JournalInfo:
    d = os.fspath(data_dir)
    segs = []
    for seg in list_segments(d):
        first, last, last_ts, size = segment_edges(seg.path)
        segs.append(SegmentInfo(seg.path, first, last, last_ts, size, seg.active))
    return JournalInfo(d, segs, snapshot_files(d))


def verify(
    data_dir: str | os.PathLike[str], *, progress: Callable[[int, int], None] | None = None
) -> list[str]:
    """Check every line and snapshot; one `file:offset: problem` string per problem.

    Read-only and lock-free. `progress(bytes_done, bytes_total)` is called as
    files are read. An empty list means the journal is sound.
    """
    d = os.fspath(data_dir)
    problems: list[str] = []
    segs = list_segments(d)
    total = sum(_size(s.path) for s in segs)
    done = 0
    prev = 0
    for seg in segs:
        found: list[str] = []
        try:
            f = open(seg.path, "rb")  # noqa: SIM115 - closed by the with below
        except FileNotFoundError:
            continue
        with f:
            offset = 0
            next_report = 1 << 22
            first = True
            for raw in f:
                where = location(seg.path, offset)
                if not raw.endswith(b"\n"):
                    fate = "start-up removes it" if seg.active else "repair quarantines it"
                    found.append(f"{where}: torn final line ({len(raw)} bytes, no newline); {fate}")
                else:
                    try:
                        ev = open_line(raw[:-1])
                    except BadLine as e:
                        found.append(f"{where}: {e.reason}")
                    else:
                        seq = ev["seq"]
                        if first and seg.first_seq is not None and seq != seg.first_seq:
                            found.append(
                                f"{where}: first seq is {seq} but the file name says "
                                f"{seg.first_seq}"
                            )
                        if seq <= prev:
                            found.append(f"{where}: seq {seq} does not follow {prev}")
                        prev = max(prev, seq)
                        first = False
                offset += len(raw)
                if progress is not None and offset >= next_report:
                    progress(done + offset, total)
                    next_report = offset + (1 << 22)
            done += offset
        if len(found) > MAX_PROBLEMS_PER_FILE:
            extra = len(found) - MAX_PROBLEMS_PER_FILE
            found = [*found[:MAX_PROBLEMS_PER_FILE], f"{seg.path}: ... and {extra} more problems"]
        problems += found
    if progress is not None:
        progress(total, total)
    for seq, path in snapshot_files(d):
        try:
            read_snapshot_file(path, seq)
        except BadSnapshot as e:
            problems.append(f"{path}: {e}")
            continue
        if seq > prev:
            problems.append(f"{path}: snapshot at seq {seq} is ahead of the log (last seq {prev})")
    return problems


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return 0


# ------------------------------------------------------------------- repair


class _Quarantine:
    """Damaged lines, as JSON records saying where each came from and why."""

    def __init__(self, data_dir: str) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        base = os.path.join(data_dir, f"quarantine-{stamp}")
        self.path, n = base + ".jsonl", 1
        while os.path.exists(self.path):
            n += 1
            self.path = f"{base}-{n}.jsonl"
        self.data_dir = data_dir
        self.lines: list[bytes] = []

    def add(self, file: str, offset: int, reason: str, line: bytes) -> None:
        rec = {
            "file": os.path.basename(file),
            "offset": offset,
            "reason": reason,
            "line": line.decode("utf-8", "backslashreplace"),
        }
        self.lines.append(json.dumps(rec, ensure_ascii=False).encode() + b"\n")

    def save(self) -> None:
        if self.lines:
            write_file(self.path, b"".join(self.lines))


def _salvage(line: bytes, prev: int) -> tuple[int, Event] | None:
    """A whole record at the end of a damaged line (a torn write followed by a good one)."""
    pos = line.rfind(b'{"v":', 1)
    if pos < 0:
        return None
    try:
        ev = open_line(line[pos:])
    except BadLine:
        return None
    return (pos, ev) if ev["seq"] > prev else None


def repair(data_dir: str | os.PathLike[str]) -> str:
    """Move damaged or out-of-order lines to quarantine-<stamp>.jsonl, rewrite
    the segments without them (temp file + rename), set aside bad snapshots.

    Takes the data_dir lock (raises JournalLocked while a daemon runs). Returns
    a report of what it did, one line per change.
    """
    d = os.fspath(data_dir)
    if not os.path.isdir(d):
        raise JournalError(f"{d}: no such directory; is data_dir right?")
    lock = _lock.acquire(d)
    try:
        q = _Quarantine(d)
        report: list[str] = []
        prev = 0
        for seg in list_segments(d):
            with open(seg.path, "rb") as f:
                data = f.read()
            parts = data.split(b"\n")
            keep: list[bytes] = []
            moved: list[str] = []
            offset = 0
            for i, line in enumerate(parts):
                last_part = i == len(parts) - 1
                if last_part and not line:
                    break
                reason, seq = None, 0
                if last_part:
                    reason = "torn final line (no newline)"
                else:
                    try:
                        seq = open_line(line)["seq"]
                    except BadLine as e:
                        reason = e.reason
                    else:
                        if seq <= prev:
                            reason = f"seq {seq} does not follow {prev}"
                if reason is None:
                    keep.append(line)
                    prev = seq
                else:
                    saved = _salvage(line, prev) if not last_part else None
                    if saved is not None:
                        pos, ev = saved
                        q.add(seg.path, offset, reason, line[:pos])
                        keep.append(line[pos:])
                        prev = ev["seq"]
                    else:
                        q.add(seg.path, offset, reason, line)
                    moved.append(f"offset {offset}: {reason}")
                offset += len(line) + 1
            name = os.path.basename(seg.path)
            if moved:
                q.save()  # the quarantine is durable before any line leaves its segment
                shown = "; ".join(moved[:3]) + (
                    f"; and {len(moved) - 3} more" if len(moved) > 3 else ""
                )
                report.append(f"{name}: moved {len(moved)} line(s) to quarantine ({shown})")
                if keep or seg.active:
                    write_file(seg.path, b"".join(line + b"\n" for line in keep))
                else:
                    os.unlink(seg.path)
                    fsync_dir(d)
                    report.append(f"{name}: removed, nothing good was left in it")
                    continue
            if not seg.active and keep:
                true_first = open_line(keep[0])["seq"]
                target = os.path.join(d, f"alerts-{true_first:012d}.jsonl")
                if true_first != seg.first_seq and not os.path.exists(target):
                    os.rename(seg.path, target)
                    fsync_dir(d)
                    report.append(f"{name}: renamed to {os.path.basename(target)} (its first seq)")
        for seq, path in snapshot_files(d):
            try:
                read_snapshot_file(path, seq)
            except BadSnapshot as e:
                target = f"{q.path[: -len('.jsonl')]}-{os.path.basename(path)}"
                os.rename(path, target)
                fsync_dir(d)
                report.append(f"{os.path.basename(path)}: {e}; moved to {target}")
        if q.lines:
            report.append(f"quarantined lines are in {q.path}")
        return "\n".join(report) if report else f"{d}: journal is sound; nothing to repair"
    finally:
        _lock.release(lock)


def compact_offline(
    data_dir: str | os.PathLike[str],
    fold: Callable[[dict[str, Any], Event], None],
    initial: Callable[[], dict[str, Any]],
    *,
    retention_seconds: float = DEFAULT_RETENTION,
    clock: Callable[[], float] = time.time,
) -> str:
    """Fold the log into a fresh snapshot without a daemon, prune old snapshots
    and segments that are covered and older than `retention_seconds`.

    `fold(state, event)` applies one event in place; `initial()` makes the empty
    state. Takes the lock (JournalLocked while a daemon runs). Returns a report.
    """
    j = Journal(data_dir, LogConfig(), clock=clock, retention_seconds=retention_seconds)
    r = j.open()
    try:
        # writing a snapshot compacts too: report whatever left, by either path
        before = {seg.path for seg in list_segments(j.data_dir) if not seg.active}
        lines = [*r.warnings]
        if r.last_seq == 0:
            return "\n".join([*lines, f"{j.data_dir}: journal is empty; nothing to compact"])
        if r.state is not None and r.last_seq == r.snapshot_seq:
            lines.append(f"newest snapshot is already at the last seq {r.last_seq}")
        else:
            state = r.state if r.state is not None else initial()
            for ev in r.events:
                try:
                    fold(state, ev)
                except (KeyError, TypeError, ValueError, AttributeError) as e:
                    # on-disk state the fold does not understand: a data problem
                    raise JournalError(
                        f"{j.data_dir}: cannot fold event seq {ev['seq']} into the snapshot "
                        f"at seq {r.snapshot_seq}: {type(e).__name__}: {e}"
                    ) from None
            path = j.write_snapshot_sync(state, r.last_seq)
            lines.append(
                f"wrote {os.path.basename(path)}: {len(r.events)} event(s) after seq "
                f"{r.snapshot_seq} folded in"
            )
        j.compact()
        removed = sorted(before - {seg.path for seg in list_segments(j.data_dir)})
        if removed:
            lines.append(
                f"removed {len(removed)} segment(s) covered by the snapshot and older than "
                f"the retention: " + ", ".join(os.path.basename(p) for p in removed)
            )
        return "\n".join(lines)
    finally:
        j.close_sync()
