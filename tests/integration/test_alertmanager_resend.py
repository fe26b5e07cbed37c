"""13.A.2: a real `vigil run` with an `alertmanager` channel against Debian's real
`prometheus-alertmanager`, whose webhook receiver records what it is told.

Prometheus keeps an alert active in Alertmanager by re-sending it (resend_delay)
with an endsAt a few re-sends ahead. vigil once posted endsAt = now + 5m once and
never again, so Alertmanager resolved alerts that still fired. With short
settings (resolve_timeout 3s: re-sent every 0.75s) the alert fires for 4 horizons:
the receiver must get no resolve until vigil resolves it, then exactly that one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.daemon import Daemon
from tests.integration.receivers import Receiver, Recorded
from tests.integration.test_alertmanager import Alertmanager, webhook_alerts
from tests.integration.test_alertmanager import alertmanager as alertmanager  # fixture
from tests.integration.test_alertmanager import hook as hook  # fixture
from tests.integration.test_reload import wait_event, wait_ready

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

HORIZON = 3.0  # resolve_timeout: endsAt this far ahead of each send
RULES = """\
group: app
interval: 200ms
rules:
  - id: am_resend_probe
    expr: app.queue > fixed.limit
    severity: critical
    labels: {team: infra}
"""
CHANNELS = """\
channels:
  - {{name: am, type: alertmanager, url: "{url}", resolve_timeout: {horizon}s, timeout: 2s}}
routes:
  - channels: [am]
"""


def probe(reqs: list[Recorded], status: str) -> list[dict[str, object]]:
    return [
        a
        for a in webhook_alerts(reqs, status)
        if a["labels"].get("alertname") == "am_resend_probe"  # type: ignore[union-attr]
    ]


def am_active(am: Alertmanager) -> list[dict[str, object]]:
    r = httpx.get(f"{am.url}/api/v2/alerts", params={"filter": "alertname=am_resend_probe"})
    return [a for a in r.json() if a["status"]["state"] == "active"]


@pytest.fixture
def daemon(tmp_path: Path, alertmanager: Alertmanager) -> Iterator[Daemon]:
    d = Daemon(tmp_path, RULES, CHANNELS.format(url=alertmanager.url, horizon=int(HORIZON)))
    try:
        yield d
    finally:
        if d.proc is not None and d.proc.poll() is None:
            d.stop()


def test_an_alert_firing_past_endsat_stays_active_until_vigil_resolves_it(
    daemon: Daemon, alertmanager: Alertmanager, hook: Receiver
) -> None:
    daemon.set_values({"queue": 50})
    daemon.start()
    wait_ready(daemon)
    wait_event(daemon, 0, "firing", rule="am_resend_probe")
    hook.wait_for(lambda rs: bool(probe(rs, "firing")), 15)
    fired = time.monotonic()

    # four horizons of firing: Alertmanager would have ended it after one
    while time.monotonic() - fired < 4 * HORIZON:
        assert probe(hook.requests, "resolved") == [], alertmanager.log.read_text()[-3000:]
        time.sleep(0.2)
    assert len(am_active(alertmanager)) == 1
    sends = [e for e in daemon.events() if e["event"] == "notified" and e["channel"] == "am"]
    assert len(sends) >= 4 * HORIZON / (HORIZON / 4) - 3  # re-sent every resend_delay

    daemon.set_values({"queue": 0})
    wait_event(daemon, 0, "resolved", rule="am_resend_probe")
    reqs = hook.wait_for(lambda rs: bool(probe(rs, "resolved")), 15)
    (gone,) = probe(reqs, "resolved")
    (first, *_) = probe(reqs, "firing")
    assert gone["startsAt"] == first["startsAt"]  # the same alert, ended by vigil's endsAt
    assert am_active(alertmanager) == []
    assert daemon.stop() == 0
    assert "Traceback" not in daemon.log()


def test_re_sends_resume_after_a_restart(
    tmp_path: Path, alertmanager: Alertmanager, hook: Receiver
) -> None:
    """The pipeline schedules re-sends from the journal's `notified` times, so a
    restart shorter than the horizon never lets Alertmanager end a firing alert."""
    horizon = 10  # re-sent every 2.5s; a restart under load takes a few seconds
    rules = RULES.replace("am_resend_probe", "am_restart_probe")
    d = Daemon(tmp_path, rules, CHANNELS.format(url=alertmanager.url, horizon=horizon))
    name = "am_restart_probe"

    def told(status: str) -> list[dict[str, object]]:
        return [
            a
            for a in webhook_alerts(hook.requests, status)
            if a["labels"].get("alertname") == name  # type: ignore[union-attr]
        ]

    d.set_values({"queue": 50})
    try:
        d.start()
        wait_ready(d)
        hook.wait_for(lambda _: bool(told("firing")), 15)
        t = time.monotonic()
        assert d.stop() == 0
        d.start()
        wait_ready(d)
        restart = time.monotonic() - t
        until = time.monotonic() + 1.5 * horizon  # past the endsAt of the last send before
        while time.monotonic() < until:
            assert told("resolved") == [], f"restart took {restart:.1f}s"
            time.sleep(0.2)
        r = httpx.get(f"{alertmanager.url}/api/v2/alerts", params={"filter": f"alertname={name}"})
        assert [a["status"]["state"] for a in r.json()] == ["active"]
    finally:
        if d.proc is not None and d.proc.poll() is None:
            d.stop()
    assert "Traceback" not in d.log()
