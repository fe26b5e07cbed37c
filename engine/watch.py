"""Turns file changes under the configuration paths into one "reload requested".

watchdog's observer runs in its own thread and only records what happened; the
event loop decides when the burst is over. Editors and git save in several steps
(write a temp file and rename it; delete and create; truncate and write;
`git checkout` touching many files), so a reload waits until no relevant event
came for `quiet` seconds and no file is still open for writing (a `modified`
not yet followed by its `closed`), and at most `max_wait` seconds.

Loading a large configuration takes about as long as the quiet period, so the
two overlap: a round starts loading after a short `early` pause, and the reload
calls `settled()` between loading and swapping. That waits out the rest of the
quiet period and says whether anything happened since the round began; if so,
what was loaded may be a half-done save, the reload drops it, and the next
round loads again. Only a configuration that stayed quiet for `quiet` seconds
is ever swapped in (or rejected), as without the overlap, but sooner.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterable

from watchdog.events import (
    FileClosedEvent,
    FileModifiedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

log = logging.getLogger("vigil.watch")

YAML = (".yaml", ".yml")
_EDITS = frozenset({"created", "deleted", "modified", "moved", "closed"})


def _relevant(path: str, config_files: frozenset[str]) -> bool:
    name = os.path.basename(path)
    # editor droppings: vim's swap and 4913 probe, emacs' #auto-save# and lock files
    if name.startswith((".#", "#")) or name.endswith(("~", ".swp", ".swx")) or name == "4913":
        return False
    return path.endswith(YAML) or os.path.abspath(path) in config_files


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: ConfigWatcher) -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        # reads (our own reload reads every file: opened, closed_no_write) and
        # attribute changes are not edits; reacting to them would loop
        if event.event_type not in _EDITS:
            return
        paths = [os.fsdecode(event.src_path)]
        dest = getattr(event, "dest_path", "")
        if dest:
            paths.append(os.fsdecode(dest))
        relevant = [p for p in paths if _relevant(p, self.watcher.config_files)]
        if not relevant or (event.is_directory and event.event_type == "modified"):
            return
        self.watcher.note(event, relevant)


class ConfigWatcher:
    """Watches folders and files; calls `on_change()` on the loop once per burst.

    `on_change` should call `settled()` once it has loaded the files and before it
    acts on them, and act only if that returns True."""

    def __init__(
        self,
        paths: Iterable[str],
        on_change: Callable[[], Awaitable[None]],
        loop: asyncio.AbstractEventLoop,
        *,
        quiet: float = 0.1,
        max_wait: float = 2.0,
        early: float = 0.02,
    ) -> None:
        self.on_change = on_change
        self.loop = loop
        self.quiet = quiet
        self.max_wait = max_wait
        self.early = min(early, quiet)
        self.config_files = frozenset(os.path.abspath(p) for p in paths if os.path.isfile(p))
        self._lock = threading.Lock()
        self._first = 0.0  # first event of the burst not yet loaded and settled
        self._last = 0.0
        self._events = 0  # relevant events so far
        self._round = 0  # ... when the current round began loading
        self._forced = False  # the current round began because max_wait was over
        self._open: set[str] = set()  # written to but not closed yet
        self._wake = asyncio.Event()
        self._observer = Observer()
        handler = _Handler(self)
        # folders are watched recursively; a single file's folder only at its level
        # (vigil.yaml often sits above data_dir, whose journal writes are noise)
        watched: dict[str, bool] = {}
        for p in paths:
            if os.path.isdir(p):
                watched[os.path.abspath(p)] = True
            else:
                d = os.path.dirname(os.path.abspath(p))
                if os.path.isdir(d):
                    watched.setdefault(d, False)
        for d, recursive in sorted(watched.items()):
            self._observer.schedule(handler, d, recursive=recursive)
        self._task: asyncio.Task[None] | None = None

    def note(self, event: FileSystemEvent, paths: list[str]) -> None:
        """Called from the observer thread."""
        now = time.monotonic()
        with self._lock:
            if not self._first:
                self._first = now
            self._last = now
            self._events += 1
            for p in paths:
                if isinstance(event, FileModifiedEvent):
                    self._open.add(p)
                elif isinstance(event, FileClosedEvent) or event.event_type in ("deleted", "moved"):
                    self._open.discard(p)
        self.loop.call_soon_threadsafe(self._wake.set)

    def start(self) -> None:
        self._observer.start()
        self._task = self.loop.create_task(self._run(), name="config-watcher")

    def _state(self) -> tuple[float, bool, bool]:
        """(seconds since the last event, a file is still open, max_wait is over)."""
        with self._lock:
            now = time.monotonic()
            overdue = bool(self._first) and now - self._first >= self.max_wait
            if overdue:
                self._open.clear()  # a `closed` we never saw must not hold reloads forever
            return now - self._last, bool(self._open), overdue

    async def _quiet_for(self, seconds: float) -> bool:
        """Wait until no event came for `seconds` and no file is open, or max_wait is
        over (then True)."""
        while True:
            quiet_for, still_open, overdue = self._state()
            if overdue:
                return True
            if quiet_for >= seconds and not still_open:
                return False
            await asyncio.sleep(max(0.005, seconds - quiet_for) if not still_open else 0.02)

    async def settled(self) -> bool:
        """Between loading and acting: wait out the quiet period; True if no event
        came since this round began loading (or the round was forced by max_wait:
        act on what was loaded), False if the files changed meanwhile (drop what
        was loaded; another round follows)."""
        if self._forced:
            return True
        overdue = await self._quiet_for(self.quiet)
        with self._lock:
            return overdue or self._events == self._round

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            overdue = await self._quiet_for(self.early)
            with self._lock:
                self._round = self._events
                self._forced = overdue
                if overdue:
                    self._first = 0.0  # max_wait counts again from the next event
            try:
                await self.on_change()
            except Exception:  # one failed reload must not end hot reload for good
                log.exception("reloading after a file change failed")
            with self._lock:
                if self._events != self._round:
                    self._wake.set()  # more happened meanwhile: another round
                else:
                    self._first = 0.0  # this burst is handled

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._observer.stop()
        await asyncio.to_thread(self._observer.join, 5)
