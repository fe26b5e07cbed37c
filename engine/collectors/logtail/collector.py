"""`logtail`: follow log files and globs through rotations, from a saved offset.

    - name: logs
      type: logtail
      paths: [/var/log/nginx/access.log, /var/log/app/*.log]
      journald: {units: [ssh.service]}   # and/or entries from journald (journald.py)
      start: saved            # saved (default) | end | beginning
      max_line_bytes: 16KiB   # longer lines are cut (counted in `truncated`)
      batch_bytes: 1MiB       # one read; one batch for the line sinks
      max_pass_bytes: 64MiB   # read per pass at most; the rest the next pass
      recent_lines: 100       # the newest lines kept for rules to read
      save_interval: 5s       # journal a file's offset at most this often (0s: every pass)
      react: 50ms             # a write wakes a pass at once, at most one per react (0s: off)
      interval: 1s
      # parsing and detection (engine/detect/settings.py): any of these keys adds
      # a DetectSink, and the sample gains `keys` (for `each`) and `totals`
      format: nginx
      key: ip
      packs: [sqli, xss, traversal, cmdi, scanners]
      windows: {errors_5m: {kind: count, window: 5m, where: {status: ["401", "403"]}}}

When no followed file can be read (permission denied, not a regular file) the
collector is down (collector_down); a missing file is not an error, it may be
created later. The sample (what rules read as `logs.lines`, `each: logs.files`):

    lines, bytes, truncated, rotations   totals over the followed paths
    files        [{labels: {path}, lines, bytes, truncated, rotations, offset, error}]
    recent       [{path, line}], the newest `recent_lines` lines, oldest first
    sink_errors  line sinks that raised (engine/collectors/logtail/sink.py)
    keys, totals with detection: one element per key, and totals (engine/detect/sink.py)

With `react` (engine/collectors/logtail/wake.py) a write to a followed file
wakes a pass without waiting for `interval`, and a pass that found new pattern
hits (or, without detection, new lines) says so in `news()`: the daemon then
evaluates the groups that read this collector at once (engine/daemon/react.py).

Reading, parsing and detection run in a child process (reader.py, isolated.py;
`isolate: false`: in a worker thread), one pass at a time, bounded per pass by
bytes and by half the collector's timeout. A path's offset and counters are one
`collector_state` record (engine/collectors/base.py, Stateful), journaled after
a pass that moved them (at most every `save_interval`, and once more at a clean
stop) before that pass's sample is published; the next start resumes from them
(see tailer.py for how `start` applies). Offset and counters move back
together, so the counters rules read count every line exactly once across
restarts; after a crash the lines read since the last record are read again
(and handed to the line sinks again): at most `save_interval` of them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, ClassVar, Self

from engine.collectors._util import OneThread
from engine.collectors.base import Sample
from engine.collectors.logtail.isolated import ReaderProcess
from engine.collectors.logtail.reader import (
    Changes,
    LogtailSettings,
    Pass,
    Reader,
    detects,
    parse_settings,
)
from engine.collectors.logtail.sink import LineSink
from engine.collectors.logtail.wake import Waker
from engine.config.model import CollectorConfig
from engine.detect import settings as detect
from engine.errors import CollectorError

__all__ = ["LogtailCollector", "LogtailSettings"]


class LogtailCollector:
    type_name: ClassVar[str] = "logtail"
    # its samples share the elements of keys that did not change, never changed
    # once handed out (engine/detect/sink.py): the boundary skips them (Memo), in
    # the reader process, or in the daemon with `isolate: false`
    shares_values: ClassVar[bool] = True

    @property
    def cleaned(self) -> bool:
        """Whether its samples come cleaned at the boundary (its reader process walks
        them where they are read, isolated.py): the daemon does not walk them again."""
        return isinstance(self.reader, ReaderProcess)

    def __init__(self, config: CollectorConfig, settings: LogtailSettings) -> None:
        self.name = config.name
        self.interval = config.interval
        self.timeout = config.timeout
        self.settings = settings
        # the per-key windows start empty (engine/collectors/base.py, fills_for)
        self.fills_for = detect.span(settings.detect) if settings.detect is not None else 0.0
        self.react = settings.react or None  # read by engine/daemon/react.py
        self._waker: Waker | None = None
        self._news = False
        # the child starts at the first pass: building a collector (validation,
        # a reload that may be refused) starts nothing
        self.reader: Reader | ReaderProcess = (
            ReaderProcess(config) if settings.isolate else Reader(settings, config.timeout)
        )
        self._thread = OneThread()
        self._changes: Changes = {}

    @classmethod
    def from_config(cls, config: CollectorConfig) -> Self:
        return cls(config, parse_settings(config))

    @classmethod
    def metric_names(cls, config: CollectorConfig) -> frozenset[str] | None:
        names = ("lines", "bytes", "truncated", "rotations", "files", "recent", "sink_errors")
        return frozenset((*names, "keys", "totals") if detects(config) else names)

    def add_sink(self, sink: LineSink) -> None:
        """Hand every batch of lines to `sink` as well (engine/collectors/logtail/sink.py);
        before the first collect, with `isolate: false` (a sink runs where the lines are read)."""
        if not isinstance(self.reader, Reader):
            raise TypeError("add_sink needs isolate: false")
        self.reader.add_sink(sink)

    # -- Stateful (engine/collectors/base.py) --------------------------------------------

    def restore(self, saved: Mapping[str, Any]) -> None:
        self.reader.restore(saved)

    def state_changes(self) -> dict[str, dict[str, Any] | None]:
        out, self._changes = self._changes, {}
        return out

    # -- Reacting (engine/daemon/react.py) -------------------------------------------------

    def watch(self, wake: Callable[[], None]) -> None:
        """Call `wake()` (from another thread) when a followed file is written."""
        if self.react is not None and self._waker is None:
            self._waker = Waker(self.settings.paths, wake)

    def news(self) -> bool:
        """Whether the last pass found what rules should see at once: new pattern
        hits (per-key counts), or new lines when there is no detection."""
        return self._news

    # -- Collector -------------------------------------------------------------------------

    async def collect(self, now: float) -> Sample:
        values = await self._pass(woken=False)
        assert values is not None
        return values

    async def collect_woken(self, now: float) -> Sample | None:
        """A pass woken by a write: its sample only when it has news(), else None
        (the lines are read and counted all the same; the interval's pass
        publishes them)."""
        return await self._pass(woken=True)

    async def aclose(self) -> None:
        closed = False
        if self._thread.idle():
            with contextlib.suppress(CollectorError):  # timed out
                # the daemon journals the last records at stop
                self._changes.update(await self._thread.run(self.reader.close, self.timeout))
                closed = True
        if not closed and isinstance(self.reader, ReaderProcess):
            self.reader.kill()  # its pass is abandoned: read again after the restart
        # (a thread's pass still running owns the files; it ends on its own bound)
        if self._waker is not None:
            self._waker.close()
            self._waker = None

    async def _pass(self, woken: bool) -> dict[str, Any] | None:
        waker = self._waker
        if waker is not None:
            waker.arm()  # before reading: a write from now on wakes the next pass
        p: Pass = await self._thread.run(partial(self.reader.run, woken), self.timeout)
        self._news = p.news
        self._changes.update(p.changes)
        if waker is not None:
            waker.follow(p.reading)
        return p.values
