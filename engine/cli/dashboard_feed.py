"""What `vigil dashboard` asks the daemon, through the CLI's API client.

Every read and write is a blocking call of engine.cli.client.Client, made from a
worker thread so the screen never waits on the network; one lock keeps the
client's connection to one call at a time. Failures come back as the client's
one-line ClientError text.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.cli.connection import Client, path_segment
from engine.cli.dashboard_model import Alert, parse_alerts
from engine.common import matchers
from engine.errors import ClientError


@dataclass(frozen=True)
class Snapshot:
    """One refresh: the alerts, the daemon's status and its channels (or the error)."""

    at: float
    alerts: list[Alert] = field(default_factory=list)
    status: Mapping[str, Any] = field(default_factory=dict)
    channels: list[Mapping[str, Any]] = field(default_factory=list)
    error: str | None = None


class Feed:
    def __init__(self, client: Client, timeout: float = 10.0) -> None:
        self.client = client
        self.timeout = timeout  # of one call
        self._lock = threading.Lock()
        self._last_alerts: Any = None
        self._parsed: list[Alert] = []

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        with self._lock:
            return self.client.call(method, path, **kw)

    def snapshot(self, *, services: bool = True) -> Snapshot:
        """The alerts, and (with `services`) the status and channels."""
        now = time.time()
        try:
            raw = self._call("GET", "/api/v1/alerts")["alerts"]
            if raw != self._last_alerts:  # an unchanged list is not parsed again
                self._last_alerts, self._parsed = raw, parse_alerts(raw)
            status: Mapping[str, Any] = {}
            channels: list[Mapping[str, Any]] = []
            if services:
                status = self._call("GET", "/api/v1/status")
                channels = self._call("GET", "/api/v1/channels")["channels"]
        except ClientError as e:
            return Snapshot(now, self._parsed, error=str(e))
        return Snapshot(now, self._parsed, status, channels)

    def ack(self, fp: str, note: str, for_: str = "") -> Mapping[str, Any]:
        body = {"note": note, **({"for": for_} if for_ else {})}
        result: Mapping[str, Any] = self._call(
            "POST", f"/api/v1/alerts/{path_segment(fp)}/ack", body=body
        )
        return result

    def unack(self, fp: str) -> Mapping[str, Any]:
        result: Mapping[str, Any] = self._call(
            "POST", f"/api/v1/alerts/{path_segment(fp)}/unack", body={}
        )
        return result

    def silence(
        self, ms: tuple[matchers.Matcher, ...], for_: str, reason: str
    ) -> Mapping[str, Any]:
        body = {"matchers": [matchers.to_record(m) for m in ms], "for": for_, "reason": reason}
        result: Mapping[str, Any] = self._call("POST", "/api/v1/silences", body=body)
        return result

    def explain(self, rule: str, labels: Mapping[str, str]) -> Mapping[str, Any]:
        params = [("label", f"{k}={v}") for k, v in sorted(labels.items())]
        result: Mapping[str, Any] = self._call(
            "GET", f"/api/v1/explain/{path_segment(rule)}", params=params
        )
        return result

    def alert(self, fp: str) -> Mapping[str, Any]:
        """One alert with its journal history (oldest first)."""
        result: Mapping[str, Any] = self._call("GET", f"/api/v1/alerts/{path_segment(fp)}")
        return result

    def close(self) -> None:
        self.client.close()
