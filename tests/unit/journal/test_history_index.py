"""The history index answers what a brute-force recount of the journal answers
(engine/journal/history_build.py, history_query.py), built at once or a piece at a
time across restarts; and it is rebuilt when deleted, damaged or left behind."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.common.matchers import parse
from engine.journal.format import parse_ts
from engine.journal.history import HistoryIndex
from engine.journal.history_build import index_path
from engine.journal.history_query import DAY, Reader
from tests.unit.journal.history_journals import (
    FPS,
    Clock,
    brute_counts,
    brute_episodes,
    brute_state_at,
    recount,
    write_journal,
)

KINDS = [
    "pending", "firing", "firing", "resolved", "inactive", "acknowledged", "unacknowledged",
    "notified", "notify_failed", "other",
]  # fmt: skip
MATCHERS = ['host=~"web-.*"', "team!=ops", "team=ops", 'mount!~"/.*"', "alertname=disk_full"]

ops_st = st.lists(
    st.tuples(st.sampled_from(KINDS), st.integers(0, len(FPS) - 1), st.integers(0, len(FPS) - 1)),
    min_size=1,
    max_size=60,
)
# seconds between events: often the same second, sometimes hours or a day apart, and
# now and then back (a wall clock stepped back: the journal stamps what the clock says)
step_st = st.one_of(
    st.just(0.0),
    st.floats(0.001, 120.0),
    st.sampled_from([3600.0, 5000.0, DAY]),
    st.sampled_from([-1.0, -4000.0]),
)


def _index(d: str) -> HistoryIndex:
    return HistoryIndex(d, pause=0.0)


def check_all(d: str, r: Reader, probes: list[float], limit: int) -> None:
    eps, events = recount(d)
    assert r.position() == (events[-1]["seq"], events[-1]["ts"])
    by_id = {e.id: e for e in eps}
    t_lo, t_hi = parse_ts_first_last(events)
    windows = [(None, None), (t_lo, t_hi), *((a, b) for a in probes for b in probes if a <= b)]
    for rule in (None, "cpu_high", "nope"):
        for ms_text in ([], *([m] for m in MATCHERS), MATCHERS[:2]):
            ms = [parse(m) for m in ms_text]
            for t1, t2 in windows:
                got = r.episodes(rule=rule, matchers=ms, t1=t1, t2=t2, limit=limit)
                lo = -1e18 if t1 is None else t1
                hi = 1e18 if t2 is None else t2
                want = brute_episodes(eps, rule, ms, lo, hi, limit)
                assert [g["id"] for g in got] == want, (rule, ms_text, t1, t2)
    for g in r.episodes(limit=10_000):
        e = by_id[g["id"]]
        assert (g["fingerprint"], g["start"], g["pending_at"], g["firing_at"], g["end"]) == (
            e.fp, e.start, e.pending_at, e.firing_at, e.end
        )  # fmt: skip
        assert (g["end_kind"], g["acked_at"], g["acked_by"], g["notified"], g["notify_failed"]) == (
            e.end_kind, e.acked_at, e.ack_by, e.notified, e.failed
        )  # fmt: skip
        assert (g["severity"], g["labels"]) == (e.severity, e.labels)
    for t in probes:
        assert [(a["id"], a["state"]) for a in r.state_at(t)] == brute_state_at(eps, t)
    for width, by in ((3600, "hour"), (DAY, "day")):
        got_c = r.counts(by, t_lo, t_hi)
        assert [(c["t"], c["started"], c["fired"], c["firing"]) for c in got_c] == brute_counts(
            eps, width, t_lo, t_hi
        )
    for fp in FPS:
        mine = [
            (ev["seq"], ev["event"])
            for ev in events
            if ev.get("alert") == fp or fp in (ev.get("alerts") or ())
        ]
        tl = r.timeline(fp, limit=10_000)
        if not mine:
            assert tl is None
            continue
        assert tl is not None
        assert [(ev["seq"], ev["event"]) for ev in tl["events"]] == mine
        assert [ep["id"] for ep in tl["episodes"]] == [e.id for e in eps if e.fp == fp]


def parse_ts_first_last(events: list[dict]) -> tuple[float, float]:
    times = [parse_ts(e["ts"]) for e in events]
    return min(times), max(times)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ops=ops_st,
    data=st.data(),
    limit=st.sampled_from([1, 3, 100]),
)
def test_every_query_agrees_with_a_recount_of_the_journal(
    tmp_path_factory: pytest.TempPathFactory,
    ops: list[tuple[str, int, int]],
    data: st.DataObject,
    limit: int,
) -> None:
    d = str(tmp_path_factory.mktemp("j"))
    steps = data.draw(st.lists(step_st, min_size=len(ops), max_size=len(ops)))
    restarts = set(data.draw(st.lists(st.integers(1, len(ops)), max_size=3)))
    follows = set(data.draw(st.lists(st.integers(0, len(ops)), max_size=8)))
    clock = Clock()
    index = _index(d)
    builders = [index.open_builder()]

    def restart() -> None:  # the daemon stops and starts: its index is opened afresh
        index.catch_up(builders[-1])
        builders[-1].db.close()
        builders.append(index.open_builder())

    # the index follows a piece at a time, as the daemon's thread does: from where it
    # stopped reading, across rotations of small segments and restarts
    try:
        write_journal(
            d, ops, steps, restarts, clock,
            on_restart=restart,
            on_append=lambda n: index.catch_up(builders[-1]) if n in follows else None,
            segment_bytes=data.draw(st.sampled_from([600, 2000, 1 << 20])),
        )  # fmt: skip
        index.catch_up(builders[-1])
    finally:
        builders[-1].db.close()
    assert index.rebuilds == 0
    eps, _events = recount(d)
    t0 = Clock().t
    probes = sorted(
        {t0, clock.t, *(e.start for e in eps[:4]), *(e.end for e in eps[:4] if e.end)}
        | set(
            data.draw(st.lists(st.floats(min(t0, clock.t) - 10, max(t0, clock.t) + 10), max_size=3))
        )
    )
    r = Reader(d)
    try:
        check_all(d, r, probes, limit)
        # and an index built from scratch in one go answers the same
        os.remove(index_path(d))
        _index(d).build_now()
        check_all(d, r, probes, limit)
    finally:
        r.close()


def _journal(tmp_path: Path) -> str:
    d = str(tmp_path)
    ops = [("pending", 0, 0), ("firing", 0, 0), ("notified", 0, 1), ("resolved", 0, 0)]
    write_journal(d, ops * 3, [60.0] * 12, {5}, Clock())
    return d


def _answers(d: str) -> list[object]:
    r = Reader(d)
    try:
        return [r.position(), r.episodes(limit=100), r.timeline(FPS[0])]
    finally:
        r.close()


def test_a_deleted_index_is_rebuilt(tmp_path: Path) -> None:
    d = _journal(tmp_path)
    _index(d).build_now()
    before = _answers(d)
    shutil.rmtree(os.path.dirname(index_path(d)))  # the index and the report's rows
    index = _index(d)
    index.build_now()
    assert _answers(d) == before
    assert index.rebuilds == 0  # nothing to distrust: there was no index
    for name in os.listdir(os.path.dirname(index_path(d))):  # as private as the journal
        assert os.stat(os.path.join(os.path.dirname(index_path(d)), name)).st_mode & 0o007 == 0


@pytest.mark.parametrize("damage", ["garbage", "truncated", "other schema"])
def test_a_damaged_index_is_rebuilt(tmp_path: Path, damage: str) -> None:
    d = _journal(tmp_path)
    _index(d).build_now()
    before = _answers(d)
    path = index_path(d)
    if damage == "garbage":
        with open(path, "r+b") as f:
            f.seek(0)
            f.write(os.urandom(4096))
    elif damage == "truncated":
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) // 3)
    else:
        db = sqlite3.connect(path)
        db.execute("UPDATE meta SET value = 99 WHERE key = 'schema'")
        db.commit()
        db.close()
    index = _index(d)
    index.build_now()
    assert index.rebuilds == 1
    assert _answers(d) == before


def test_an_index_ahead_of_the_journal_is_rebuilt(tmp_path: Path) -> None:
    """A journal replaced by another (restored from a backup, a fresh data_dir with an
    old history/ copied in): the index's position is not in it, so it is not trusted."""
    d = _journal(tmp_path)
    _index(d).build_now()
    for name in os.listdir(d):
        if name.startswith(("alerts", "snapshot")):
            os.remove(os.path.join(d, name))
    write_journal(d, [("firing", 2, 2)], [1.0], set(), Clock(1_800_000_000.0))
    index = _index(d)
    index.build_now()
    assert index.rebuilds == 1
    r = Reader(d)
    try:
        assert [e["fingerprint"] for e in r.episodes()] == [FPS[2]]
    finally:
        r.close()


@pytest.mark.parametrize("child", [True, False], ids=["child process", "thread"])
def test_the_follower_catches_up_and_queries_wait_for_it(tmp_path: Path, child: bool) -> None:
    import asyncio

    d = _journal(tmp_path)
    index = HistoryIndex(d, poll=30.0)  # only a query's kick wakes it in time
    index.start(child=child)
    pid = index._child.pid if index._child is not None else None
    try:

        async def ask() -> int:
            return len(await index.query(lambda r: r.episodes(limit=100), fresh=10.0))

        assert asyncio.run(ask()) == 3
        if pid is not None:  # ^C in the terminal reaches the child too: it is the daemon's
            os.kill(pid, signal.SIGINT)
        write_journal(d, [("firing", 3, 3)], [1.0], set(), Clock(1_800_000_000.0))
        assert asyncio.run(ask()) == 4
    finally:
        index.stop()
    if pid is not None:  # stopped: the child has exited and was reaped, not left behind
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_line_being_written_is_read_once_it_is_whole(tmp_path: Path) -> None:
    from engine.journal.lines import seal
    from tests.unit.journal.history_journals import alert_event

    d = _journal(tmp_path)
    index = _index(d)
    b = index.open_builder()
    try:
        index.catch_up(b)
        seq = b.seq
        line = seal(
            {"v": 1, "seq": seq + 1, "ts": "2026-09-21T15:00:00.000Z", **alert_event("firing", 4)}
        )
        with open(os.path.join(d, "alerts.jsonl"), "ab") as f:
            f.write(line[:40])
            f.flush()
            assert index.catch_up(b) == 0  # half a line: not yet
            f.write(line[40:])
        assert index.catch_up(b) == 1
        assert b.seq == seq + 1
        assert index.catch_up(b) == 0
    finally:
        b.db.close()
    r = Reader(d)
    try:
        assert r.state_at(parse_ts("2026-09-21T15:00:00.000Z"))[-1]["fingerprint"] == FPS[4]
    finally:
        r.close()
