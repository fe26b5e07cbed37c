"""The reading half of a `logtail` collector: files and journald -> line sinks -> sample.

One `Reader` per collector, one pass at a time, each pass bounded by bytes and by
half the collector's timeout. In the daemon it runs in a child process of its
own (isolated.py): parsing and detection allocate in bulk, and in the daemon's
process their share of the GIL and their garbage collections made the
evaluation loop's ticks late by up to 10-20 ms at 10,000 lines/s. With
`isolate: false` (and in unit tests and benchmarks) it runs in the collector's
worker thread.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.collectors._util import Settings
from engine.collectors.logtail import journald
from engine.collectors.logtail.follow import Limits
from engine.collectors.logtail.sink import LineSink, RecentLines
from engine.collectors.logtail.tailer import STARTS, Tailer
from engine.config.model import CollectorConfig
from engine.detect import settings as detect
from engine.detect.sink import DetectSink
from engine.errors import CollectorError

MAX_RECENT = 10_000
MAX_LINE = 1024 * 1024

Changes = dict[str, dict[str, Any] | None]


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
    isolate: bool = True  # read and detect in a child process (isolated.py)


def parse_settings(config: CollectorConfig) -> LogtailSettings:
    """The collector's settings; ValueError naming the field when one is wrong."""
    s = Settings("logtail", config.settings)
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
    isolate = s.get("isolate", True)
    if type(isolate) is not bool:
        raise ValueError("isolate: expected true or false")
    settings = LogtailSettings(
        paths=paths,
        start=s.choice("start", STARTS, "saved"),
        max_line_bytes=max_line,
        batch_bytes=s.size("batch_bytes", 1024 * 1024),
        max_pass_bytes=s.size("max_pass_bytes", 64 * 1024 * 1024),
        recent_lines=recent,
        save_interval=s.duration("save_interval", 5.0),
        react=s.duration("react", 0.05),
        detect=detect.parse(config.settings) if detects(config) else None,
        journald=journal,
        isolate=isolate,
    )
    for key in detect.DETECT_KEYS:
        s.has(key)  # read by detect.parse above
    s.done()
    return settings


def detects(config: CollectorConfig) -> bool:
    """Detection runs when any of its keys is set (a format alone counts per key)."""
    return not detect.DETECT_KEYS.isdisjoint(config.settings)


@dataclass(frozen=True, slots=True)
class Pass:
    """What one pass gives the collector."""

    values: dict[str, Any] | None  # the sample; None: a woken pass with no news
    news: bool  # new pattern hits (or, without detection, new lines)
    changes: Changes  # state records to journal (engine/collectors/base.py, Stateful)
    reading: tuple[str, ...]  # real paths of the files open now (for the Waker)


class Reader:
    def __init__(self, settings: LogtailSettings, timeout: float) -> None:
        self.settings = settings
        self.timeout = timeout
        self._recent = RecentLines(settings.recent_lines)
        self._sinks: list[LineSink] = [self._recent]
        limits = Limits(settings.max_line_bytes, settings.batch_bytes)
        self.detect = DetectSink(settings.detect) if settings.detect is not None else None
        if self.detect is not None:
            self._sinks.append(self.detect)
        self._seen = -1  # hits (or lines) after the previous pass: news compares
        self.tailer = Tailer(settings.paths, limits, settings.start, self._sinks)
        self.journal = (
            journald.JournalSource(settings.journald, limits, settings.start, self._sinks)
            if settings.journald is not None
            else None
        )
        self._changes: Changes = {}

    def add_sink(self, sink: LineSink) -> None:
        self._sinks.append(sink)

    def restore(self, saved: Mapping[str, Any]) -> None:
        rec = saved.get(journald.NAME)
        if self.journal is not None and isinstance(rec, Mapping):
            self.journal.restore(rec)
        # journald's record is not a path's: the tailer would forget it
        self.tailer.restore({k: v for k, v in saved.items() if k != journald.NAME})
        if self.journal is None and journald.NAME in saved:
            self._changes[journald.NAME] = None  # journald no longer read: its record goes

    def run(self, woken: bool) -> Pass:
        """One pass; a woken one builds its sample only when there is news (building
        it scores every key, which costs more than reading a busy log's lines
        between two ticks). CollectorError when nothing followed can be read."""
        news = self._read()
        changes, self._changes = self._changes, {}
        values = self._values() if news or not woken else None
        return Pass(values, news, changes, tuple(self.tailer.reading()))

    def close(self) -> Changes:
        """The last records (the daemon journals them at a clean stop)."""
        self._changes.update(self.tailer.changes())
        self.tailer.close()
        if self.journal is not None:
            self._changes.update(self.journal.changes())
            self.journal.close()
        out, self._changes = self._changes, {}
        return out

    def _read(self) -> bool:
        # stop starting reads at half the timeout: the sample is still built in time
        deadline = time.monotonic() + self.timeout / 2
        self.tailer.poll(self.settings.max_pass_bytes, deadline)
        j = self.journal
        if j is not None:
            j.poll(self.settings.max_pass_bytes, deadline)
        d = self.detect
        seen = sum(d.pattern_totals.values()) if d is not None else self._lines()
        news, self._seen = self._seen >= 0 and seen != self._seen, seen
        self._changes.update(self.tailer.changes(self.settings.save_interval))
        if j is not None:
            self._changes.update(j.changes(self.settings.save_interval))
        errors = [f"{p}: {f.error}" for p, f in self.tailer.followed.items() if f.error]
        sources = len(self.tailer.followed)
        if j is not None:
            sources += 1
            if j.error is not None:
                errors.append(f"{journald.NAME}: {j.error}")
        if errors and len(errors) == sources:
            # nothing readable (a missing file is not an error: it may appear later)
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            raise CollectorError(errors[0] + more)
        return news

    def _values(self) -> dict[str, Any]:
        files = []
        total = {"lines": 0, "bytes": 0, "truncated": 0, "rotations": 0}
        for path, f in self.tailer.followed.items():
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
        j = self.journal
        sink_errors = self.tailer.sink_errors
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
        n = self.tailer.lines()
        return n + self.journal.counters.lines if self.journal is not None else n
