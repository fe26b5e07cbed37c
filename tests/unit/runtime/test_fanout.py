"""The event fan-out behind GET /api/v1/events: every subscriber gets every
event in order; a subscriber that lags past its bound is dropped, never waited
for; closing ends every subscription."""

from __future__ import annotations

import asyncio

import pytest

from engine.runtime.fanout import Fanout, summary

pytestmark = pytest.mark.timeout(10)


def ev(seq: int, **kw: object) -> dict[str, object]:
    return {"event": "firing", "seq": seq, "ts": 1.5, "alert": f"fp{seq}", "rule": "r", **kw}


def test_every_subscriber_gets_every_event_in_order() -> None:
    async def main() -> None:
        f = Fanout()
        a, b = f.subscribe(), f.subscribe()
        assert a is not None and b is not None and len(f) == 2
        f.publish([ev(1), ev(2)])
        f.publish([ev(3)])
        for sub in (a, b):
            got = await sub.get(1.0)
            assert [e["seq"] for e in got or ()] == [1, 2, 3]
        assert await a.get(0.01) == []  # nothing new: the timeout, not a hang

    asyncio.run(main())


def test_a_lagging_subscriber_is_dropped_and_the_others_keep_going() -> None:
    async def main() -> None:
        f = Fanout(limit=5)
        slow, fast = f.subscribe(), f.subscribe()
        assert slow is not None and fast is not None
        for i in range(4):
            f.publish([ev(2 * i), ev(2 * i + 1)])  # publish never waits
            got = await fast.get(1.0)
            assert got is not None and len(got) == 2
        assert slow.dropped and slow.closed and len(f) == 1 and f.dropped == 1
        assert await slow.get(1.0) is None  # what it lagged on is not handed out
        assert not fast.dropped

    asyncio.run(main())


def test_close_ends_waiting_subscribers_and_a_full_fanout_refuses() -> None:
    async def main() -> None:
        f = Fanout(max_subscribers=2)
        a, b = f.subscribe(), f.subscribe()
        assert a is not None and b is not None and f.subscribe() is None
        waiting = asyncio.create_task(a.get(None))
        await asyncio.sleep(0)
        f.close()
        assert await asyncio.wait_for(waiting, 1.0) is None
        assert len(f) == 0 and f.subscribe() is not None

    asyncio.run(main())


def test_publish_without_subscribers_builds_nothing() -> None:
    f = Fanout()
    f.publish(iter([{"event": "firing"}]))  # no subscriber: not even iterated into summaries
    assert f.dropped == 0


def test_summary_keeps_what_a_client_rereads_by_and_nothing_else() -> None:
    full = {
        "event": "acknowledged", "seq": 7, "ts": 2.0, "alert": "abc", "by": "oncall",
        "note": "a private note", "until": None,
    }  # fmt: skip
    assert summary(full) == {"event": "acknowledged", "seq": 7, "ts": 2.0, "alert": "abc"}
    grouped = summary({"event": "notified", "seq": 8, "alerts": ["a", "b"], "channel": "x"})
    assert grouped == {"event": "notified", "seq": 8, "alerts": 2}
