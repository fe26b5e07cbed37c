"""The journal on disk: line format, replay, damage, the lock, rotation, snapshots."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from engine.common.secret import Secret
from engine.config.model import LogConfig
from engine.errors import JournalError, JournalLocked
from engine.journal.files import ACTIVE
from engine.journal.format import format_ts, parse_ts
from engine.journal.journal import Journal
from engine.journal.maintenance import verify
from engine.journal.reader import iter_events
from engine.journal.replay import ReplayResult

T0 = 1_795_000_000.0  # 2026-11-18T...Z; a fixed wall clock for the stamps


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def opened(d: Path, **kw: Any) -> tuple[Journal, ReplayResult]:
    cfg = kw.pop("config", LogConfig())
    j = Journal(d, cfg, clock=kw.pop("clock", Clock()), **kw)
    return j, j.open()


def ev(i: int, kind: str = "firing", **kw: Any) -> dict[str, Any]:
    return {"event": kind, "alert": f"fp{i:04d}", "rule": "cpu_high", "value": i, **kw}


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def offset_of(path: Path, index: int) -> int:
    return sum(len(line) for line in lines(path)[:index])


# ------------------------------------------------------------------ format


def test_line_format_is_ordered_stamped_and_checksummed(tmp_path: Path) -> None:
    j, _ = opened(tmp_path, clock=Clock(T0 + 0.1234))
    j.append_sync([{"value": 1.5, "event": "firing", "alert": "ab"}])
    j.close_sync()
    raw = (tmp_path / ACTIVE).read_bytes()
    assert raw.endswith(b"\n") and raw.count(b"\n") == 1
    line = raw[:-1]
    head, suffix = line[:-18], line[-18:]
    assert suffix == b',"crc":"%08x"}' % zlib.crc32(head)
    assert head.startswith(b'{"v":1,"seq":1,"ts":"' + format_ts(T0 + 0.1234).encode() + b'"')
    assert list(json.loads(line)) == ["v", "seq", "ts", "event", "value", "alert", "crc"]
    assert format_ts(T0 + 0.1234).endswith(".123Z")


def test_format_ts_and_parse_ts_round_trip() -> None:
    assert format_ts(0.0) == "1970-01-01T00:00:00.000Z"
    assert format_ts(1.9996) == "1970-01-01T00:00:02.000Z"  # rounds into the next second
    assert parse_ts(format_ts(T0 + 0.25)) == pytest.approx(T0 + 0.25)
    assert parse_ts("2026-11-22T20:00:00") == parse_ts("2026-11-22T20:00:00Z")


def test_journal_owns_v_seq_ts_and_crc(tmp_path: Path) -> None:
    j, _ = opened(tmp_path)
    [stamped] = j.append_sync([{"event": "firing", "v": 9, "seq": 999, "ts": "x", "crc": "0"}])
    assert (stamped["v"], stamped["seq"], stamped["ts"]) == (1, 1, format_ts(T0))
    assert "crc" not in stamped
    j.close_sync()
    assert [e["seq"] for e in iter_events(tmp_path)] == [1]


def test_an_event_without_a_name_is_refused_and_costs_no_seq(tmp_path: Path) -> None:
    j, _ = opened(tmp_path)
    with pytest.raises(ValueError, match="'event' name"):
        j.append_sync([ev(1), {"alert": "x"}])
    with pytest.raises(TypeError, match="cannot be written"):
        j.append_sync([ev(2, blob=object())])
    assert j.last_seq == 0
    assert j.append_sync([ev(3)])[0]["seq"] == 1
    j.close_sync()


def test_secrets_never_reach_the_disk(tmp_path: Path) -> None:
    j, _ = opened(tmp_path)
    token = Secret("hunter2-very-secret")
    [stamped] = j.append_sync(
        [ev(1, settings=MappingProxyType({"token": token, "url": "https://x"}), tags={"a"})]
    )
    assert stamped["settings"]["token"] is token  # the caller's objects come back as given
    j.close_sync()
    raw = (tmp_path / ACTIVE).read_bytes()
    assert b"hunter2" not in raw
    [back] = iter_events(tmp_path)
    assert back["settings"] == {"token": "***", "url": "https://x"}
    assert back["tags"] == ["a"]


def test_non_ascii_survives_and_lone_surrogates_read_back_valid(tmp_path: Path) -> None:
    # a lone surrogate (written by a vigil older than engine/common/boundary.py) is stored
    # \u-escaped and read back as U+FFFD: no reader downstream (the API, a channel)
    # ever gets text that cannot be encoded as UTF-8
    j, _ = opened(tmp_path)
    j.append_sync([ev(1, note="Überlast — 東京"), ev(2, raw="bad\udcffbyte")])
    j.close_sync()
    assert "Überlast".encode() in (tmp_path / ACTIVE).read_bytes()  # readable, not \u-escaped
    notes = [e.get("note") or e.get("raw") for e in iter_events(tmp_path)]
    assert notes == ["Überlast — 東京", "bad\ufffdbyte"]


# ---------------------------------------------------------- replay round trip


def test_append_and_replay_round_trip(tmp_path: Path) -> None:
    j, r = opened(tmp_path)
    assert r == ReplayResult(0, None, [], [], 0)
    written = j.append_sync([ev(i) for i in range(5)])
    written += j.append_sync([ev(5, "resolved")], durable=False)
    j.close_sync()
    j2, r2 = opened(tmp_path)
    assert r2.events == written
    assert r2.last_seq == j2.last_seq == 6
    assert r2.warnings == []
    j2.close_sync()


def test_seq_keeps_increasing_across_reopens(tmp_path: Path) -> None:
    seqs: list[int] = []
    for _ in range(3):
        j, _ = opened(tmp_path)
        seqs += [e["seq"] for e in j.append_sync([ev(1), ev(2)])]
        j.close_sync()
    assert seqs == [1, 2, 3, 4, 5, 6]
    assert [e["seq"] for e in iter_events(tmp_path)] == seqs


def test_open_twice_is_an_error(tmp_path: Path) -> None:
    j, _ = opened(tmp_path)
    with pytest.raises(JournalError, match="already open"):
        j.open()
    j.close_sync()
    with pytest.raises(JournalError, match="not open"):
        j.append_sync([ev(1)])


# ----------------------------------------------------------------- damage


def test_torn_final_line_without_newline_is_cut_with_a_warning(tmp_path: Path) -> None:
    j, _ = opened(tmp_path)
    j.append_sync([ev(i) for i in range(3)])
    j.close_sync()
    active = tmp_path / ACTIVE
    good = active.read_bytes()
    with active.open("ab") as f:
        f.write(b'{"v":1,"seq":4,"ts":"2026-11-2')
    j2, r = opened(tmp_path)
    assert [e["seq"] for e in r.events] == [1, 2, 3]
    [warning] = r.warnings
    assert f"{active}:{len(good)}: torn final line" in warning
    assert active.read_bytes() == good
    assert j2.append_sync([ev(9)])[0]["seq"] == 4  # the torn seq is reused: it never existed
    j2.close_sync()
    assert verify(tmp_path) == []


def test_torn_final_line_with_bad_checksum_is_cut(tmp_path: Path) -> None:
    j, _ = opened(tmp_path)
    j.append_sync([ev(i) for i in range(3)])
    j.close_sync()
    active = tmp_path / ACTIVE
    data = bytearray(active.read_bytes())
    data[-10] ^= 0x01  # a bit flip inside the last line's checksum digits
    active.write_bytes(bytes(data))
    j2, r = opened(tmp_path)
    assert [e["seq"] for e in r.events] == [1, 2]
    assert "checksum" in r.warnings[0] and str(offset_of(active, 2)) in r.warnings[0]
    j2.close_sync()


def test_a_nul_filled_tail_after_power_loss_counts_as_torn(tmp_path: Path) -> None:
    j, _ = opened(tmp_path)
    j.append_sync([ev(1), ev(2)])
    j.close_sync()
    with (tmp_path / ACTIVE).open("ab") as f:
        f.write(b"\0" * 4096)
    j2, r = opened(tmp_path)
    assert len(r.events) == 2 and "torn final line (4096 bytes" in r.warnings[0]
    j2.close_sync()


@pytest.mark.parametrize("damage", ["flip", "garbage", "truncate"])
def test_damage_in_the_middle_stops_open_with_file_and_offset(tmp_path: Path, damage: str) -> None:
    j, _ = opened(tmp_path)
    j.append_sync([ev(i) for i in range(5)])
    j.close_sync()
    active = tmp_path / ACTIVE
    ls = lines(active)
    if damage == "flip":
        ls[2] = ls[2].replace(b"cpu_high", b"cpu_hogh")
    elif damage == "garbage":
        ls[2] = b"not json at all\n"
    else:
        ls[2] = ls[2][:20] + b"\n"
    active.write_bytes(b"".join(ls))
    with pytest.raises(JournalError) as err:
        opened(tmp_path)
    assert f"{active}:{offset_of(active, 2)}:" in str(err.value)
    assert "vigil log repair" in str(err.value)
    # the failed open released the lock
    Journal(tmp_path, LogConfig()).open  # noqa: B018 - constructing is free; open again below
    with pytest.raises(JournalError):
        opened(tmp_path)


def test_seq_going_backwards_is_damage(tmp_path: Path) -> None:
    j, _ = opened(tmp_path)
    j.append_sync([ev(i) for i in range(3)])
    j.close_sync()
    active = tmp_path / ACTIVE
    ls = lines(active)
    active.write_bytes(ls[0] + ls[1] + ls[0] + ls[2])  # a duplicated line, crc intact
    with pytest.raises(JournalError, match=f"{active}:{len(ls[0]) + len(ls[1])}: seq 1 does not"):
        opened(tmp_path)


def test_a_newer_format_version_is_refused_not_truncated(tmp_path: Path) -> None:
    body = b'{"v":2,"seq":1,"ts":"2026-11-22T20:00:00.000Z","event":"firing"'
    line = body + b',"crc":"%08x"}\n' % zlib.crc32(body)
    (tmp_path / ACTIVE).write_bytes(line)
    with pytest.raises(JournalError, match="format version 2 is newer"):
        opened(tmp_path)
    assert (tmp_path / ACTIVE).read_bytes() == line


# ------------------------------------------------------------------- lock


HOLDER = """
import sys, time
from engine.config.model import LogConfig
from engine.journal.journal import Journal
j = Journal(sys.argv[1], LogConfig())
j.open()
print("locked", flush=True)
sys.stdin.read()
"""


def test_a_second_process_gets_journal_locked_with_the_holders_pid(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(JournalLocked) as err:
            opened(tmp_path)
        assert err.value.pid == child.pid
        assert err.value.path == str(tmp_path / "lock")
        assert f"PID {child.pid}" in str(err.value)
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=10)
    j, _ = opened(tmp_path)  # released when the holder exits
    assert (tmp_path / "lock").read_text().strip() == str(os.getpid())
    j.close_sync()


def test_a_second_journal_in_the_same_process_is_locked_out(tmp_path: Path) -> None:
    j, _ = opened(tmp_path)
    with pytest.raises(JournalLocked) as err:
        opened(tmp_path)
    assert err.value.pid == os.getpid()
    j.close_sync()
    j2, _ = opened(tmp_path)
    j2.close_sync()


# --------------------------------------------------------------- rotation


def test_rotation_names_segments_by_their_first_seq(tmp_path: Path) -> None:
    j, _ = opened(tmp_path, config=LogConfig(segment_bytes=1000))
    for i in range(40):
        j.append_sync([ev(i)])
    j.close_sync()
    rotated = sorted(p.name for p in tmp_path.glob("alerts-*.jsonl"))
    assert len(rotated) >= 3
    for name in rotated:
        first = json.loads((tmp_path / name).read_bytes().splitlines()[0])["seq"]
        assert name == f"alerts-{first:012d}.jsonl"
        assert (tmp_path / name).stat().st_size <= 1000 + 200  # over by at most one line
    assert [e["seq"] for e in iter_events(tmp_path)] == list(range(1, 41))
    j2, r = opened(tmp_path, config=LogConfig(segment_bytes=1000))
    assert [e["seq"] for e in r.events] == list(range(1, 41))
    assert j2.append_sync([ev(99)])[0]["seq"] == 41
    j2.close_sync()


def test_rotation_with_an_empty_active_segment_after_restart(tmp_path: Path) -> None:
    j, _ = opened(tmp_path, config=LogConfig(segment_bytes=300))
    j.append_sync([ev(i) for i in range(4)])  # one batch overshoots, then rotates
    j.close_sync()
    assert (tmp_path / ACTIVE).stat().st_size == 0
    j2, r = opened(tmp_path, config=LogConfig(segment_bytes=300))
    assert r.last_seq == 4
    assert j2.append_sync([ev(5)])[0]["seq"] == 5
    j2.close_sync()


def test_a_missing_active_segment_is_recreated(tmp_path: Path) -> None:
    j, _ = opened(tmp_path, config=LogConfig(segment_bytes=300))
    j.append_sync([ev(i) for i in range(4)])
    j.close_sync()
    (tmp_path / ACTIVE).unlink()  # a crash between rotation's rename and create
    j2, r = opened(tmp_path)
    assert r.last_seq == 4 and (tmp_path / ACTIVE).exists()
    j2.close_sync()


# -------------------------------------------------------------- snapshots


def test_snapshot_replay_returns_state_and_only_later_events(tmp_path: Path) -> None:
    j, _ = opened(tmp_path)
    j.append_sync([ev(i) for i in range(10)])
    path = j.write_snapshot_sync({"alerts": {"fp": {"state": "firing"}}}, 10)
    later = j.append_sync([ev(10), ev(11)])
    j.close_sync()
    assert Path(path).name == "snapshot-000000000010.json"
    j2, r = opened(tmp_path)
    assert r.snapshot_seq == 10 == j2.snapshot_seq
    assert r.state == {"alerts": {"fp": {"state": "firing"}}}
    assert r.events == later
    assert r.last_seq == 12
    j2.close_sync()


def test_snapshot_seq_must_be_within_the_log(tmp_path: Path) -> None:
    j, _ = opened(tmp_path)
    j.append_sync([ev(1)])
    with pytest.raises(ValueError, match="not within the log"):
        j.write_snapshot_sync({}, 2)
    j.close_sync()


def test_snapshot_secrets_are_redacted(tmp_path: Path) -> None:
    j, _ = opened(tmp_path)
    j.append_sync([ev(1)])
    path = j.write_snapshot_sync({"channel": {"token": Secret("s3cr3t")}}, 1)
    j.close_sync()
    assert b"s3cr3t" not in Path(path).read_bytes()


def test_a_corrupt_newest_snapshot_falls_back_to_the_previous(tmp_path: Path) -> None:
    j, _ = opened(tmp_path)
    j.append_sync([ev(i) for i in range(4)])
    j.write_snapshot_sync({"at": 2}, 2)
    newest = Path(j.write_snapshot_sync({"at": 4}, 4))
    j.close_sync()
    newest.write_bytes(newest.read_bytes().replace(b'"at":4', b'"at":5'))  # crc now wrong
    j2, r = opened(tmp_path)
    assert (r.snapshot_seq, r.state) == (2, {"at": 2})
    assert [e["seq"] for e in r.events] == [3, 4]
    assert str(newest) in r.warnings[0] and "checksum" in r.warnings[0]
    j2.close_sync()


def test_a_snapshot_that_is_not_json_falls_back_to_none(tmp_path: Path) -> None:
    j, _ = opened(tmp_path)
    j.append_sync([ev(1)])
    Path(j.write_snapshot_sync({}, 1)).write_text('{"v":1,"seq":1,"sta')
    j.close_sync()
    j2, r = opened(tmp_path)
    assert (r.snapshot_seq, r.state, len(r.events)) == (0, None, 1)
    assert "not valid JSON" in r.warnings[0]
    j2.close_sync()


def test_only_the_two_newest_snapshots_are_kept(tmp_path: Path) -> None:
    j, _ = opened(tmp_path)
    for i in range(1, 5):
        j.append_sync([ev(i)])
        j.write_snapshot_sync({"i": i}, i)
    j.close_sync()
    assert sorted(p.name for p in tmp_path.glob("snapshot-*")) == [
        "snapshot-000000000003.json",
        "snapshot-000000000004.json",
    ]


def test_leftover_temp_files_are_removed_at_open(tmp_path: Path) -> None:
    (tmp_path / "snapshot-000000000007.json.tmp").write_text("{half")
    j, r = opened(tmp_path)
    assert r.snapshot_seq == 0 and not list(tmp_path.glob("*.tmp"))
    j.close_sync()


def test_segments_covered_by_the_snapshot_are_not_read_at_open(tmp_path: Path) -> None:
    cfg = LogConfig(segment_bytes=600)
    j, _ = opened(tmp_path, config=cfg)
    for i in range(30):
        j.append_sync([ev(i)])
    j.write_snapshot_sync({"n": 30}, 28)
    j.close_sync()
    oldest = min(tmp_path.glob("alerts-*.jsonl"))
    oldest.write_bytes(b"rotten\n" + oldest.read_bytes())
    j2, r = opened(tmp_path, config=cfg)  # open never looked at the rotten old segment
    assert [e["seq"] for e in r.events] == [29, 30]
    j2.close_sync()
    assert any(f"{oldest}:0:" in p for p in verify(tmp_path))  # but verify does


def test_snapshot_ahead_of_the_log_keeps_seq_monotonic(tmp_path: Path) -> None:
    j, _ = opened(tmp_path)
    j.append_sync([ev(i) for i in range(5)])
    j.write_snapshot_sync({}, 5)
    j.close_sync()
    active = tmp_path / ACTIVE
    active.write_bytes(b"".join(lines(active)[:3]))  # the disk lost the last two writes
    j2, r = opened(tmp_path)
    assert r.last_seq == 5 and "ahead of the log" in r.warnings[0]
    assert j2.append_sync([ev(6)])[0]["seq"] == 6
    j2.close_sync()


# ------------------------------------------------------------- compaction


def test_compact_removes_only_covered_and_expired_segments(tmp_path: Path) -> None:
    clock = Clock(T0)
    cfg = LogConfig(segment_bytes=600)
    j, _ = opened(tmp_path, config=cfg, clock=clock, retention_seconds=3600)
    for i in range(40):
        clock.t = T0 + i * 300  # five minutes apart: segments age differently
        j.append_sync([ev(i)])
    before = {
        p: [json.loads(x) for x in p.read_bytes().splitlines()]
        for p in tmp_path.glob("alerts-*.jsonl")
    }
    assert j.compact() == []  # no snapshot: nothing is covered
    j.write_snapshot_sync({}, 20)
    assert sorted(tmp_path.glob("alerts-*.jsonl")) == sorted(before)  # one snapshot is no fallback
    j.write_snapshot_sync({}, 40)  # also compacts (up to seq 20), with the journal's retention
    after = sorted(tmp_path.glob("alerts-*.jsonl"))
    removed = [p for p in before if p not in after]
    assert removed, "old covered segments go"
    for p in removed:
        assert max(e["seq"] for e in before[p]) <= 20
        assert parse_ts(before[p][-1]["ts"]) < clock.t - 3600
    for p in after:  # what stays is uncovered or younger than an hour
        last = json.loads(p.read_bytes().splitlines()[-1])
        assert last["seq"] > 20 or parse_ts(last["ts"]) >= clock.t - 3600
    assert [e["seq"] for e in iter_events(tmp_path)][-1] == 40
    j.close_sync()


def test_compact_keeps_what_the_fallback_snapshot_needs(tmp_path: Path) -> None:
    j, _ = opened(tmp_path, config=LogConfig(segment_bytes=600))
    for i in range(30):
        j.append_sync([ev(i)])
    j.write_snapshot_sync({}, 10)
    j.write_snapshot_sync({}, 30)
    removed = j.compact(retention_seconds=0)
    j.close_sync()
    assert removed
    (tmp_path / "snapshot-000000000030.json").write_text("rotten")
    j2, r = opened(tmp_path)
    assert r.snapshot_seq == 10 and [e["seq"] for e in r.events] == list(range(11, 31))
    j2.close_sync()


def test_compact_with_a_long_retention_keeps_history(tmp_path: Path) -> None:
    j, _ = opened(tmp_path, config=LogConfig(segment_bytes=600))
    for i in range(20):
        j.append_sync([ev(i)])
    j.write_snapshot_sync({}, 19)
    j.write_snapshot_sync({}, 20)
    assert j.compact(retention_seconds=86400) == []
    covered = sorted(
        str(p)
        for p in tmp_path.glob("alerts-*.jsonl")
        if json.loads(p.read_bytes().splitlines()[-1])["seq"] <= 19  # the older snapshot
    )
    assert covered and j.compact(retention_seconds=0) == covered
    j.close_sync()
    j2, r = opened(tmp_path)
    assert (r.snapshot_seq, r.events, r.last_seq) == (20, [], 20)
    j2.close_sync()
