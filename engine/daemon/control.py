"""The running daemon as the API sees it (engine/api/facade.py's DaemonFacade).

Reads come from the durable state (engine/journal/store.py) and the running config;
every write is an event that takes the daemon's one path: journaled durably,
folded into the state, then handed to the dispatcher.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from engine import __version__
from engine.api.facade import rfc3339, silence_view
from engine.collectors.push import PushCollector
from engine.common import matchers
from engine.common.durations import format_duration
from engine.common.records import ApiAlert, JournalEvent, SilenceCreatedEvent, audit_event
from engine.config.model import Silence
from engine.daemon.alert_history import alert_history
from engine.daemon.alert_views import AlertViews, one_view
from engine.daemon.rule_runtime import rule_runtime
from engine.journal.format import format_ts
from engine.runtime.budget import Budget
from engine.runtime.fanout import Fanout

if TYPE_CHECKING:
    from engine.channels.preview_build import Choice
    from engine.collectors.base import Collector
    from engine.config.model import Config
    from engine.delivery.dispatch import Dispatcher
    from engine.expr.history import History
    from engine.journal.history import HistoryIndex
    from engine.journal.journal import Journal
    from engine.rules.evaluator import Evaluator

BAN_FIELDS = ("key", "rule", "until", "offences", "last", "dry_run")


def _config_silence_record(s: Silence) -> dict[str, Any]:
    records = [matchers.to_record(m) for m in s.matchers]
    return {
        "matchers": records,
        "starts": s.starts,
        "until": s.until,
        "reason": s.reason,
        "created_by": s.created_by,
    }


class LiveState(Protocol):
    """The alert state Control reads (an alert_views.AlertState too), and the
    commands it journals."""

    @property
    def config(self) -> Config: ...
    @property
    def state(self) -> dict[str, Any]: ...
    @property
    def state_version(self) -> int: ...
    @property
    def alert_versions(self) -> dict[str, int]: ...
    @property
    def stream(self) -> Fanout: ...
    @property
    def dispatcher(self) -> Dispatcher: ...
    @property
    def collectors(self) -> dict[str, Collector]: ...
    @property
    def wall(self) -> Callable[[], float]: ...
    @property
    def budget(self) -> Budget: ...
    async def emit(self, events: Sequence[JournalEvent]) -> list[dict[str, Any]]: ...
    async def collect(self, name: str) -> None: ...


class _Hub(Protocol):
    @property
    def values(self) -> Mapping[str, Mapping[str, Any]]: ...
    @property
    def down(self) -> Mapping[str, str]: ...
    @property
    def last(self) -> Mapping[str, float]: ...
    @property
    def filling(self) -> Mapping[str, tuple[float, float]]: ...


class DaemonInfo(Protocol):
    """What the daemon says about itself: readiness, health, reloads, what it collected."""

    ready: bool

    @property
    def degraded(self) -> str | None: ...
    @property
    def started_at(self) -> float: ...
    @property
    def last_reload(self) -> dict[str, Any]: ...
    @property
    def hub(self) -> _Hub: ...
    @property
    def history(self) -> History: ...
    @property
    def evaluator(self) -> Evaluator: ...
    @property
    def journal(self) -> Journal | None: ...
    def summary(self) -> str: ...
    async def reload(self, *, by: str) -> dict[str, Any]: ...
    @property
    def history_index(self) -> HistoryIndex | None: ...


class Control:
    """DaemonFacade over the daemon: its live alert state and its own status, as two
    small protocols (the App provides both), so the API's view does not import the App."""

    def __init__(self, live: LiveState, info: DaemonInfo) -> None:
        self.live = live
        self.info = info
        self.views = AlertViews(live)  # the listing's cache of alert views

    @property
    def ready(self) -> bool:
        return self.info.ready

    @ready.setter
    def ready(self, value: bool) -> None:
        self.info.ready = value

    @property
    def degraded(self) -> str | None:
        return self.info.degraded

    @property
    def stream(self) -> Fanout:
        return self.live.stream

    def history_index(self) -> HistoryIndex | None:
        return self.info.history_index

    # -- alerts ------------------------------------------------------------------------
    async def prepare_alerts(self) -> None:
        await self.views.prepare()

    def list_alerts(
        self,
        *,
        state: str | None,
        severity: str | None,
        rule: str | None,
        labels: Mapping[str, str],
        silenced: bool | None,
        acknowledged: bool | None,
    ) -> list[ApiAlert]:
        return self.views.list(
            state=state,
            severity=severity,
            rule=rule,
            labels=labels,
            silenced=silenced,
            acknowledged=acknowledged,
        )

    async def get_alert(self, fp: str) -> ApiAlert | None:
        stored = self.live.state["alerts"].get(fp)
        if stored is None:
            return None
        history, source = await alert_history(
            self.info.history_index, self.live.config.data_dir, fp
        )
        # the alert as it is now: it may have changed while its history was read
        stored = self.live.state["alerts"].get(fp, stored)
        view = one_view(self.live, fp, stored)
        view["history"] = history
        view["history_source"] = source
        return view

    async def ack(self, fp: str, *, by: str, note: str, until: float | None) -> ApiAlert:
        if fp not in self.live.state["alerts"]:
            raise KeyError(fp)
        await self.live.emit(
            [
                {
                    "event": "acknowledged",
                    "alert": fp,
                    "by": by,
                    "note": note,
                    "until": None if until is None else format_ts(until),  # RFC 3339 (13.18)
                }
            ]
        )
        return one_view(self.live, fp, self.live.state["alerts"][fp])

    async def unack(self, fp: str, *, by: str) -> ApiAlert:
        stored = self.live.state["alerts"].get(fp)
        if stored is None:
            raise KeyError(fp)
        if stored.get("ack"):
            await self.live.emit([{"event": "unacknowledged", "alert": fp, "by": by}])
        return one_view(self.live, fp, self.live.state["alerts"][fp])

    # -- silences ---------------------------------------------------------------------------
    def list_silences(self, *, expired: bool = False) -> list[dict[str, Any]]:
        now = self.live.wall()
        out = [
            silence_view(s.id, _config_silence_record(s), now) for s in self.live.config.silences
        ]
        out.extend(silence_view(sid, rec, now) for sid, rec in self.live.state["silences"].items())
        if not expired:
            return [s for s in out if s["state"] != "expired"]
        gone = self.live.state.get("silences_expired") or {}
        out.extend(silence_view(sid, rec, now) for sid, rec in reversed(gone.items()))
        return out

    async def create_silence(
        self,
        *,
        matchers: list[dict[str, Any]],
        starts: float | None,
        until: float,
        reason: str,
        by: str,
    ) -> dict[str, Any]:
        if until <= self.live.wall():
            raise ValueError("until is in the past: a silence must end in the future")
        for m in matchers:
            if "regex" in m:
                re.compile(m["regex"])
        sid = secrets.token_hex(6)
        ev: SilenceCreatedEvent = {
            "event": "silence_created",
            "id": sid,
            "matchers": matchers,
            # RFC 3339, as every time in the journal (13.18)
            "starts": None if starts is None else format_ts(starts),
            "until": format_ts(until),
            "reason": reason,
            "created_by": by,
        }
        await self.live.emit([ev])
        return silence_view(sid, self.live.state["silences"][sid], self.live.wall())

    async def expire_silence(self, sid: str, *, by: str) -> dict[str, Any]:
        if any(s.id == sid for s in self.live.config.silences):
            raise ValueError(f"silence {sid} comes from a channel file: remove it there and reload")
        rec = self.live.state["silences"].get(sid)
        if rec is None:
            raise KeyError(sid)
        view = silence_view(sid, {**rec, "until": self.live.wall()}, self.live.wall())
        await self.live.emit([{"event": "silence_expired", "id": sid, "by": by}])
        return view

    # -- configuration ------------------------------------------------------------------------
    def list_rules(self) -> list[dict[str, Any]]:
        out = []
        runtime = rule_runtime(self.info.evaluator, self.live.config.groups)
        for g in self.live.config.groups:
            for r in g.rules:
                out.append(
                    {
                        "id": r.id,
                        "group": g.name,
                        "expr": r.expr,
                        "severity": r.severity,
                        "for": format_duration(r.for_),
                        "consecutive": r.consecutive or None,
                        "keep_firing_for": format_duration(r.keep_firing_for),
                        "resolve_expr": r.resolve_expr,
                        "each": r.each,
                        "labels": dict(r.labels),
                        "annotations": dict(r.annotations),
                        "no_data": r.no_data,
                        "on_error": r.on_error,
                        "channels": list(r.channels) if r.channels is not None else None,
                        "enabled": r.enabled,
                        "interval": format_duration(g.interval),
                        "source": str(r.source),
                        **runtime[r.id],
                    }
                )
        return out

    def list_channels(self) -> list[dict[str, Any]]:
        status = self.live.dispatcher.status()
        return [
            {
                "name": c.name,
                "type": c.type,
                "settings": dict(c.settings),  # Secrets are encoded as *** by the API
                "rate_limit": {"max": c.rate_limit.max, "per": c.rate_limit.per}
                if c.rate_limit
                else None,
                "source": str(c.source),
                "status": status.get(c.name, {}),
            }
            for c in self.live.config.channels
        ]

    def status(self) -> dict[str, Any]:
        info, live = self.info, self.live
        last = info.last_reload
        return {
            "version": __version__,
            "config_hash": live.config.config_hash,
            "config_file": live.config.config_file,
            "started": rfc3339(info.started_at),
            "uptime_seconds": round(time.time() - info.started_at, 1),
            "ready": info.ready and info.degraded is None,
            "degraded": info.degraded,
            "summary": info.summary(),
            "last_reload": {"ok": last["ok"], "at": rfc3339(last["at"]), "errors": last["errors"]},
            "collectors": {
                c.name: {
                    "up": c.name not in info.hub.down,
                    "error": info.hub.down.get(c.name),
                    "last": rfc3339(info.hub.last.get(c.name)),  # the last good read (dashboard)
                }
                for c in live.config.collectors
            },
            # rules that cannot be evaluated or never get data: one line each
            "rule_problems": [
                {"rule": rule, "problem": problem, "message": message}
                for (problem, rule), message in sorted(info.evaluator.health.active.items())
            ],
            "journal": {
                "last_seq": info.journal.last_seq if info.journal else None,
                "data_dir": live.config.data_dir,
            },
        }

    async def reload(self, *, by: str) -> dict[str, Any]:
        return await self.info.reload(by=by)

    async def push_metrics(self, collector: str, values: Mapping[str, Any], *, by: str) -> None:
        c = self.live.collectors.get(collector)
        if not isinstance(c, PushCollector):
            raise KeyError(collector)
        c.push(values, self.live.wall())
        # the pushed values are visible to the next evaluation without waiting a tick
        await self.live.collect(collector)

    def list_bans(self) -> list[dict[str, Any]]:
        now = self.live.wall()
        active = [
            (float(e.get("last") or 0), channel, net, e)
            for channel, book in (self.live.state.get("bans") or {}).items()
            for net, e in book.items()
            if float(e.get("until") or 0) > now
        ]
        active.sort(key=lambda b: -b[0])
        return [
            {
                "channel": channel, "net": net, **{k: e.get(k) for k in BAN_FIELDS},
                "until": rfc3339(e.get("until")), "last": rfc3339(last),
            }
            for last, channel, net, e in active
        ]  # fmt: skip

    async def unban(self, address: str, *, by: str) -> list[dict[str, Any]]:
        results = await self.live.dispatcher.unban(address, by=by)
        if not any(r["ok"] for r in results):
            raise KeyError(address)  # no ban channel held it
        return results

    async def test_channel(self, name: str, *, by: str) -> dict[str, Any]:
        if self.live.config.channel(name) is None:
            raise KeyError(name)
        text = await self.live.dispatcher.send_test(name)
        return {"ok": ": delivered" in text, "message": text}

    async def preview_channel(self, name: str, choice: Choice) -> dict[str, Any]:
        from engine.channels.preview_build import preview_live

        live = self.live
        return await preview_live(live.config, live.state, name, choice, live.wall())

    def explain(self, rule: str, labels: Mapping[str, str]) -> dict[str, Any]:
        from engine.explain.explain import explain

        info, live = self.info, self.live
        return explain(
            live.config, rule, labels=labels, values=dict(info.hub.values), state=live.state,
            now=live.wall(), channel_status=live.dispatcher.status(), history=info.history,
            collector_errors=dict(info.hub.down), live=live.dispatcher.pipeline,
            filling={n: wall for n, (_, wall) in info.hub.filling.items()},
        ).to_dict()  # fmt: skip

    async def audit(self, action: str, *, by: str, details: Mapping[str, Any]) -> None:
        await self.live.emit([audit_event(action, by, details)])
