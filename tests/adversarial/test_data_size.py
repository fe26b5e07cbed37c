"""Oversized data from a collector: a value nested ~900 levels deep and a 9 MB string.
The deep value once raised RecursionError while the tick's transitions were
journaled, dropping every other alert's transition and notification of that
tick; the 9 MB string went whole into the journal, the log, the webhook body
and the API. Values are bounded at the collector boundary (engine/common/boundary.py),
and a journal event that still cannot be written never takes its batch with it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.config.model import LogConfig
from engine.journal.journal import Journal
from engine.journal.reader import iter_events
from tests.adversarial._api_live import HealthProbe
from tests.adversarial.hook_channel import CHANNELS
from tests.integration.daemon import Daemon
from tests.integration.receivers import Receiver

pytestmark = pytest.mark.slow

RULES = """
group: app
interval: 100ms
rules:
  - id: deep_value
    expr: app.deep != 0
  - id: big_value
    expr: app.big != ""
  - id: queue_deep
    expr: app.queue > fixed.limit
"""

TOKEN = "data-size-viewer-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DEPTH = 900  # json.loads itself refuses ~1,000 (a collector error, not this path)
BIG = 9 * 1024 * 1024


def wait(cond: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if cond():
                return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def write_values(d: Daemon, queue: int, hostile: bool) -> None:
    """The collector's file, written by hand: json.dumps cannot nest 900 levels."""
    if hostile:
        deep = '{"a":' * DEPTH + "1" + "}" * DEPTH
        text = f'{{"queue": {queue}, "deep": {deep}, "big": "{"x" * BIG}"}}'
    else:
        text = f'{{"queue": {queue}, "deep": 0, "big": ""}}'
    tmp = d.metrics.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(d.metrics)


def test_deep_and_huge_values_are_bounded_and_drop_no_transition(tmp_path: Path) -> None:
    with Receiver() as rx:
        d = Daemon(tmp_path, RULES, CHANNELS.format(url=rx.url), tokens={"v": (TOKEN, "viewer")})
        write_values(d, 1, hostile=False)
        d.start()
        try:
            with httpx.Client(base_url=d.url, timeout=10) as c:
                wait(lambda: c.get("/ready").status_code == 200, "ready")
                with HealthProbe(d) as health:  # /health within 1 s throughout the attack
                    write_values(d, 50, hostile=True)  # all three rules turn true in one tick

                    def fired() -> set[str]:
                        return {
                            a["rule"]
                            for r in rx.requests
                            if r.path == "/hook"
                            for a in r.json()["alerts"]
                            if a["status"] == "firing"
                        }

                    wait(lambda: fired() >= {"deep_value", "big_value", "queue_deep"}, "all fired")
                    r = c.get("/api/v1/alerts", headers=AUTH)
                    assert r.status_code == 200, r.text[:500]
                    assert len(r.content) < 1024 * 1024, len(r.content)
                    write_values(d, 1, hostile=False)
                    wait(
                        lambda: (
                            sum(
                                1
                                for e in iter_events(tmp_path / "data")
                                if e["event"] == "resolved"
                            )
                            >= 3
                        ),
                        "all resolved",
                    )
                health.check()
        finally:
            d.stop()
        firing = {e["rule"] for e in d.events() if e["event"] == "firing"}
        assert firing >= {"deep_value", "big_value", "queue_deep"}
        # bounded everywhere: the journal, the webhook bodies, the log
        journal = sum(p.stat().st_size for p in (tmp_path / "data").glob("alerts*.jsonl"))
        assert journal < 1024 * 1024, journal
        assert max(len(r.body) for r in rx.requests) < 1024 * 1024
        log = d.log()
        assert len(log) < 1024 * 1024 and "Traceback" not in log, log[-3000:]
        assert "values cut at the boundary" in log


def test_an_event_the_journal_cannot_encode_never_takes_its_batch_with_it(
    tmp_path: Path,
) -> None:
    # what reaches the journal without the boundary (a bug upstream): the other
    # events of the batch are written, the bad one with what could be kept
    deep: Any = 1
    for _ in range(5000):
        deep = {"a": deep}
    j = Journal(tmp_path, LogConfig())
    j.open()

    async def main() -> None:
        await j.append(
            [
                {"event": "firing", "alert": "ok1", "value": 1},
                {"event": "firing", "alert": "bad", "value": deep},
                {"event": "firing", "alert": "ok2", "value": 2},
            ]
        )
        await j.close()

    asyncio.run(main())
    evs = list(iter_events(tmp_path))
    assert [e["alert"] for e in evs] == ["ok1", "bad", "ok2"]
    assert [e["seq"] for e in evs] == [1, 2, 3]


def test_the_boundary_bounds_depth_length_items_and_types() -> None:
    import enum

    from engine.common.boundary import clean

    class Level(enum.IntEnum):
        HIGH = 3

    deep: Any = 1
    for _ in range(DEPTH):
        deep = {"a": deep}
    value = {
        "deep": deep,
        "big": "x" * BIG,
        "huge_int": 2**70,
        "level": Level.HIGH,
        "thing": object(),
        "many": list(range(200)),
    }
    out, cut = clean(value, max_items=150)
    assert cut is not None and "nested deeper than 16 levels" in cut
    node = out["deep"]
    for _ in range(14):  # the sample is level 0, out["deep"] level 1
        node = node["a"]
    assert node == {"a": None}  # cut at the bound; the shallower part kept
    assert len(out["big"]) < 70 * 1024 and out["big"].endswith("characters cut]")
    assert out["huge_int"] is None and out["level"] == 3 and type(out["level"]) is int
    assert out["thing"] is None
    assert len(out["many"]) < 150  # the item budget is for the whole value
