"""17.1: a real `vigil run` keeps the history index beside its journal; the history
endpoints answer across a restart (the index catching up from its position), and
after the index is deleted (rebuilt from the journal), the same."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.daemon import Daemon
from tests.integration.test_notify_e2e import RULES

pytestmark = pytest.mark.slow

TOKEN = "history-viewer-token-5e1a"


def get(d: Daemon, path: str, **params: Any) -> Any:
    """GET with the viewer token, waiting for the API to listen and out a 503 while
    the index catches up."""
    deadline = time.monotonic() + 30
    while True:
        try:
            r = httpx.get(
                d.url + path,
                params=params,
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=10,
            )
        except httpx.ConnectError:  # not listening yet after a start
            assert time.monotonic() < deadline, "the API did not come up"
            time.sleep(0.2)
            continue
        if r.status_code != 503 or time.monotonic() > deadline:
            assert r.status_code == 200, r.text
            return r.json()
        time.sleep(0.2)


def answers(d: Daemon) -> tuple[Any, ...]:
    eps = get(d, "/api/v1/history", rule="queue_deep")["episodes"]
    fp = eps[0]["fingerprint"]
    return (
        [(e["id"], e["start"], e["firing_at"], e["end"], e["end_kind"]) for e in eps],
        get(d, f"/api/v1/alerts/{fp}/timeline")["events"],
        get(d, "/api/v1/history/at", t=eps[0]["firing_at"])["alerts"],
        get(d, "/api/v1/history/counts", by="day", **{"from": "2d"})["buckets"],
    )


def test_history_answers_after_a_restart_and_after_the_index_is_deleted(tmp_path: Path) -> None:
    d = Daemon(tmp_path, RULES, tokens={"viewer": (TOKEN, "viewer")})
    d.set_values({"queue": 50})
    d.start()
    try:
        d.wait_for(lambda evs: "firing" in d.alert_events("queue_deep"), what="firing")
        d.set_values({"queue": 0})
        d.wait_for(lambda evs: "resolved" in d.alert_events("queue_deep"), what="resolved")
        d.set_values({"queue": 70})
        d.wait_for(lambda evs: d.alert_events("queue_deep").count("firing") == 2, what="again")
        live = get(d, "/api/v1/history", rule="queue_deep")["episodes"]
        assert [e["end_kind"] for e in live] == [None, "resolved"]
        assert d.stop() == 0
        assert (tmp_path / "data" / "history" / "index.sqlite3").exists()

        d.start()
        after_restart = answers(d)
        eps, events, at, buckets = after_restart
        assert [e[4] for e in eps] == [None, "resolved"]  # newest first, as before the restart
        assert [e[:4] for e in eps] == [
            (e["id"], e["start"], e["firing_at"], e["end"]) for e in live
        ]
        journal = [e for e in d.events() if e.get("alert") == live[0]["fingerprint"]]
        assert [(e["seq"], e["event"]) for e in journal] == [
            (e["seq"], e["event"]) for e in events if e["event"] != "notified"
        ]
        assert [a["state"] for a in at] == ["firing"]
        assert sum(b["started"] for b in buckets) == 2
        assert "rebuilding" not in d.log()  # caught up from its position, not rebuilt
        assert d.stop() == 0

        shutil.rmtree(tmp_path / "data" / "history")
        d.start()
        assert answers(d) == after_restart
    finally:
        d.stop()
