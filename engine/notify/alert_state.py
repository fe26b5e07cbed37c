"""An alert as the pipeline tracks it (AlertState), how one is made from a
journal record (new_alert), and the order notifications list alerts in
(view_order). Separate so that the pipeline and its policies (groups,
escalation, digests, resume) share the record without importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from engine.common.records import AckRecord
from engine.config.model import Route, Rule
from engine.notify.base import AlertView
from engine.notify.marks import ack_hold
from engine.notify.router import match_labels
from engine.templates import renderer as templates

__all__ = ["AlertState", "Status", "new_alert", "view_order"]

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
    ack: AckRecord | None = None
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


def new_alert(
    rules: Mapping[str, Rule],
    fp: str,
    rule: str,
    labels: Mapping[str, Any],
    severity: str,
    value: Any,
    annotations: Mapping[str, Any] | None,
    starts: float,
) -> AlertState:
    """The alert of a journal record; without `annotations` (an old record) they
    are rendered from its rule's, as the evaluator would have."""
    lab = {str(k): str(v) for k, v in labels.items()}
    if annotations is None:
        r = rules.get(rule)
        ann = (
            templates.render_annotations(r.annotations, lab, value, rule=rule, severity=severity)
            if r is not None
            else {}
        )
    else:
        ann = {str(k): str(v) for k, v in annotations.items()}
    return AlertState(
        fp, rule, lab, severity, match_labels(lab, rule, severity), value, ann, starts
    )


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
