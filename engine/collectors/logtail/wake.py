"""Waking the collector when a followed file is written (inotify, through watchdog).

Without it a line waits for the collector's next `interval`; with it the daemon
runs a pass as soon as a followed file changes (engine/daemon/react.py coalesces
the wakes, so a busy log costs one pass per `react` period, not one per write).

watchdog's observer watches the folders of the configured paths (a glob's folder
when the folder part has no wildcard) and of the files being read (a symlink's
target may live elsewhere). Only events on a followed name, or on a file being
read, wake; the first one after a pass calls `wake()` (from the observer's
thread) and the next pass re-arms it, so a burst of writes is one call. Anything
missed here (a folder that is itself a glob, a watch that could not be set, an
inotify limit) is still read on the interval: waking only makes reads earlier.
"""

from __future__ import annotations

import contextlib
import fnmatch
import glob
import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import ObservedWatch

log = logging.getLogger("vigil")

_WRITES = frozenset({"created", "modified", "moved", "closed", "deleted"})


class Waker(FileSystemEventHandler):
    def __init__(self, patterns: Sequence[str], wake: Callable[[], None]) -> None:
        self.patterns = tuple(patterns)
        self.wake = wake
        self._reading: frozenset[str] = frozenset()  # real paths of the files being read
        self._armed = threading.Event()
        self._armed.set()
        self._observer = Observer()
        self._watches: dict[str, ObservedWatch] = {}
        self._failed: set[str] = set()  # logged once each
        self._observer.daemon = True
        self._observer.start()
        self.follow(())

    def arm(self) -> None:
        """A pass starts: the next write wakes again."""
        self._armed.set()

    def follow(self, reading: Iterable[str]) -> None:
        """Watch the configured folders and those of `reading` (the real paths of the
        files open now); cheap when nothing changed (called after every pass)."""
        reading = frozenset(reading)
        if reading == self._reading and self._watches:
            return
        self._reading = reading
        folders = {
            os.path.dirname(p) for p in self.patterns if not glob.has_magic(os.path.dirname(p))
        }
        folders |= {os.path.dirname(p) for p in reading}
        for folder in set(self._watches) - folders:
            with contextlib.suppress(KeyError, OSError):  # gone: the watch ended itself
                self._observer.unschedule(self._watches.pop(folder))
        for folder in folders - set(self._watches):
            try:
                self._watches[folder] = self._observer.schedule(self, folder, recursive=False)
            except OSError as e:  # missing folder (created later), inotify limits
                if folder not in self._failed:
                    self._failed.add(folder)
                    log.info(
                        "logtail: not woken by writes in %s (%s): read on its interval", folder, e
                    )

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in _WRITES or event.is_directory or not self._armed.is_set():
            return
        paths = [os.fsdecode(event.src_path), os.fsdecode(getattr(event, "dest_path", "") or "")]
        if any(p and (p in self._reading or self._followed(p)) for p in paths):
            self._armed.clear()
            self.wake()

    def _followed(self, path: str) -> bool:
        return any(fnmatch.fnmatchcase(path, p) for p in self.patterns)

    def close(self) -> None:
        self._observer.stop()
        # the observer thread ends within its timeout (1 s); not joined: a close
        # must not hold the event loop
