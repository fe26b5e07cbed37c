"""13.A.4, against the real Alertmanager: an inhibit rule whose source and target
sides both match two alerts. Alertmanager (Debian's 0.25, started here on
loopback with a recording webhook receiver) notifies both, and a third alert that
matches only the source side mutes a target-only one; vigil's pipeline, given the
same rule and alerts, must notify the same alerts.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from engine.common.matchers import parse
from engine.config.model import Channel, Config, Inhibit, Route
from engine.notify.pipeline import Pipeline
from tests.integration.receivers import Receiver, free_port
from tests.unit.notify.test_routing_semantics import T0, fire, sent

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
CONFIG = """\
route:
  receiver: hook
  group_by: ['...']
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
inhibit_rules:
  - source_matchers: ['team="db"']
    target_matchers: ['team="db"']
    equal: [host]
  - source_matchers: ['alertname="host_down"']
    target_matchers: ['alertname="cpu_high"']
    equal: [host]
receivers:
  - name: hook
    webhook_configs: [{{url: "{hook}", send_resolved: false}}]
"""
ALERTS = {  # name -> labels (alertname is vigil's rule)
    "disk_full": {"team": "db", "host": "h1"},
    "replica_lag": {"team": "db", "host": "h1"},
    "host_down": {"host": "h2"},
    "cpu_high": {"host": "h2"},
}


@pytest.mark.skipif(BINARY is None, reason="prometheus-alertmanager is not installed")
def test_two_sided_inhibition_agrees_with_alertmanager(tmp_path: Path) -> None:
    assert BINARY is not None
    with Receiver() as hook:
        (tmp_path / "am.yml").write_text(CONFIG.format(hook=f"{hook.url}/hook"))
        port = free_port()
        log = tmp_path / "am.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [
                    BINARY,
                    f"--config.file={tmp_path / 'am.yml'}",
                    f"--storage.path={tmp_path / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--cluster.listen-address=",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
            now = datetime.now(UTC)

            def post(names: list[str]) -> None:
                body = [
                    {
                        "labels": {"alertname": name, **ALERTS[name]},
                        "startsAt": now.isoformat(),
                        "endsAt": datetime.fromtimestamp(now.timestamp() + 600, UTC).isoformat(),
                    }
                    for name in names
                ]
                r = httpx.post(f"{url}/api/v2/alerts", json=body, timeout=5)
                assert r.status_code == 200

            def told() -> list[str]:
                return sorted(
                    {
                        a["labels"]["alertname"]
                        for r in hook.requests
                        if r.path == "/hook"
                        for a in r.json()["alerts"]
                    }
                )

            # sources first: Alertmanager's inhibitor learns of alerts asynchronously,
            # so a target posted with its source may go out before the source counts
            post(["disk_full", "replica_lag", "host_down"])
            hook.wait_for(lambda _: len(told()) == 3, 30)
            post(["cpu_high"])
            time.sleep(3)  # group_interval 1s: had it not been inhibited, it was sent
            am_sent = told()
        finally:
            proc.kill()
            proc.wait(10)

    rules = (
        Inhibit((parse('team="db"'),), (parse('team="db"'),), ("host",)),
        Inhibit((parse('rule="host_down"'),), (parse('rule="cpu_high"'),), ("host",)),
    )
    p = Pipeline(
        Config(
            routes=(Route((), ("hook",), group_by=("...",)),),
            channels=(Channel("hook", "webhook"),),
            inhibits=rules,
        ),
        {"hook": "webhook"},
    )
    for name, labels in ALERTS.items():
        p.ingest(fire(name, rule=name, **labels), T0)
    vigil_sent = sorted(fp for _, fp in sent(p, T0))
    assert am_sent == ["disk_full", "host_down", "replica_lag"]  # cpu_high inhibited
    assert vigil_sent == am_sent
