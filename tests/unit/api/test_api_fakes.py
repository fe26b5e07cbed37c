"""An in-memory DaemonFacade for the API tests, the CLI client tests and bench/api.py,
plus the tests of the facade's shape helpers that it is built on."""

from __future__ import annotations

import asyncio
import itertools
import math
import re
import shutil
import tempfile
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from starlette.applications import Starlette

from engine.api.auth import token_digest
from engine.api.facade import (
    DaemonFacade,
    alert_view,
    filter_alerts,
    matcher_view,
    rfc3339,
    silence_matches,
    silence_view,
)
from engine.common.matchers import compile_regex
from engine.common.secret import Secret
from engine.config.model import ApiConfig, ApiToken, LogConfig, Matcher
from engine.journal.history import HistoryIndex
from engine.journal.journal import Journal
from engine.rules.state import fingerprint
from engine.runtime.fanout import Fanout

TOKENS = {"viewer": "v-token-123", "operator": "o-token-456", "admin": "a-token-789"}
NAMES = {"viewer": "grafana", "operator": "oncall", "admin": "root-ops"}


def api_config(max_body_bytes: int = 4096, **tokens: str) -> ApiConfig:
    """Three tokens, one per role, named as in NAMES; extra `name=role` pairs allowed."""
    toks = [ApiToken(NAMES[r], token_digest(t), r) for r, t in TOKENS.items()]  # type: ignore[arg-type]
    toks += [ApiToken(n, token_digest(n + "-secret"), r) for n, r in tokens.items()]  # type: ignore[arg-type]
    return ApiConfig("127.0.0.1", 0, tuple(toks), max_body_bytes)


def bearer(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}"}


class AsgiClient:
    """A synchronous client calling the ASGI app in process, on its own event loop
    (starlette's TestClient without its dependency on a deprecated httpx use)."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        self.http = httpx.AsyncClient(transport=transport, base_url="http://vigil.test")

    def request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        return self.loop.run_until_complete(self.http.request(method, url, **kw))

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("POST", url, **kw)

    def delete(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", url, **kw)

    def put(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("PUT", url, **kw)

    def close(self) -> None:
        self.loop.run_until_complete(self.http.aclose())
        self.loop.close()


class FakeFacade:
    """The daemon as the API sees it, in memory, recording what it was asked."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.ready = True
        self.degraded: str | None = None
        self.clock = clock
        self.alerts: dict[str, dict[str, Any]] = {}  # engine/journal/store.py shape
        self.silences: dict[str, dict[str, Any]] = {}
        self.history: dict[str, list[dict[str, Any]]] = {}
        self.audits: list[tuple[str, str, dict[str, Any]]] = []
        self.pushed: dict[str, dict[str, Any]] = {"biz": {}}
        self.reload_errors: list[str] = []
        self.channel_ok = True
        self.previews: list[tuple[str, Any]] = []  # (channel, Choice) asked to preview
        self.bans: dict[str, dict[str, Any]] = {
            "203.0.113.7": {"channel": "fw", "net": "203.0.113.7", "offences": 1}
        }
        self.config_hash = "c0ffee" * 4
        self.started = clock()
        self._ids = itertools.count(1)
        self.stream = Fanout()  # the tests publish to it as the daemon's fold would
        # a real journal of the alerts added, and the real history index over it
        self.data_dir = tempfile.mkdtemp(prefix="vigil-fake-")
        weakref.finalize(self, shutil.rmtree, self.data_dir, True)
        self._index: HistoryIndex | None = None

    # -- test set-up ---------------------------------------------------------------------
    def add_alert(
        self,
        rule: str,
        labels: Mapping[str, str] | None = None,
        *,
        severity: str = "warning",
        state: str = "firing",
        value: Any = 1.0,
        starts_at: float | None = None,
    ) -> str:
        labels = dict(labels or {})
        fp = fingerprint(rule, labels)
        t = self.clock() if starts_at is None else starts_at
        self.alerts[fp] = {
            "rule": rule,
            "labels": labels,
            "severity": severity,
            "state": state,
            "value": value,
            "pending_since": t,
            "firing_since": t if state == "firing" else None,
            "starts_at": t,
            "annotations": {"summary": f"{rule} on {labels.get('host', '?')}"},
            "ack": None,
            "escalation": 0,
            "notified": {},
            "flapping": False,
        }
        self.history[fp] = [{"event": state, "alert": fp, "ts": rfc3339(t)}]
        j = Journal(self.data_dir, LogConfig(fsync="never"), clock=lambda: t)
        j.open()
        j.append_sync(
            [{"event": state, "alert": fp, "rule": rule, "labels": labels, "severity": severity,
              "value": value}]  # type: ignore[list-item]
        )  # fmt: skip
        j.close_sync()
        return fp

    def history_index(self) -> HistoryIndex:
        if self._index is None:
            self._index = HistoryIndex(self.data_dir, pause=0.0)
        self._index.build_now()  # what add_alert journaled since
        return self._index

    def _active_silences(self) -> list[tuple[str, list[dict[str, Any]]]]:
        now = self.clock()
        return [
            (sid, s["matchers"])
            for sid, s in self.silences.items()
            if (s["starts"] is None or s["starts"] <= now) and s["until"] > now
        ]

    def _view(
        self,
        fp: str,
        a: dict[str, Any],
        silences: list[tuple[str, list[dict[str, Any]]]] | None = None,
    ) -> dict[str, Any]:
        if silences is None:
            silences = self._active_silences()
        silenced_by: list[str] = []
        if silences:
            labels = {**a["labels"], "rule": a["rule"]}
            silenced_by = [sid for sid, ms in silences if silence_matches(ms, labels)]
        return alert_view(fp, a, silenced_by=silenced_by)

    # -- DaemonFacade ----------------------------------------------------------------------
    async def prepare_alerts(self) -> None:
        return None  # the fake builds nothing ahead

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
        silences = self._active_silences()  # once per call, as a real daemon would
        views = [self._view(fp, a, silences) for fp, a in self.alerts.items()]
        return filter_alerts(
            views,
            state=state,
            severity=severity,
            rule=rule,
            labels=labels,
            silenced=silenced,
            acknowledged=acknowledged,
        )

    async def get_alert(self, fp: str) -> dict[str, Any] | None:
        a = self.alerts.get(fp)
        if a is None:
            return None
        return {**self._view(fp, a), "history": list(self.history.get(fp, []))}

    async def ack(self, fp: str, *, by: str, note: str, until: float | None) -> dict[str, Any]:
        a = self.alerts[fp]
        a["ack"] = {"by": by, "note": note, "until": until, "at": self.clock()}
        self.history[fp].append({"event": "acknowledged", "alert": fp, "by": by})
        return self._view(fp, a)

    async def unack(self, fp: str, *, by: str) -> dict[str, Any]:
        a = self.alerts[fp]
        a["ack"] = None
        return self._view(fp, a)

    def list_silences(self, *, expired: bool = False) -> list[dict[str, Any]]:
        now = self.clock()
        out = [silence_view(sid, s, now) for sid, s in self.silences.items()]
        return out if expired else [s for s in out if s["state"] != "expired"]

    async def create_silence(
        self,
        *,
        matchers: list[dict[str, Any]],
        starts: float | None,
        until: float,
        reason: str,
        by: str,
    ) -> dict[str, Any]:
        sid = f"s{next(self._ids):04d}"
        self.silences[sid] = {
            "matchers": matchers,
            "starts": starts,
            "until": until,
            "reason": reason,
            "created_by": by,
        }
        return silence_view(sid, self.silences[sid], self.clock())

    async def expire_silence(self, sid: str, *, by: str) -> dict[str, Any]:
        s = self.silences[sid]
        s["until"] = self.clock()
        return silence_view(sid, s, self.clock())

    def list_rules(self) -> list[dict[str, Any]]:
        return [{"id": "host_cpu_high", "group": "host", "expr": "system.cpu_percent > 90"}]

    def list_channels(self) -> list[dict[str, Any]]:
        return [
            {
                "name": "hook",
                "type": "webhook",
                "settings": {"url": Secret("https://hooks.example.org/T0KEN"), "timeout": 5},
            }
        ]

    def status(self) -> dict[str, Any]:
        return {
            "version": "0.1.0",
            "config_hash": self.config_hash,
            "started": rfc3339(self.started),
            "last_reload": {"ok": not self.reload_errors, "at": None, "errors": []},
        }

    async def reload(self, *, by: str) -> dict[str, Any]:
        return {"ok": not self.reload_errors, "errors": list(self.reload_errors)}

    async def push_metrics(self, collector: str, values: Mapping[str, Any], *, by: str) -> None:
        store = self.pushed[collector]
        for name in values:
            if not re.fullmatch(r"[A-Za-z_]\w*", name):
                raise ValueError(f"metric name {name!r}: use letters, digits and _")
        store.update(values)

    def list_bans(self) -> list[dict[str, Any]]:
        return list(self.bans.values())

    async def unban(self, address: str, *, by: str) -> list[dict[str, Any]]:
        if self.bans.pop(address, None) is None:
            raise KeyError(address)
        return [{"channel": "fw", "ok": True, "error": None}]

    async def preview_channel(self, name: str, choice: Any) -> dict[str, Any]:
        if name != "hook" or (choice.alert is not None and choice.alert not in self.alerts):
            raise KeyError(name)
        if choice.rule is not None and choice.rule != "host_cpu_high":
            raise ValueError(f"unknown rule {choice.rule!r} (rules: host_cpu_high)")
        self.previews.append((name, choice))
        return {"channel": name, "type": "webhook", "notification": {}, "wire": []}

    async def test_channel(self, name: str, *, by: str) -> dict[str, Any]:
        if name != "hook":
            raise KeyError(name)
        if self.channel_ok:
            return {"ok": True, "message": "hook: delivered in 0.01s (1 attempt(s))"}
        return {"ok": False, "message": "hook: failed after 3 attempt(s): HTTP 500"}

    def explain(self, rule: str, labels: Mapping[str, str]) -> dict[str, Any]:
        from engine.explain.result import UnknownRule

        if rule not in ("cpu_high", "x", "{rule}"):
            raise UnknownRule(f"unknown rule {rule!r}")
        return {"v": 1, "rule": rule, "labels": dict(labels)}

    async def audit(self, action: str, *, by: str, details: Mapping[str, Any]) -> None:
        self.audits.append((action, by, dict(details)))


def _check_protocol(f: FakeFacade) -> DaemonFacade:
    return f  # mypy: the fake implements the protocol


# -- the shape helpers ---------------------------------------------------------------------


def test_rfc3339_is_utc_with_milliseconds() -> None:
    assert rfc3339(0) == "1970-01-01T00:00:00.000Z"
    assert rfc3339(1795896000.25) == "2026-11-28T20:00:00.250Z"
    assert rfc3339(None) is None
    assert rfc3339("2026-01-01T00:00:00Z") == "2026-01-01T00:00:00Z"


def test_alert_view_from_store_state() -> None:
    f = FakeFacade(clock=lambda: 1000.0)
    fp = f.add_alert("cpu", {"host": "a"}, severity="critical")
    f.alerts[fp]["ack"] = {"by": "ann", "note": "on it", "until": 2000.0, "at": 1500.0}
    v = alert_view(fp, f.alerts[fp], silenced_by=["s1"])
    assert v["fingerprint"] == fp and v["rule"] == "cpu" and v["severity"] == "critical"
    assert v["starts_at"] == "1970-01-01T00:16:40.000Z"
    assert v["acknowledged"] == {
        "by": "ann",
        "note": "on it",
        "at": "1970-01-01T00:25:00.000Z",
        "until": "1970-01-01T00:33:20.000Z",
    }
    assert v["silenced"] is True and v["silenced_by"] == ["s1"]
    assert alert_view(fp, {**f.alerts[fp], "ack": None})["acknowledged"] is None


def test_silence_view_states_and_config_matchers() -> None:
    m1 = Matcher("host", frozenset({"a", "b.c"}))
    m2 = Matcher("rule", frozenset({"x"}))
    m3 = Matcher("dc", regex=compile_regex("eu-.*"))
    s = {"matchers": [m1, m2, m3], "starts": 50.0, "until": 100.0, "reason": "r"}
    assert silence_view("s", s, 10.0)["state"] == "pending"
    assert silence_view("s", s, 60.0)["state"] == "active"
    assert silence_view("s", s, 100.0)["state"] == "expired"
    v = silence_view("s", s, 60.0)
    assert v["matchers"] == [
        {"label": "host", "regex": r"a|b\.c"},
        {"label": "rule", "value": "x"},
        {"label": "dc", "regex": "eu-.*"},
    ]
    assert matcher_view({"label": "a", "value": "b", "junk": 1}) == {"label": "a", "value": "b"}


def test_silence_matches_is_anchored() -> None:
    ms = [{"label": "host", "regex": "web-.*"}, {"label": "rule", "value": "cpu"}]
    assert silence_matches(ms, {"host": "web-1", "rule": "cpu"})
    assert not silence_matches(ms, {"host": "xweb-1", "rule": "cpu"})
    assert not silence_matches(ms, {"host": "web-1"})


def test_filter_alerts() -> None:
    f = FakeFacade()
    a = f.add_alert("cpu", {"host": "a"}, severity="critical")
    f.add_alert("cpu", {"host": "b"}, state="pending")
    f.add_alert("disk", {"host": "a"})
    f.alerts[a]["ack"] = {"by": "x", "note": "n", "until": None, "at": 0}
    views = [f._view(fp, x) for fp, x in f.alerts.items()]
    assert len(filter_alerts(views)) == 3
    assert [v["fingerprint"] for v in filter_alerts(views, acknowledged=True)] == [a]
    assert len(filter_alerts(views, rule="cpu", state="firing")) == 1
    assert len(filter_alerts(views, labels={"host": "a"})) == 2
    assert len(filter_alerts(views, severity="critical", labels={"host": "a"})) == 1
    assert filter_alerts(views, silenced=True) == []


def test_value_nan_is_left_to_the_encoder() -> None:
    f = FakeFacade()
    fp = f.add_alert("x", value=math.nan)
    assert math.isnan(f._view(fp, f.alerts[fp])["value"])
