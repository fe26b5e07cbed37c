"""15: GET /api/v1/alerts/{fp} fills the alert's `history` without reading the
journal on the event loop. A real daemon over a journal of 200,000 events: while the
alert is asked for again and again (its history from the journal's tail until the
history index has caught up, then from the index), /health keeps answering promptly.
Before, each call read the whole journal in the loop: seconds of silence each."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from engine.config.model import LogConfig
from engine.journal.journal import Journal
from engine.rules.state import fingerprint
from tests.integration.daemon import Daemon
from tests.integration.test_loop_budget import HealthPoller
from tests.integration.test_notify_e2e import RULES
from tests.integration.test_reload import TOKENS, VIEWER, wait_ready

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

NOISE = 200_000  # other alerts' events, after the alert's own old episodes
HEALTH_BOUND = 0.1  # seconds; one whole-journal read in the loop took seconds
FP = fingerprint("queue_deep", {"team": "infra"})


def write_journal(data_dir: Path) -> None:
    """Three old episodes of queue_deep's alert, then NOISE events of other alerts
    (each pending, then resolved): the old episodes are far beyond the journal's tail."""
    j = Journal(data_dir, LogConfig(fsync="never"))
    j.open()
    own = {"alert": FP, "rule": "queue_deep", "labels": {"team": "infra"}, "value": 50}
    for _ in range(3):
        j.append_sync([{"event": kind, **own} for kind in ("pending", "firing", "resolved")])  # type: ignore[misc]
    batch = []
    for i in range(NOISE // 2):
        fp = fingerprint("noise", {"n": str(i % 500)})
        labels = {"n": str(i % 500)}
        for kind in ("pending", "resolved"):
            batch.append(
                {"event": kind, "alert": fp, "rule": "noise", "labels": labels, "value": 1}
            )
        if len(batch) >= 2000:
            j.append_sync(batch)  # type: ignore[arg-type]
            batch = []
    j.append_sync(batch)  # type: ignore[arg-type]
    j.close_sync()


def test_alert_history_never_blocks_the_loop(tmp_path: Path) -> None:
    write_journal(tmp_path / "data")
    d = Daemon(tmp_path, RULES, tokens=TOKENS)
    d.set_values({"queue": 50})
    d.start(wait=False)
    poller = HealthPoller(d.url)
    sources: list[str] = []
    calls: list[float] = []
    try:
        wait_ready(d, timeout=120)
        auth = {"Authorization": f"Bearer {VIEWER}"}
        with httpx.Client(base_url=d.url, headers=auth, timeout=30, trust_env=False) as c:
            deadline = time.monotonic() + 60
            while c.get(f"/api/v1/alerts/{FP}").status_code != 200:  # firing again, now
                assert time.monotonic() < deadline, "queue_deep did not fire"
                time.sleep(0.1)
            poller.start()
            time.sleep(0.3)
            deadline = time.monotonic() + 120
            while (sources.count("index") < 5 or len(calls) < 20) and time.monotonic() < deadline:
                t = time.monotonic()
                r = c.get(f"/api/v1/alerts/{FP}")
                calls.append(time.monotonic() - t)
                assert r.status_code == 200, r.text
                a = r.json()
                sources.append(a["history_source"])
                kinds = [e["event"] for e in a["history"]]
                assert all(e.get("alert") == FP or FP in e.get("alerts", ()) for e in a["history"])
                if a["history_source"] == "index":
                    # the old episodes too: the index holds the whole journal
                    assert kinds[:9] == ["pending", "firing", "resolved"] * 3, kinds
                    assert kinds[-1] == "firing" and len(kinds) <= 100
                else:
                    # the journal's last lines only: today's episode, not the old ones
                    assert a["history_source"] == "journal_tail", a["history_source"]
                    assert kinds[-1] == "firing" and "resolved" not in kinds, kinds
    finally:
        poller.done.set()
        if poller.is_alive():
            poller.join(15)
        if d.proc is not None and d.proc.poll() is None:
            d.stop()
    took = poller.took
    assert "index" in sources, sources
    assert len(took) >= 20 and None not in took, took
    worst = max(t for t in took if t is not None)
    print(
        f"{len(took)} /health answers, slowest {worst * 1e3:.0f} ms; {len(calls)} alert reads "
        f"({sources.count('journal_tail')} from the journal's tail), slowest {max(calls):.2f} s"
    )
    assert worst < HEALTH_BOUND
    assert "Traceback" not in d.log()
