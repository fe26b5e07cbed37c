"""13.A1: a resolve still waiting for its group's group_interval when the daemon
stops (SIGTERM, as every `systemctl restart`, or kill -9) is sent by the next
start, exactly once, at the time it was due: a real `vigil run`, a real webhook
receiver."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.integration.daemon import Daemon
from tests.integration.receivers import Receiver
from tests.integration.test_notify_e2e import RULES, alert_requests, notified, statuses

pytestmark = pytest.mark.slow

GROUP_INTERVAL = 4.0  # long enough to stop the daemon inside it, even on a loaded machine

CHANNELS = """
channels:
  - name: hook
    type: webhook
    url: {url}/hook
routes:
  - channels: [hook]
    group_by: [rule]
    group_wait: 0s
    group_interval: 4s
    repeat_interval: 1h
"""


@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_resolve_waiting_for_group_interval_survives_a_restart(tmp_path: Path, how: str) -> None:
    with Receiver() as rx:
        d = Daemon(tmp_path, RULES, CHANNELS.format(url=rx.url))
        d.set_values({"queue": 50})
        d.start()
        try:
            rx.wait_for(lambda rs: len(rs) >= 1, 15)
            d.wait_for(lambda evs: notified(evs, "firing"), what="notified firing")
            told = time.monotonic()
            d.set_values({"queue": 0})
            d.wait_for(lambda evs: "resolved" in d.alert_events("queue_deep"), what="resolved")
            # stopped while the resolve waits for group_interval
            if how == "kill9":
                d.kill9()
            else:
                assert d.stop(signal.SIGTERM) == 0
            assert time.monotonic() - told < GROUP_INTERVAL, "too slow to test: stop came late"
            assert statuses(alert_requests(rx)) == ["firing"]
            d.start()
            rx.wait_for(lambda rs: len(rs) >= 2, 20)
            d.wait_for(lambda evs: notified(evs, "resolved"), what="notified resolved")
            time.sleep(GROUP_INTERVAL + 1)  # a further group_interval: nothing more
        finally:
            assert d.stop() == 0
        reqs = alert_requests(rx)

    assert statuses(reqs) == ["firing", "resolved"], statuses(reqs)
    keys = Counter(r.headers["idempotency-key"] for r in reqs)
    assert len(keys) == 2
    fa, ra = (r.json()["alerts"][0] for r in reqs)
    assert fa["fingerprint"] == ra["fingerprint"] and ra["status"] == "resolved"
    assert ra["ends_at"] is not None
    assert d.alert_events("queue_deep") == ["firing", "resolved"]
