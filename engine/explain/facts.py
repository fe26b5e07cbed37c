"""The inputs of one explanation, read once: the rule and its config, the
collectors' values (as the evaluator's scope), the durable state split into
alerts / collectors down / flapping holds / API silences, the channels' status
and recent sends, all as of `now`; and the notification pipeline rebuilt from
that state as a restart rebuilds it (engine/explain/rebuilt.py), whose policies
answer "why not now" for the delivery part. Separate so the condition, timer,
holds, channel and delivery parts each take the same facts without sharing one
class."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from engine.config.model import Config, Rule, Silence
from engine.explain.rebuilt import inhibitor, rebuild, targeted
from engine.expr.history import History
from engine.expr.scope import EvalScope
from engine.notify.hold import Hold
from engine.notify.pipeline import Pipeline
from engine.notify.router import Inhibitor, silence_from_state


class RateHolds(Protocol):
    def hold(self, channel: str, now: float) -> Hold:
        """The channel's rate limit's "why not now" (engine/notify/ratelimit.py)."""
        ...


class LivePipeline(Protocol):
    """What explain reads of the running daemon's notification pipeline (the
    dispatcher's engine/notify/pipeline.Pipeline), never changing it: its rate
    limiter, which alone knows the sends in the window and what it holds."""

    @property
    def rate(self) -> RateHolds: ...


class Facts:
    def __init__(
        self,
        config: Config,
        rule: Rule,
        values: Mapping[str, Mapping[str, Any]] | None,
        state: Mapping[str, Any],
        now: float,
        channel_status: Mapping[str, Mapping[str, Any]] | None,
        history: History | None,
        collector_errors: Mapping[str, str] | None,
        sent_at: Mapping[str, Sequence[float]] | None,
        live: LivePipeline | None = None,
    ) -> None:
        self.config = config
        self.rule = rule
        self.values = values
        self.now = now
        self.state = state
        self._pipeline: Pipeline | None = None
        self.channel_status = channel_status
        self.live = live  # the running daemon's pipeline (online explain only)
        self.errors = dict(collector_errors or {})
        self.alerts: Mapping[str, Any] = state.get("alerts") or {}
        self.down: Mapping[str, Any] = state.get("collectors_down") or {}
        self.held: Mapping[str, Any] = state.get("held") or {}  # held for flapping
        self.api_silences: list[Silence] = []
        for sid, d in (state.get("silences") or {}).items():
            if isinstance(d, Mapping):
                s = silence_from_state(str(sid), d)
                if s is not None:
                    self.api_silences.append(s)
        self.names = frozenset(c.name for c in config.collectors) | {"it"}
        self.scope = (
            EvalScope(values=values, now=now, history=history) if values is not None else None
        )
        self.intervals = {t.name: t for t in config.time_intervals}
        group = next((g for g in config.groups if g.name == rule.group), None)
        self.interval = group.interval if group is not None else config.default_interval
        self.sent_at: dict[str, list[float]] = {k: list(v) for k, v in (sent_at or {}).items()}
        # the collectors the evaluator requires before it evaluates the rule at all
        self.reads = rule.compiled.names - {"it"}
        if rule.compiled_each is not None:
            self.reads |= rule.compiled_each.names

    @property
    def pipeline(self) -> Pipeline:
        """The pipeline as a restart at `now` would rebuild it from the state (built
        on first use, engine/explain/rebuilt.py): its policies' queries say what
        holds a notification back and until when, as the daemon's pipeline decides."""
        if self._pipeline is None:
            self._pipeline = rebuild(self.config, self.rule, self.state, self.now)
        return self._pipeline

    def inhibitor(self, ml: Mapping[str, str]) -> Inhibitor | None:
        """The pipeline's inhibitor over the state's firing alerts that may inhibit
        an alert with match labels `ml`; None when no inhibit rule can target it."""
        return inhibitor(self.config, self.state, (ml,)) if targeted(self.config, (ml,)) else None
