"""A policy's answer to "why not now": `Hold(held, code, next_at, detail)`.

Every notification policy (marks, acknowledgement, time intervals, groups and
their repeat timing, rate limit, escalation) answers this one question with a
pure query that reads the policy's state and `now` and changes nothing. The
pipeline decides with these queries, and `vigil explain` words the same
answers, so the rules are written once. A leaf of the notify package.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

__all__ = ["FREE", "Hold"]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class Hold(NamedTuple):
    """held: the policy holds the notification back at `now`. code: why (or, when
    not held, what the policy is waiting for: "repeat_interval", "silence_starts"
    ...; "" for nothing). next_at: when the policy is next due to act (the end of
    the hold, the next tick), None when no time is known (it ends with an event:
    a resolve, an unacknowledge). detail: what the code refers to (the silence,
    the intervals, the inhibiting alerts ...). A NamedTuple rather than a frozen
    dataclass: as immutable, and the pipeline makes one per group refresh, which
    a frozen dataclass makes several times slower."""

    held: bool
    code: str = ""
    next_at: float | None = None
    detail: Mapping[str, Any] = _EMPTY


FREE = Hold(False)  # nothing holds it, nothing is scheduled
