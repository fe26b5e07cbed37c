"""Intentional difference (13.A3, README "Where vigil differs ... on purpose"): a
collector outage freezes vigil's alerts, where Prometheus resolves them.

Debian's Prometheus scrapes a local exporter and evaluates `outage_v > 5`; a vigil
daemon evaluates `app.outage > 5` over its `file` collector. Both fire. Then the
source goes away for both: the exporter stops answering (Prometheus marks the
series stale and the alert resolves) and vigil's file is moved away (the collector
is down). Prometheus resolves; vigil keeps the alert firing, marked stale, and
journals no resolve; when the file is back the alert is still the same episode.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.differential.harness import Exporter, binary, free_port, run_binary
from tests.differential.test_diff_prometheus import PROMETHEUS_YML
from tests.integration.daemon import Daemon

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

PROM_RULES = """\
groups:
  - name: outage
    interval: 1s
    rules:
      - alert: outage
        expr: outage_v > 5
"""

VIGIL_RULES = """\
group: outage
interval: 1s
rules:
  - id: outage
    expr: app.outage > 5
    severity: warning
"""

TOKEN = "diff-outage-viewer"


def until(cond: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_collector_outage_freezes_in_vigil_and_resolves_in_prometheus(tmp_path: Path) -> None:
    prometheus = binary("prometheus")
    exporter = Exporter().__enter__()
    exporter_up = True
    exporter.set({"outage_v": {(): 7.0}})
    (tmp_path / "rules.yml").write_text(PROM_RULES)
    (tmp_path / "prometheus.yml").write_text(
        PROMETHEUS_YML.format(
            scrape="200ms", interval="1000ms", rules=tmp_path / "rules.yml", port=exporter.port
        )
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [
        prometheus,
        f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    d = Daemon(tmp_path / "vigil", VIGIL_RULES, tokens={"dash": (TOKEN, "viewer")})
    d.set_values({"outage": 7})
    d.start()

    def prom_states() -> list[str]:
        alerts = httpx.get(f"{url}/api/v1/alerts", timeout=2).json()["data"]["alerts"]
        return [a["state"] for a in alerts if a["labels"].get("alertname") == "outage"]

    def vigil_alert() -> dict[str, object]:
        r = httpx.get(f"{d.url}/api/v1/alerts", headers={"Authorization": f"Bearer {TOKEN}"})
        (a,) = [a for a in r.json()["alerts"] if a["rule"] == "outage"]
        return a  # type: ignore[no-any-return]

    try:
        with run_binary(argv, tmp_path / "prometheus.log", f"{url}/-/ready"):
            until(lambda: prom_states() == ["firing"], "Prometheus firing")
            until(lambda: d.alert_events("outage") == ["firing"], "vigil firing")

            exporter.__exit__()  # the source is gone for both
            exporter_up = False
            os.rename(d.metrics, d.metrics.with_suffix(".away"))

            until(lambda: prom_states() == [], "Prometheus resolving the alert")
            until(lambda: "stale" in d.alert_events("outage"), "vigil marking it stale")
            time.sleep(3.0)  # three more evaluations in each
            assert prom_states() == []
            a = vigil_alert()
            assert (a["state"], a["stale"]) == ("firing", True), a
            assert d.alert_events("outage") == ["firing", "stale"]

            os.rename(d.metrics.with_suffix(".away"), d.metrics)
            until(lambda: "stale_end" in d.alert_events("outage"), "vigil's collector back")
            assert d.alert_events("outage") == ["firing", "stale", "stale_end"]  # one episode
    finally:
        if exporter_up:
            exporter.__exit__()
        assert d.stop() == 0
