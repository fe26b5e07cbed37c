"""The Dispatcher: the app's Notifier, driving the Pipeline on the wall clock.

    submit(events) ─► Pipeline.ingest ─► Pipeline.due ─► Delivery.put (senders.py:
                                            ▲             per-channel queue, retries,
            timer task: sleeps until        │             breaker, channel.send)
            Pipeline.next_deadline() ───────┘                   │
                                                                ▼
            emitter task ◄── notified / notify_failed / escalated / template_failed
            (the app's journal, through `emit`)

`submit` never awaits delivery and one channel's senders never wait for another's,
so a slow or dead channel delays only itself. With `sender_process` the channels
send from a child process (sender_process.py), off this loop's CPU. Every
outcome is journaled through `emit`; the pipeline hears it too, so a group
counts as sent only once delivered.

The pipeline's work runs on the event loop that also runs the evaluation ticks,
so it is done within the loop's time budget (engine/runtime/budget.py): `submit` does
one window at once (all of a usual handful of events), the timer task does the
rest of a burst (a thousand alerts firing together), yielding to the loop
whenever the budget is spent. Outcomes are taken in last, once nothing is due.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from engine.channels.base import Channel
from engine.channels.preview_build import marked_test_notification
from engine.common.records import JournalEvent
from engine.config.model import Config
from engine.delivery.retry import Outcome, RetryPolicy
from engine.delivery.sender_process import SenderProcess
from engine.delivery.senders import Delivery, Senders, SenderSettings, cancel_tasks
from engine.errors import VigilError
from engine.notify.base import Notification
from engine.notify.dedup import notified_event
from engine.notify.pipeline import Pipeline
from engine.runtime.budget import Budget

__all__ = ["Dispatcher", "Emit"]

log = logging.getLogger("vigil.notify")

Emit = Callable[[Sequence[JournalEvent], bool], Awaitable[list[dict[str, Any]]]]

CHUNK = 16  # events ingested, or groups settled, between clock checks
EMIT_BATCH = 32  # outcome events per journal append at most (their folds: one step)
PUMP = 16  # alerts taken from due() between clock checks (one notification may hold 1,000)
ALERT_COST = 30e-6  # seconds to render one alert of a notification
# pipeline events that change the durable state: on disk before anything follows
DURABLE = frozenset({"escalated", "silence_expired", "unacknowledged"})


class Dispatcher:
    """Owns the channels and delivers what the Pipeline decides.

    `emit(events, durable)` journals events and returns them stamped (the app's
    `_emit` without notifying). `channels` replaces building instances from the
    config (tests). `dry_run` logs notifications instead of sending them and
    journals nothing about them. `sender_process` sends from a child process
    (the daemon; not with `channels` or `dry_run`). `wall` drives the
    pipeline's timers, `mono` the breakers' cooldowns, `sleep` the retry
    backoff: tests inject all three. `budget` is the loop's time budget, shared
    with the rest of the daemon's work on it (a fresh one by default).
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
        sender_process: bool = False,
        budget: Budget | None = None,
    ) -> None:
        self.config = config
        self.emit = emit
        self.state = state
        self.wall = wall
        self.dry_run = dry_run
        self.drain_timeout = drain_timeout
        self.budget = budget if budget is not None else Budget()
        settings = SenderSettings(
            policy or RetryPolicy(), breaker_threshold, breaker_cooldown, queue_size, dry_run
        )
        self.senders: Delivery
        if sender_process and channels is None and not dry_run:
            self.senders = SenderProcess(settings, self._report, books=self._books)
        else:
            self.senders = Senders(
                settings, self._report, channels=channels, mono=mono, sleep=sleep,
                books=self._books,
            )  # fmt: skip
        self.pipeline: Pipeline | None = None
        self._wake = asyncio.Event()
        # None stops the emitter once everything before it is journaled
        self._outbox: asyncio.Queue[tuple[list[JournalEvent], bool] | None] = asyncio.Queue()
        self._inbox: deque[dict[str, Any]] = deque()  # submitted, not yet ingested
        self._outcomes: deque[tuple[str, Notification, Outcome, list[Notification]]] = deque()
        self._timer_task: asyncio.Task[None] | None = None
        self._emitter_task: asyncio.Task[None] | None = None
        self._early: list[dict[str, Any]] = []  # submitted before start
        self._stopping = False
        self._holds = 0  # bursts being submitted in steps: flush no group yet

    # -- lifecycle ------------------------------------------------------------------

    async def start(self, state: Mapping[str, Any] | None = None) -> None:
        """Build the channels, resume from the durable state (re-sending what a
        crash kept from going out, with the same keys) and start the tasks."""
        self.senders.configure(self.config.channels)
        textless, closing = self.senders.traits()
        self.pipeline = Pipeline(self.config, self._types(), closing=closing, textless=textless)
        self.pipeline.load_state(state if state is not None else self.state, self.wall())
        self.pipeline.renderer.warm()
        self.senders.start()
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
        await self.senders.aclose(self.drain_timeout)
        if self._timer_task is not None:
            await cancel_tasks([self._timer_task])
        self._take_outcomes(None)  # what the drain reported, the timer no longer takes
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
        self.config = config
        if self.pipeline is not None:
            self.senders.configure(config.channels)
            textless, closing = self.senders.traits()
            self.pipeline.reconfigure(
                config, self._types(), self.wall(), closing=closing, textless=textless
            )
            self.pipeline.renderer.warm()
            self._work()
            self._wake.set()

    # -- the Notifier protocol ------------------------------------------------------------

    async def submit(self, events: Sequence[dict[str, Any]]) -> None:
        """Feed journaled events to the pipeline and queue what is due now; a
        burst that takes more than one window of the budget goes on in the timer task. Never
        waits for a delivery."""
        if self.pipeline is None:
            self._early.extend(events)
            return
        self._inbox.extend(events)
        # a usual handful of events is done at once; the rest of a burst goes on in the timer
        self._work(bounded=len(self._inbox) > CHUNK)
        self._wake.set()

    def hold(self) -> None:
        """More of one burst is coming (submitted step by step): take it all in
        before any group is flushed, so a group gets the whole burst at once."""
        self._holds += 1

    def release(self) -> None:
        self._holds -= 1
        self._wake.set()

    def clock_stepped(self, step: float) -> None:
        """The wall clock stepped by `step` seconds: the pipeline's own timers move
        with it (Pipeline.shift), and the timer looks at its deadline again."""
        if self.pipeline is not None:
            self.pipeline.shift(step)
        self._wake.set()

    def wake(self) -> None:
        """Look at deadlines again now (after a simulated clock moved)."""
        self._wake.set()

    async def send_test(self, channel: str) -> str:
        """Send a clearly marked test notification through the channel's real
        queue, retries and breaker; the outcome as one line of text."""
        names = [c.name for c in self.config.channels]
        if channel not in names:
            known = ", ".join(sorted(names)) or "none"
            return f"unknown channel {channel!r} (channels: {known})"
        if self.dry_run:
            return f"{channel}: dry run, nothing sent"
        n = marked_test_notification(channel, self.wall())
        o = await self.senders.send_test(n)
        if o.ok:
            return f"{channel}: delivered in {o.seconds:.2f}s ({o.attempts} attempt(s))"
        return f"{channel}: failed after {o.attempts} attempt(s): {o.error}"

    async def send_report(self, n: Notification) -> tuple[bool, str | None]:
        """Send a scheduled report's notification (engine/report/deliver.py) through
        its channel's queue, retries and breaker (journaled `notified`, kind report)."""
        o = await self.senders.send_test(n)
        return o.ok, o.error

    def status(self) -> dict[str, dict[str, Any]]:
        """Per channel: queue length, breaker state, sent/failed counts (for /metrics)."""
        return self.senders.status()

    def _books(self) -> Mapping[str, Mapping[str, Any]]:
        """The ban channels' books as the journal has them (engine/journal/store.py)."""
        books: Mapping[str, Mapping[str, Any]] = self.state.get("bans") or {}
        return books

    async def unban(self, address: str, *, by: str) -> list[dict[str, Any]]:
        """Lift `address`'s ban on every ban channel that holds it (`vigil unban`):
        through each channel's queue, as a test notification the channel reads
        (`extra.unban`); its `unban` event is journaled with the outcome.
        ValueError under --dry-run: that daemon makes and lifts no bans, and
        "lifted" would be untrue."""
        if self.dry_run:
            raise ValueError("the daemon runs with --dry-run: it makes and lifts no bans")
        out = []
        for c in self.config.channels:
            if c.type != "ban":
                continue
            n = Notification(
                channel=c.name,
                group_key=f"unban|{c.name}",
                status="resolved",
                alerts=(),
                key=hashlib.sha256(
                    f"unban|{c.name}|{address}|{self.wall()!r}".encode()
                ).hexdigest(),
                title=f"unban {address}",
                body="",
                kind="test",
                extra={"unban": address, "by": by},
            )
            o = await self.senders.send_test(n)
            out.append({"channel": c.name, "ok": o.ok, "error": o.error})
        return out

    def _types(self) -> dict[str, str]:
        return {c.name: c.type for c in self.config.channels}

    # -- tasks --------------------------------------------------------------------------

    def _work(self, bounded: bool = True) -> bool:
        """Ingest submitted events, settle the groups they touched, then queue due
        notifications, a few at a time, until all is done (False) or, if
        `bounded`, the loop's time budget is spent (True: more to do; see
        engine/runtime/budget.py). The first chunk is always done. Nothing is taken
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
                # group of a thousand alerts would be re-examined for every step)
                return False
            elif not p.settle(CHUNK) or self._pump(PUMP):
                pass
            elif self._outcomes:
                # outcomes last: while a burst is being queued, journaling a thousand
                # `notified` would only hold back the burst's last notifications
                self._take_outcomes(CHUNK)
            else:
                return False
            if bounded and self.budget.spent():
                return True

    def _pump(self, limit: int | None = None) -> bool:
        """Queue due notifications carrying up to about `limit` alerts; True if
        more may be due now."""
        assert self.pipeline is not None
        now = self.wall()
        due = self.pipeline.due(now, max_alerts=limit)
        put = self.senders.put
        for n in due:
            put(n)
        events = self.pipeline.take_events()
        if events:
            durable = [e for e in events if e.get("event") in DURABLE]
            other = [e for e in events if e.get("event") not in DURABLE]
            for batch, d in ((durable, True), (other, False)):
                if batch:
                    self._outbox.put_nowait((batch, d))
        return limit is not None and sum(len(n.alerts) for n in due) >= limit

    async def _timer(self) -> None:
        assert self.pipeline is not None
        while not self._stopping:
            self._wake.clear()
            self.budget.start()
            await self._room()
            while self._work() and not self._stopping:
                await self.budget.pause()  # a burst: let the evaluation loop run in between
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
        until that fits before the next evaluation tick (Budget.room)."""
        p = self.pipeline
        if p is not None and not self._inbox and not self._holds:
            await self.budget.room(p.next_size(self.wall()) * ALERT_COST)

    async def _emitter(self) -> None:
        """Journal outcomes in order: what is waiting goes in one append per run of
        the same durability (a burst's thousand `notified` events are a few
        appends, not a thousand), within the loop's time budget."""
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
            await self.budget.yield_if_spent()

    async def _journal(self, events: list[JournalEvent], durable: bool) -> None:
        try:
            stamped = await self.emit(events, durable)
            # a channel's own alert (ban_cap_reached) goes out like any other
            raised = [e for e in stamped if e.get("event") in ("firing", "resolved")]
            if raised:
                await self.submit(raised)
        except (VigilError, OSError) as e:
            log.error("could not journal %d notification events: %s", len(events), e)

    def _report(
        self, channel: str, n: Notification, o: Outcome, originals: list[Notification]
    ) -> None:
        """An outcome, taken in by `_work` once nothing is due (see there)."""
        self._outcomes.append((channel, n, o, originals))
        self._wake.set()

    def _take_outcomes(self, limit: int | None) -> None:
        """Journal outcomes and tell the pipeline: up to `limit` of them."""
        todo = self._outcomes
        for _ in range(len(todo) if limit is None else min(limit, len(todo))):
            self._outcome(*todo.popleft())

    def _outcome(
        self, channel: str, n: Notification, o: Outcome, originals: list[Notification]
    ) -> None:
        if not o.ok:
            log.warning("channel %s: %s not delivered: %s", channel, n.kind, o.error)
        if o.events and not self.dry_run:  # what the channel did (bans) before its outcome
            self._outbox.put_nowait((list(o.events), True))
        if not self.dry_run:
            ev = notified_event(channel, n, ok=o.ok, attempts=o.attempts, error=o.error)
            self._outbox.put_nowait(([ev], False))
        if self.pipeline is not None and n.kind != "test":
            now = self.wall()
            for orig in originals:
                # a permanent failure is journaled (notify_failed) and not tried again
                self.pipeline.delivered(orig, o.ok or o.permanent, now)
            self._wake.set()
