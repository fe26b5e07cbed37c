"""13.16: vigil_notifications_total counts each delivery once, on the /metrics of
a real daemon that delivered to a real webhook receiver (the daemon's status loop
syncs the channels' gauges every 5 s: the count is read after such a sync)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.daemon import Daemon
from tests.integration.receivers import Receiver
from tests.integration.test_notify_e2e import RULES, alert_requests, channels, notified

pytestmark = pytest.mark.slow

SERIES = 'vigil_notifications_total{channel="hook",outcome="sent"}'
TOKEN = "metrics-reader-token-3b7e"


def sent_total(d: Daemon) -> float:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=d.url, headers=auth, timeout=10, trust_env=False) as c:
        text = c.get("/metrics").text
    m = re.search(rf"^{re.escape(SERIES)} (\S+)$", text, re.MULTILINE)
    assert m, f"{SERIES} not in /metrics:\n{text[-2000:]}"
    return float(m.group(1))


def test_each_delivery_counts_once_on_metrics(tmp_path: Path) -> None:
    with Receiver() as rx:
        d = Daemon(tmp_path, RULES, channels(rx), tokens={"prom": (TOKEN, "viewer")})
        d.set_values({"queue": 50})
        d.start()
        try:
            rx.wait_for(lambda rs: len(rs) >= 1, 15)
            d.wait_for(lambda evs: notified(evs, "firing"), what="notified firing")
            time.sleep(6.5)  # past one status-loop sync of the channels (every 5 s)
            assert len(alert_requests(rx)) == 1
            assert sent_total(d) == 1.0
            d.set_values({"queue": 0})
            d.wait_for(lambda evs: notified(evs, "resolved"), what="notified resolved")
            time.sleep(5.5)
            assert len(alert_requests(rx)) == 2
            assert sent_total(d) == 2.0
        finally:
            assert d.stop() == 0
