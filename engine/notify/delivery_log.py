"""What each channel was told, folded from the journal's `notified` events
(vigil's counterpart of Alertmanager's notification log).

Two parts of the durable state (engine/journal/store.py), so that a restart rebuilds
every group's delivery state (Pipeline.load_state):

    "told":      {group key: {"channel", "key", "ts", "firing": [fp], "acked": [fp],
                              "resolved": [fp], "forgotten": [fp], "left_out": [fp]}}
                 the content of the last notification delivered to each group: the
                 dedup stage compares against it, the next key chains from "key", the
                 group's timers count from "ts". "forgotten": told firing, then
                 acknowledged: the channel hears of it again, as news, once that ends.
                 "left_out": told firing by an earlier notification and left out of
                 the later ones (acknowledged, silenced, inhibited) without being told
                 it ended: the channel still believes it fires and is owed its resolve
                 (groups.GroupState.told_firing). Absent in states written before it.
    "resolving": {fp: {"rule", "labels", "severity", "value", "annotations", "starts_at",
                       "ends_at", "channels": {channel: ts told firing}}}
                 alerts that resolved while some channel still believes them firing:
                 that channel is owed the resolve, also across a restart. An entry
                 leaves once every channel was told (or after RESOLVING_MAX_AGE).
    "held":      {fp: {"rule", "since", "changes": [ts]}}
                 alerts whose notifications are held for flapping, with the wall
                 times of their counted state changes (firing, resolved): `vigil
                 explain` says from them until when the hold lasts at least.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.common.timefmt import to_epoch

__all__ = [
    "RESOLVING_MAX_AGE",
    "on_acknowledged",
    "on_firing",
    "on_flapping",
    "on_notified",
    "on_resolved",
    "on_silence_expired",
    "on_transition",
]

# A resolve owed this long (a channel removed from the config, say) is given up.
RESOLVING_MAX_AGE = 7 * 86400.0
PRUNE_SLACK = 64  # records beyond what the live alerts need before a prune pass
EXPIRED_SILENCES = 200  # expired silences kept for `vigil silences --all`, newest
HELD_CHANGES = 64  # change times kept per held alert (max_changes is rarely above 20)


def _told(state: dict[str, Any]) -> dict[str, Any]:
    told: dict[str, Any] = state.setdefault("told", {})
    return told


def _resolving(state: dict[str, Any]) -> dict[str, Any]:
    res: dict[str, Any] = state.setdefault("resolving", {})
    return res


def on_firing(state: dict[str, Any], fp: str) -> None:
    """A new episode of `fp`: the old one's resolve is no longer owed (the pipeline
    lets the new episode take its place in the groups)."""
    res = state.get("resolving")
    if res:
        res.pop(fp, None)


def on_resolved(state: dict[str, Any], fp: str, alert: Mapping[str, Any], ts: float) -> None:
    """`alert` (the state's record, before it is dropped) resolved at `ts`: keep it
    for the channels that were told it fires."""
    channels = {
        ch: rec.get("ts")
        for ch, rec in (alert.get("notified") or {}).items()
        if isinstance(rec, Mapping) and rec.get("ok", True) and rec.get("status") == "firing"
    }
    levels = {
        ch: rec["level"]
        for ch, rec in (alert.get("notified") or {}).items()
        if ch in channels and isinstance(rec.get("level"), int)
    }
    res = _resolving(state)
    if channels:
        res[fp] = {
            "levels": levels,  # channels told by escalation: they hear the end the same way
            "rule": alert.get("rule"),
            "labels": alert.get("labels") or {},
            "severity": alert.get("severity"),
            "value": alert.get("value"),
            "annotations": alert.get("annotations"),
            "starts_at": alert.get("starts_at", alert.get("firing_since")),
            "ends_at": ts,
            "channels": channels,
        }
    if len(res) > PRUNE_SLACK:
        for old in [k for k, v in res.items() if v.get("ends_at", ts) < ts - RESOLVING_MAX_AGE]:
            del res[old]
    _prune_told(state)


def on_acknowledged(state: dict[str, Any], fp: str) -> None:
    """`fp` was acknowledged: a channel told it fires (and not yet that it is
    acknowledged) is to hear of it again once the acknowledgement ends, as news
    (engine/notify/groups.content forgets it was told); recorded so that a
    restart in between does the same (resume.py)."""
    for rec in _told(state).values():
        if fp in (rec.get("firing") or ()) and fp not in (rec.get("acked") or ()):
            forgotten = rec.setdefault("forgotten", [])
            if fp not in forgotten:
                forgotten.append(fp)


def on_notified(state: dict[str, Any], event: Mapping[str, Any], ts: float) -> None:
    """A notification was delivered: record what its group was told and settle the
    resolves it carried."""
    channel = event.get("channel")
    alerts = [fp for fp in event.get("alerts") or () if isinstance(fp, str)]
    if not isinstance(channel, str):
        return
    res = state.get("resolving") or {}
    if "resolved" in event:
        resolved = [fp for fp in event.get("resolved") or () if isinstance(fp, str)]
    elif event.get("status") == "resolved":
        resolved = alerts
    else:
        # written before notifications listed their resolved alerts: one that had
        # resolved already went out as resolved
        resolved = [fp for fp in alerts if fp in res]
    for fp in resolved:
        entry = res.get(fp)
        if entry is not None:
            entry["channels"].pop(channel, None)
            if not entry["channels"]:
                del res[fp]
    gkey = event.get("group_key")
    if event.get("kind", "alerts") != "alerts" or not isinstance(gkey, str):
        return
    done = set(resolved)
    firing = [fp for fp in alerts if fp not in done]
    told = _told(state)
    left_out = _left_out(state, told.get(gkey), channel, alerts)
    if not firing and not left_out:
        told.pop(gkey, None)  # the group ended: nothing is left to compare with
        return
    rec = {
        "channel": channel,
        "key": event.get("key"),
        "ts": ts,
        "firing": firing,
        "acked": [fp for fp in event.get("acked") or () if isinstance(fp, str)],
        "resolved": resolved,
    }
    if left_out:
        rec["left_out"] = left_out
    told[gkey] = rec


def _left_out(state: dict[str, Any], prev: Any, channel: str, alerts: list[str]) -> list[str]:
    """The alerts the group's channel was told fire, by this notification's
    predecessors, that this one leaves out (an acknowledged alert is not repeated
    to a channel that does not close incidents): the channel still believes them
    firing until it hears they ended, also across a restart. As long as they are
    alive: firing, or resolved with this channel owed the resolve."""
    if not isinstance(prev, Mapping) or prev.get("channel") != channel:
        return []
    now_told = set(alerts)
    live = state.get("alerts") or {}
    res = state.get("resolving") or {}
    out: dict[str, None] = {}  # ordered, and a thousand alerts acknowledged at once stay cheap
    for fp in (*(prev.get("firing") or ()), *(prev.get("left_out") or ())):
        if fp in now_told or fp in out:
            continue
        if fp in live or channel in ((res.get(fp) or {}).get("channels") or ()):
            out[fp] = None
    return list(out)


def _prune_told(state: dict[str, Any]) -> None:
    """Drop group records none of whose alerts is alive any more (their route or
    channel went away before the group ended); amortised over many resolves."""
    told = state.get("told")
    if not told:
        return
    alive = state["alerts"]
    res = state.get("resolving") or {}
    if len(told) <= PRUNE_SLACK + 8 * (len(alive) + len(res)):
        return
    for gkey in [
        k
        for k, v in told.items()
        if not any(fp in alive or fp in res for fp in (*v["firing"], *v.get("left_out", ())))
    ]:
        del told[gkey]


def on_flapping(state: dict[str, Any], event: Mapping[str, Any], ts: float) -> None:
    """`flapping` starts (the event lists the counted changes) or ends."""
    fp = event.get("alert")
    if not isinstance(fp, str):
        return
    held: dict[str, Any] = state.setdefault("held", {})
    if event.get("event") == "flapping_end":
        held.pop(fp, None)
        return
    changes = [float(t) for t in event.get("changes") or () if isinstance(t, int | float)]
    held[fp] = {"rule": event.get("rule"), "since": ts, "changes": changes or [ts]}


def on_transition(state: dict[str, Any], fp: str, ts: float) -> None:
    """A firing or resolved event: one more change of a held alert."""
    h = (state.get("held") or {}).get(fp)
    if h is not None:
        h["changes"] = [*h["changes"], ts][-HELD_CHANGES:]


def on_config_silence_expired(state: dict[str, Any], event: Mapping[str, Any]) -> None:
    """A channel file's silence ended by time: journaled once, and a restart,
    which finds it in the config again, knows not to journal it again."""
    sid = event.get("id")
    if not isinstance(sid, str):
        return
    done: dict[str, Any] = state.setdefault("config_silences_expired", {})
    done.pop(sid, None)
    done[sid] = to_epoch(event.get("until"))
    while len(done) > EXPIRED_SILENCES:
        del done[next(iter(done))]


def on_silence_expired(
    state: dict[str, Any], sid: str, rec: Mapping[str, Any], event: Mapping[str, Any], ts: float
) -> None:
    """Keep an expired API silence (by hand or by time) for `vigil silences --all`."""
    expired: dict[str, Any] = state.setdefault("silences_expired", {})
    expired.pop(sid, None)
    cause = event.get("cause") if isinstance(event.get("cause"), str) else "expired"
    until = to_epoch(rec.get("until"))
    # by hand: it ended now; by time: at its own `until`
    end = until if cause == "time" and until is not None else ts
    expired[sid] = {**rec, "until": end, "expired_by": event.get("by"), "cause": cause}
    while len(expired) > EXPIRED_SILENCES:
        del expired[next(iter(expired))]
