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

Reading runs in a worker thread (OneThread), bounded per pass by bytes and by
the collector's timeout. A path's offset and counters are one `collector_state`
record (engine/collectors/base.py, Stateful), journaled after a pass that moved
them (at most every `save_interval`, and once more at a clean stop) before that
pass's sample is published; the next start resumes from them (see tailer.py for
how `start` applies). Offset and counters move back together, so the counters
rules read count every line exactly once across restarts; after a crash the
lines read since the last record are read again (and handed to the line sinks
again): at most `save_interval` of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from engine.collectors._util import OneThread, Settings
from engine.collectors.base import Sample
from engine.collectors.logtail import journald
from engine.collectors.logtail.follow import Limits
from engine.collectors.logtail.sink import LineSink, RecentLines
from engine.collectors.logtail.tailer import STARTS, Tailer
from engine.collectors.logtail.wake import Waker
from engine.config.model import CollectorConfig
from engine.detect import settings as detect
from engine.detect.sink import DetectSink
from engine.errors import CollectorError

MAX_RECENT = 10_000
MAX_LINE = 1024 * 1024


@dataclass(frozen=True, slots=True)
class LogtailSettings:
    paths: tuple[str, ...]
    start: str
    max_line_bytes: int
    batch_bytes: int
    max_pass_bytes: int
    recent_lines: int
    save_interval: float
    react: float = 0.05  # seconds between passes woken by writes; 0: only on the interval
    detect: detect.DetectSettings | None = None
    journald: journald.JournaldSettings | None = None


class LogtailCollector:
    type_name: ClassVar[str] = "logtail"
    # its samples share the elements of keys that did not change, never changed
    # once handed out (engine/detect/sink.py): the boundary skips them (Memo)
    shares_values: ClassVar[bool] = True

    def __init__(self, config: CollectorConfig, settings: LogtailSettings) -> None:
        self.name = config.name
        self.interval = config.interval
        self.timeout = config.timeout
        self.settings = settings
        self._recent = RecentLines(settings.recent_lines)
        self._sinks: list[LineSink] = [self._recent]
        limits = Limits(settings.max_line_bytes, settings.batch_bytes)
        self._detect = DetectSink(settings.detect) if settings.detect is not None else None
        # the per-key windows start empty (engine/collectors/base.py, fills_for)
        self.fills_for = detect.span(settings.detect) if settings.detect is not None else 0.0
        if self._detect is not None:
            self._sinks.append(self._detect)
        self.react = settings.react or None  # read by engine/daemon/react.py
        self._waker: Waker | None = None
        self._seen = -1  # hits (or lines) after the previous pass: news() compares
        self._news = False
        self._tailer = Tailer(settings.paths, limits, settings.start, self._sinks)
        self._journal = (
            journald.JournalSource(settings.journald, limits, settings.start, self._sinks)
            if settings.journald is not None
            else None
        )
        self._thread = OneThread()
        self._changes: dict[str, dict[str, Any] | None] = {}

    @classmethod
    def from_config(cls, config: CollectorConfig) -> Self:
        s = Settings(cls.type_name, config.settings)
        journal = journald.parse(s.get("journald")) if s.has("journald") else None
        if journal is None and not s.has("paths"):
            raise ValueError("paths: required (the files to follow), unless journald is set")
        paths = s.str_list("paths", (), nonempty=journal is None)
        for i, p in enumerate(paths):
            if not p.startswith("/"):
                raise ValueError(f"paths[{i}]: must be an absolute path, got {p!r}")
        max_line = s.size("max_line_bytes", 16 * 1024)
        if max_line > MAX_LINE:
            raise ValueError(f"max_line_bytes: at most {MAX_LINE} bytes (1MiB)")
        recent = s.get("recent_lines", 100)
        if type(recent) is not int or not 0 <= recent <= MAX_RECENT:
            raise ValueError(f"recent_lines: expected a whole number from 0 to {MAX_RECENT}")
        settings = LogtailSettings(
            paths=paths,
            start=s.choice("start", STARTS, "saved"),
            max_line_bytes=max_line,
            batch_bytes=s.size("batch_bytes", 1024 * 1024),
            max_pass_bytes=s.size("max_pass_bytes", 64 * 1024 * 1024),
            recent_lines=recent,
            save_interval=s.duration("save_interval", 5.0),
            react=s.duration("react", 0.05),
            detect=detect.parse(config.settings) if _detects(config) else None,
            journald=journal,
        )
        for key in detect.DETECT_KEYS:
            s.has(key)  # read by detect.parse above
        s.done()
        return cls(config, settings)

    @classmethod
    def metric_names(cls, config: CollectorConfig) -> frozenset[str] | None:
        names = ("lines", "bytes", "truncated", "rotations", "files", "recent", "sink_errors")
        return frozenset((*names, "keys", "totals") if _detects(config) else names)

    def add_sink(self, sink: LineSink) -> None:
        """Hand every batch of lines to `sink` as well (engine/collectors/logtail/sink.py);
        before the first collect."""
        self._sinks.append(sink)

    # -- Stateful (engine/collectors/base.py) --------------------------------------------

    def restore(self, saved: Mapping[str, Any]) -> None:
        rec = saved.get(journald.NAME)
        if self._journal is not None and isinstance(rec, Mapping):
            self._journal.restore(rec)
        # journald's record is not a path's: the tailer would forget it
        self._tailer.restore({k: v for k, v in saved.items() if k != journald.NAME})
        if self._journal is None and journald.NAME in saved:
            self._changes[journald.NAME] = None  # journald no longer read: its record goes

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
        return await self._thread.run(self._pass, self.timeout)

    async def collect_woken(self, now: float) -> Sample | None:
        """A pass woken by a write: its sample only when it has news(), else None
        (the lines are read and counted all the same; the interval's pass
        publishes them). Building the sample scores every key, which costs more
        than reading a busy log's lines between two ticks."""
        return await self._thread.run(self._woken_pass, self.timeout)

    async def aclose(self) -> None:
        # a pass still running in its thread owns the files; it ends on its own bound
        if self._thread.idle():
            self._changes.update(self._tailer.changes())  # the daemon journals them at stop
            self._tailer.close()
            if self._journal is not None:
                self._changes.update(self._journal.changes())
                self._journal.close()
        if self._waker is not None:
            self._waker.close()
            self._waker = None

    def _woken_pass(self) -> dict[str, Any] | None:
        self._read()
        return self._values() if self._news else None

    def _pass(self) -> dict[str, Any]:
        self._read()
        return self._values()

    def _read(self) -> None:
        waker = self._waker
        if waker is not None:
            waker.arm()  # before reading: a write from now on wakes the next pass
        # stop starting reads at half the timeout: the sample is still built in time
        deadline = time.monotonic() + self.timeout / 2
        self._tailer.poll(self.settings.max_pass_bytes, deadline)
        j = self._journal
        if j is not None:
            j.poll(self.settings.max_pass_bytes, deadline)
        if waker is not None:
            waker.follow(self._tailer.reading())
        d = self._detect
        seen = sum(d.pattern_totals.values()) if d is not None else self._lines()
        self._news, self._seen = self._seen >= 0 and seen != self._seen, seen
        self._changes.update(self._tailer.changes(self.settings.save_interval))
        if j is not None:
            self._changes.update(j.changes(self.settings.save_interval))
        errors = [f"{p}: {f.error}" for p, f in self._tailer.followed.items() if f.error]
        sources = len(self._tailer.followed)
        if j is not None:
            sources += 1
            if j.error is not None:
                errors.append(f"{journald.NAME}: {j.error}")
        if errors and len(errors) == sources:
            # nothing readable (a missing file is not an error: it may appear later)
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            raise CollectorError(errors[0] + more)

    def _values(self) -> dict[str, Any]:
        files = []
        total = {"lines": 0, "bytes": 0, "truncated": 0, "rotations": 0}
        for path, f in self._tailer.followed.items():
            c = f.counters
            row = {"lines": c.lines, "bytes": c.bytes, "truncated": c.truncated}
            row["rotations"] = c.rotations
            for k in total:
                total[k] += row[k]
            files.append(
                {
                    "labels": {"path": path},
                    **row,
                    "offset": f.file.offset if f.file is not None else None,
                    "error": f.error,
                }
            )
        j = self._journal
        sink_errors = self._tailer.sink_errors
        if j is not None:
            c = j.counters
            row = {"lines": c.lines, "bytes": c.bytes, "truncated": c.truncated, "rotations": 0}
            for k in total:
                total[k] += row[k]
            files.append(
                {"labels": {"path": journald.NAME}, **row, "offset": None, "error": j.error}
            )
            sink_errors += j.sink_errors
        out: dict[str, Any] = {**total, "files": files, "sink_errors": sink_errors}
        for sink in self._sinks:
            out.update(sink.values())
        return out

    def _lines(self) -> int:
        n = self._tailer.lines()
        return n + self._journal.counters.lines if self._journal is not None else n


def _detects(config: CollectorConfig) -> bool:
    """Detection runs when any of its keys is set (a format alone counts per key)."""
    return not detect.DETECT_KEYS.isdisjoint(config.settings)
