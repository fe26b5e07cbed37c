"""An alert as the pipeline tracks it (AlertState), and the order notifications
list alerts in (view_order). Separate so that the pipeline and its policies
(groups, escalation, digests, resume) share the record without importing each
other: a leaf of the notify package.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from engine.config.model import Route
from engine.notify.base import AlertView
from engine.notify.marks import ack_hold

__all__ = ["AlertState", "Status", "view_order"]

Status = Literal["firing", "resolved"]


@dataclass(slots=True, eq=False)
class AlertState:
    fp: str
    rule: str
    labels: dict[str, str]
    severity: str
    match: dict[str, str]
    value: Any
    annotations: dict[str, str]
    starts_at: float
    status: Status = "firing"
    ends_at: float | None = None
    ack: dict[str, Any] | None = None
    groups: dict[str, None] = field(default_factory=dict)  # keys; ordered: deterministic
    esc_done: dict[int, int] = field(default_factory=dict)  # route index -> level reached
    esc_channels: dict[str, int] = field(default_factory=dict)  # channel -> level told
    esc_next: float | None = None  # when escalation is looked at next
    targets: list[tuple[int, Route]] | None = None  # routes, for the current config
    # silenced / muted (silenced or inhibited) as of mute epoch `marks_epoch`
    marks_epoch: int = -1
    silenced: bool = False
    muted: bool = False
    stale: bool = False  # a collector its rule reads is down (journal `stale`)
    rev: int = 0  # +1 whenever what a view shows changes (value, status, ack, ...)
    view: AlertView | None = None  # the last view built, for `view_key`
    view_key: tuple[int, Status, bool, bool] | None = None
    key_item: str = ""  # the view's entry in idempotency_key's JSON
    # the marks as the journal was last told of them (engine/notify/marks.py)
    told_silenced: bool = False
    told_inhibited: bool = False

    def acked(self, now: float) -> bool:
        return self.ack is not None and ack_hold(self.ack, now).held


Order = tuple[int, str, list[tuple[str, str]]]
# Views are shared by every channel's groups and digests, and a digest folded into
# the next one sorts its alerts again: each view's key is computed once. A view
# is kept as long as its entry, so its id() cannot be reused meanwhile.
_ORDER_KEYS: dict[int, tuple[AlertView, Order]] = {}
_ORDER_KEYS_MAX = 4_096  # views kept alive at most: a few MB


def view_order(a: AlertView) -> Order:
    """Firing first, then by rule and labels: how a notification lists its alerts."""
    hit = _ORDER_KEYS.get(id(a))
    if hit is not None and hit[0] is a:
        return hit[1]
    key = (0 if a.status == "firing" else 1, a.rule, sorted(a.labels.items()))
    if len(_ORDER_KEYS) >= _ORDER_KEYS_MAX:
        _ORDER_KEYS.clear()
    _ORDER_KEYS[id(a)] = (a, key)
    return key
