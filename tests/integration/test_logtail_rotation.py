"""The logtail collector against a real writer process that rotates its log while
it appends at a high rate: every line read exactly once, for each kind of
rotation (rename, copytruncate, recreate, symlink swap).

The reader is the real LogtailCollector, polled as the daemon polls it. The
writer (tests/integration/logwriter.py) numbers its lines; a sink collects the
numbers read; none may be missing or repeated.

Two limits hold for any reader that follows a name, and the test states them
instead of hiding them:

- A file created and rotated away between two passes is never opened. The
  writer therefore only rotates a file once the reader has read one line of it
  (`--seen`); the lines after that one are still unread when the rotation comes.
- copytruncate: lines written between the copy and the truncate are in neither
  file. The writer here copies and truncates without writing in between, so no
  line may be lost; test_copytruncate_race_loses_only_what_no_file_holds runs the
  copy and truncate beside a writer that does not stop, and checks that the
  reader lost nothing a file still holds.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from engine.collectors.logtail.collector import LogtailCollector
from engine.collectors.logtail.reader import Reader
from engine.collectors.logtail.sink import LineBatch
from engine.config.model import CollectorConfig, frozen_map

WRITER = str(Path(__file__).with_name("logwriter.py"))
KINDS = ["rename", "copytruncate", "recreate", "symlink"]


class Numbers:
    """A line sink that keeps the number each line starts with."""

    def __init__(self) -> None:
        self.seen: list[int] = []
        self.bad: list[str] = []

    def lines(self, batch: LineBatch) -> None:
        for text in batch.lines:
            try:
                self.seen.append(int(text[:9]))
            except ValueError:
                self.bad.append(text)

    def values(self) -> dict[str, object]:
        return {}


def collector(path: Path, **settings: object) -> LogtailCollector:
    raw = {"paths": [str(path)], "start": "beginning", "isolate": False, **settings}
    return LogtailCollector.from_config(
        CollectorConfig("logs", "logtail", None, 10.0, frozen_map(raw))
    )


async def follow(c: LogtailCollector, sink: Numbers, seen: Path, until: float,
                 done: threading.Event | subprocess.Popen[str], total: int) -> None:  # fmt: skip
    """Pass after pass until every line is in or the time is up; after each pass,
    tell the writer the highest line number read."""
    while time.monotonic() < until:
        before = len(sink.seen)
        await c.collect(time.time())
        if sink.seen:
            tmp = seen.with_suffix(".tmp")
            tmp.write_text(str(max(sink.seen[-200:])))
            os.replace(tmp, seen)
        finished = done.is_set() if isinstance(done, threading.Event) else done.poll() is not None
        if finished and (len(sink.seen) >= total or len(sink.seen) == before):
            return  # all in, or the writer is done and a whole pass found nothing new
        await asyncio.sleep(0.005)


def run(tmp_path: Path, kind: str, per_file: int, rotations: int, rate: int) -> Numbers:
    log = tmp_path / "access.log"
    seen = tmp_path / "seen"
    total = per_file * (rotations + 1)
    writer = subprocess.Popen(
        [sys.executable, WRITER, str(log), kind, str(per_file), str(rotations), str(rate),
         "--seen", str(seen)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    c = collector(log)
    sink = Numbers()
    c.add_sink(sink)
    budget = 30 + total / rate * 3
    try:
        asyncio.run(follow(c, sink, seen, time.monotonic() + budget, writer, total))
    finally:
        if writer.poll() is None:
            writer.kill()
        _out, err = writer.communicate(timeout=10)
        asyncio.run(c.aclose())
    assert writer.returncode == 0, f"writer exited {writer.returncode}: {err[-2000:]}"
    assert not sink.bad, f"lines without their number: {sink.bad[:3]}"
    dups = len(sink.seen) - len(set(sink.seen))
    missing = sorted(set(range(total)) - set(sink.seen))
    assert dups == 0, f"{dups} lines read twice"
    assert not missing, f"{len(missing)} of {total} lines lost, first {missing[:10]}"
    assert isinstance(c.reader, Reader)  # isolate: false, for the sink
    rotated = c.reader.tailer.followed[str(log)].counters.rotations
    assert rotated == rotations, f"saw {rotated} rotations of {rotations}"
    return sink


@pytest.mark.parametrize("kind", KINDS)
def test_rotation_loses_and_repeats_no_line(tmp_path: Path, kind: str) -> None:
    # the 100 rotations at 10,000 lines/s, with 200 lines per file (20,200
    # lines, ~2 s) so the four kinds stay well under a minute on a loaded machine
    run(tmp_path, kind, per_file=200, rotations=100, rate=10_000)


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_rotation_full_size(tmp_path: Path, kind: str) -> None:
    # the same with 2,000 lines per file: 202,000 lines, ~20 s per kind
    run(tmp_path, kind, per_file=2000, rotations=100, rate=10_000)


def test_copytruncate_race_loses_only_what_no_file_holds(tmp_path: Path) -> None:
    """logrotate's copytruncate beside a writer that never stops: lines written
    between the copy and the truncate are lost to every reader (logrotate's own
    documentation says so). The reader must still get every line that a file on
    disk holds (including the unread tail it must find in the copy), read no line
    twice, and read nothing that was never written."""
    log = tmp_path / "access.log"
    seen = tmp_path / "seen"
    total = 20_000
    writer = subprocess.Popen(
        [sys.executable, WRITER, str(log), "none", str(total), "0", "8000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    done = threading.Event()

    def rotate() -> None:  # what logrotate does, 20 times while the writer writes
        try:
            for i in range(20):
                time.sleep(0.1)
                if log.exists():
                    shutil.copyfile(log, f"{log}.{i}")
                    os.truncate(log, 0)
        finally:
            writer.wait(60)
            done.set()

    rotator = threading.Thread(target=rotate)
    c = collector(log)
    sink = Numbers()
    c.add_sink(sink)
    rotator.start()
    try:
        asyncio.run(follow(c, sink, seen, time.monotonic() + 60, done, total))
    finally:
        rotator.join(70)
        if writer.poll() is None:
            writer.kill()
        writer.communicate(timeout=10)
        asyncio.run(c.aclose())
    on_disk: set[int] = set()
    for f in tmp_path.glob("access.log*"):
        on_disk.update(int(ln[:9]) for ln in f.read_bytes().splitlines() if ln[:9].isdigit())
    got = set(sink.seen)
    assert len(sink.seen) == len(got), "a line was read twice"
    assert got <= set(range(total))
    assert on_disk <= got, f"lost {len(on_disk - got)} lines that a file holds"
    lost = total - len(got)
    print(f"copytruncate race: {lost} of {total} lines written between copy and truncate")
