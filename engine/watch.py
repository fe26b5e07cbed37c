"""Turns file changes under the configuration paths into one "reload requested".

watchdog's observer runs in its own thread and only records what happened; the
event loop decides when the burst is over. Editors and git save in several steps
(write a temp file and rename it; delete and create; truncate and write;
`git checkout` touching many files), so a reload waits until no relevant event
came for `quiet` seconds and no file is still open for writing (a `modified`
not yet followed by its `closed`), and at most `max_wait` seconds.
"""

from __future__ import annotations

import asyncio
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
    """Watches folders and files; calls `on_change()` on the loop once per burst."""

    def __init__(
        self,
        paths: Iterable[str],
        on_change: Callable[[], Awaitable[None]],
        loop: asyncio.AbstractEventLoop,
        *,
        quiet: float = 0.1,
        max_wait: float = 2.0,
    ) -> None:
        self.on_change = on_change
        self.loop = loop
        self.quiet = quiet
        self.max_wait = max_wait
        self.config_files = frozenset(os.path.abspath(p) for p in paths if os.path.isfile(p))
        self._lock = threading.Lock()
        self._first = 0.0
        self._last = 0.0
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
            for p in paths:
                if isinstance(event, FileModifiedEvent):
                    self._open.add(p)
                elif isinstance(event, FileClosedEvent) or event.event_type in ("deleted", "moved"):
                    self._open.discard(p)
        self.loop.call_soon_threadsafe(self._wake.set)

    def start(self) -> None:
        self._observer.start()
        self._task = self.loop.create_task(self._run(), name="config-watcher")

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while True:
                with self._lock:
                    now = time.monotonic()
                    quiet_for = now - self._last
                    waited = now - self._first
                    still_open = bool(self._open)
                if waited >= self.max_wait or (quiet_for >= self.quiet and not still_open):
                    break
                await asyncio.sleep(max(0.01, self.quiet - quiet_for) if not still_open else 0.05)
            with self._lock:
                self._first = 0.0
                self._open.clear()
            self._wake.clear()
            await self.on_change()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._observer.stop()
        await asyncio.to_thread(self._observer.join, 5)
