"""The journal under an event loop: group commit, fsync policies, failure, close."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from engine.config.model import FsyncPolicy, LogConfig
from engine.errors import JournalError
from engine.journal.files import ACTIVE
from engine.journal.journal import Journal
from engine.journal.reader import iter_events


def ev(i: int, kind: str = "firing") -> dict[str, Any]:
    return {"event": kind, "alert": f"fp{i}", "value": i}


class Fsyncs:
    """The on_fsync hook, counting."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.times.append(seconds)

    @property
    def n(self) -> int:
        return len(self.times)


def run(
    tmp_path: Path,
    policy: FsyncPolicy,
    body: Callable[[Journal, Fsyncs], Awaitable[None]],
    **cfg: Any,
) -> Journal:
    fs = Fsyncs()
    j = Journal(tmp_path, LogConfig(fsync=policy, **cfg), on_fsync=fs)
    j.open()

    async def main() -> None:
        try:
            await body(j, fs)
        finally:
            await j.close()

    asyncio.run(main())
    return j


async def settle() -> None:
    """Let the writer task and its thread finish what was queued."""
    for _ in range(20):
        await asyncio.sleep(0.005)


def test_concurrent_durable_appends_share_fsyncs(tmp_path: Path) -> None:
    async def body(j: Journal, fs: Fsyncs) -> None:
        results = await asyncio.gather(*(j.append([ev(i), ev(i, "notified")]) for i in range(300)))
        seqs = sorted(e["seq"] for batch in results for e in batch)
        assert seqs == list(range(1, 601))
        assert all(b[1]["seq"] == b[0]["seq"] + 1 for b in results)  # a batch stays together
        assert 1 <= fs.n < 30, f"{fs.n} fsyncs for 300 concurrent appends"
        assert j.fsync_count == fs.n and len(j.fsync_seconds) == fs.n

    run(tmp_path, "transitions", body)
    assert [e["seq"] for e in iter_events(tmp_path)] == list(range(1, 601))


def test_transitions_lets_non_durable_events_ride_along(tmp_path: Path) -> None:
    async def body(j: Journal, fs: Fsyncs) -> None:
        for i in range(10):
            await j.append([ev(i, "notified")], durable=False)
        await settle()
        assert fs.n == 0
        assert (tmp_path / ACTIVE).read_bytes().count(b"\n") == 10  # written, not fsynced
        await j.append([ev(10)])
        assert fs.n == 1  # one fsync made all eleven durable

    run(tmp_path, "transitions", body)


def test_always_fsyncs_every_append_even_non_durable(tmp_path: Path) -> None:
    async def body(j: Journal, fs: Fsyncs) -> None:
        await j.append([ev(1, "notified")], durable=False)
        assert fs.n == 1
        await j.append([ev(2)])
        assert fs.n == 2

    run(tmp_path, "always", body)


def test_never_does_not_fsync_appends_but_close_does(tmp_path: Path) -> None:
    counts: list[int] = []

    async def body(j: Journal, fs: Fsyncs) -> None:
        for i in range(20):
            await j.append([ev(i)])
        await settle()
        counts.append(fs.n)
        # a durable append under never still returns only once written to the OS
        assert (tmp_path / ACTIVE).read_bytes().count(b"\n") == 20

    j = run(tmp_path, "never", body)
    assert counts == [0]
    assert j.fsync_count == 1  # close: a clean shutdown leaves nothing in the page cache


def test_interval_fsyncs_dirty_data_on_a_timer(tmp_path: Path) -> None:
    async def body(j: Journal, fs: Fsyncs) -> None:
        await j.append([ev(1)])
        assert (tmp_path / ACTIVE).stat().st_size > 0
        n0 = fs.n
        await asyncio.sleep(0.25)  # no more appends: the timer must do it
        assert fs.n == n0 + 1
        await asyncio.sleep(0.15)
        assert fs.n == n0 + 1  # nothing new: no pointless fsync

    run(tmp_path, "interval", body, fsync_interval=0.1)


def test_flush_makes_everything_durable(tmp_path: Path) -> None:
    async def body(j: Journal, fs: Fsyncs) -> None:
        await j.append([ev(1, "notified")], durable=False)
        await j.flush()
        assert fs.n == 1
        await j.flush()  # nothing new to sync
        assert fs.n == 1

    run(tmp_path, "transitions", body)


def test_async_snapshot_flushes_the_log_first(tmp_path: Path) -> None:
    async def body(j: Journal, fs: Fsyncs) -> None:
        out = await j.append([ev(1), ev(2)], durable=False)
        state = {"n": 2}
        path = await j.write_snapshot(state, out[-1]["seq"])
        state["n"] = 99  # serialised when called: later changes do not leak in
        assert fs.n >= 1
        assert Path(path).name == "snapshot-000000000002.json"
        assert j.snapshot_seq == 2

    run(tmp_path, "transitions", body)
    j = Journal(tmp_path, LogConfig())
    r = j.open()
    assert (r.snapshot_seq, r.state, r.events, r.last_seq) == (2, {"n": 2}, [], 2)
    j.close_sync()


def test_rotation_under_concurrent_appends(tmp_path: Path) -> None:
    async def body(j: Journal, fs: Fsyncs) -> None:
        async def writer(k: int) -> None:
            for i in range(50):
                await j.append([ev(k * 1000 + i)])

        await asyncio.gather(*(writer(k) for k in range(8)))

    run(tmp_path, "transitions", body, segment_bytes=2000)
    assert len(list(tmp_path.glob("alerts-*.jsonl"))) > 3
    assert [e["seq"] for e in iter_events(tmp_path)] == list(range(1, 401))


def test_sync_api_is_refused_while_a_loop_drives_the_journal(tmp_path: Path) -> None:
    async def body(j: Journal, fs: Fsyncs) -> None:
        await j.append([ev(1)])
        with pytest.raises(RuntimeError, match="event loop"):
            j.append_sync([ev(2)])

    run(tmp_path, "transitions", body)


def test_a_full_disk_holds_the_lines_in_memory_and_says_so(tmp_path: Path) -> None:
    # /dev/full: every write fails with ENOSPC, as on a full disk. Appends go on
    # (alerting from memory), the journal reports it degraded once, and what
    # it held is reported lost at close, never silently dropped.
    os.symlink("/dev/full", tmp_path / ACTIVE)
    calls: list[str | None] = []

    async def body(j: Journal, fs: Fsyncs) -> None:
        j.on_degraded = calls.append
        stamped = await j.append([ev(1)])
        assert stamped[0]["seq"] == 1
        await j.append([ev(2)], durable=False)
        await j.append([ev(3)])
        assert j.degraded is not None and "No space" in j.degraded
        assert "3 event(s) held in memory" in j.degraded

    j = run(tmp_path, "transitions", body)
    assert len(calls) == 1 and calls[0] is not None and "No space" in calls[0]
    assert not j.is_open  # close still released the lock
    j2 = Journal(tmp_path, LogConfig())
    j2.open()
    j2.close_sync()


def test_a_failed_fsync_is_fatal(tmp_path: Path) -> None:
    # fdatasync on a character device fails (EINVAL): after a failed fsync the
    # journal can promise nothing, so it stops and says why (the daemon exits)
    os.symlink("/dev/null", tmp_path / ACTIVE)
    fatal: list[str] = []

    async def body(j: Journal, fs: Fsyncs) -> None:
        j.on_fatal = fatal.append
        with pytest.raises(JournalError, match="fsync failed"):
            await j.append([ev(1)])
        with pytest.raises(JournalError, match="fsync failed"):
            await j.append([ev(2)])

    run(tmp_path, "transitions", body)
    assert len(fatal) == 1 and "fsync failed" in fatal[0]


def test_close_is_idempotent_and_appends_after_close_fail(tmp_path: Path) -> None:
    async def body(j: Journal, fs: Fsyncs) -> None:
        await j.append([ev(1)])
        await j.close()
        await j.close()
        with pytest.raises(JournalError, match="not open"):
            await j.append([ev(2)])

    run(tmp_path, "transitions", body)


def test_reopen_after_async_use_continues_the_seq(tmp_path: Path) -> None:
    async def body(j: Journal, fs: Fsyncs) -> None:
        await asyncio.gather(*(j.append([ev(i)]) for i in range(10)))

    run(tmp_path, "transitions", body)
    run(tmp_path, "transitions", body)
    assert [e["seq"] for e in iter_events(tmp_path)] == list(range(1, 21))


def test_appends_racing_rotation_never_see_a_closed_journal(tmp_path: Path) -> None:
    # One task's durable appends make the journal thread write and rotate (a
    # segment this small rotates after every batch) while another keeps the
    # loop busy appending: no append may catch the files half-way swapped.
    written = [0]

    async def body(j: Journal, fs: Fsyncs) -> None:
        done = asyncio.Event()

        async def durable() -> None:
            for i in range(60):
                await j.append([ev(i)])
                written[0] += 1
            done.set()

        async def spinner() -> None:
            while not done.is_set():
                await j.append([ev(0, "notified")], durable=False)
                written[0] += 1
                await asyncio.sleep(0)

        await asyncio.gather(durable(), spinner())

    run(tmp_path, "transitions", body, segment_bytes=150)
    assert len(list(tmp_path.glob("alerts-*.jsonl"))) >= 60  # a rotation per durable batch
    assert [e["seq"] for e in iter_events(tmp_path)] == list(range(1, written[0] + 1))


def test_a_copied_state_snapshot_replays_like_a_plain_one(tmp_path: Path) -> None:
    from engine.journal.snapshot_copy import StateCopy
    from engine.journal.store import fold_event, initial_state

    state = initial_state()

    async def body(j: Journal, fs: Fsyncs) -> None:
        events = [
            {"event": "firing", "alert": f"a{i}", "rule": "r", "labels": {"x": "\udcff"}}
            for i in range(600)
        ]
        for e in await j.append(events):
            fold_event(state, e)
        copy = StateCopy(state, j.last_seq)
        for _ in copy.steps():
            pass
        path = await j.write_snapshot_encoded(copy.encoded(), j.last_seq)
        assert Path(path).name == "snapshot-000000000600.json"

    run(tmp_path, "transitions", body)
    j = Journal(tmp_path, LogConfig())
    r = j.open()
    assert (r.snapshot_seq, r.events, r.last_seq) == (600, [], 600)
    # the lone surrogate (escaped on disk) is read back valid, as U+FFFD (engine/common/boundary.py)
    assert r.state == json.loads(json.dumps(state).replace("\\udcff", "\\ufffd"))
    j.close_sync()
