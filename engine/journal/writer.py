"""Writing the active segment: group commit, fsync, rotation, and holding lines
in memory while the disk refuses them.

One writer task drains the journal's buffer into one write() and one fsync() per
batch, both run in a dedicated thread so the event loop keeps running while the
disk works; the ``*_sync`` API calls the same batch write in the caller's thread.
When a write fails for want of room or permission, the lines wait in memory
(engine/journal/hold.py) and are retried with backoff; a failed fsync or any
other I/O error makes the journal unusable.

Separate from engine/journal/journal.py, which stamps events, promises each
append its durability and owns open, snapshots and close: this is the file
descriptor's side of that promise, the base class Journal is built on.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from engine.config.model import LogConfig
from engine.errors import JournalError
from engine.journal.files import ACTIVE, FILE_MODE, fsync_dir, segment_edges, write_all
from engine.journal.hold import Held, JournalFatal, describe, recoverable
from engine.journal.lines import line_prefix

log = logging.getLogger("vigil.journal")


class SegmentWriter:
    """The writing half of a Journal: its active segment's file and the writer task."""

    def __init__(
        self,
        data_dir: str,
        config: LogConfig,
        *,
        on_fsync: Callable[[float], None] | None,
        on_degraded: Callable[[str | None], None] | None,
        on_fatal: Callable[[str], None] | None,
    ) -> None:
        self.data_dir = data_dir
        self.config = config
        self.on_fsync = on_fsync
        # called in the loop: with the reason when writes start being held in
        # memory (engine/journal/hold.py), with None once they are all on disk
        self.on_degraded = on_degraded
        self.on_fatal = on_fatal  # the journal can promise nothing more: stop
        self._held = Held()
        self._rotate_error: str | None = None
        self.fsync_seconds: collections.deque[float] = collections.deque(maxlen=1024)
        self.fsync_count = 0
        self._active_path = os.path.join(self.data_dir, ACTIVE)
        self._fd: int | None = None
        self._seq = 0  # the last seq stamped (by the Journal)
        self._active_first: int | None = None
        self._size = 0
        self._dirty = False  # written since the last fsync
        self._last_fsync = time.monotonic()
        self._io_lock = threading.Lock()  # file state belongs to whoever holds it
        self._failed: str | None = None
        # async side, created on first use inside the loop
        self._executor: ThreadPoolExecutor | None = None
        self._writer: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._buf: list[bytes] = []
        self._sync_waiters: list[asyncio.Future[None]] = []
        self._write_waiters: list[asyncio.Future[None]] = []
        self._closing = False

    @property
    def degraded(self) -> str | None:
        """Why writes are held in memory instead of on disk; None when they are not."""
        if self._held.reason is None:
            return None
        return f"{self._held.reason}; {self._held.lines()} event(s) held in memory"

    def _interval_due(self) -> bool:
        return self._dirty and time.monotonic() - self._last_fsync >= self.config.fsync_interval

    def _report(self, elapsed: float | None) -> None:
        if elapsed is None:
            return
        self.fsync_count += 1
        self.fsync_seconds.append(elapsed)
        if self.on_fsync is not None:
            self.on_fsync(elapsed)

    def _start_writer(self) -> None:
        if self._writer is not None and not self._writer.done():
            return
        self._executor = self._executor or ThreadPoolExecutor(1, "vigil-journal")
        self._wake = asyncio.Event()
        self._writer = asyncio.get_running_loop().create_task(
            self._write_loop(), name="vigil-journal-writer"
        )

    def _kick(self) -> None:
        assert self._wake is not None
        self._wake.set()

    def _want_timer(self) -> None:
        """Under `interval`, make sure dirty data gets its fsync even if appends stop."""
        if self.config.fsync != "interval" or not self._dirty or self._timer is not None:
            return
        delay = max(0.0, self._last_fsync + self.config.fsync_interval - time.monotonic())
        self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._wake is not None:
            self._wake.set()

    async def _write_loop(self) -> None:
        assert self._wake is not None and self._executor is not None
        loop = asyncio.get_running_loop()
        wake, executor, held = self._wake, self._executor, self._held
        inflight: list[asyncio.Future[None]] = []
        try:
            while True:
                if held.active:  # retry the disk with backoff, even if nothing is appended
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), held.delay(time.monotonic()))
                else:
                    await wake.wait()
                wake.clear()
                due = self.config.fsync == "interval" and self._interval_due()
                retry = held.due(time.monotonic()) or (held.active and self._closing)
                if not (self._buf or self._sync_waiters or self._write_waiters or due or retry):
                    if self._closing:
                        return
                    continue
                blobs, self._buf = self._buf, []
                sync = bool(self._sync_waiters) or due
                inflight = [*self._sync_waiters, *self._write_waiters]
                self._sync_waiters, self._write_waiters = [], []
                if held.active and not retry:
                    held.hold(blobs)  # behind what waits already: order is kept
                else:
                    if held.active:
                        blobs = held.take() + blobs
                    try:
                        elapsed = await loop.run_in_executor(
                            executor, self._write_batch, blobs, sync
                        )
                    except OSError as e:
                        if not recoverable(e):
                            raise JournalFatal(
                                f"{self._active_path}: journal write failed: {describe(e)}"
                            ) from e
                        self._hold(blobs, e)
                    else:
                        self._report(elapsed)
                        if held.active:
                            self._caught_up(len(blobs))
                # written, or held when the disk refused: either way the caller goes
                # on from memory (the module doc of engine/journal/hold.py)
                for fut in inflight:
                    if not fut.done():
                        fut.set_result(None)
                inflight = []
                self._want_timer()
                if self._closing and held.active:
                    self._give_up()
                    return
                if self._closing and not (self._buf or self._sync_waiters or self._write_waiters):
                    return
        except JournalFatal as e:
            self._failed = str(e)
            log.critical("%s; stopping so that a restart replays a journal that can be trusted", e)
            if self.on_fatal is not None:
                self.on_fatal(str(e))
        finally:
            # however we stop, nobody may wait forever for a write that will not come
            pending = [*inflight, *self._sync_waiters, *self._write_waiters]
            if self._failed is None and (pending or self._buf):
                self._failed = f"{self._active_path}: journal writer stopped"
            for fut in pending:
                if not fut.done():
                    fut.set_exception(JournalError(self._failed or "journal closed"))
            self._sync_waiters, self._write_waiters, self._buf = [], [], []

    def _hold(self, blobs: list[bytes], e: OSError) -> None:
        first = not self._held.active
        self._held.hold(blobs)
        self._held.failed(
            f"{self._active_path}: journal write failed: {describe(e)}", time.monotonic()
        )
        if first:
            log.error(
                "%s; alerting goes on from memory, the journal is retried with backoff",
                self._held.reason,
            )
            if self.on_degraded is not None:
                self.on_degraded(self.degraded)

    def _caught_up(self, blobs: int) -> None:
        reason, dropped = self._held.recovered()
        lost = f"; {dropped} event(s) past the memory cap were lost" if dropped else ""
        log.warning("journal writes again after: %s (caught up%s)", reason, lost)
        if self.on_degraded is not None:
            self.on_degraded(None)

    def _give_up(self) -> None:
        n = self._held.lines()
        self._failed = f"{self._held.reason}; {n} event(s) held in memory were lost at close"
        log.error("%s", self._failed)

    def _write_batch(self, blobs: list[bytes], sync: bool) -> float | None:
        """Write `blobs`, fsync if asked, rotate if due; seconds fsync took, or None.

        Runs in the journal thread (or the caller's, for the sync API).
        """
        with self._io_lock:
            fd = self._fd
            if fd is None:
                raise OSError(9, "journal file is closed")
            elapsed = None
            if blobs:
                data = blobs[0] if len(blobs) == 1 else b"".join(blobs)
                try:
                    write_all(fd, data)
                except OSError as e:
                    # never leave half a batch: later lines would follow garbage
                    try:
                        if os.fstat(fd).st_size != self._size:
                            os.ftruncate(fd, self._size)
                    except OSError as cut:
                        raise JournalFatal(
                            f"{self._active_path}: cannot cut a failed write back: {describe(cut)}"
                        ) from e
                    raise
                if self._active_first is None:
                    p = line_prefix(data)
                    self._active_first = p[0] if p else None
                self._size += len(data)
                self._dirty = True
            if sync and self._dirty:
                elapsed = self._fsync_locked()
            if self._size > self.config.segment_bytes:
                try:
                    took = self._rotate_locked()
                except OSError as err:
                    # the lines are written: only the rotation waits (for room, say)
                    if self._rotate_error is None:
                        log.warning("journal rotation postponed: %s", describe(err))
                    self._rotate_error = describe(err)
                else:
                    self._rotate_error = None
                    if took is not None:
                        elapsed = (elapsed or 0.0) + took
            return elapsed

    def _fsync_locked(self) -> float:
        assert self._fd is not None
        t0 = time.perf_counter()
        try:
            os.fdatasync(self._fd)  # data + size; the mtime is not worth a second write
        except OSError as e:
            # the kernel may have dropped the pages it could not write: a retry
            # would report success for data that is gone (hold.py)
            raise JournalFatal(f"{self._active_path}: fsync failed: {describe(e)}") from e
        self._dirty = False
        self._last_fsync = time.monotonic()
        return time.perf_counter() - t0

    def _rotate_locked(self) -> float | None:
        assert self._fd is not None
        sync = self.config.fsync != "never"
        elapsed = self._fsync_locked() if sync and self._dirty else None
        first = self._active_first
        if first is None:  # the first line was unreadable at open: fall back to a scan
            first, *_ = segment_edges(self._active_path)
            first = first if first is not None else self._seq
        target = os.path.join(self.data_dir, f"alerts-{first:012d}.jsonl")
        if os.path.exists(target):
            raise OSError(17, f"cannot rotate: {target} exists")
        # rename under the open fd, then swap: _fd is never unset, so the loop
        # thread never sees a journal that looks closed mid-rotation
        os.rename(self._active_path, target)
        new_fd = os.open(
            self._active_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, FILE_MODE
        )
        old_fd, self._fd = self._fd, new_fd
        os.close(old_fd)
        if sync:
            fsync_dir(self.data_dir)  # both the rename and the new file
        self._size = 0
        self._active_first = None
        self._dirty = False
        return elapsed

    def _write_sync(self, blobs: list[bytes], sync: bool) -> float | None:
        try:
            return self._write_batch(blobs, sync)
        except JournalFatal as e:
            self._failed = str(e)
            raise
        except OSError as e:
            self._failed = f"{self._active_path}: journal write failed: {describe(e)}"
            raise JournalError(self._failed) from e
