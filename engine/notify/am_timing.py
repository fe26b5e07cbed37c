"""How often the `alertmanager` channel re-sends firing alerts, and how far ahead
their `endsAt` lies: Prometheus's client behaviour, read by the channel (in the
sender process) and by the pipeline (which schedules the re-sends).

Alertmanager resolves an alert by itself once its `endsAt` passes. Prometheus
therefore re-sends every active alert every `resend_delay` (1m) with `endsAt` 4
re-sends ahead, so an alert that still fires never reaches its `endsAt`, and one
whose sender died ends a few minutes later. Here `resolve_timeout` (default 5m)
is that horizon and `resend_delay` defaults to min(1m, resolve_timeout / 4);
the two together must leave room for one lost re-send (resend_delay at most
half of resolve_timeout).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from engine.common.durations import parse_duration

TYPE = "alertmanager"
RESOLVE_TIMEOUT = 300.0
RESEND_DELAY = 60.0


def timing(settings: Mapping[str, Any]) -> tuple[float, float]:
    """(resend_delay, resolve_timeout) of a channel's settings; ValueError (one
    line) when they do not fit together."""
    horizon = parse_duration(settings.get("resolve_timeout", RESOLVE_TIMEOUT))
    if horizon <= 0:
        raise ValueError("resolve_timeout: must be more than 0s")
    if "resend_delay" not in settings:
        return min(RESEND_DELAY, horizon / 4), horizon
    resend = parse_duration(settings["resend_delay"])
    if resend <= 0:
        raise ValueError("resend_delay: must be more than 0s")
    if resend * 2 > horizon:
        raise ValueError(
            "resend_delay: must be at most half of resolve_timeout, or Alertmanager "
            "resolves alerts that still fire between two re-sends"
        )
    return resend, horizon


def resend_delays(channels: Iterable[Any]) -> dict[str, float]:
    """channel name -> resend_delay, for the `alertmanager` channels of a config
    (objects with .name, .type, .settings). A channel whose settings are bad is
    left out: it cannot be built, and validation says why."""
    out: dict[str, float] = {}
    for c in channels:
        if c.type != TYPE:
            continue
        try:
            out[c.name] = timing(c.settings)[0]
        except (ValueError, TypeError):
            continue
    return out
