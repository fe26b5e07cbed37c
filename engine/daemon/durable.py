"""The daemon's durable state: the journal, the state folded from it, its snapshots.

`DurableState` is the one writer of the alert state the API reads and the
dispatcher decides from: an event is appended to the journal (durable when it
must be), then folded into `state`. It knows nothing of rules, collectors or
channels; the event path (engine/daemon/emit.py) and the dispatcher write
through it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from engine.common.records import JournalEvent
from engine.daemon.clock import Clock
from engine.daemon.metrics import Metrics
from engine.errors import JournalError
from engine.journal.journal import Journal
from engine.journal.snapshot_copy import StateCopy
from engine.journal.store import fold_event, initial_state
from engine.runtime.budget import Budget
from engine.runtime.fanout import Fanout

log = logging.getLogger("vigil")

SNAPSHOT_EVERY_EVENTS = 20_000
SNAPSHOT_EVERY_SECONDS = 600.0


class DurableState:
    """Owns the journal (once opened), the folded `state` dict (one object for the
    daemon's life: the dispatcher holds it too), its versions, and the snapshots.
    Writes: `submit` (append), `record` (append, wait, fold), `fold`."""

    def __init__(self, metrics: Metrics, clock: Clock, budget: Budget) -> None:
        self.metrics = metrics
        self.clock = clock
        self.budget = budget
        self.journal: Journal | None = None
        self.state: dict[str, Any] = initial_state()
        self.state_version = 0  # +1 per event folded into `state`
        self.alert_versions: dict[str, int] = {}  # fingerprint -> state_version of its change
        self._copying: StateCopy | None = None  # a snapshot being taken
        self._inflight = 0  # appends not yet folded: no snapshot while > 0
        self._last_snapshot = (0, clock.mono())
        self.fanout = Fanout()  # live streams of what is folded (GET /api/v1/events)

    # -- start ---------------------------------------------------------------------------
    def open(self, journal: Journal, data_dir: str, restore: Callable[[], None]) -> None:
        """Replay `journal` into the state, then `restore` the live parts from it; a
        replay that cannot be folded closes the journal and raises JournalError."""
        self.journal = journal
        replay = journal.open()
        for w in replay.warnings:
            log.warning("journal: %s", w)
        state = replay.state or initial_state()
        where = f"the snapshot at seq {replay.snapshot_seq}"
        try:
            for k, v in initial_state().items():
                if k in state and type(state[k]) is not type(v):
                    raise TypeError(f"its {k!r} is not a {type(v).__name__}")
            for ev in replay.events:
                where = f"event seq {ev['seq']}"
                fold_event(state, ev)
            # the dispatcher holds the same dict: replace its content, not the object
            self.state.clear()
            self.state.update(state)
            self.state_version += 1
            self.alert_versions.clear()
            self._last_snapshot = (replay.snapshot_seq, self.clock.mono())
            where = "the replayed state"
            restore()
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            # well-formed lines or a snapshot whose content no vigil wrote (a hand
            # edit): one line naming it, not a traceback
            journal.close_sync()
            raise JournalError(
                f"{data_dir}: cannot replay {where}: {type(e).__name__}: {e}; "
                "`vigil log verify` checks the journal"
            ) from None

    # -- writes --------------------------------------------------------------------------
    @contextmanager
    def writing(self) -> Iterator[None]:
        """Appends in flight, not folded yet: no snapshot meanwhile (it would lag)."""
        self._inflight += 1
        try:
            yield
        finally:
            self._inflight -= 1

    def submit(
        self, events: Sequence[JournalEvent], *, durable: bool
    ) -> tuple[list[dict[str, Any]], asyncio.Future[None] | None]:
        """Append (stamped copies, and the future of their write); without a journal
        (--once, tests) the copies only."""
        if self.journal is None:
            return [dict(e) for e in events], None
        return self.journal.submit(events, durable=durable)

    async def record(self, events: Sequence[JournalEvent], durable: bool) -> list[dict[str, Any]]:
        """Journal and fold, without notifying (the dispatcher's own outcomes)."""
        with self.writing():
            stamped, fut = self.submit(events, durable=durable)
            if fut is not None:
                await fut
            self.fold(stamped)
            return stamped

    def fold(self, stamped: list[dict[str, Any]]) -> None:
        copying = self._copying
        for ev in stamped:
            if copying is not None:
                copying.before_fold(ev)
            fold_event(self.state, ev)
            self._changed(ev)
            if ev["event"] == "notified":
                self.metrics.notification(ev.get("channel", ""), ok=True)
            elif ev["event"] == "notify_failed":
                self.metrics.notification(ev.get("channel", ""), ok=False)
        # after the fold: a subscriber that reads the API on an event sees its effect
        self.fanout.publish(stamped)

    def _changed(self, ev: Mapping[str, Any]) -> None:
        """Versions for readers that cache what they derive from the state (the API's
        alert views): the state's, and per alert the state version of its last change."""
        self.state_version += 1
        alerts = self.state["alerts"]
        touched = [ev["alert"]] if isinstance(ev.get("alert"), str) else []
        touched.extend(fp for fp in ev.get("alerts") or () if isinstance(fp, str))
        for fp in touched:
            if fp in alerts:
                self.alert_versions[fp] = self.state_version
            else:
                self.alert_versions.pop(fp, None)

    # -- snapshots ----------------------------------------------------------------------
    async def snapshots(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            await asyncio.sleep(5.0)
            try:
                await self.maybe_snapshot()
            except (JournalError, OSError) as e:
                # the log is the truth and still written: the next try may succeed
                log.warning("snapshot not written: %s", e)

    async def maybe_snapshot(self, *, force: bool = False) -> None:
        j = self.journal
        if j is None or self._inflight or self._copying is not None or j.degraded:
            return  # appended events not folded yet (or not on disk): the state would lag
        seq, at = self._last_snapshot
        due = (
            j.last_seq - seq >= SNAPSHOT_EVERY_EVENTS
            or self.clock.mono() - at >= SNAPSHOT_EVERY_SECONDS
        )
        if j.last_seq > seq and (force or due):
            last = j.last_seq
            self._last_snapshot = (last, self.clock.mono())
            # copy-on-write, in steps within the loop's budget: events folded meanwhile keep it at `last`
            self._copying = copy = StateCopy(self.state, last)
            try:
                self.budget.start()
                for _ in copy.steps():
                    await self.budget.yield_if_spent()
            finally:
                self._copying = None
            await j.write_snapshot_encoded(copy.encoded(), last)
            j.compact()

    async def close(self) -> None:
        if self.journal is not None:
            await self.journal.close()
