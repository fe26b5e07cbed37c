"""The journal: vigil's durable, append-only JSONL log, and its memory across restarts.

The files in ``data_dir`` are described in engine/journal/files.py, one line's
format (JSON with a CRC-32 as its last member) in engine/journal/lines.py.

``seq`` increases strictly across segments and restarts. The checksum lets a
reader tell a torn final line (a write cut short by a crash: repaired with a
warning) from damage in the middle (start-up stops and names ``file:offset``).

Durability follows ``LogConfig.fsync``:

    always       every append returns after fsync
    transitions  ``durable=True`` appends return after fsync; ``durable=False``
                 ones return at once and reach the disk with the next fsync
    interval     appends return once written to the OS; fsync every fsync_interval
    never        appends return once written to the OS; only flush()/close() fsync

Concurrent appends are group-committed: one writer task drains a buffer into one
write() and one fsync() per batch, both run in a dedicated thread so the event
loop keeps running while the disk works (engine/journal/writer.py).

This module is the journal's lifecycle and promises: open (replay.py does the
reading), stamping and appending, snapshots and their compaction, close. The
lock-free readers are in reader.py, verify/repair/offline compaction in
maintenance.py.

One event loop drives a Journal (``append``, ``flush``, ``write_snapshot``,
``close``); without a loop use the ``*_sync`` methods, never both at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from engine.common.records import JournalEvent
from engine.config.model import LogConfig
from engine.errors import JournalError
from engine.journal import lock as _lock
from engine.journal.files import (
    FILE_MODE,
    fsync_dir,
    list_segments,
    segment_edges,
    snapshot_files,
    write_file,
)
from engine.journal.format import FORMAT_VERSION, format_ts, parse_ts
from engine.journal.hold import describe
from engine.journal.lines import Event, encode_json, seal, seal_encoded, writable
from engine.journal.replay import ReplayResult, replay
from engine.journal.writer import SegmentWriter

__all__ = ["DEFAULT_RETENTION", "KEEP_SNAPSHOTS", "Journal"]

DEFAULT_RETENTION = 30 * 86400.0
KEEP_SNAPSHOTS = 2  # the newest may be damaged; the one before it is the fallback

_RESERVED = frozenset(("v", "seq", "ts", "crc"))

# Wait levels of an append.
_NO_WAIT, _WAIT_WRITE, _WAIT_FSYNC = 0, 1, 2


class Journal(SegmentWriter):
    """The append-only log of one data_dir; one process at a time (see `open`)."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        config: LogConfig,
        *,
        clock: Callable[[], float] = time.time,
        retention_seconds: float = DEFAULT_RETENTION,
        on_fsync: Callable[[float], None] | None = None,
        on_degraded: Callable[[str | None], None] | None = None,
        on_fatal: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(
            os.fspath(data_dir),
            config,
            on_fsync=on_fsync,
            on_degraded=on_degraded,
            on_fatal=on_fatal,
        )
        self.retention_seconds = retention_seconds
        self._clock = clock
        self._ts_ms, self._ts = -1, ""
        self._lock_fd: int | None = None
        self._snapshot_seq = 0
        # what an append waits for, by its `durable` flag (see the module doc)
        self._level_durable = self._wait_level(True)
        self._level_other = self._wait_level(False)

    # ------------------------------------------------------------ properties

    @property
    def last_seq(self) -> int:
        """The seq of the last event handed to the journal (written or about to be)."""
        return self._seq

    @property
    def snapshot_seq(self) -> int:
        """The seq of the newest snapshot this journal read or wrote (0: none)."""
        return self._snapshot_seq

    @property
    def is_open(self) -> bool:
        return self._lock_fd is not None

    # -------------------------------------------------------------- open/replay

    def open(self) -> ReplayResult:
        """Take the data_dir lock, repair a torn tail, and replay snapshot + log.

        Raises JournalLocked when another process holds the lock, JournalError
        naming `file:offset` for damage anywhere but the final line.
        """
        if self._lock_fd is not None:
            raise JournalError(f"{self.data_dir}: journal is already open")
        try:
            os.makedirs(self.data_dir, mode=0o750, exist_ok=True)
            self._lock_fd = _lock.acquire(self.data_dir)
            try:
                result, self._active_first = replay(self.data_dir)
                created = not os.path.exists(self._active_path)
                self._fd = os.open(
                    self._active_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE
                )
                if created:
                    fsync_dir(self.data_dir)
                self._size = os.fstat(self._fd).st_size
            except BaseException:
                self._close_files()
                raise
        except OSError as e:
            # a read-only or unwritable data_dir: one line that says which and why
            where = e.filename if isinstance(e.filename, str) else self.data_dir
            if isinstance(e, FileExistsError):  # os.makedirs on a file
                raise JournalError(f"{where}: not a directory; not starting") from None
            raise JournalError(f"{where}: cannot open the journal: {describe(e)}") from None
        self._seq = result.last_seq
        self._snapshot_seq = result.snapshot_seq
        self._failed = None
        self._closing = False
        return result

    # ------------------------------------------------------------- appending

    def _stamp(self, events: Sequence[JournalEvent]) -> tuple[bytes, list[Event]]:
        ms = round(self._clock() * 1000)
        if ms != self._ts_ms:  # appends within one millisecond share the string
            self._ts_ms, self._ts = ms, format_ts(ms / 1000)
        ts = self._ts
        seq = self._seq
        lines: list[bytes] = []
        out: list[Event] = []
        for ev in events:
            name = ev.get("event")
            if not isinstance(name, str) or not name:
                raise ValueError(f"a journal event needs a non-empty 'event' name, got {name!r}")
            seq += 1
            rec: Event = {"v": FORMAT_VERSION, "seq": seq, "ts": ts, "event": name, **ev}
            if not _RESERVED.isdisjoint(ev):
                # the journal owns these, whatever the caller passed
                rec["v"] = FORMAT_VERSION
                rec["seq"] = seq
                rec["ts"] = ts
                rec.pop("crc", None)
            try:
                line = seal(rec)
            except (RecursionError, ValueError) as e:
                # one event too deep to write must not take its batch with it (a type
                # JSON does not know is a bug upstream: TypeError, loudly)
                rec, line = writable(rec, e)
            lines.append(line)
            out.append(rec)
        self._seq = seq  # only once every event serialised: a bad one leaves no gap
        return (lines[0] if len(lines) == 1 else b"".join(lines)), out

    def _wait_level(self, durable: bool) -> int:
        policy = self.config.fsync
        if policy == "always":
            return _WAIT_FSYNC
        if policy == "transitions":
            return _WAIT_FSYNC if durable else _NO_WAIT
        return _WAIT_WRITE if durable else _NO_WAIT

    def _check_usable(self) -> None:
        if self._lock_fd is None:
            raise JournalError(f"{self.data_dir}: journal is not open")
        if self._failed is not None:
            raise JournalError(self._failed)
        if self._closing:
            raise JournalError(f"{self.data_dir}: journal is closing")

    async def append(self, events: Sequence[JournalEvent], *, durable: bool = True) -> list[Event]:
        """Stamp `events` with v/seq/ts, write them, and return the stamped copies
        once they are as durable as the fsync policy promises (see module doc).

        Each event is one of engine/common/records.py's types, named by its
        `event` (checked again at run time: tests and plugins are not type
        checked). Concurrent calls share writes and fsyncs. When the disk
        refuses the write (full, read-only) the lines are
        held in memory and written once it takes them again, and this returns
        all the same (engine/journal/hold.py; `degraded` says so). Raises
        JournalError once the journal is unusable (a failed fsync, an I/O error);
        after that every append fails until the journal is reopened.
        """
        stamped, done = self.submit(events, durable=durable)
        if done is not None:
            await done
        return stamped

    def submit(
        self, events: Sequence[JournalEvent], *, durable: bool = True
    ) -> tuple[list[Event], asyncio.Future[None] | None]:
        """append() without waiting: the events are stamped and queued now (so
        their order is the order of the calls) and the future, if any, is done
        when they are as durable as the policy promises. Raises as append() does.
        """
        if self._lock_fd is None or self._failed is not None or self._closing:
            self._check_usable()  # raises the right error
        if not events:
            return [], None
        blob, stamped = self._stamp(events)
        writer, wake = self._writer, self._wake
        if writer is None or wake is None or writer.done():
            self._start_writer()
            writer, wake = self._writer, self._wake
            assert writer is not None and wake is not None
        self._buf.append(blob)
        level = self._level_durable if durable else self._level_other
        if level == _NO_WAIT:
            wake.set()
            return stamped, None
        fut: asyncio.Future[None] = writer.get_loop().create_future()
        (self._sync_waiters if level == _WAIT_FSYNC else self._write_waiters).append(fut)
        wake.set()
        return stamped, fut

    def append_sync(self, events: Sequence[JournalEvent], *, durable: bool = True) -> list[Event]:
        """append() for code without an event loop: write now, fsync per the policy."""
        self._check_usable()
        self._no_writer("append_sync")
        if not events:
            return []
        blob, stamped = self._stamp(events)
        policy = self.config.fsync
        sync = (
            policy == "always"
            or (policy == "transitions" and durable)
            or (
                policy == "interval"
                and time.monotonic() - self._last_fsync >= self.config.fsync_interval
            )
        )
        self._report(self._write_sync([blob], sync))
        return stamped

    def _no_writer(self, what: str) -> None:
        if self._writer is not None and not self._writer.done():
            raise RuntimeError(f"{what}() cannot be used while an event loop drives this journal")

    async def flush(self) -> None:
        """Return once everything appended so far is written and fsynced."""
        if self._lock_fd is None:
            raise JournalError(f"{self.data_dir}: journal is not open")
        if self._failed is not None:
            raise JournalError(self._failed)
        self._start_writer()
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sync_waiters.append(fut)
        self._kick()
        await fut

    def flush_sync(self) -> None:
        self._check_usable()
        self._no_writer("flush_sync")
        self._report(self._write_sync([], True))

    # --------------------------------------------------------------- snapshots

    def _snapshot_head(self, state_json: bytes, seq: int) -> bytes:
        """The snapshot object around an encoded state, without its checksum."""
        if not 0 <= seq <= self._seq:
            raise ValueError(f"snapshot seq {seq} is not within the log (last seq {self._seq})")
        return b'{"v":%d,"seq":%d,"state":%s}' % (FORMAT_VERSION, seq, state_json)

    def _store_snapshot(self, blob: bytes, seq: int) -> list[str]:
        path = os.path.join(self.data_dir, f"snapshot-{seq:012d}.json")
        write_file(path, blob)
        self._snapshot_seq = max(self._snapshot_seq, seq)
        removed = []
        for _s, old in snapshot_files(self.data_dir)[KEEP_SNAPSHOTS:]:
            if not os.path.isfile(old):
                continue  # not a snapshot we wrote (a directory with its name): not ours to remove
            os.unlink(old)
            removed.append(old)
        removed += self._compact_locked(self.retention_seconds, sync_dir=False)
        if removed:
            fsync_dir(self.data_dir)
        return removed

    async def write_snapshot(self, state: Mapping[str, Any], seq: int) -> str:
        """Store `state` (the fold of every event up to `seq`) durably; return its path.

        The state is serialised at once, so the caller may keep changing it. The
        log is fsynced first, so a snapshot never gets ahead of it. Keeps the two
        newest snapshots and removes segments that are covered and expired.
        """
        return await self.write_snapshot_encoded(encode_json(state), seq)

    async def write_snapshot_encoded(self, state_json: bytes, seq: int) -> str:
        """write_snapshot() of a state already encoded as JSON (see
        engine/journal/snapshot_copy.py); the line is sealed off the event loop."""
        self._check_usable()
        if self._held.active:  # the log is not on disk: a snapshot would get ahead of it
            raise JournalError(f"no snapshot while the journal is degraded: {self.degraded}")
        head = self._snapshot_head(state_json, seq)
        await self.flush()
        assert self._executor is not None

        def store() -> None:
            self._store_snapshot(seal_encoded(head), seq)

        await asyncio.get_running_loop().run_in_executor(self._executor, store)
        return os.path.join(self.data_dir, f"snapshot-{seq:012d}.json")

    def write_snapshot_sync(self, state: Mapping[str, Any], seq: int) -> str:
        self._check_usable()
        self._no_writer("write_snapshot_sync")
        head = self._snapshot_head(encode_json(state), seq)
        self.flush_sync()
        self._store_snapshot(seal_encoded(head), seq)
        return os.path.join(self.data_dir, f"snapshot-{seq:012d}.json")

    def compact(self, retention_seconds: float | None = None) -> list[str]:
        """Delete rotated segments that both kept snapshots cover and whose last
        event is older than `retention_seconds` (default: the constructor's).
        Younger covered segments stay: reports read history from them."""
        self._check_usable()
        keep = self.retention_seconds if retention_seconds is None else retention_seconds
        removed = self._compact_locked(keep, sync_dir=True)
        return removed

    def _compact_locked(self, retention: float, *, sync_dir: bool) -> list[str]:
        with self._io_lock:
            # Covered means covered by the older kept snapshot too: if the newest
            # turns out damaged, open() falls back to it and needs the log after it.
            snaps = snapshot_files(self.data_dir)
            covered = snaps[KEEP_SNAPSHOTS - 1][0] if len(snaps) >= KEEP_SNAPSHOTS else 0
            segs = [s for s in list_segments(self.data_dir) if not s.active]
            next_first = self._active_first if self._active_first is not None else self._seq + 1
            horizon = self._clock() - retention
            removed: list[str] = []
            for i, seg in enumerate(segs):
                after = segs[i + 1].first_seq if i + 1 < len(segs) else next_first
                if after is None or after - 1 > covered:
                    break  # holds events only the log has
                _first, _last, last_ts, _size = segment_edges(seg.path)
                try:
                    when = parse_ts(last_ts) if last_ts else os.path.getmtime(seg.path)
                except ValueError:
                    when = os.path.getmtime(seg.path)
                if when > horizon:
                    break  # later segments are younger still
                os.unlink(seg.path)
                removed.append(seg.path)
            if removed and sync_dir:
                fsync_dir(self.data_dir)
            return removed

    # ------------------------------------------------------------------ close

    async def close(self) -> None:
        """Write and fsync what is pending, stop the writer, release the lock."""
        if self._lock_fd is None:
            return
        try:
            if self._writer is not None and not self._writer.done():
                if self._failed is None:
                    await self.flush()
                self._closing = True
                self._kick()
                with contextlib.suppress(JournalError):
                    await self._writer
            elif self._fd is not None and self._failed is None:
                self._report(self._write_sync([], True))
        finally:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._writer = None
            self._close_files()

    def close_sync(self) -> None:
        """close() for code without an event loop."""
        if self._lock_fd is None:
            return
        self._no_writer("close_sync")
        try:
            if self._fd is not None and self._failed is None:
                self._report(self._write_sync([], True))
        finally:
            self._writer = None
            self._close_files()

    def _close_files(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        with self._io_lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
        if self._lock_fd is not None:
            _lock.release(self._lock_fd)
            self._lock_fd = None
