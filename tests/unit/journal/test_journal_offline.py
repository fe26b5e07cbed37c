"""Reading and mending a journal without a daemon: iter/tail/follow, verify, repair, compact."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from engine.config.model import LogConfig
from engine.errors import JournalError, JournalLocked
from engine.journal.files import ACTIVE
from engine.journal.journal import Journal
from engine.journal.maintenance import compact_offline, inspect, repair, verify
from engine.journal.reader import follow_events, iter_events, tail_events
from engine.journal.snapshots import read_snapshot

T0 = 1_795_000_000.0


def ev(i: int, kind: str = "firing") -> dict[str, Any]:
    return {"event": kind, "alert": f"fp{i % 3}", "rule": "disk", "value": i}


def make(d: Path, n: int, *, segment_bytes: int = 64 << 20, step: float = 1.0) -> Journal:
    """A closed journal of n events, one second apart from T0."""
    clock = [T0]
    j = Journal(d, LogConfig(segment_bytes=segment_bytes), clock=lambda: clock[0])
    j.open()
    for i in range(n):
        clock[0] = T0 + i * step
        j.append_sync([ev(i + 1)])
    j.close_sync()
    return j


def seqs(events: Any) -> list[int]:
    return [e["seq"] for e in events]


# ------------------------------------------------------------------ readers


def test_iter_events_reads_all_segments_in_order_from_a_seq(tmp_path: Path) -> None:
    make(tmp_path, 60, segment_bytes=800)
    assert len(inspect(tmp_path).segments) > 4
    assert seqs(iter_events(tmp_path)) == list(range(1, 61))
    assert seqs(iter_events(tmp_path, since_seq=37)) == list(range(38, 61))
    assert seqs(iter_events(tmp_path, since_seq=60)) == []


def test_iter_events_since_ts_skips_whole_old_segments(tmp_path: Path) -> None:
    make(tmp_path, 60, segment_bytes=800)
    from engine.journal.format import format_ts

    got = seqs(iter_events(tmp_path, since_ts=format_ts(T0 + 40)))
    assert got[-1] == 60 and got[0] <= 41 and got[0] > 1  # whole segments before it skipped


def test_iter_events_ignores_a_line_being_written(tmp_path: Path) -> None:
    make(tmp_path, 3)
    with (tmp_path / ACTIVE).open("ab") as f:
        f.write(b'{"v":1,"seq":4,')  # the daemon's write, half-way
    assert seqs(iter_events(tmp_path)) == [1, 2, 3]


def test_iter_events_raises_on_damage_with_file_and_offset(tmp_path: Path) -> None:
    make(tmp_path, 3)
    active = tmp_path / ACTIVE
    first, *rest = active.read_bytes().splitlines(keepends=True)
    active.write_bytes(first + b"junk\n" + b"".join(rest))
    with pytest.raises(JournalError, match=f"{active}:{len(first)}: no checksum"):
        list(iter_events(tmp_path))


def test_iter_events_on_a_missing_dir_says_so(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="no such directory"):
        list(iter_events(tmp_path / "nope"))


def test_tail_events_reads_backwards_across_segments(tmp_path: Path) -> None:
    make(tmp_path, 50, segment_bytes=600)
    assert seqs(tail_events(tmp_path, 3)) == [48, 49, 50]
    assert seqs(tail_events(tmp_path, 25)) == list(range(26, 51))
    assert seqs(tail_events(tmp_path, 500)) == list(range(1, 51))
    assert tail_events(tmp_path, 0) == []


def test_follow_events_sees_new_events_and_rotation(tmp_path: Path) -> None:
    cfg = LogConfig(segment_bytes=700)
    j = Journal(tmp_path, cfg)
    j.open()
    j.append_sync([ev(1), ev(2)])
    done = threading.Event()
    seen: list[int] = []

    def reader() -> None:
        for e in follow_events(tmp_path, 1, poll_interval=0.01, stop=done.is_set):
            seen.append(e["seq"])

    t = threading.Thread(target=reader)
    t.start()
    for i in range(3, 40):
        j.append_sync([ev(i)])  # rotates several times while the reader follows
        time.sleep(0.002)
    deadline = time.monotonic() + 5
    while len(seen) < 38 and time.monotonic() < deadline:
        time.sleep(0.01)
    done.set()
    t.join(timeout=5)
    j.close_sync()
    assert seen == list(range(2, 40))


def test_inspect_summarises_without_reading_everything(tmp_path: Path) -> None:
    j = make(tmp_path, 30, segment_bytes=600)
    j.open()
    j.write_snapshot_sync({}, 30)
    j.close_sync()
    info = inspect(tmp_path)
    assert (info.first_seq, info.last_seq) == (1, 30)
    assert info.snapshots[0][0] == 30
    assert info.segments[-1].active
    assert info.bytes == sum(p.stat().st_size for p in tmp_path.glob("alerts*.jsonl"))
    assert read_snapshot(tmp_path) == (30, {})


# ------------------------------------------------------------------- verify


def test_verify_a_sound_journal(tmp_path: Path) -> None:
    make(tmp_path, 40, segment_bytes=700)
    progress: list[tuple[int, int]] = []
    assert verify(tmp_path, progress=lambda a, b: progress.append((a, b))) == []
    assert progress[-1][0] == progress[-1][1] > 0


def test_verify_names_every_problem_with_file_and_offset(tmp_path: Path) -> None:
    make(tmp_path, 30, segment_bytes=700)
    oldest = min(tmp_path.glob("alerts-*.jsonl"))
    ls = oldest.read_bytes().splitlines(keepends=True)
    ls[1] = ls[1].replace(b'"disk"', b'"dusk"')
    oldest.write_bytes(b"".join(ls))
    with (tmp_path / ACTIVE).open("ab") as f:
        f.write(b'{"v":1,"se')
    j = Journal(tmp_path, LogConfig())
    problems = verify(tmp_path)
    assert problems[0] == f"{oldest}:{len(ls[0])}: checksum mismatch"
    assert problems[1].startswith(f"{tmp_path / ACTIVE}:") and "torn final line" in problems[1]
    assert len(problems) == 2
    del j


def test_verify_reports_bad_snapshots_and_misnamed_segments(tmp_path: Path) -> None:
    make(tmp_path, 30, segment_bytes=700)
    j = Journal(tmp_path, LogConfig())
    j.open()
    snap = Path(j.write_snapshot_sync({}, 30))
    j.close_sync()
    snap.write_text("{}")
    second = sorted(tmp_path.glob("alerts-*.jsonl"))[1]
    second.rename(tmp_path / "alerts-000000000002.jsonl")
    problems = verify(tmp_path)
    assert any(p.startswith(f"{snap}: ") for p in problems)
    assert any("but the file name says 2" in p for p in problems)


# ------------------------------------------------------------------- repair


def test_repair_quarantines_damage_and_leaves_a_sound_journal(tmp_path: Path) -> None:
    make(tmp_path, 30, segment_bytes=700)
    oldest = min(tmp_path.glob("alerts-*.jsonl"))
    ls = oldest.read_bytes().splitlines(keepends=True)
    bad = ls[1].replace(b'"disk"', b'"dusk"')
    oldest.write_bytes(ls[0] + bad + b"".join(ls[2:]))
    with (tmp_path / ACTIVE).open("ab") as f:
        f.write(b'{"v":1,"seq":31,')
    report = repair(tmp_path)
    assert f"{oldest.name}: moved 1 line(s) to quarantine (offset {len(ls[0])}: checksum" in report
    assert "alerts.jsonl: moved 1 line(s)" in report
    [q] = tmp_path.glob("quarantine-*.jsonl")
    assert str(q) in report
    recs = [json.loads(x) for x in q.read_text().splitlines()]
    assert recs[0] == {
        "file": oldest.name,
        "offset": len(ls[0]),
        "reason": "checksum mismatch",
        "line": bad[:-1].decode(),
    }
    assert recs[1]["reason"].startswith("torn final line")
    assert verify(tmp_path) == []
    assert seqs(iter_events(tmp_path)) == [s for s in range(1, 31) if s != 2]
    j = Journal(tmp_path, LogConfig())
    r = j.open()
    assert r.warnings == [] and r.last_seq == 30
    j.close_sync()


def test_repair_salvages_a_good_record_glued_to_a_torn_one(tmp_path: Path) -> None:
    make(tmp_path, 3)
    active = tmp_path / ACTIVE
    a, b, c = active.read_bytes().splitlines(keepends=True)
    active.write_bytes(a + b[:25] + c)  # a torn write, then the next write on the same line
    assert len(verify(tmp_path)) == 1
    report = repair(tmp_path)
    assert "moved 1 line(s)" in report
    assert seqs(iter_events(tmp_path)) == [1, 3]
    [q] = tmp_path.glob("quarantine-*.jsonl")
    assert json.loads(q.read_text())["line"] == b[:25].decode()


def test_repair_removes_out_of_order_lines_and_renames_segments(tmp_path: Path) -> None:
    make(tmp_path, 20, segment_bytes=700)
    segs = sorted(tmp_path.glob("alerts-*.jsonl"))
    first_line = segs[0].read_bytes().splitlines(keepends=True)[0]
    second = segs[1].read_bytes()
    segs[1].write_bytes(first_line + second)  # seq 1 again, checksum intact
    problems = verify(tmp_path)
    assert any("seq 1 does not follow" in p for p in problems)
    report = repair(tmp_path)
    assert "seq 1 does not follow" in report
    assert verify(tmp_path) == []
    assert seqs(iter_events(tmp_path)) == list(range(1, 21))


def test_repair_sets_bad_snapshots_aside(tmp_path: Path) -> None:
    make(tmp_path, 3)
    (tmp_path / "snapshot-000000000003.json").write_text("{broken")
    report = repair(tmp_path)
    assert "snapshot-000000000003.json: not valid JSON; moved to" in report
    assert not list(tmp_path.glob("snapshot-*"))
    assert verify(tmp_path) == []


def test_repair_of_a_sound_journal_changes_nothing(tmp_path: Path) -> None:
    make(tmp_path, 5)
    before = (tmp_path / ACTIVE).read_bytes()
    assert "nothing to repair" in repair(tmp_path)
    assert (tmp_path / ACTIVE).read_bytes() == before
    assert not list(tmp_path.glob("quarantine-*"))


def test_repair_refuses_while_a_daemon_holds_the_lock(tmp_path: Path) -> None:
    make(tmp_path, 2)
    j = Journal(tmp_path, LogConfig())
    j.open()
    with pytest.raises(JournalLocked):
        repair(tmp_path)
    j.close_sync()


# ------------------------------------------------------------------ compact


def count_fold(state: dict[str, Any], event: dict[str, Any]) -> None:
    state["n"] += 1
    state["last"] = event["seq"]


def test_compact_offline_folds_into_a_new_snapshot(tmp_path: Path) -> None:
    make(tmp_path, 10)
    report = compact_offline(tmp_path, count_fold, lambda: {"n": 0})
    assert "snapshot-000000000010.json: 10 event(s) after seq 0 folded in" in report
    assert read_snapshot(tmp_path) == (10, {"n": 10, "last": 10})
    j = Journal(tmp_path, LogConfig())
    j.open()
    j.append_sync([ev(11), ev(12)])
    j.close_sync()
    compact_offline(tmp_path, count_fold, lambda: {"n": 0})
    assert read_snapshot(tmp_path) == (12, {"n": 12, "last": 12})  # continued from the snapshot
    assert "already at the last seq" in compact_offline(tmp_path, count_fold, dict)


def test_compact_offline_drops_expired_covered_segments(tmp_path: Path) -> None:
    make(tmp_path, 40, segment_bytes=700, step=3600)  # an hour apart
    compact_offline(tmp_path, count_fold, lambda: {"n": 0}, retention_seconds=1e9)
    n_before = len(list(tmp_path.glob("alerts-*.jsonl")))
    j = Journal(tmp_path, LogConfig())
    j.open()
    j.append_sync([ev(41)])  # the second compaction writes a second snapshot
    j.close_sync()
    report = compact_offline(
        tmp_path,
        count_fold,
        lambda: {"n": 0},
        retention_seconds=6 * 3600,
        clock=lambda: T0 + 40 * 3600,
    )
    assert "removed" in report
    left = list(tmp_path.glob("alerts-*.jsonl"))
    assert 0 < len(left) < n_before
    assert seqs(iter_events(tmp_path))[-1] == 41


def test_compact_offline_on_an_empty_journal(tmp_path: Path) -> None:
    assert "nothing to compact" in compact_offline(tmp_path, count_fold, dict)


def test_compact_offline_reports_a_state_the_fold_cannot_use(tmp_path: Path) -> None:
    make(tmp_path, 2)
    j = Journal(tmp_path, LogConfig())
    j.open()
    j.write_snapshot_sync({"unexpected": True}, 1)
    j.close_sync()
    with pytest.raises(JournalError, match="cannot fold event seq 2 into the snapshot at seq 1"):
        compact_offline(tmp_path, count_fold, lambda: {"n": 0})
