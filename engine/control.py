"""The running daemon as the API sees it (engine/api/facade.py's DaemonFacade).

Reads come from the durable state (engine/store.py) and the running config;
every write is an event that takes the daemon's one path: journaled durably,
folded into the state, then handed to the dispatcher.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from engine import __version__
from engine.api.facade import alert_view, filter_alerts, rfc3339, silence_view
from engine.collectors.push import PushCollector
from engine.config.model import Silence
from engine.durations import format_duration
from engine.journal import iter_events
from engine.notify import router

if TYPE_CHECKING:
    from engine.app import App

HISTORY_CAP = 300


def _config_silence_record(s: Silence) -> dict[str, Any]:
    matchers: list[dict[str, Any]] = []
    for m in s.matchers:
        if m.regex is not None:
            matchers.append({"label": m.label, "regex": m.regex.pattern})
        else:
            vals = sorted(m.values)
            matchers.append(
                {"label": m.label, "value": vals[0]}
                if len(vals) == 1
                else {"label": m.label, "values": vals}
            )
    return {
        "matchers": matchers,
        "starts": s.starts,
        "until": s.until,
        "reason": s.reason,
        "created_by": s.created_by,
    }


class Control:
    """DaemonFacade over an App."""

    def __init__(self, app: App) -> None:
        self.app = app

    @property
    def ready(self) -> bool:
        return self.app.ready

    @ready.setter
    def ready(self, value: bool) -> None:
        self.app.ready = value

    # -- alerts ------------------------------------------------------------------------
    def _silences(self) -> list[Silence]:
        out = list(self.app.config.silences)
        for sid, rec in self.app.state["silences"].items():
            s = router.silence_from_state(sid, rec)
            if s is not None:
                out.append(s)
        return out

    def _view(
        self, fp: str, stored: Mapping[str, Any], silences: list[Silence], now: float
    ) -> dict[str, Any]:
        labels = router.match_labels(
            stored.get("labels") or {}, stored.get("rule") or "", stored.get("severity") or ""
        )
        by = [
            s.id
            for s in silences
            if router.silence_active(s, now) and all(m.matches(labels) for m in s.matchers)
        ]
        pipeline = self.app.dispatcher.pipeline
        inhibited = pipeline.inhibitor.inhibited(fp, labels) if pipeline is not None else False
        return alert_view(fp, stored, silenced_by=by, inhibited=inhibited)

    def list_alerts(
        self,
        *,
        state: str | None,
        severity: str | None,
        rule: str | None,
        labels: Mapping[str, str],
        silenced: bool | None,
        acknowledged: bool | None,
    ) -> list[dict[str, Any]]:
        now = self.app.wall()
        silences = self._silences()
        alerts = self.app.state["alerts"]
        # cheap filters before building views: 10,000 alerts per listing
        items = (
            (fp, a)
            for fp, a in alerts.items()
            if (state is None or a.get("state") == state)
            and (severity is None or a.get("severity") == severity)
            and (rule is None or a.get("rule") == rule)
        )
        views = [self._view(fp, a, silences, now) for fp, a in items]
        return filter_alerts(views, labels=labels, silenced=silenced, acknowledged=acknowledged)

    def get_alert(self, fp: str) -> dict[str, Any] | None:
        stored = self.app.state["alerts"].get(fp)
        if stored is None:
            return None
        view = self._view(fp, stored, self._silences(), self.app.wall())
        history: list[dict[str, Any]] = []
        try:
            for ev in iter_events(self.app.config.data_dir):
                if ev.get("alert") == fp or fp in (ev.get("alerts") or ()):
                    history.append(ev)
                    if len(history) > HISTORY_CAP:
                        del history[0]
        except OSError:
            pass  # history is a nicety; the alert itself is known
        view["history"] = history
        return view

    async def ack(self, fp: str, *, by: str, note: str, until: float | None) -> dict[str, Any]:
        if fp not in self.app.state["alerts"]:
            raise KeyError(fp)
        await self.app.emit(
            [{"event": "acknowledged", "alert": fp, "by": by, "note": note, "until": until}]
        )
        return self._view(fp, self.app.state["alerts"][fp], self._silences(), self.app.wall())

    async def unack(self, fp: str, *, by: str) -> dict[str, Any]:
        stored = self.app.state["alerts"].get(fp)
        if stored is None:
            raise KeyError(fp)
        if stored.get("ack"):
            await self.app.emit([{"event": "unacknowledged", "alert": fp, "by": by}])
        return self._view(fp, self.app.state["alerts"][fp], self._silences(), self.app.wall())

    # -- silences ---------------------------------------------------------------------------
    def list_silences(self) -> list[dict[str, Any]]:
        now = self.app.wall()
        out = [silence_view(s.id, _config_silence_record(s), now) for s in self.app.config.silences]
        out.extend(silence_view(sid, rec, now) for sid, rec in self.app.state["silences"].items())
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
        if until <= self.app.wall():
            raise ValueError("until is in the past: a silence must end in the future")
        for m in matchers:
            if "regex" in m:
                re.compile(m["regex"])
        sid = secrets.token_hex(6)
        ev = {
            "event": "silence_created",
            "id": sid,
            "matchers": matchers,
            "starts": starts,
            "until": until,
            "reason": reason,
            "created_by": by,
        }
        await self.app.emit([ev])
        return silence_view(sid, self.app.state["silences"][sid], self.app.wall())

    async def expire_silence(self, sid: str, *, by: str) -> dict[str, Any]:
        if any(s.id == sid for s in self.app.config.silences):
            raise ValueError(f"silence {sid} comes from a channel file: remove it there and reload")
        rec = self.app.state["silences"].get(sid)
        if rec is None:
            raise KeyError(sid)
        view = silence_view(sid, {**rec, "until": self.app.wall()}, self.app.wall())
        await self.app.emit([{"event": "silence_expired", "id": sid, "by": by}])
        return view

    # -- configuration ------------------------------------------------------------------------
    def list_rules(self) -> list[dict[str, Any]]:
        out = []
        for g in self.app.config.groups:
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
                    }
                )
        return out

    def list_channels(self) -> list[dict[str, Any]]:
        status = self.app.dispatcher.status()
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
            for c in self.app.config.channels
        ]

    def status(self) -> dict[str, Any]:
        app = self.app
        last = app.last_reload
        return {
            "version": __version__,
            "config_hash": app.config.config_hash,
            "config_file": app.config.config_file,
            "started": rfc3339(app.started_at),
            "uptime_seconds": round(time.time() - app.started_at, 1),
            "ready": app.ready,
            "summary": app.summary(),
            "last_reload": {"ok": last["ok"], "at": rfc3339(last["at"]), "errors": last["errors"]},
            "collectors": {
                c.name: {"up": c.name not in app.hub.down, "error": app.hub.down.get(c.name)}
                for c in app.config.collectors
            },
            "journal": {
                "last_seq": app.journal.last_seq if app.journal else None,
                "data_dir": app.config.data_dir,
            },
        }

    async def reload(self, *, by: str) -> dict[str, Any]:
        return await self.app.reload(by=by)

    async def push_metrics(self, collector: str, values: Mapping[str, Any], *, by: str) -> None:
        c = self.app.collectors.get(collector)
        if not isinstance(c, PushCollector):
            raise KeyError(collector)
        c.push(values, self.app.wall())
        # the pushed values are visible to the next evaluation without waiting a tick
        await self.app.collect(collector)

    async def test_channel(self, name: str, *, by: str) -> dict[str, Any]:
        if self.app.config.channel(name) is None:
            raise KeyError(name)
        text = await self.app.dispatcher.send_test(name)
        return {"ok": ": delivered" in text, "message": text}

    async def audit(self, action: str, *, by: str, details: Mapping[str, Any]) -> None:
        await self.app.emit([{"event": "audit", "action": action, "by": by, **details}])
