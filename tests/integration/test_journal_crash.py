"""Crash safety: SIGKILL a writing process at random moments, 200 times.

Each child opens the journal in a shared data_dir, runs concurrent appenders
(durable and not) plus a snapshotter, and reports on a pipe the last seq of
every durable append as soon as append() returns. The parent kills it 5-60 ms
into its run, then opens the journal itself. Every replay must succeed, the
only damage ever seen may be a torn final line, and every seq a child reported
durable must be in the log.

Children are forked from the test process rather than started as fresh
interpreters: the journal is already imported, so a child starts in
milliseconds and 200 runs fit in well under a minute. A SIGKILL is the same
crash either way. The child leaves only through os._exit, never into pytest.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
import traceback
from pathlib import Path

import pytest

from engine.config.model import LogConfig
from engine.errors import JournalError
from engine.journal.journal import Journal
from engine.journal.maintenance import verify
from engine.journal.reader import iter_events

RUNS = 200
SEGMENT = 256 * 1024  # small, so kills also land around rotations


def child(data_dir: Path, seed: int, out: int) -> None:
    """Body of a forked child: append until killed. Never returns."""
    try:
        rnd = random.Random(seed)

        async def main() -> None:
            j = Journal(data_dir, LogConfig(fsync="transitions", segment_bytes=SEGMENT))
            r = j.open()
            os.write(out, b"ready %d\n" % r.last_seq)

            async def appender(k: int) -> None:
                n = 0
                while True:
                    batch = [
                        {
                            "event": "firing",
                            "alert": f"a{k}",
                            "n": n,
                            "pad": "x" * rnd.randrange(300),
                        }
                        for _ in range(rnd.randrange(1, 20))
                    ]
                    n += 1
                    if rnd.random() < 0.3:
                        await j.append(batch, durable=False)  # e.g. `notified`: may be lost
                        await asyncio.sleep(0)
                        continue
                    done = await j.append(batch)
                    os.write(out, b"%d\n" % done[-1]["seq"])  # durable now: must survive

            async def snapshotter() -> None:
                while True:
                    await asyncio.sleep(rnd.uniform(0.002, 0.02))
                    await j.write_snapshot({"seq": j.last_seq}, j.last_seq)

            await asyncio.gather(*(appender(k) for k in range(8)), snapshotter())

        asyncio.run(main())
    except BaseException:
        os.write(out, traceback.format_exc().encode())  # shown by the parent's assert
    finally:
        os._exit(3)


def run_child(data_dir: Path, seed: int, delay: float) -> tuple[int, list[int]]:
    """Fork a writer, SIGKILL it `delay` seconds after its first durable append;
    return what it said."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.close(r)
        child(data_dir, seed, w)
    os.close(w)
    with os.fdopen(r, "rb") as pipe:
        ready = pipe.readline()
        # the random delay counts from the first durable append, so that a loaded
        # machine (a slow child start) still kills children in the middle of work
        first = pipe.readline()
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        rest = first + pipe.read()
    assert ready.startswith(b"ready "), f"child did not start: {ready!r} {rest[-500:]!r}"
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (
        f"child ended on its own (status {status}) before the kill: {rest[-2000:].decode()}"
    )
    reported = [int(x) for x in rest.split() if x.isdigit()]
    return int(ready.split()[1]), reported


@pytest.mark.slow
def test_sigkill_never_loses_a_durable_event_nor_corrupts_the_log(tmp_path: Path) -> None:
    data = tmp_path / "data"
    rnd = random.Random(20261122)
    reported_all: set[int] = set()
    last = 0
    torn = 0
    t0 = time.monotonic()
    for run in range(RUNS):
        ready_seq, reported = run_child(data, run, rnd.uniform(0.005, 0.060))
        assert ready_seq == last, f"run {run}: child replayed to {ready_seq}, we saw {last}"

        j = Journal(data, LogConfig())
        try:
            r = j.open()
        except JournalError as e:
            pytest.fail(f"run {run}: replay failed after SIGKILL: {e}")
        try:
            for w in r.warnings:
                assert "torn final line" in w, f"run {run}: unexpected damage: {w}"
            torn += bool(r.warnings)
            assert [e["seq"] for e in r.events] == list(range(r.snapshot_seq + 1, r.last_seq + 1))
            if r.state is not None:
                assert r.state == {"seq": r.snapshot_seq}
            if reported:
                assert max(reported) <= r.last_seq, f"run {run}: durable seq {max(reported)} lost"
            assert r.last_seq >= last, f"run {run}: the log went back from {last} to {r.last_seq}"
        finally:
            j.close_sync()
        reported_all.update(reported)
        last = r.last_seq

    seqs = [e["seq"] for e in iter_events(data)]
    assert seqs == list(range(1, last + 1)), "seqs have gaps or repeats"
    assert reported_all <= set(seqs)
    assert len(reported_all) > RUNS, "children hardly appended: the test proved little"
    assert len(list(data.glob("alerts-*.jsonl"))) > 3, "no rotations happened"
    assert verify(data) == []
    print(
        f"\n{RUNS} kills in {time.monotonic() - t0:.1f}s: {last} events, "
        f"{len(reported_all)} durable batches reported, {torn} torn tails repaired"
    )
