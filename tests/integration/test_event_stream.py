"""GET /api/v1/events against `vigil run` as a real process: journaled events
arrive as server-sent events as they happen (a firing, an acknowledgement made
by another client), by bearer token or by a single-use ticket, and a stream
that is open when the daemon stops ends at once instead of holding the
shutdown."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.daemon import Daemon

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

VIEWER, OPERATOR = "stream-viewer-token-51c0", "stream-operator-token-9a2e"
RULES = """
group: app
interval: 100ms
rules:
  - id: queue_deep
    expr: app.queue > fixed.limit
    severity: critical
    labels: {team: infra}
"""


class Reader(threading.Thread):
    """Reads one stream in the background: its status, headers and events."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(daemon=True)
        self.url, self.headers = url, headers or {}
        self.status = 0
        self.content_type = ""
        self.events: list[dict[str, Any]] = []
        self.ids: list[str] = []
        self.error = ""
        self.opened = threading.Event()
        self.ended = threading.Event()

    def run(self) -> None:
        try:
            with (
                httpx.Client(timeout=httpx.Timeout(5.0, read=60.0)) as c,
                c.stream("GET", self.url, headers=self.headers) as r,
            ):
                self.status = r.status_code
                self.content_type = r.headers.get("content-type", "")
                self.opened.set()
                for line in r.iter_lines():
                    if line.startswith("data: "):
                        self.events.append(json.loads(line[6:]))
                    elif line.startswith("id: "):
                        self.ids.append(line[4:])
        except httpx.HTTPError as e:
            self.error = repr(e)
        finally:
            self.opened.set()
            self.ended.set()

    def wait_for(self, what: str, cond: Any, timeout: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for ev in list(self.events):
                if cond(ev):
                    return ev
            time.sleep(0.05)
        raise AssertionError(f"no {what} on the stream: {self.events[-10:]}")


def test_events_stream_live_by_token_and_ticket_and_end_at_stop(tmp_path: Path) -> None:
    d = Daemon(
        tmp_path, RULES, tokens={"watcher": (VIEWER, "viewer"), "oncall": (OPERATOR, "operator")}
    )
    d.set_values({"queue": 1})
    d.start()
    stopped = False
    try:
        deadline = time.monotonic() + 15  # the journal says started before the API listens
        while time.monotonic() < deadline:
            try:
                if httpx.get(d.url + "/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        by_token = Reader(d.url + "/api/v1/events", {"Authorization": f"Bearer {VIEWER}"})
        by_token.start()
        assert by_token.opened.wait(10)
        assert by_token.status == 200, by_token.error + d.log()[-2000:]
        assert by_token.content_type.startswith("text/event-stream")

        # a browser's way: a ticket, usable once
        r = httpx.post(
            d.url + "/api/v1/events/ticket", headers={"Authorization": f"Bearer {VIEWER}"}
        )
        assert r.status_code == 201, r.text
        ticket = r.json()["ticket"]
        by_ticket = Reader(d.url + f"/api/v1/events?ticket={ticket}")
        by_ticket.start()
        assert by_ticket.opened.wait(10) and by_ticket.status == 200
        again = httpx.get(d.url + f"/api/v1/events?ticket={ticket}", timeout=5)
        assert again.status_code == 401 and "ticket unknown" in again.json()["error"]

        # a firing appears on both, as a summary
        d.set_values({"queue": 50})
        for reader in (by_token, by_ticket):
            ev = reader.wait_for(
                "firing", lambda e: e["event"] == "firing" and e.get("rule") == "queue_deep"
            )
            assert ev["severity"] == "critical" and isinstance(ev["seq"], int)
            assert set(ev) <= {"event", "seq", "ts", "alert", "rule", "severity"}
            assert str(ev["seq"]) in reader.ids  # `id:` lets a client tell where it was

        # an acknowledgement by another client is seen by the viewer
        fp = ev["alert"]
        r = httpx.post(
            d.url + f"/api/v1/alerts/{fp}/ack",
            json={"note": "on it"},
            headers={"Authorization": f"Bearer {OPERATOR}"},
        )
        assert r.status_code == 200, r.text
        acked = by_token.wait_for("ack", lambda e: e["event"] == "acknowledged")
        assert acked["alert"] == fp and "note" not in acked  # details stay behind the API

        # open streams end when the daemon stops, and do not hold its shutdown
        t0 = time.monotonic()
        assert d.stop() == 0
        stopped = True
        assert time.monotonic() - t0 < 5
        assert by_token.ended.wait(5) and by_ticket.ended.wait(5)
    finally:
        if not stopped:
            d.stop()
