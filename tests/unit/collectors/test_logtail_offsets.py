"""logtail: where reading starts (`start`), the offsets journaled per file, and
their way through the journal's fold back into a new collector."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from engine.collectors.base import restore_state, state_events
from engine.collectors.logtail.collector import LogtailCollector
from engine.collectors.logtail.follow import Limits
from engine.collectors.logtail.sink import LineBatch
from engine.collectors.logtail.tailer import DRAIN_IDLE, Tailer
from engine.config.model import CollectorConfig, frozen_map
from engine.errors import CollectorError
from engine.journal.store import fold_event, initial_state

LIMITS = Limits(max_line_bytes=1024, batch_bytes=4096)


class Sink:
    def __init__(self) -> None:
        self.batches: list[LineBatch] = []

    def lines(self, batch: LineBatch) -> None:
        self.batches.append(batch)

    def values(self) -> dict[str, Any]:
        return {}


def tailer(
    paths: list[str], start: str = "saved", clock: list[float] | None = None
) -> tuple[Tailer, Sink]:
    sink = Sink()
    now = clock or [0.0]
    return Tailer(paths, LIMITS, start, [sink], clock=lambda: now[0]), sink


def poll(t: Tailer) -> None:
    t.poll(1 << 30, time.monotonic() + 10)


def append(p: Path, text: str) -> None:
    with open(p, "a") as f:
        f.write(text)


def seen(sink: Sink) -> list[str]:
    return [ln for b in sink.batches for ln in b.lines]


@pytest.mark.parametrize(("start", "want"), [("end", ["c"]), ("beginning", ["a", "b", "c"]),
                                             ("saved", ["c"])])  # fmt: skip
def test_start_applies_to_files_present_at_the_first_pass(
    tmp_path: Path, start: str, want: list[str]
) -> None:
    p = tmp_path / "a.log"
    p.write_text("a\nb\n")
    t, sink = tailer([str(p)], start)
    poll(t)
    append(p, "c\n")
    poll(t)
    assert seen(sink) == want


def test_a_file_that_appears_later_is_read_from_its_beginning(tmp_path: Path) -> None:
    t, sink = tailer([str(tmp_path / "*.log")], "end")
    poll(t)
    (tmp_path / "new.log").write_text("1\n2\n")
    poll(t)
    assert seen(sink) == ["1", "2"]


def restart(t: Tailer, paths: list[str], start: str = "saved") -> tuple[Tailer, Sink]:
    saved = {k: v for k, v in t.changes().items() if v is not None}
    t.close()
    t2, sink = tailer(paths, start)
    t2.restore(saved)
    return t2, sink


def test_saved_resumes_at_the_offset_with_the_counters(tmp_path: Path) -> None:
    p = tmp_path / "a.log"
    p.write_text("a\n")
    t, _ = tailer([str(p)], "beginning")
    poll(t)
    append(p, "b\n")
    poll(t)
    append(p, "c\nd\n")  # written while the daemon is down
    t2, sink = restart(t, [str(p)])
    poll(t2)
    assert seen(sink) == ["c", "d"]
    assert t2.followed[str(p)].counters.lines == 4
    assert sink.batches[0].start == 4


@pytest.mark.parametrize("how", ["rename", "copytruncate", "symlink"])
def test_saved_finds_a_file_rotated_while_down(tmp_path: Path, how: str) -> None:
    p = tmp_path / "a.log"
    target = tmp_path / "t1"
    if how == "symlink":
        target.write_text("a\n")
        p.symlink_to(target)
    else:
        p.write_text("a\n")
    t, _ = tailer([str(p)], "beginning")
    poll(t)
    append(p, "b\n")  # not read before the stop
    if how == "rename":
        os.rename(p, f"{p}.1")
        p.write_text("new\n")
    elif how == "copytruncate":
        shutil.copyfile(p, f"{p}.1")
        p.write_text("new\n")
    else:
        (tmp_path / "t2").write_text("new\n")
        os.symlink(tmp_path / "t2", f"{p}.tmp")
        os.replace(f"{p}.tmp", p)
    t2, sink = restart(t, [str(p)])
    poll(t2)
    assert sorted(seen(sink)) == ["b", "new"]
    assert t2.followed[str(p)].counters.rotations == 1


def test_a_saved_file_that_is_gone_with_nothing_left_reads_the_new_one_whole(
    tmp_path: Path,
) -> None:
    p = tmp_path / "a.log"
    p.write_text("a\n")
    t, _ = tailer([str(p)], "beginning")
    poll(t)
    os.unlink(p)
    p.write_text("x\ny\n")
    t2, sink = restart(t, [str(p)])
    poll(t2)
    assert seen(sink) == ["x", "y"]


def test_changes_hand_out_only_what_moved_and_forget_a_globbed_file_that_is_gone(
    tmp_path: Path,
) -> None:
    p = tmp_path / "a.log"
    p.write_text("a\n")
    clock = [0.0]
    t, _ = tailer([str(tmp_path / "*.log")], "beginning", clock)
    poll(t)
    first = t.changes()
    assert list(first) == [str(p)] and first[str(p)]["offset"] == 2  # type: ignore[index]
    poll(t)
    assert t.changes() == {}
    os.unlink(p)
    poll(t)
    assert t.changes() == {str(p): {"lines": 1, "bytes": 2, "truncated": 0, "rotations": 1,
                                    "file": None}}  # fmt: skip
    clock[0] += DRAIN_IDLE  # the deleted file, read to its end, is closed
    poll(t)
    assert t.changes() == {str(p): None}
    assert t.followed == {}


def test_collector_state_goes_through_the_journal_fold_into_a_new_collector(
    tmp_path: Path,
) -> None:
    """What the daemon does: journal state_events after a collect, fold them, and
    restore_state a collector built later (a restart, a reload)."""
    p = tmp_path / "a.log"
    p.write_text("a\nb\n")
    cfg = CollectorConfig(
        "logs", "logtail", None, 5.0, frozen_map({"paths": [str(p)], "start": "beginning"})
    )
    state = initial_state()
    c = LogtailCollector.from_config(cfg)
    restore_state("logs", c, state)
    sample = asyncio.run(c.collect(0.0))
    assert sample["lines"] == 2
    for ev in state_events("logs", c):
        assert ev["event"] == "collector_state"
        fold_event(state, ev)
    assert state_events("logs", c) == []  # drained
    asyncio.run(c.aclose())
    append(p, "c\n")
    c2 = LogtailCollector.from_config(
        CollectorConfig("logs", "logtail", None, 5.0, frozen_map({"paths": [str(p)]}))
    )
    restore_state("logs", c2, state)
    sample = asyncio.run(c2.collect(0.0))
    assert sample["lines"] == 3
    assert [r["line"] for r in sample["recent"]] == ["c"]
    assert sample["files"][0]["labels"] == {"path": str(p)}
    fold_event(state, {"event": "collector_state", "collector": "logs", "key": str(p),
                       "state": None})  # fmt: skip
    assert state["collector_state"] == {"logs": {}}
    asyncio.run(c2.aclose())


def test_records_are_handed_out_at_most_once_per_save_interval(tmp_path: Path) -> None:
    p = tmp_path / "a.log"
    p.write_text("a\n")
    clock = [100.0]
    t, _ = tailer([str(p)], "beginning", clock)
    poll(t)
    assert t.changes(5.0)[str(p)]["lines"] == 1  # type: ignore[index]
    append(p, "b\n")
    poll(t)
    clock[0] += 4.9
    assert t.changes(5.0) == {}  # moved, but saved 4.9 s ago
    clock[0] += 0.1
    assert t.changes(5.0)[str(p)]["lines"] == 2  # type: ignore[index]


def test_a_clean_close_hands_out_what_the_save_interval_held_back(tmp_path: Path) -> None:
    p = tmp_path / "a.log"
    p.write_text("a\n")
    cfg = {"paths": [str(p)], "start": "beginning", "save_interval": "1h"}
    c = LogtailCollector.from_config(CollectorConfig("logs", "logtail", None, 5.0, frozen_map(cfg)))
    asyncio.run(c.collect(0.0))
    assert [e["state"]["offset"] for e in state_events("logs", c)] == [2]
    append(p, "b\n")
    asyncio.run(c.collect(0.0))
    assert state_events("logs", c) == []
    asyncio.run(c.aclose())
    assert [e["state"]["offset"] for e in state_events("logs", c)] == [4]


def test_a_record_of_a_path_no_longer_configured_is_forgotten(tmp_path: Path) -> None:
    t, _ = tailer([str(tmp_path / "b.log")])
    t.restore({str(tmp_path / "a.log"): {"lines": 3, "file": None}})
    poll(t)
    changes = t.changes()
    assert changes[str(tmp_path / "a.log")] is None
    assert str(tmp_path / "a.log") not in t.followed


def test_the_collector_is_down_only_when_no_followed_file_can_be_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.log")  # not a regular file: never opened for reading
    cfg = {"paths": [str(tmp_path / "fifo.log"), str(tmp_path / "later.log")]}
    c = LogtailCollector.from_config(CollectorConfig("logs", "logtail", None, 5.0, frozen_map(cfg)))
    sample = asyncio.run(c.collect(0.0))  # later.log is missing: not an error
    assert [f["error"] for f in sample["files"]] == ["not a regular file", None]
    c2 = LogtailCollector.from_config(
        CollectorConfig("logs", "logtail", None, 5.0, frozen_map({"paths": [cfg["paths"][0]]}))
    )
    with pytest.raises(CollectorError, match="not a regular file"):
        asyncio.run(c2.collect(0.0))
