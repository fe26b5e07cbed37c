"""What the pipeline's policy modules need of the pipeline that coordinates them:
small protocols, so that groups, escalation, render and resume name the state
and the few operations they use instead of reaching into `Pipeline`. The
Pipeline (pipeline.py) is the one implementation; a leaf of the notify package
(its imports are for the type checker only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from engine.common.records import JournalEvent
    from engine.config.model import Config, Route, Rule, Silence, TimeInterval
    from engine.notify.alert_state import AlertState
    from engine.notify.base import Notification
    from engine.notify.groups import GroupState
    from engine.notify.ratelimit import RateLimiter
    from engine.notify.router import Inhibitor
    from engine.templates.renderer import Renderer

__all__ = ["Escalates", "Groups", "Renders", "Resumes", "Routes"]


class Renders(Protocol):
    """render.py: the templates, an alert's marks (shown in its view), journal events."""

    textless: frozenset[str]
    renderer: Renderer

    def refresh_marks(self, a: AlertState, now: float) -> None:
        """Bring `a.silenced` / `a.muted` up to date for `now` (journals a change)."""

    def emit(self, event: JournalEvent) -> None:
        """A journal event (template_failed, escalated ...)."""


class Routes(Renders, Protocol):
    """What groups and escalation share: the alerts, where they go, whether they
    are held, the rate limit, and the pipeline's timer."""

    alerts: dict[str, AlertState]
    channel_types: dict[str, str]
    flapping: set[str]
    intervals: dict[str, TimeInterval]
    rate: RateLimiter

    def targets(self, a: AlertState) -> list[tuple[int, Route]]:
        """(route index, route) pairs `a` goes to under the current config."""

    def muted(self, a: AlertState, now: float) -> bool:
        """Silenced or inhibited at `now`."""

    def push(self, at: float, kind: str, arg: Any) -> None:
        """Wake the pipeline at `at` for a "group" (key), "esc" (fingerprint) ..."""


class Escalates(Routes, Protocol):
    escalating: bool  # some route escalates


class Groups(Routes, Protocol):
    groups: dict[str, GroupState]
    config: Config
    rules: dict[str, Rule]
    closing: frozenset[str]  # channels that close incidents
    resend: dict[str, float]  # alertmanager channels' resend_delay
    alias: dict[str, str]  # group key before a reconfigure -> after

    def forget_if_done(self, a: AlertState) -> None:
        """Drop a resolved alert that no group holds any more."""


class Resumes(Groups, Escalates, Protocol):
    """resume.py: rebuilding the pipeline's state from the durable state."""

    api_silences: dict[str, Silence]
    config_expired: set[str]
    inhibitor: Inhibitor

    def new_mute_epoch(self, now: float | None = None) -> None: ...

    def touch_boundaries(self, now: float) -> None: ...

    def send_soon(self, notes: list[Notification], now: float) -> None: ...
