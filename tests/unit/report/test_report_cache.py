"""What the scan read from rotated segments is kept and reused, and never changes
a report: the same bytes from the journal, from the cache, from a damaged cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config.model import LogConfig
from engine.journal.journal import Journal
from engine.report.build import make_report, render
from tests.unit.report import fixed

pytestmark = pytest.mark.timeout(60)


def test_rotated_segments_are_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    data = tmp_path / "data"
    now = [0.0]
    j = Journal(data, LogConfig(fsync="never", segment_bytes=2048), clock=lambda: now[0])
    j.open()
    for t, ev in sorted(fixed.events(), key=lambda x: x[0]):
        now[0] = t
        j.append_sync([ev])
    j.close_sync()
    assert len(list(data.glob("alerts-*.jsonl"))) >= 2  # rotated segments to keep

    def report(**kw: bool) -> bytes:
        return render(make_report(str(data), fixed.OPTIONS, fixed.INTERVALS, **kw), "json")

    plain = report(cache=False)
    assert not (tmp_path / "cache").exists()
    assert report() == plain  # read from the journal, kept
    kept = sorted((tmp_path / "cache").rglob("alerts-*"))
    assert len(kept) == len(list(data.glob("alerts-*.jsonl")))
    stamps = [(k.stat().st_ino, k.stat().st_mtime_ns) for k in kept]
    assert report() == plain  # read from the cache
    assert [(k.stat().st_ino, k.stat().st_mtime_ns) for k in kept] == stamps  # not written again

    # a damaged file is read past (and written anew); a file of a segment gone is dropped
    raw = bytearray(kept[0].read_bytes())
    raw[-1] ^= 0xFF
    kept[0].write_bytes(bytes(raw))
    (kept[0].parent / "alerts-999999999999.jsonl.1-2-3").write_bytes(b"old")
    assert report() == plain
    assert sorted(kept[0].parent.iterdir()) == kept
    assert kept[0].read_bytes() != bytes(raw)
