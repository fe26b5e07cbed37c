"""The history index kept beside the journal, and the thread that keeps it.

``HistoryIndex(data_dir)`` follows the journal: on start it checks the index
(engine/journal/history_build.py) against the journal and rebuilds it when it is
missing, damaged or not covered by the journal any more, then folds in whatever the
journal has past the index's position, and again every `poll` seconds or when kicked.

The daemon runs the follower in a child process (engine/journal/history_child.py):
rebuilding a year of journal is a minute of Python, and in a thread of the daemon
it would hold the interpreter lock against the event loop (ticks measured 20-140 ms
late during a rebuild). The child says where it is on its stdout; closing its stdin
stops it (so it also ends with a daemon killed -9). Tools and tests may follow in
a thread instead (`start(child=False)`). Queries (engine/journal/history_query.py)
run in a thread of their own with a read-only connection (WAL: readers do not wait
for the writer), never in the event loop.

Each pass also keeps the rows `vigil report` reads (engine/journal/digest.py), in
data_dir/history/rows. The index and the rows can be deleted at any time: they are
rebuilt from the journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from engine.errors import JournalError, VigilError
from engine.journal.digest import Digester
from engine.journal.history_build import Builder, IndexBroken, connect, index_path, remove_index
from engine.journal.history_query import Reader
from engine.journal.history_tail import Cursor, events_after
from engine.journal.reader import iter_events

log = logging.getLogger("vigil.history")

T = TypeVar("T")

BATCH = 2000  # events per transaction while catching up
PAUSE = 0.002  # seconds between batches: the event loop's thread takes the interpreter
FRESH_WAIT = 0.5  # seconds a query waits for the index to catch up with the journal


class NotReady(VigilError):
    """The index is still catching up with the journal (after a first start or a rebuild)."""


class HistoryIndex:
    """The history index of one data_dir and the thread that follows the journal."""

    def __init__(
        self, data_dir: str, *, poll: float = 1.0, pause: float = PAUSE, batch: int = BATCH
    ) -> None:
        self.data_dir = data_dir
        self.path = index_path(data_dir)
        self.poll = poll
        self.pause = pause
        self.batch = batch
        self.ready = False  # caught up with the journal at least once since start
        self.rebuilds = 0
        self.indexed = 0  # events folded in since start
        self.error: str | None = None  # why the last pass failed (a damaged journal)
        self._passes = 0  # completed passes that reached the journal's end
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._queries: ThreadPoolExecutor | None = None
        self._reader: Reader | None = None
        self._cursor = Cursor()  # where the last pass stopped reading the journal
        self._child: subprocess.Popen[bytes] | None = None
        self.rows = Digester(data_dir)  # the report's rows, kept beside the index

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, *, child: bool = True) -> None:
        """Follow the journal in a child process (or a thread of this one)."""
        if not child:
            self._thread = threading.Thread(target=self.run, name="vigil-history", daemon=True)
            self._thread.start()
            return
        self._child = subprocess.Popen(
            [sys.executable, "-m", "engine.journal.history_child", self.data_dir, str(self.poll)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        self._thread = threading.Thread(target=self._listen, name="vigil-history", daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        """Take the child's reports: `ready|building <events indexed> <passes>`."""
        assert self._child is not None and self._child.stdout is not None
        for line in self._child.stdout:
            parts = line.split()
            if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                self.indexed = int(parts[1])
                self.ready = parts[0] == b"ready"
                self._passes = int(parts[2])

    def report(self) -> None:
        """Where the follower is, for the parent (child mode); called after each batch."""

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        child, self._child = self._child, None
        if child is not None:
            assert child.stdin is not None
            with contextlib.suppress(OSError):
                child.stdin.close()
            try:
                child.wait(timeout=10.0)
            except (subprocess.TimeoutExpired, OSError):
                # OSError: the timed wait's sleep failed (libfaketime's EINVAL once
                # the clock is offset); the index is a cache, a kill loses nothing
                child.kill()
                child.wait()
        if self._thread is not None:
            self._thread.join(timeout=10.0)
            self._thread = None
        if self._queries is not None:
            self._queries.submit(self._close_reader).result(timeout=10.0)
            self._queries.shutdown(wait=True)
            self._queries = None

    def kick(self) -> None:
        """Look at the journal now rather than at the next poll."""
        self._wake.set()
        child = self._child
        if child is not None and child.stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                child.stdin.write(b"k")
                child.stdin.flush()

    def run(self) -> None:
        """The follower's loop, until stop()."""
        builder: Builder | None = None
        while not self._stop.is_set():
            try:
                if builder is None:
                    builder = self.open_builder()
                self.catch_up(builder)
                self.error = None
            except (IndexBroken, sqlite3.DatabaseError) as e:
                log.warning("history index %s: %s; rebuilding it from the journal", self.path, e)
                if builder is not None:
                    builder.db.close()
                builder = None
                remove_index(self.data_dir)
                self.ready = False
                continue
            except (JournalError, OSError) as e:
                if self.error != str(e):
                    log.warning("history index cannot read the journal: %s", e)
                self.error = str(e)
            self.keep_rows()
            self._wake.wait(self.poll)
            self._wake.clear()
        if builder is not None:
            builder.db.close()

    # -- building (the follower's thread, or a caller's without one) --------------------------
    def open_builder(self) -> Builder:
        """The index as it is if the journal still holds its position; else a new one."""
        self._cursor = Cursor()
        db: sqlite3.Connection | None = None
        try:
            db = connect(self.path, write=True)
            if db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise IndexBroken("the index file is damaged")
            b = Builder(db)
            if b.seq and not self._journal_holds(b.seq, b.ts):
                raise IndexBroken(f"the journal no longer holds seq {b.seq} of {b.ts}")
            return b
        except (IndexBroken, sqlite3.DatabaseError) as e:
            if db is not None:
                db.close()
            log.warning("history index %s: %s; rebuilding it from the journal", self.path, e)
            remove_index(self.data_dir)
            self.rebuilds += 1
            self.ready = False
            return Builder(connect(self.path, write=True))

    def _journal_holds(self, seq: int, ts: str) -> bool:
        for ev in iter_events(self.data_dir, seq - 1):
            return bool(ev["seq"] == seq and ev.get("ts") == ts)
        return False

    def catch_up(self, builder: Builder) -> int:
        """Fold in every journal event past the index's position, a batch at a time."""
        events = events_after(self.data_dir, builder.seq, self._cursor)
        total = 0
        while not self._stop.is_set():
            n = builder.fold(itertools.islice(events, self.batch))
            total += n
            self.indexed += n
            self.report()
            if n < self.batch:
                break
            if self.pause:
                time.sleep(self.pause)
        else:
            return total
        self.ready = True
        self._passes += 1
        self.report()
        return total

    def keep_rows(self) -> None:
        """Keep the report's rows of the journal's new lines (engine/journal/digest.py)."""
        try:
            self.rows.update(self._stop.is_set)
        except OSError as e:
            log.warning("history index cannot keep the report's rows: %s", e)

    def build_now(self) -> int:
        """Bring the index up to date in the caller's thread (tools, tests, benchmarks)."""
        b = self.open_builder()
        try:
            return self.catch_up(b)
        finally:
            b.db.close()
            self.keep_rows()

    # -- queries -----------------------------------------------------------------------------
    def _close_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def _call(self, fn: Callable[[Reader], T]) -> T:
        if self._reader is None:
            self._reader = Reader(self.data_dir)
        return fn(self._reader)

    async def query(self, fn: Callable[[Reader], T], *, fresh: float = FRESH_WAIT) -> T:
        """fn(reader) in the query thread, once the index has caught up with what the
        journal holds now (waiting up to `fresh` seconds). NotReady while a first
        build or a rebuild is still running."""
        seen = self._passes
        self.kick()
        deadline = time.monotonic() + fresh
        while self._passes == seen and time.monotonic() < deadline and self._thread is not None:
            await asyncio.sleep(0.01)
        if not self.ready:
            raise NotReady(
                f"the history index is catching up with the journal ({self.indexed} events "
                "indexed so far); try again shortly"
            )
        if self._queries is None:
            self._queries = ThreadPoolExecutor(1, "vigil-history-query")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._queries, self._call, fn)
        except (IndexBroken, sqlite3.DatabaseError) as e:
            with contextlib.suppress(Exception):
                await loop.run_in_executor(self._queries, self._close_reader)
            self.kick()
            raise NotReady(f"the history index is being rebuilt ({e}); try again shortly") from e
