"""Start-up replay: from the files in data_dir to the state the journal had.

Cuts a final line that a crash tore, reads the newest good snapshot and every
event after it, and stops at damage anywhere else, naming `file:offset`.
Separate from the journal because it runs once, at open, and shares none of the
writer's state.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import Any

from engine.errors import JournalError
from engine.journal.files import (
    ACTIVE,
    Segment,
    last_newline_end,
    list_segments,
    reverse_lines,
    segment_edges,
    snapshot_files,
    tail_start,
)
from engine.journal.lines import BadLine, Event, corrupt, location, open_line
from engine.journal.snapshots import BadSnapshot, read_snapshot_file


@dataclass(slots=True)
class ReplayResult:
    """What open() found: the newest good snapshot and every event after it."""

    snapshot_seq: int  # 0: no snapshot
    state: dict[str, Any] | None  # the snapshot's state; None without one
    events: list[Event]
    warnings: list[str]
    last_seq: int


def replay(data_dir: str) -> tuple[ReplayResult, int | None]:
    """Remove leftovers of interrupted writes, cut a torn tail, and read the newest
    good snapshot and every event after it; also the first seq of the active segment."""
    warnings: list[str] = []
    for seg in list_segments(data_dir):
        # opening a FIFO with a segment's name would block start-up forever
        # (devices are allowed: tests put /dev/full there to fill the "disk")
        if stat.S_ISFIFO(os.stat(seg.path).st_mode):
            raise JournalError(
                f"{seg.path}: a FIFO, not a regular file; the journal's segments "
                "must be regular files"
            )
    for name in os.listdir(data_dir):
        if name.endswith(".tmp") and name.startswith(("snapshot-", "alerts", "quarantine-")):
            # an interrupted snapshot or repair; the rename never happened
            os.unlink(os.path.join(data_dir, name))

    snap_seq, state = 0, None
    snaps = snapshot_files(data_dir)
    for i, (seq, path) in enumerate(snaps):
        try:
            snap_seq, state = read_snapshot_file(path, seq)
            break
        except BadSnapshot as e:
            then = "an older snapshot" if i + 1 < len(snaps) else "the log from its start"
            warnings.append(f"{path}: {e}; replaying from {then} instead")

    torn = _truncate_torn_tail(os.path.join(data_dir, ACTIVE))
    if torn:
        warnings.append(torn)

    segments = list_segments(data_dir)
    active_first = None
    if segments and segments[-1].active:
        active_first, *_ = segment_edges(segments[-1].path)
    events: list[Event] = []
    log_last = 0
    for i, seg in enumerate(segments):
        nxt = segments[i + 1] if i + 1 < len(segments) else None
        upper = _upper_bound(nxt, active_first)
        if upper is not None and upper <= snap_seq:
            continue  # fully covered by the snapshot: never read it
        last = _read_tail(seg, snap_seq, events)
        if last is not None:
            log_last = last

    if snap_seq > log_last:
        if log_last:
            warnings.append(
                f"snapshot at seq {snap_seq} is ahead of the log (last seq {log_last}); "
                "the log lost writes that were never fsynced"
            )
    elif events and events[0]["seq"] > snap_seq + 1 and snap_seq:
        warnings.append(
            f"events {snap_seq + 1}..{events[0]['seq'] - 1} after the snapshot are missing"
        )
    return ReplayResult(snap_seq, state, events, warnings, max(snap_seq, log_last)), active_first


def _upper_bound(nxt: Segment | None, active_first: int | None) -> int | None:
    """Highest seq a segment can hold, given the segment after it."""
    if nxt is None:
        return None
    first = nxt.first_seq if nxt.first_seq is not None else active_first
    return None if first is None else first - 1


def _read_tail(seg: Segment, after_seq: int, out: list[Event]) -> int | None:
    """Append the events of `seg` with seq > after_seq to `out`; return its last seq."""
    with open(seg.path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if seg.first_seq is not None and seg.first_seq > after_seq:
            start, last = 0, None
        else:
            start, last = tail_start(f, size, after_seq)
        f.seek(start)
        data = f.read(size - start)
    if data and not data.endswith(b"\n"):
        # only the active segment may end torn, and that was cut off before
        raise corrupt(seg.path, start + data.rfind(b"\n") + 1, "incomplete final line")
    prev = None
    offset = start
    for line in data.split(b"\n")[:-1]:
        try:
            ev = open_line(line)
        except BadLine as e:
            raise corrupt(seg.path, offset, e.reason) from None
        seq = ev["seq"]
        if prev is not None and seq <= prev:
            raise corrupt(seg.path, offset, f"seq {seq} does not follow {prev}")
        if out and seq <= out[-1]["seq"]:
            raise corrupt(seg.path, offset, f"seq {seq} does not follow {out[-1]['seq']}")
        prev = seq
        if seq > after_seq:
            out.append(ev)
        offset += len(line) + 1
    return prev if prev is not None else last


def _truncate_torn_tail(active_path: str) -> str | None:
    """Cut a final line that a crash left incomplete; return the warning, if any."""
    try:
        f = open(active_path, "r+b")  # noqa: SIM115 - closed by the with below
    except FileNotFoundError:
        return None
    with f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return None
        f.seek(size - 1)
        if f.read(1) != b"\n":
            cut = last_newline_end(f, size)
            why = "no newline"
        else:
            for off, line in reverse_lines(f, size):
                try:
                    open_line(line)
                    return None
                except BadLine as e:
                    if not e.damaged:
                        return None  # well-formed but refused: not torn, replay reports it
                    cut, why = off, e.reason
                break
            else:  # pragma: no cover - size > 0 and ends with a newline: one line at least
                return None
        f.truncate(cut)
        f.flush()
        os.fsync(f.fileno())
    return (
        f"{location(active_path, cut)}: torn final line ({size - cut} bytes, {why}) "
        "removed; it was a write cut short by a crash"
    )
