"""Delivery to one channel: bounded queue, retries with backoff, circuit breaker.

Retry lives here once (Alertmanager's Retrier): channels only classify failures
through DeliveryError.retryable / retry_after. Everything takes its clock and
sleep from the caller, so tests run without real waiting.

    deliver(send, n, policy, breaker, sleep) -> Outcome
        ├─ breaker open (cooldown not over)  → fail fast, attempts=0
        ├─ send ok                           → Outcome(ok)
        ├─ DeliveryError(retryable=False)    → Outcome(failed, permanent) at once (HTTP 4xx,
        │                                      a body that cannot be encoded); it says
        │                                      nothing of the channel: the breaker ignores it
        └─ retryable (5xx, 429, timeout)     → sleep max(Retry-After, full jitter) and retry,
                                               up to max_attempts
"""

from __future__ import annotations

import asyncio
import itertools
import random
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from engine.errors import DeliveryError

__all__ = [
    "BoundedQueue",
    "Breaker",
    "Outcome",
    "RetryPolicy",
    "deliver",
    "scrub",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter: attempt k (1-based) waits a uniform
    random time in [0, min(cap, base * 2**(k-1))]; a receiver's Retry-After is a
    floor (capped at max_retry_after so one answer cannot park a worker for hours)."""

    base: float = 1.0
    cap: float = 60.0
    max_attempts: int = 6
    max_retry_after: float = 300.0
    timeout: float = 30.0  # per attempt: a hanging channel fails and is retried

    def delay(
        self,
        attempt: int,
        retry_after: float | None = None,
        rand: Callable[[], float] = random.random,
    ) -> float:
        d: float = rand() * min(self.cap, self.base * 2.0 ** (attempt - 1))
        if retry_after is not None and retry_after > 0:
            d = max(d, min(retry_after, self.max_retry_after))
        return d


BreakerState = Literal["closed", "open", "half_open"]


class Breaker:
    """Circuit breaker of one channel.

    closed → open after `threshold` consecutive failed attempts; while open,
    deliveries fail fast; after `cooldown` one probe is let through (half-open):
    success closes the breaker, failure opens it for another cooldown.
    """

    def __init__(
        self,
        threshold: int = 5,
        cooldown: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self.clock = clock
        self.failures = 0
        self.opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> BreakerState:
        if self.opened_at is None:
            return "closed"
        if self._probing or self.clock() - self.opened_at >= self.cooldown:
            return "half_open"
        return "open"

    def allow(self) -> bool:
        """Whether an attempt may go out now; in half-open only one probe at a time."""
        st = self.state
        if st == "closed":
            return True
        if st == "half_open" and not self._probing:
            self._probing = True
            return True
        return False

    def success(self) -> None:
        self.failures = 0
        self.opened_at = None
        self._probing = False

    def neutral(self) -> None:
        """An attempt that failed for its own content, not the channel's health: it
        neither counts towards opening nor holds the half-open probe."""
        self._probing = False

    def failure(self) -> None:
        self.failures += 1
        if self._probing or self.failures >= self.threshold:
            self.opened_at = self.clock()
        self._probing = False

    def retry_in(self) -> float:
        """Seconds until a probe may go out (0 when one may now)."""
        at = self.probe_at()
        return 0.0 if at is None else max(0.0, at - self.clock())

    def probe_at(self) -> float | None:
        """When (on `clock`) a probe may go out; None while closed."""
        return None if self.opened_at is None else self.opened_at + self.cooldown


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    attempts: int
    error: str | None = None
    seconds: float = 0.0
    permanent: bool = False  # failed for a reason no retry can fix: not tried again
    # journal events the channel made while sending (a ban channel's bans), in order
    events: tuple[Any, ...] = ()


# URLs in error text may carry tokens in their path or query (Slack, Discord,
# Telegram put the secret in the URL): keep only scheme and host.
_URL = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://[^/\s?#]+)[^\s'\"<>]*")


def scrub(message: str, limit: int = 500) -> str:
    """An error message fit for the journal: one line, URLs cut to their host."""
    text = " ".join(message.split())
    return _URL.sub(r"\1/…", text)[:limit]


async def deliver(
    send: Callable[[], Awaitable[None]],
    policy: RetryPolicy,
    breaker: Breaker,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rand: Callable[[], float] = random.random,
    clock: Callable[[], float] = time.monotonic,
) -> Outcome:
    """Send with retries. Never raises for a delivery problem: the outcome says."""
    t0 = clock()
    attempt = 0
    last = "not attempted"
    while True:
        if not breaker.allow():
            # Fail fast: the pipeline keeps the group and tries again at its next
            # group_interval, by when the breaker may let a probe through.
            reason = f"circuit open after {breaker.failures} consecutive failures"
            return Outcome(False, attempt, reason if attempt == 0 else last, clock() - t0)
        attempt += 1
        retry_after: float | None = None
        try:
            async with asyncio.timeout(policy.timeout):  # cancel-safe, unlike wait_for
                await send()
        except DeliveryError as e:
            last = scrub(str(e) or type(e).__name__)
            if not e.retryable:
                # one notification's problem (its body, a 4xx): it fails once and
                # never opens the breaker for the channel's other alerts
                breaker.neutral()
                return Outcome(False, attempt, last, clock() - t0, permanent=True)
            breaker.failure()
            retry_after = e.retry_after
        except TimeoutError:
            breaker.failure()
            last = f"timed out after {policy.timeout:g}s"
        else:
            breaker.success()
            return Outcome(True, attempt, None, clock() - t0)
        if attempt >= policy.max_attempts:
            return Outcome(False, attempt, last, clock() - t0)
        await sleep(policy.delay(attempt, retry_after, rand))


class BoundedQueue(asyncio.Queue[T]):
    """A FIFO with a maximum length whose overflow is folded, never dropped.

    When a put would exceed `limit`, `fold` is given the oldest items that
    `foldable` accepts (at least two, about half of the queue) and returns one
    item (a digest) that takes the place of the oldest of them. Waiting and
    waking are asyncio.Queue's: one waiting getter is woken per item, so eight
    senders of a channel are not all woken for each notification.
    """

    _queue: deque[T]  # asyncio.Queue's storage, made in _init

    def __init__(
        self,
        limit: int,
        fold: Callable[[Sequence[T]], T],
        foldable: Callable[[T], bool] = lambda _: True,
    ) -> None:
        if limit < 2:
            raise ValueError("limit must be at least 2")
        super().__init__()  # unbounded to asyncio: a put never waits, overflow folds
        self.limit = limit
        self.fold = fold
        self.foldable = foldable
        self.folded = 0  # items folded so far, for metrics

    def __len__(self) -> int:
        return self.qsize()

    def _init(self, maxsize: int) -> None:
        self._queue = deque()

    def _put(self, item: T) -> None:
        if len(self._queue) >= self.limit:
            self._fold()
        self._queue.append(item)

    def _get(self) -> T:
        return self._queue.popleft()

    def _fold(self) -> None:
        items = list(self._queue)
        want = max(2, len(items) // 2)
        foldable = self.foldable
        idx = list(itertools.islice((i for i, it in enumerate(items) if foldable(it)), want))
        if len(idx) < 2:  # nothing foldable enough: fold the oldest regardless
            idx = list(range(want))
        picked = [items[i] for i in idx]
        digest = self.fold(picked)
        keep = set(idx)
        rest = [it for i, it in enumerate(items) if i not in keep]
        rest.insert(min(idx[0], len(rest)), digest)
        self._queue = deque(rest)
        self.folded += len(picked)

    def drain(self) -> list[T]:
        items = list(self._queue)
        self._queue.clear()
        return items
