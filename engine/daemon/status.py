"""What the daemon says of itself: the one-line summary (systemd's STATUS=, the
API's status) and the gauges refreshed every few seconds."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

from engine.config.model import Config
from engine.daemon.durable import DurableState
from engine.daemon.hub import CollectorHub
from engine.daemon.metrics import Metrics
from engine.daemon.systemd import Notifier
from engine.delivery.dispatch import Dispatcher
from engine.rules.alert_tally import Tally, tally
from engine.rules.alert_tally import steps as tally_steps
from engine.rules.rule_health import RuleHealth
from engine.runtime.budget import Budget


class Status:
    """Owns the alert counts (kept until the durable state changes); reads the
    state, the hub's outages, the rules' problems and the last reload."""

    def __init__(
        self,
        durable: DurableState,
        hub: CollectorHub,
        health: RuleHealth,
        dispatcher: Dispatcher,
        metrics: Metrics,
        systemd: Notifier,
        *,
        config: Callable[[], Config],
        last_reload: Callable[[], dict[str, Any]],
        budget: Budget,
    ) -> None:
        self.budget = budget
        self.durable = durable
        self.hub = hub
        self.health = health
        self.dispatcher = dispatcher
        self.metrics = metrics
        self.systemd = systemd
        self.config = config
        self.last_reload = last_reload
        self._tally_cache: tuple[int, Tally] | None = None  # (state_version, counts)

    def summary(self) -> str:
        d = self.durable
        t = self._tally_cache
        if t is None or t[0] != d.state_version:
            t = self._tally_cache = (d.state_version, tally(list(d.state["alerts"].values())))
        firing, pending = t[1].count("firing"), t[1].count("pending")
        down = f", {len(self.hub.down)} collectors down" if self.hub.down else ""
        bad = ", last reload rejected" if not self.last_reload()["ok"] else ""
        kinds = Counter(p for p, _ in self.health.active)
        problems = "".join(f", {n} {k}" for k, n in sorted(kinds.items()))
        return (
            f"{len(self.config().rules())} rules, {firing} firing, {pending} pending"
            f"{down}{problems}{bad}"
        )

    async def _tally(self) -> Tally:
        """The alert counts, computed in steps within the loop's budget and kept until the state changes."""
        d = self.durable
        t = self._tally_cache
        if t is not None and t[0] == d.state_version:
            return t[1]
        version, out = d.state_version, Tally()
        self.budget.start()
        for _ in tally_steps(list(d.state["alerts"].values()), out):
            await self.budget.yield_if_spent()
        self._tally_cache = (version, out)
        return out

    async def loop(self) -> None:
        last = ""
        while True:
            await asyncio.sleep(5.0)
            counts = await self._tally()
            text = self.summary()
            if text != last:
                self.systemd.status(text)
                last = text
            self.metrics.set_alert_counts(counts.by_state_severity)
            self.metrics.set_rules(counts.rule_states(self.config().rules()))
            self.metrics.sync_channels(self.dispatcher.status())
