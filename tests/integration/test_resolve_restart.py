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
from tests.integration.receivers import Receiver, Recorded
from tests.integration.test_marks_daemon import TOKEN, vigil
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


# two rules, one group (team): an acknowledged alert is left out of the group's
# later notifications, which this webhook gets
TWO_RULES = (
    RULES
    + """
  - id: disk_full
    expr: app.disk > fixed.limit
    severity: critical
    labels: {team: infra}
"""
)

BY_TEAM_INTERVAL = 1.0
BY_TEAM = CHANNELS.replace("group_by: [rule]", "group_by: [team]").replace(
    "group_interval: 4s", f"group_interval: {BY_TEAM_INTERVAL:g}s"
)


def told(reqs: list[Recorded]) -> list[list[tuple[str, str]]]:
    """Per request, the (rule, status) of its alerts."""
    return [[(a["rule"], a["status"]) for a in r.json()["alerts"]] for r in reqs]


def test_an_acknowledged_alert_left_out_gets_its_resolve_after_a_restart(
    tmp_path: Path,
) -> None:
    """fire → told → `vigil ack` → another alert of the group is told (without the
    acknowledged one) → SIGTERM, start → resolve: the receiver, which still
    believes it fires, gets its resolve exactly once."""
    with Receiver() as rx:
        d = Daemon(
            tmp_path, TWO_RULES, BY_TEAM.format(url=rx.url), tokens={"ops": (TOKEN, "operator")}
        )
        d.set_values({"queue": 50, "disk": 0})
        d.start()
        try:
            rx.wait_for(lambda rs: len(rs) >= 1, 15)
            fp = next(e["alert"] for e in d.events() if e["event"] == "firing")
            vigil(d, "ack", fp, "--note", "on it", "--by", "alice")
            d.wait_for(lambda evs: any(e["event"] == "acknowledged" for e in evs), what="ack")
            d.set_values({"queue": 50, "disk": 50})
            rx.wait_for(lambda rs: len(rs) >= 2, 15)
            d.wait_for(lambda evs: len(notified(evs, "firing")) >= 2, what="second notified")
            assert d.stop(signal.SIGTERM) == 0
            d.start()
            d.set_values({"queue": 0, "disk": 50})
            d.wait_for(lambda evs: "resolved" in d.alert_events("queue_deep"), what="resolved")
            rx.wait_for(lambda rs: len(rs) >= 3, 20)
            time.sleep(3 * BY_TEAM_INTERVAL + 1)  # further group intervals: nothing more
        finally:
            assert d.stop() == 0
        reqs = alert_requests(rx)

    assert told(reqs) == [
        [("queue_deep", "firing")],
        [("disk_full", "firing")],  # the acknowledged alert left out
        [("disk_full", "firing"), ("queue_deep", "resolved")],
    ], told(reqs)
    assert len({r.headers["idempotency-key"] for r in reqs}) == 3
