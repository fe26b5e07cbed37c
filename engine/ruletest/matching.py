"""Whether an actual alert or notification matches an expected one, and the
one-to-one pairing of expected with actual items.

Separate from the checks: pure predicates and pairing, no reporting."""

from __future__ import annotations

import math
from typing import Any

from engine.notify.base import Notification
from engine.ruletest.clock import EPS
from engine.ruletest.model import AlertExpect, NoteExpect
from engine.ruletest.simulation import ActualAlert


def _same_value(want: Any, got: Any) -> bool:
    if isinstance(want, bool) or isinstance(got, bool):
        return want is got or (isinstance(want, bool) and isinstance(got, bool) and want == got)
    if isinstance(want, int | float) and isinstance(got, int | float):
        return math.isclose(want, got, rel_tol=1e-9, abs_tol=1e-9)
    return bool(want == got)


def alert_matches(e: AlertExpect, a: ActualAlert) -> bool:
    if e.rule != a.rule or e.state != a.state:
        return False
    if e.labels is not None and any(a.labels.get(k) != v for k, v in e.labels.items()):
        return False
    if e.annotations is not None and any(
        a.annotations.get(k) != v for k, v in e.annotations.items()
    ):
        return False
    if e.annotations_regex is not None and any(
        k not in a.annotations or p.search(a.annotations[k]) is None
        for k, p in e.annotations_regex.items()
    ):
        return False
    if e.has_value and not _same_value(e.value, a.value):
        return False
    if e.severity is not None and e.severity != a.severity:
        return False
    return all(getattr(a, f) == v for f, v in e.flags.items())


def note_matches(e: NoteExpect, at: float, n: Notification) -> bool:
    if e.channel != n.channel:
        return False
    if e.status is not None and e.status != n.status:
        return False
    if e.alerts is not None and e.alerts != sorted(a.rule for a in n.alerts):
        return False
    if e.title is not None and e.title != n.title:
        return False
    if e.title_regex is not None and e.title_regex.search(n.title) is None:
        return False
    if e.body is not None and e.body.rstrip("\n") != n.body.rstrip("\n"):
        return False
    if e.body_regex is not None and e.body_regex.search(n.body) is None:
        return False
    if e.kind is not None and e.kind != n.kind:
        return False
    if e.level is not None and e.level != n.escalation_level:
        return False
    return e.sent_at is None or abs(e.sent_at - at) <= EPS


def pair(n_exp: int, n_act: int, ok: Any) -> dict[int, int]:
    """A maximum one-to-one pairing of expected to actual items (Kuhn's algorithm):
    expected index -> actual index."""
    adj = [[j for j in range(n_act) if ok(i, j)] for i in range(n_exp)]
    owner: dict[int, int] = {}

    def take(i: int, seen: set[int]) -> bool:
        for j in adj[i]:
            if j in seen:
                continue
            seen.add(j)
            if j not in owner or take(owner[j], seen):
                owner[j] = i
                return True
        return False

    for i in range(n_exp):
        take(i, set())
    return {i: j for j, i in owner.items()}


def closest(unmatched_exp: list[int], unmatched_act: list[int], score: Any) -> dict[int, int]:
    """Pairs of an unmatched expected item with the unmatched actual item it most
    resembles (same rule or channel at least), to show them side by side."""
    out: dict[int, int] = {}
    free = list(unmatched_act)
    for i in unmatched_exp:
        best = max(free, key=lambda j: score(i, j), default=None)
        if best is not None and score(i, best) > 0:
            out[i] = best
            free.remove(best)
    return out
