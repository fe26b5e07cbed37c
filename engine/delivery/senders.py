"""The channels' side of delivery: per-channel queue, sender tasks, retries, breaker.

    put(n) ─► channel's BoundedQueue ─► sender tasks ─► retry.deliver ─► channel.send()
                (folds overflow into a digest)                 │
                                                               ▼
                                report(channel, n, outcome, originals)

The Dispatcher decides what goes out; a `Delivery` sends it and reports each
outcome once. Two implementations keep one contract:

    Senders        here, on the caller's event loop (tests, `vigil notify-test`,
                   `--dry-run`, channels given as instances)
    SenderProcess  sender_process.py: the same Senders in a child process, so a
                   burst's sending does not take the CPU from the evaluation loop

`report` gets the notification that was sent (a queue digest, when the queue
folded its overflow) and `originals`, the notifications put that it stands for.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from engine.channels.base import Channel
from engine.config.model import Channel as ChannelConfig
from engine.delivery.retry import BoundedQueue, Breaker, Outcome, RetryPolicy, deliver, scrub
from engine.errors import DeliveryError, VigilError
from engine.notify.base import Notification
from engine.notify.digest import make_digest
from engine.notify.pipeline import CLOSING_TYPES
from engine.plugins import registry

__all__ = ["Delivery", "Report", "SenderSettings", "Senders", "channel_traits"]

log = logging.getLogger("vigil.notify")

# channel, the notification sent, its outcome, the notifications put that it stands for
Report = Callable[[str, Notification, Outcome, list[Notification]], None]
# the journal's records per channel name, for channels that keep a book (ban)
Books = Callable[[], Mapping[str, Mapping[str, Any]]]
_Item = tuple[Notification, "asyncio.Future[Outcome] | None"]  # future: send_test waits


@dataclass(frozen=True, slots=True)
class SenderSettings:
    """How the senders retry and when a breaker opens; `dry_run` logs instead."""

    policy: RetryPolicy = field(default_factory=RetryPolicy)
    breaker_threshold: int = 5
    breaker_cooldown: float = 30.0
    queue_size: int = 256
    dry_run: bool = False


class Delivery(Protocol):
    """Sends what the Dispatcher puts, per channel, and reports every outcome.

    `configure` builds, rebuilds or retires channels (a reload): an unchanged
    channel keeps its instance, queue and breaker; queued notifications of a
    changed one carry over; a removed one's queued notifications are reported
    failed. `put` never waits; every put notification is reported exactly once
    (possibly inside a digest's `originals`). `send_test` goes through the
    channel's queue, retries and breaker and returns the outcome. `aclose`
    lets what is queued go out for up to `drain_timeout` seconds, then stops,
    closes the channels and reports what was not sent.
    """

    def configure(self, channels: Sequence[ChannelConfig]) -> None: ...

    def start(self) -> None: ...

    def put(self, n: Notification) -> None: ...

    async def send_test(self, n: Notification) -> Outcome: ...

    def status(self) -> dict[str, dict[str, Any]]: ...

    def traits(self) -> tuple[set[str], set[str]]: ...

    async def aclose(self, drain_timeout: float) -> None: ...


def channel_traits(classes: Mapping[str, tuple[str, type | None]]) -> tuple[set[str], set[str]]:
    """(textless, closing) channel names from {name: (type, class or None)}: those
    whose class says it never reads title/body, and those that close incidents
    (a class that cannot be built counts by its type name)."""
    textless = {n for n, (_, c) in classes.items() if c is not None and not _attr(c, "uses_text")}
    closing = {
        n
        for n, (t, c) in classes.items()
        if (_attr(c, "closes_incidents", False) if c is not None else t in CLOSING_TYPES)
    }
    return textless, closing


def _attr(cls: type, name: str, default: bool = True) -> bool:
    return bool(getattr(cls, name, default))


@dataclass(eq=False)
class _Worker:
    name: str
    config: ChannelConfig
    channel: Channel | None
    error: str | None  # why `channel` could not be built
    queue: BoundedQueue[_Item]
    breaker: Breaker
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    busy: int = 0  # sends in flight
    stopped: bool = False  # removed by a reload: the worker ends
    retired: list[Channel] = field(default_factory=list)  # replaced on reload, close when idle
    sent: int = 0
    failed: int = 0


class Senders:
    """Delivery on the caller's event loop. `channels` replaces building
    instances from the config (tests); `mono` drives the breakers' cooldowns,
    `sleep` the retry backoff: tests inject both."""

    def __init__(
        self,
        settings: SenderSettings,
        report: Report,
        *,
        channels: Mapping[str, Channel] | None = None,
        mono: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        books: Books | None = None,
    ) -> None:
        self.settings = settings
        self.report = report
        self.books = books
        self.mono = mono
        self.sleep = sleep
        self._given = dict(channels) if channels is not None else None
        self.workers: dict[str, _Worker] = {}
        self._folded: dict[str, list[Notification]] = {}  # queue digest key -> folded
        self._background: set[asyncio.Task[None]] = set()  # closing retired channels
        self._started = False

    # -- the Delivery protocol ------------------------------------------------------

    def configure(self, channels: Sequence[ChannelConfig]) -> None:
        new = {c.name: c for c in channels}
        for name in list(self.workers):
            if name not in new:
                self._retire(self.workers.pop(name))
        for name, cfg in new.items():
            w = self.workers.get(name)
            if w is None:
                w = self.workers[name] = self._worker(cfg)
                if self._started:
                    self._spawn(w)
            elif (cfg.type, cfg.settings) != (w.config.type, w.config.settings):
                fresh = self._worker(cfg)
                if w.channel is not None:
                    w.retired.append(w.channel)
                w.channel, w.error, w.config = fresh.channel, fresh.error, cfg
                w.breaker = fresh.breaker
                if not w.busy:
                    self._close_retired(w)
            else:
                w.config = cfg

    def start(self) -> None:
        self._started = True
        for w in self.workers.values():
            self._spawn(w)

    def put(self, n: Notification) -> None:
        w = self.workers.get(n.channel)
        if w is not None:
            w.queue.put_nowait((n, None))

    async def send_test(self, n: Notification) -> Outcome:
        fut: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self.put_test(n, fut)
        return await fut

    def put_test(self, n: Notification, fut: asyncio.Future[Outcome]) -> None:
        """send_test without awaiting (the sender process answers when `fut` is done)."""
        w = self.workers.get(n.channel)
        if w is None:
            fut.set_result(Outcome(False, 0, "unknown channel"))
        else:
            w.queue.put_nowait((n, fut))

    def status(self) -> dict[str, dict[str, Any]]:
        """Per channel: queue length, breaker state (and seconds until it lets a
        probe through), sent/failed counts (for /metrics)."""
        return {
            name: {
                "queued": len(w.queue),
                "folded": w.queue.folded,
                "breaker": w.breaker.state,
                "retry_in": round(w.breaker.retry_in(), 3),  # until a probe may go out
                "sent": w.sent,
                "failed": w.failed,
                "error": w.error,
            }
            for name, w in self.workers.items()
        }

    def traits(self) -> tuple[set[str], set[str]]:
        return channel_traits(
            {
                name: (w.config.type, type(w.channel) if w.channel is not None else None)
                for name, w in self.workers.items()
            }
        )

    def idle(self) -> bool:
        return not any(len(w.queue) or w.busy for w in self.workers.values())

    async def aclose(self, drain_timeout: float) -> None:
        deadline = time.monotonic() + drain_timeout
        while time.monotonic() < deadline and not self.idle():
            await asyncio.sleep(0.01)
        await cancel_tasks([t for w in self.workers.values() for t in w.tasks])
        for w in self.workers.values():
            for ch in (*w.retired, *([w.channel] if w.channel else [])):
                await _close(ch)
        await asyncio.gather(*self._background, return_exceptions=True)

    # -- building -----------------------------------------------------------------

    def _worker(self, cfg: ChannelConfig) -> _Worker:
        ch: Channel | None = None
        error: str | None = None
        if self._given is not None and cfg.name in self._given:
            ch = self._given[cfg.name]
        elif self._given is None and not self.settings.dry_run:
            ch, error = build_channel(cfg)
            restore = getattr(ch, "restore", None)
            if restore is not None and self.books is not None:
                # a channel with a journaled book (ban) starts from it, once per instance
                restore(self.books().get(cfg.name) or {})
        elif not self.settings.dry_run:
            error = f"no channel instance given for {cfg.name}"

        def fold(items: Sequence[_Item]) -> _Item:
            return self._fold(cfg.name, items)

        queue: BoundedQueue[_Item] = BoundedQueue(
            self.settings.queue_size, fold, lambda it: it[1] is None and it[0].status != "resolved"
        )
        s = self.settings
        breaker = Breaker(s.breaker_threshold, s.breaker_cooldown, self.mono)
        return _Worker(cfg.name, cfg, ch, error, queue, breaker)

    def _fold(self, channel: str, items: Sequence[_Item]) -> _Item:
        notes = []
        for n, fut in items:
            if fut is not None and not fut.done():
                fut.set_result(Outcome(False, 0, "folded into a digest: the queue was full"))
            if n.kind != "test":
                notes.append(n)
        d = make_digest(channel, notes, "a full queue")
        self._folded[d.key] = notes
        log.warning(
            "channel %s: queue full, %d notifications folded into a digest", channel, len(notes)
        )
        return d, None

    def _retire(self, w: _Worker) -> None:
        w.stopped = True
        for t in w.tasks:
            t.cancel()
        for n, fut in w.queue.drain():
            if fut is not None and not fut.done():
                fut.set_result(Outcome(False, 0, "channel removed by reload"))
            elif fut is None:
                self._report(w, n, Outcome(False, 0, "channel removed by reload"))
        if w.channel is not None:
            w.retired.append(w.channel)
        self._close_retired(w)

    def _close_retired(self, w: _Worker) -> None:
        for ch in w.retired:
            t = asyncio.create_task(_close(ch))
            self._background.add(t)
            t.add_done_callback(self._background.discard)
        w.retired.clear()

    # -- tasks ------------------------------------------------------------------------

    def _spawn(self, w: _Worker) -> None:
        """The channel's sender tasks: as many as its type sends at once (HTTP
        channels several, so that a thousand groups do not queue behind one
        round trip each). A group's notifications still go one at a time: the
        pipeline has at most one of each group in flight."""
        width = max(1, int(getattr(type(w.channel), "concurrency", 1)))
        w.tasks = [
            asyncio.create_task(self._run(w), name=f"vigil-notify-{w.name}-{i}")
            for i in range(width)
        ]

    async def _run(self, w: _Worker) -> None:
        while not w.stopped:  # on aclose it drains its queue until cancelled
            n, fut = await w.queue.get()
            w.busy += 1
            try:
                outcome = await self._deliver(w, n)
            finally:
                w.busy -= 1
                if not w.busy:
                    self._close_retired(w)
            if fut is not None and not fut.done():
                fut.set_result(outcome)
            self._report(w, n, outcome)

    async def _deliver(self, w: _Worker, n: Notification) -> Outcome:
        if self.settings.dry_run:
            log.info("dry run: %s would get %r", w.name, n.title)
            return Outcome(True, 0)
        if w.channel is None:
            return Outcome(False, 0, w.error or "channel not available")

        async def send() -> None:
            ch = w.channel  # read each attempt: a reload may have replaced it
            if ch is None:
                raise DeliveryError(w.error or "channel not available", retryable=False)
            await _send(ch, n)

        s = self.settings
        o = await deliver(send, s.policy, w.breaker, sleep=self.sleep, clock=self.mono)
        take = getattr(w.channel, "take_events", None)
        if take is not None:  # what it did goes to the journal with the outcome
            events = tuple(take(n.key))
            if events:
                o = dataclasses.replace(o, events=events)
        return o

    def _report(self, w: _Worker, n: Notification, o: Outcome) -> None:
        if o.ok:
            w.sent += 1
        else:
            w.failed += 1
        self.report(w.name, n, o, self._unfold(n))

    def _unfold(self, n: Notification) -> list[Notification]:
        """The notifications put that a (possibly nested) queue digest stands for."""
        folded = self._folded.pop(n.key, None)
        if folded is None:
            return [n]
        return [leaf for f in folded for leaf in self._unfold(f)]


def build_channel(cfg: ChannelConfig) -> tuple[Channel | None, str | None]:
    """The channel instance of `cfg`, or why it cannot be built (logged)."""
    error: str | None = None
    try:
        return registry.load("vigil.channels", cfg.type).from_config(cfg), None
    except KeyError:
        error = f"unknown channel type {cfg.type!r}"
    except (ValueError, TypeError, ImportError, VigilError) as e:
        error = f"channel {cfg.name} cannot be built: {scrub(str(e))}"
    log.error("%s", error)
    return None, error


async def _send(ch: Channel, n: Notification) -> None:
    try:
        await ch.send(n)
    except (DeliveryError, TimeoutError):
        raise
    except UnicodeError as e:
        # text no channel can encode (the boundary should have made it valid):
        # this notification's fault, never the channel's; retrying cannot help
        log.error("channel %s cannot encode a notification: %s", n.channel, e)
        raise DeliveryError(f"cannot encode the notification: {e}", retryable=False) from e
    except Exception as e:
        # Boundary: a bug in one channel must not kill its worker or leak a
        # message that may hold a secret; the traceback goes to the log only.
        log.exception("channel %s raised %s", n.channel, type(e).__name__)
        raise DeliveryError(f"channel error: {type(e).__name__}", retryable=False) from e


async def cancel_tasks(tasks: Sequence[asyncio.Task[None]]) -> None:
    """Cancel and wait. A channel's own code may swallow a cancel (Python 3.11's
    wait_for does when the result races with it), so cancel again until done."""
    pending = {t for t in tasks if not t.done()}
    while pending:
        for t in pending:
            t.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.2)


async def _close(ch: Channel) -> None:
    try:
        await ch.aclose()
    except (VigilError, OSError) as e:
        log.warning("closing channel %s: %s", getattr(ch, "name", "?"), e)
