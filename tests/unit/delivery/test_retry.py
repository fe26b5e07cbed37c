"""Backoff, circuit breaker, the delivery loop and the folding queue."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence

import pytest

from engine.delivery.retry import BoundedQueue, Breaker, RetryPolicy, deliver, scrub
from engine.errors import DeliveryError


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Sends:
    """A send() that fails with the given errors in turn, then succeeds."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0
        self.delivered = 0

    async def __call__(self) -> None:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        self.delivered += 1


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_full_jitter_bounds_and_retry_after_floor() -> None:
    p = RetryPolicy(base=1.0, cap=60.0)
    assert p.delay(1, rand=lambda: 1.0) == 1.0
    assert p.delay(3, rand=lambda: 1.0) == 4.0
    assert p.delay(10, rand=lambda: 1.0) == 60.0  # capped
    assert p.delay(10, rand=lambda: 0.0) == 0.0  # full jitter reaches zero
    assert p.delay(1, retry_after=7.0, rand=lambda: 0.5) == 7.0
    assert p.delay(1, retry_after=10_000.0, rand=lambda: 0.5) == p.max_retry_after


def test_500_three_times_then_success_is_one_delivery() -> None:
    send = Sends(*(DeliveryError("HTTP 500", retryable=True) for _ in range(3)))
    sleeps: list[float] = []

    async def sleep(d: float) -> None:
        sleeps.append(d)

    out = run(deliver(send, RetryPolicy(), Breaker(threshold=10), sleep=sleep))
    assert out.ok and out.attempts == 4 and send.delivered == 1
    assert len(sleeps) == 3


def test_4xx_is_not_retried() -> None:
    send = Sends(DeliveryError("HTTP 400 bad payload", retryable=False))
    out = run(deliver(send, RetryPolicy(), Breaker(), sleep=_nosleep))
    assert not out.ok and out.attempts == 1 and send.calls == 1
    assert out.error == "HTTP 400 bad payload"


def test_retry_after_is_honoured() -> None:
    send = Sends(DeliveryError("HTTP 429", retryable=True, retry_after=7.0))
    sleeps: list[float] = []

    async def sleep(d: float) -> None:
        sleeps.append(d)

    out = run(deliver(send, RetryPolicy(), Breaker(), sleep=sleep, rand=lambda: 0.1))
    assert out.ok and sleeps == [7.0]


def test_gives_up_after_max_attempts() -> None:
    send = Sends(*(DeliveryError("HTTP 503", retryable=True) for _ in range(10)))
    out = run(deliver(send, RetryPolicy(max_attempts=3), Breaker(threshold=100), sleep=_nosleep))
    assert not out.ok and out.attempts == 3 and send.calls == 3


def test_timeout_counts_as_retryable() -> None:
    calls = 0

    async def send() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(10)

    out = run(deliver(send, RetryPolicy(timeout=0.02), Breaker(), sleep=_nosleep))
    assert out.ok and out.attempts == 2


def test_breaker_open_half_open_close() -> None:
    clock = Clock()
    b = Breaker(threshold=3, cooldown=30.0, clock=clock)
    for _ in range(2):
        assert b.allow()
        b.failure()
    assert b.state == "closed"
    assert b.allow()
    b.failure()
    assert b.state == "open" and not b.allow()
    assert b.retry_in() == 30.0
    clock.t = 29.9
    assert not b.allow()
    clock.t = 30.0
    assert b.state == "half_open"
    assert b.allow()  # the probe
    assert not b.allow()  # only one at a time
    b.failure()  # probe failed: open again for a full cooldown
    assert b.state == "open"
    clock.t = 60.0
    assert b.allow()
    b.success()
    assert b.state == "closed" and b.allow()


def test_open_breaker_fails_fast_without_calling() -> None:
    clock = Clock()
    b = Breaker(threshold=2, cooldown=30.0, clock=clock)
    send = Sends(*(DeliveryError("HTTP 502", retryable=True) for _ in range(5)))
    out = run(deliver(send, RetryPolicy(), b, sleep=_nosleep))
    assert not out.ok and send.calls == 2  # the breaker opened mid-retry
    out = run(deliver(send, RetryPolicy(), b, sleep=_nosleep))
    assert not out.ok and out.attempts == 0 and "circuit open" in (out.error or "")
    assert send.calls == 2


def test_scrub_cuts_urls_to_host() -> None:
    msg = "POST https://hooks.slack.com/services/T00/B00/SECRET?x=1 failed:\n 500"
    assert scrub(msg) == "POST https://hooks.slack.com/… failed: 500"


def test_bounded_queue_folds_oldest_foldable() -> None:
    def fold(items: Sequence[str]) -> str:
        return "D(" + ",".join(items) + ")"

    q: BoundedQueue[str] = BoundedQueue(4, fold, lambda s: not s.startswith("r"))
    for item in ["a", "r1", "b", "c"]:
        q.put_nowait(item)
    q.put_nowait("e")
    assert q.drain() == ["D(a,b)", "r1", "c", "e"]
    assert q.folded == 2
    with pytest.raises(ValueError):
        BoundedQueue(1, fold)


def test_bounded_queue_get_waits() -> None:
    async def main() -> list[str]:
        q: BoundedQueue[str] = BoundedQueue(3, lambda xs: "d")
        got: list[str] = []

        async def consumer() -> None:
            got.append(await q.get())
            got.append(await q.get())

        task = asyncio.create_task(consumer())
        await asyncio.sleep(0)
        q.put_nowait("x")
        q.put_nowait("y")
        await asyncio.wait_for(task, 1)
        return got

    assert run(main()) == ["x", "y"]


async def _nosleep(_: float) -> None:
    return None


class _CountingLoop(asyncio.SelectorEventLoop):
    """Counts, per task, the steps scheduled for it: how often it was woken."""

    def __init__(self) -> None:
        super().__init__()
        self.wakeups: Counter[str] = Counter()

    def call_soon(self, callback, *args, context=None):  # type: ignore[no-untyped-def,override]
        owner = getattr(callback, "__self__", None)
        if isinstance(owner, asyncio.Task):
            self.wakeups[owner.get_name()] += 1
        return super().call_soon(callback, *args, context=context)


def test_bounded_queue_wakes_one_getter_per_item() -> None:
    """Eight senders wait on one channel's queue: an item wakes one of them, not
    all eight (each woken in vain would cost a step of the event loop)."""
    loop = _CountingLoop()

    async def main() -> list[str]:
        q: BoundedQueue[str] = BoundedQueue(8, lambda xs: "d")
        got: list[str] = []

        async def sender() -> None:
            while True:
                got.append(await q.get())

        tasks = [asyncio.create_task(sender(), name=f"sender{i}") for i in range(8)]
        await asyncio.sleep(0)  # all eight wait
        loop.wakeups.clear()
        q.put_nowait("x")
        for _ in range(3):
            await asyncio.sleep(0)
        q.put_nowait("y")
        q.put_nowait("z")
        for _ in range(3):
            await asyncio.sleep(0)
        woken = sum(n for name, n in loop.wakeups.items() if name.startswith("sender"))
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert woken == 3  # one wake-up per item
        return got

    try:
        assert sorted(loop.run_until_complete(main())) == ["x", "y", "z"]
    finally:
        loop.close()


def test_bounded_queue_a_cancelled_getter_passes_its_item_on() -> None:
    """A getter woken for an item and cancelled before it ran must not strand
    the item: the next waiting getter gets it."""

    async def main() -> str:
        q: BoundedQueue[str] = BoundedQueue(4, lambda xs: "d")
        first = asyncio.create_task(q.get())
        second = asyncio.create_task(q.get())
        await asyncio.sleep(0)
        q.put_nowait("x")  # wakes `first`
        first.cancel()  # ... which is cancelled before it runs
        await asyncio.gather(first, return_exceptions=True)
        return await asyncio.wait_for(second, 1)

    assert run(main()) == "x"
