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
import contextlib
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
from watchdog.observers.api import ObservedWatch

from engine.daemon.watch_paths import Plan, is_under, make_plan

log = logging.getLogger("vigil.watch")

YAML = (".yaml", ".yml")
_EDITS = frozenset({"created", "deleted", "modified", "moved", "closed"})


def _relevant(path: str, plan: Plan, is_directory: bool) -> bool:
    if path in plan.names:  # a configured file, or a name on the way to a configured path
        return True
    name = os.path.basename(path)
    # editor droppings: vim's swap and 4913 probe, emacs' #auto-save# and lock files
    if name.startswith((".#", "#")) or name.endswith(("~", ".swp", ".swx")) or name == "4913":
        return False
    # in a configured folder: its YAML files, and folders coming and going with theirs
    return is_under(path, plan) and (is_directory or path.endswith(YAML))


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: ConfigWatcher) -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        # reads (our own reload reads every file: opened, closed_no_write) and
        # attribute changes are not edits; reacting to them would loop; a folder's
        # `modified` only says an entry in it changed, which has its own event
        if event.event_type not in _EDITS:
            return
        if event.is_directory and event.event_type == "modified":
            return
        paths = [os.fsdecode(event.src_path)]
        dest = getattr(event, "dest_path", "")
        if dest:
            paths.append(os.fsdecode(dest))
        plan = self.watcher.plan
        relevant = [p for p in paths if _relevant(p, plan, event.is_directory)]
        if relevant:
            self.watcher.note(event, relevant)


class ConfigWatcher:
    """Watches the configured paths; calls `on_change()` on the loop once per burst.

    `on_change` should call `settled()` once it has loaded the files and before it
    acts on them, and act only if that returns True.

    The paths are watched as paths, not as the folders they named at start
    (engine/daemon/watch_paths.py): before each round, and every `recheck` seconds in
    case an event was missed, they are resolved again and the watches follow.
    The first round runs at start() without any event: the configuration was
    read before anything watched it, and an edit in between must not be lost."""

    def __init__(
        self,
        paths: Callable[[], Iterable[str]],
        on_change: Callable[[], Awaitable[None]],
        loop: asyncio.AbstractEventLoop,
        *,
        quiet: float = 0.1,
        max_wait: float = 2.0,
        early: float = 0.02,
        recheck: float = 2.0,
    ) -> None:
        self.paths = paths  # called again at each look: a reload may change them
        self.on_change = on_change
        self.loop = loop
        self.quiet = quiet
        self.max_wait = max_wait
        self.early = min(early, quiet)
        self.recheck = recheck
        self.plan = Plan()
        self._lock = threading.Lock()
        self._first = 0.0  # first event of the burst not yet loaded and settled
        self._last = 0.0
        self._events = 0  # relevant events so far
        self._round = 0  # ... when the current round began loading
        self._forced = False  # the current round began because max_wait was over
        self._open: set[str] = set()  # written to but not closed yet
        self._wake = asyncio.Event()
        self._observer = Observer()
        self._handler = _Handler(self)
        self._watches: dict[tuple[str, bool], tuple[tuple[int, int], ObservedWatch]] = {}
        self._failed: set[tuple[str, bool]] = set()  # logged once each
        self._task: asyncio.Task[None] | None = None

    def _apply(self, plan: Plan) -> None:
        """Make the watches those of `plan` (blocking: a recursive watch walks its tree)."""
        dead = self._dead()
        for key, (ident, watch) in list(self._watches.items()):
            if plan.watches.get(key) != ident or key in dead:
                del self._watches[key]
                # KeyError/OSError: its folder is gone and the watch ended itself
                with contextlib.suppress(KeyError, OSError):
                    self._observer.unschedule(watch)
        for key, ident in plan.watches.items():
            if key in self._watches:
                continue
            try:
                watch = self._observer.schedule(self._handler, key[0], recursive=key[1])
            except OSError as e:  # gone meanwhile (the next plan sees it), inotify limits
                if key not in self._failed:
                    self._failed.add(key)
                    log.warning("cannot watch %s: %s", key[0], e)
                continue
            self._failed.discard(key)
            self._watches[key] = (ident, watch)
        self.plan = plan

    def _dead(self) -> set[tuple[str, bool]]:
        """Watches whose folder was deleted: watchdog ends them itself, and a folder
        made again under the same name may well get the same inode number."""
        running = {e.watch for e in list(self._observer.emitters) if e.should_keep_running()}
        return {key for key, (_, watch) in self._watches.items() if watch not in running}

    async def _replan(self) -> bool:
        """Resolve the paths again and move the watches; True if anything moved."""
        plan = await asyncio.to_thread(make_plan, tuple(self.paths()))
        if plan == self.plan and not self._dead():
            return False
        await asyncio.to_thread(self._apply, plan)
        return True

    def note(self, event: FileSystemEvent | None, paths: list[str]) -> None:
        """Called from the observer thread (`event` None: a re-check saw a change)."""
        now = time.monotonic()
        with self._lock:
            if not self._first:
                self._first = now
            self._last = now
            self._events += 1
            closes = isinstance(event, FileClosedEvent) or (
                event is not None and event.event_type in ("deleted", "moved")
            )
            for p in paths:
                if isinstance(event, FileModifiedEvent):
                    self._open.add(p)
                elif closes:
                    self._open.discard(p)
        self.loop.call_soon_threadsafe(self._wake.set)

    def start(self) -> None:
        """Watch from now on (blocks while the watches are set up), then re-check."""
        self._observer.start()
        self._apply(make_plan(tuple(self.paths())))
        self._task = self.loop.create_task(self._run(), name="config-watcher")
        self._wake.set()  # the first round: what changed before the watches were set

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
            try:
                await asyncio.wait_for(self._wake.wait(), self.recheck)
            except TimeoutError:
                # inotify can miss a change (a folder swapped while its watch was
                # being set up, a queue overflow): the paths are resolved again
                if await self._replan():
                    self.note(None, [])
                continue
            self._wake.clear()
            overdue = await self._quiet_for(self.early)
            # the watches follow the paths before loading, so whatever the load
            # misses is an event of the new watches, and another round
            await self._replan()
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
