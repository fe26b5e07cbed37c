"""The result of `vigil explain`: the frozen dataclasses an explanation is made of
(Explanation → Instance → Condition / Check, Delivery / Reason / RouteInfo /
ChannelInfo), UnknownRule, and their versioned JSON form (Explanation.to_dict(),
what GET /api/v1/explain/{rule} returns). Separate from the code that fills them
in, so the condition, delivery and text parts share one vocabulary without
importing one another."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from types import MappingProxyType
from typing import Any, Literal

from engine.errors import VigilError
from engine.explain.text import render_text
from engine.explain.wording import check_line, plain_value

FORMAT_VERSION = 1
_EMPTY: Mapping[str, Any] = MappingProxyType({})

Outcome = Literal["true", "false", "value", "no_data", "error", "skipped"]
ConditionOutcome = Literal[
    "true", "false", "no_data", "stale", "error", "gone", "unknown", "disabled"
]
AlertState = Literal["inactive", "pending", "firing"]
DeliveryStatus = Literal["sending", "withheld", "nowhere", "not_firing"]


class UnknownRule(VigilError):
    """No rule has this id; the message suggests the closest ones."""

    def __init__(self, rule_id: str, suggestions: Sequence[str] = ()) -> None:
        self.rule_id = rule_id
        self.suggestions = tuple(suggestions)
        hint = f"; did you mean {' or '.join(self.suggestions)}?" if self.suggestions else ""
        super().__init__(f"unknown rule {rule_id!r}{hint}")


@dataclass(frozen=True, slots=True)
class Check:
    """One (sub-)expression and what it evaluated to.

    outcome   true | false | value (neither boolean) | no_data | error | skipped
    shown     the value as text ("42.5", "True") or the no-data / error message
    operands  (source, value as text) of the parts a comparison or call read
    op        "and" | "or" | "not" | "" (a comparison or a leaf)
    decisive  this part decided its parent's result
    reached   False: short-circuited, the rule itself never evaluated it
    """

    source: str
    outcome: Outcome
    shown: str
    value: Any = None
    operands: tuple[tuple[str, str], ...] = ()
    op: str = ""
    decisive: bool = False
    reached: bool = True
    children: tuple[Check, ...] = ()

    @property
    def text(self) -> str:
        return check_line(self.source, self.outcome, self.shown, self.operands)


@dataclass(frozen=True, slots=True)
class Condition:
    """The rule's condition for one alert instance, as the evaluator sees it.

    outcome   true | false | no_data | error | gone (an `each` element vanished)
              | stale (a collector it reads is down: the state is frozen)
              | unknown (no values given) | disabled
    message   the one-sentence reason (the deciding part, the missing metric ...)
    policy    what the rule's no_data / on_error setting makes of it ("" if nothing)
    """

    outcome: ConditionOutcome
    message: str
    value: Any = None
    policy: str = ""
    check: Check | None = None
    resolve: Check | None = None
    # a rule over a detecting logtail collector: the patterns and lines behind the
    # key (engine/explain/evidence.py): {source, hits: {pattern: n}, lines: [...]}
    evidence: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a notification is held back. `route`/`channel` say what it applies to
    (both None: the alert as a whole); `next_at` (RFC 3339) when the hold ends at
    the earliest, as the policy's own query says (None: no time is known)."""

    code: str  # silenced | inhibited | outside_active_time | inside_mute_time | flapping
    # | acknowledged | rate_limited | breaker_open | channel_unavailable | no_route
    text: str
    route: int | None = None
    channel: str | None = None
    data: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    next_at: str | None = None


@dataclass(frozen=True, slots=True)
class RouteInfo:
    index: int  # BYPASS_INDEX (-1): the rule's own `channels`
    text: str
    matchers: str
    channels: tuple[str, ...]
    continue_: bool
    group_by: tuple[str, ...]
    group_wait: float
    group_interval: float
    repeat_interval: float
    active_time: tuple[str, ...]
    mute_time: tuple[str, ...]
    source: str


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    name: str
    type: str
    routes: tuple[int, ...]
    sends: bool  # a firing alert would go out on it now
    lines: tuple[str, ...]  # told at ..., rate limit ..., breaker ...
    status: Mapping[str, Any] | None = None
    # the alert's group on this channel (engine/notify/groups.timing): what its next
    # flush waits for (group_wait | group_interval | repeat_interval | resend_delay
    # | inflight | "" for nothing) and when it comes (RFC 3339)
    timing: str = ""
    next_at: str | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where a notification goes. status: sending (firing, going out), withheld
    (firing, held back), nowhere (no route), not_firing (nothing to send; the rest
    says what would happen if it fired)."""

    status: DeliveryStatus
    summary: str
    routes: tuple[RouteInfo, ...]
    withheld: tuple[Reason, ...]
    channels: tuple[ChannelInfo, ...]
    escalation: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    escalation_next_at: str | None = None  # the next level's time, when not blocked


@dataclass(frozen=True, slots=True)
class Instance:
    """One alert of the rule (one label set): the whole rule, or one `each` element."""

    labels: Mapping[str, str]
    fingerprint: str
    state: AlertState  # from the durable state (journal)
    since: str | None  # RFC 3339: pending since / firing since
    summary: str
    condition: Condition
    timer: tuple[str, ...]
    delivery: Delivery
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Explanation:
    rule: str
    group: str
    severity: str
    source: str
    expr: str
    enabled: bool
    settings: Mapping[str, Any]
    at: str  # RFC 3339 of `now`
    values_known: bool
    instances: tuple[Instance, ...]
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = _jsonable(self)
        assert isinstance(out, dict)
        return {"version": FORMAT_VERSION, **out}

    def to_text(self) -> str:
        return render_text(self.to_dict())


# -- to_dict -------------------------------------------------------------------------------


def _jsonable(o: Any) -> Any:
    if is_dataclass(o) and not isinstance(o, type):
        out: dict[str, Any] = {}
        for f in fields(o):
            out[f.name.rstrip("_")] = _jsonable(getattr(o, f.name))
        if isinstance(o, Check):
            out["text"] = o.text
        return out
    if isinstance(o, Mapping):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_jsonable(x) for x in o]
    return plain_value(o)
