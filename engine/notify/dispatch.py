"""The Dispatcher: the app's Notifier, driving the Pipeline on the wall clock.

    submit(events) ─► Pipeline.ingest ─► Pipeline.due ─► per-channel BoundedQueue
                                            ▲                   │ one worker task per channel
            timer task: sleeps until        │                   ▼
            Pipeline.next_deadline() ───────┘        retry.deliver (backoff, breaker)
                                                                │
            emitter task ◄── notified / notify_failed / escalated / template_failed
            (the app's journal, through `emit`)

`submit` never awaits delivery and one channel's worker never waits for another's,
so a slow or dead channel delays only itself. Every outcome is journaled through
`emit`; the pipeline hears it too, so a group counts as sent only once delivered.

The pipeline's work runs on the event loop that also runs the evaluation ticks,
so it is done in the loop's shared time slices (engine/slices.py): `submit` does one slice at once
(all of a usual handful of events), the timer task does the rest of a burst
(a thousand alerts firing together), yielding to the loop between slices.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine import registry, slices
from engine.config.model import Channel as ChannelConfig
from engine.config.model import Config
from engine.errors import DeliveryError, VigilError
from engine.notify.base import AlertView, Channel, Notification
from engine.notify.pipeline import CLOSING_TYPES, Pipeline, make_digest
from engine.notify.retry import BoundedQueue, Breaker, Outcome, RetryPolicy, deliver, scrub

__all__ = ["Dispatcher", "Emit"]

log = logging.getLogger("vigil.notify")

Emit = Callable[[list[dict[str, Any]], bool], Awaitable[list[dict[str, Any]]]]
_Item = tuple[Notification, "asyncio.Future[Outcome] | None"]  # future: send_test waits

CHUNK = 16  # events ingested, or groups settled, between clock checks
EMIT_BATCH = 32  # outcome events per journal append at most (each a fold: one slice)
PUMP = 16  # alerts taken from due() between clock checks (one notification may hold 1,000)
ALERT_COST = 30e-6  # seconds to render one alert of a notification


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


class Dispatcher:
    """Owns the channels and delivers what the Pipeline decides.

    `emit(events, durable)` journals events and returns them stamped (the app's
    `_emit` without notifying). `channels` replaces building instances from the
    config (tests). `dry_run` logs notifications instead of sending them and
    journals nothing about them. `wall` drives the pipeline's timers, `mono` the
    breakers' cooldowns, `sleep` the retry backoff: tests inject all three.
    """

    def __init__(
        self,
        config: Config,
        *,
        emit: Emit,
        state: dict[str, Any],
        channels: Mapping[str, Channel] | None = None,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
        dry_run: bool = False,
        policy: RetryPolicy | None = None,
        breaker_threshold: int = 5,
        breaker_cooldown: float = 30.0,
        queue_size: int = 256,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        drain_timeout: float = 5.0,
    ) -> None:
        self.config = config
        self.emit = emit
        self.state = state
        self.wall = wall
        self.mono = mono  # breaker cooldowns
        self.dry_run = dry_run
        self.policy = policy or RetryPolicy()
        self.breaker_threshold = breaker_threshold
        self.breaker_cooldown = breaker_cooldown
        self.queue_size = queue_size
        self.sleep = sleep
        self.drain_timeout = drain_timeout
        self._given = dict(channels) if channels is not None else None
        self.workers: dict[str, _Worker] = {}
        self.pipeline: Pipeline | None = None
        self._wake = asyncio.Event()
        # None stops the emitter once everything before it is journaled
        self._outbox: asyncio.Queue[tuple[list[dict[str, Any]], bool] | None] = asyncio.Queue()
        self._folded: dict[str, list[Notification]] = {}  # queue digest key -> folded
        self._inbox: deque[dict[str, Any]] = deque()  # submitted, not yet ingested
        self._timer_task: asyncio.Task[None] | None = None
        self._emitter_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()  # closing retired channels
        self._early: list[dict[str, Any]] = []  # submitted before start
        self._stopping = False
        self._holds = 0  # bursts being submitted in slices: flush no group yet

    # -- lifecycle ------------------------------------------------------------------

    async def start(self, state: Mapping[str, Any] | None = None) -> None:
        """Build the channels, resume from the durable state (re-sending what a
        crash kept from going out, with the same keys) and start the tasks."""
        for cfg in self.config.channels:
            self.workers[cfg.name] = self._worker(cfg)
        self.pipeline = Pipeline(
            self.config, self._types(), closing=self._closing(), textless=self._textless()
        )
        self.pipeline.load_state(state if state is not None else self.state, self.wall())
        self.pipeline.renderer.warm()
        for w in self.workers.values():
            self._spawn(w)
        self._timer_task = asyncio.create_task(self._timer(), name="vigil-notify-timer")
        self._emitter_task = asyncio.create_task(self._emitter(), name="vigil-notify-journal")
        if self._early:
            early, self._early = self._early, []
            await self.submit(early)
        self._work()
        self._wake.set()

    async def aclose(self) -> None:
        """Stop: let queued notifications go out for up to `drain_timeout`
        seconds, then cancel; close channels; journal the outcomes so far."""
        if self.pipeline is not None:
            self._work(bounded=False)  # what was submitted is queued before the timer stops
        self._stopping = True  # the timer stops: nothing new becomes due
        self._wake.set()
        deadline = time.monotonic() + self.drain_timeout
        while time.monotonic() < deadline and any(
            len(w.queue) or w.busy for w in self.workers.values()
        ):
            await asyncio.sleep(0.01)
        tasks = [t for w in self.workers.values() for t in w.tasks]
        await _cancel([*tasks, *([self._timer_task] if self._timer_task else [])])
        for w in self.workers.values():
            for ch in (*w.retired, *([w.channel] if w.channel else [])):
                await _close(ch)
        await asyncio.gather(*self._background, return_exceptions=True)
        # the emitter last, after it has journaled everything reported
        if self._emitter_task is not None:
            self._outbox.put_nowait(None)
            await asyncio.gather(self._emitter_task, return_exceptions=True)
        self._timer_task = self._emitter_task = None

    def reconfigure(self, config: Config) -> None:
        """Hot reload: unchanged channels keep their instance, queue and breaker;
        changed ones are rebuilt (queued notifications carry over); removed ones
        stop. Group state of unchanged routes is kept (Pipeline.reconfigure)."""
        if self.pipeline is not None:
            self._work(bounded=False)  # events submitted under the old config first
        new = {c.name: c for c in config.channels}
        for name in list(self.workers):
            if name not in new:
                self._retire(self.workers.pop(name))
        for name, cfg in new.items():
            w = self.workers.get(name)
            if w is None:
                w = self.workers[name] = self._worker(cfg)
                if self.pipeline is not None:
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
        self.config = config
        if self.pipeline is not None:
            self.pipeline.reconfigure(
                config,
                self._types(),
                self.wall(),
                closing=self._closing(),
                textless=self._textless(),
            )
            self.pipeline.renderer.warm()
            self._work()
            self._wake.set()

    # -- the Notifier protocol ------------------------------------------------------------

    async def submit(self, events: Sequence[dict[str, Any]]) -> None:
        """Feed journaled events to the pipeline and queue what is due now; a
        burst that takes more than one slice goes on in the timer task. Never
        waits for a delivery."""
        if self.pipeline is None:
            self._early.extend(events)
            return
        self._inbox.extend(events)
        # a usual handful of events is done at once; a burst's slice goes on in the timer
        self._work(bounded=len(self._inbox) > CHUNK)
        self._wake.set()

    def hold(self) -> None:
        """More of one burst is coming (submitted slice by slice): take it all in
        before any group is flushed, so a group gets the whole burst at once."""
        self._holds += 1

    def release(self) -> None:
        self._holds -= 1
        self._wake.set()

    def wake(self) -> None:
        """Look at deadlines again now (after a simulated clock moved)."""
        self._wake.set()

    async def send_test(self, channel: str) -> str:
        """Send a clearly marked test notification through the channel's real
        queue, retries and breaker; the outcome as one line of text."""
        w = self.workers.get(channel)
        if w is None:
            known = ", ".join(sorted(self.workers)) or "none"
            return f"unknown channel {channel!r} (channels: {known})"
        if self.dry_run:
            return f"{channel}: dry run, nothing sent"
        now = self.wall()
        view = AlertView(
            fingerprint="test",
            rule="vigil_test",
            status="firing",
            severity="info",
            labels={"channel": channel},
            annotations={"summary": f"Test notification from vigil for channel {channel}"},
            value=None,
            starts_at=now,
        )
        n = Notification(
            channel=channel,
            group_key=f"test|{channel}",
            status="firing",
            alerts=(view,),
            key=hashlib.sha256(f"test|{channel}|{now!r}".encode()).hexdigest(),
            title=f"[TEST] vigil test notification for {channel}",
            body=(
                f"This is a test notification sent by `vigil notify-test {channel}`.\n"
                "No alert is firing. If you can read this, the channel works.\n"
            ),
            kind="test",
        )
        fut: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        w.queue.put_nowait((n, fut))
        o = await fut
        if o.ok:
            return f"{channel}: delivered in {o.seconds:.2f}s ({o.attempts} attempt(s))"
        return f"{channel}: failed after {o.attempts} attempt(s): {o.error}"

    def status(self) -> dict[str, dict[str, Any]]:
        """Per channel: queue length, breaker state, sent/failed counts (for /metrics)."""
        return {
            name: {
                "queued": len(w.queue),
                "folded": w.queue.folded,
                "breaker": w.breaker.state,
                "sent": w.sent,
                "failed": w.failed,
                "error": w.error,
            }
            for name, w in self.workers.items()
        }

    # -- building ---------------------------------------------------------------------

    def _types(self) -> dict[str, str]:
        return {c.name: c.type for c in self.config.channels}

    def _textless(self) -> set[str]:
        """Channels whose instances say they never read title/body/html."""
        return {
            name
            for name, w in self.workers.items()
            if w.channel is not None and not getattr(type(w.channel), "uses_text", True)
        }

    def _closing(self) -> set[str]:
        out = set()
        for name, w in self.workers.items():
            if w.channel is not None:
                if getattr(type(w.channel), "closes_incidents", False):
                    out.add(name)
            elif w.config.type in CLOSING_TYPES:
                out.add(name)
        return out

    def _worker(self, cfg: ChannelConfig) -> _Worker:
        ch: Channel | None = None
        error: str | None = None
        if self._given is not None and cfg.name in self._given:
            ch = self._given[cfg.name]
        elif self._given is None and not self.dry_run:
            try:
                ch = registry.load("vigil.channels", cfg.type).from_config(cfg)
            except KeyError:
                error = f"unknown channel type {cfg.type!r}"
            except (ValueError, TypeError, ImportError, VigilError) as e:
                error = f"channel {cfg.name} cannot be built: {scrub(str(e))}"
            if error:
                log.error("%s", error)
        elif not self.dry_run:
            error = f"no channel instance given for {cfg.name}"

        def fold(items: Sequence[_Item]) -> _Item:
            return self._fold(cfg.name, items)

        queue: BoundedQueue[_Item] = BoundedQueue(
            self.queue_size, fold, lambda it: it[1] is None and it[0].status != "resolved"
        )
        breaker = Breaker(self.breaker_threshold, self.breaker_cooldown, self.mono)
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

    # -- tasks --------------------------------------------------------------------------

    def _work(self, bounded: bool = True) -> bool:
        """Ingest submitted events, settle the groups they touched, then queue due
        notifications, a few at a time, until all is done (False) or, if
        `bounded`, the loop's time slice is used up (True: more to do; see
        engine/slices.py). The first chunk is always done. Nothing is taken
        from due() while events wait: a group gets all of a burst's alerts at once."""
        p = self.pipeline
        assert p is not None
        inbox = self._inbox
        while True:
            if inbox:
                now = self.wall()
                for _ in range(min(CHUNK, len(inbox))):
                    p.ingest(inbox.popleft(), now)
            elif self._holds > 0:
                # a burst is still coming in: settle its groups once it is all in (a
                # group of a thousand alerts would be re-examined for every slice)
                return False
            elif p.settle(CHUNK) and not self._pump(PUMP):
                return False
            if bounded and slices.spent():
                return True

    def _pump(self, limit: int | None = None) -> bool:
        """Queue due notifications carrying up to about `limit` alerts; True if
        more may be due now."""
        assert self.pipeline is not None
        now = self.wall()
        due = self.pipeline.due(now, max_alerts=limit)
        for n in due:
            w = self.workers.get(n.channel)
            if w is None:
                continue
            w.queue.put_nowait((n, None))
        events = self.pipeline.take_events()
        if events:
            durable = [e for e in events if e.get("event") == "escalated"]
            other = [e for e in events if e.get("event") != "escalated"]
            for batch, d in ((durable, True), (other, False)):
                if batch:
                    self._outbox.put_nowait((batch, d))
        return limit is not None and sum(len(n.alerts) for n in due) >= limit

    async def _timer(self) -> None:
        assert self.pipeline is not None
        while not self._stopping:
            self._wake.clear()
            await self._room()
            while self._work() and not self._stopping:
                await slices.pause()  # a burst: let the evaluation loop run between slices
                await self._room()
            # while a burst comes in, release() wakes us: no deadline to look at yet
            deadline = None if self._holds > 0 else self.pipeline.next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - self.wall()) + 0.002
            # asyncio.timeout, not wait_for: 3.11's wait_for drops a cancel that
            # arrives as the wake event is set, and the task would never stop
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    async def _room(self) -> None:
        """A notification of many alerts is rendered in one piece: first wait
        until that fits before the next evaluation tick (engine/slices.py)."""
        p = self.pipeline
        if p is not None and not self._inbox and not self._holds:
            await slices.room(p.next_size(self.wall()) * ALERT_COST)

    async def _emitter(self) -> None:
        """Journal outcomes in order: what is waiting goes in one append per run of
        the same durability (a burst's thousand `notified` events are a few
        appends, not a thousand), within the loop's time slice."""
        outbox = self._outbox
        while (item := await outbox.get()) is not None:
            events, durable = list(item[0]), item[1]
            stop = False
            while not outbox.empty() and len(events) < EMIT_BATCH:
                nxt = outbox.get_nowait()
                if nxt is None:
                    stop = True
                    break
                if nxt[1] != durable:
                    await self._journal(events, durable)
                    events, durable = [], nxt[1]
                events.extend(nxt[0])
            await self._journal(events, durable)
            if stop:
                return
            await slices.check()

    async def _journal(self, events: list[dict[str, Any]], durable: bool) -> None:
        try:
            await self.emit(events, durable)
        except (VigilError, OSError) as e:
            log.error("could not journal %d notification events: %s", len(events), e)

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
                # a send is a step in the loop's shared time slice: sixteen senders
                # woken together would otherwise run back to back
                await slices.check()
                outcome = await self._deliver(w, n)
            finally:
                w.busy -= 1
                if not w.busy:
                    self._close_retired(w)
            if fut is not None and not fut.done():
                fut.set_result(outcome)
            self._report(w, n, outcome)
            await slices.check()  # after the report: a cancel here loses no outcome

    async def _deliver(self, w: _Worker, n: Notification) -> Outcome:
        if self.dry_run:
            log.info("dry run: %s would get %r", w.name, n.title)
            return Outcome(True, 0)
        if w.channel is None:
            return Outcome(False, 0, w.error or "channel not available")

        async def send() -> None:
            ch = w.channel  # read each attempt: a reload may have replaced it
            if ch is None:
                raise DeliveryError(w.error or "channel not available", retryable=False)
            await _send(ch, n)

        return await deliver(send, self.policy, w.breaker, sleep=self.sleep, clock=self.mono)

    def _report(self, w: _Worker, n: Notification, o: Outcome) -> None:
        if o.ok:
            w.sent += 1
        else:
            w.failed += 1
            log.warning("channel %s: %s not delivered: %s", w.name, n.kind, o.error)
        if not self.dry_run:
            ev: dict[str, Any] = {
                "event": "notified" if o.ok else "notify_failed",
                "channel": w.name,
                "key": n.key,
                "alerts": [a.fingerprint for a in n.alerts] if n.kind != "test" else [],
                "status": n.status,
                "group_key": n.group_key,
                "attempts": o.attempts,
            }
            if n.kind != "alerts":
                ev["kind"] = n.kind
            if n.escalation_level:
                ev["level"] = n.escalation_level
            if not o.ok:
                ev["error"] = o.error or "failed"
            self._outbox.put_nowait(([ev], False))
        if self.pipeline is not None and n.kind != "test":
            now = self.wall()
            for orig in self._unfold(n):
                self.pipeline.delivered(orig, o.ok, now)
            self._wake.set()

    def _unfold(self, n: Notification) -> list[Notification]:
        """The pipeline's notifications a (possibly nested) queue digest stands for."""
        folded = self._folded.pop(n.key, None)
        if folded is None:
            return [n]
        return [leaf for f in folded for leaf in self._unfold(f)]


async def _send(ch: Channel, n: Notification) -> None:
    try:
        await ch.send(n)
    except (DeliveryError, TimeoutError):
        raise
    except Exception as e:
        # Boundary: a bug in one channel must not kill its worker or leak a
        # message that may hold a secret; the traceback goes to the log only.
        log.exception("channel %s raised %s", n.channel, type(e).__name__)
        raise DeliveryError(f"channel error: {type(e).__name__}", retryable=False) from e


async def _cancel(tasks: Sequence[asyncio.Task[None]]) -> None:
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
