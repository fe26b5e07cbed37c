"""The alertmanager channel against a real Prometheus Alertmanager.

The test starts Debian's `prometheus-alertmanager` on free 127.0.0.1 ports with
clustering off and a webhook receiver pointing at a local Receiver, sends a
firing alert through AlertmanagerChannel and waits for Alertmanager to notify
the receiver, then sends it resolved and waits for the resolved notification.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest

from engine.channels.alertmanager import AlertmanagerChannel
from engine.config.model import Channel as ChannelConfig
from engine.config.model import frozen_map
from engine.notify.base import AlertView, Notification

try:
    from tests.integration.receivers import Receiver, Recorded, free_port
except ImportError:  # pragma: no cover - tests/integration run without its __init__.py
    from receivers import Receiver, Recorded, free_port  # type: ignore[no-redef,import-not-found]

pytestmark = pytest.mark.slow

BINARY = "/usr/bin/prometheus-alertmanager"
CONFIG = """\
global:
  resolve_timeout: 5m
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: {hook}
        send_resolved: true
"""


@dataclass
class Alertmanager:
    url: str
    log: Path


@pytest.fixture(scope="module")
def hook() -> Iterator[Receiver]:
    with Receiver() as rx:
        yield rx


@pytest.fixture(scope="module")
def alertmanager(
    hook: Receiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Alertmanager]:
    binary = shutil.which(BINARY) or shutil.which("alertmanager")
    if binary is None:
        pytest.skip(f"{BINARY} is not installed (Debian package prometheus-alertmanager)")
    tmp = tmp_path_factory.mktemp("alertmanager")
    (tmp / "alertmanager.yml").write_text(CONFIG.format(hook=f"{hook.url}/am-hook"))
    port = free_port()
    log = tmp / "alertmanager.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={tmp / 'alertmanager.yml'}",
                f"--storage.path={tmp / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",  # no gossip: a single instance
                "--log.level=info",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"alertmanager exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"alertmanager not ready: {log.read_text()[-2000:]}")
            time.sleep(0.05)
        yield Alertmanager(url, log)
    finally:
        proc.kill()
        proc.wait(10)


def notification(alert: AlertView) -> Notification:
    return Notification(
        channel="am",
        group_key='{}:{rule="host_cpu_high"}',
        status=alert.status,
        alerts=(alert,),
        key=f"{alert.fingerprint}:{alert.status}",
        title=f"[{alert.severity.upper()}] {alert.annotations['summary']}",
        body="",
    )


def webhook_alerts(reqs: list[Recorded], status: str) -> list[dict[str, object]]:
    out = []
    for r in reqs:
        if r.path == "/am-hook" and r.json()["status"] == status:
            out += [a for a in r.json()["alerts"] if a["status"] == status]
    return out


def test_firing_then_resolved_through_a_real_alertmanager(
    alertmanager: Alertmanager, hook: Receiver
) -> None:
    channel = AlertmanagerChannel.from_config(
        ChannelConfig("am", "alertmanager", frozen_map({"url": alertmanager.url, "timeout": "5s"}))
    )
    started = time.time() - 30
    firing = AlertView(
        fingerprint="fp-am-1",
        rule="host_cpu_high",
        status="firing",
        severity="critical",
        labels={"host": "web-1", "team": "infra"},
        annotations={"summary": "CPU at 93.2% on web-1"},
        value=93.2,
        starts_at=started,
    )

    async def scenario() -> None:
        try:
            await channel.send(notification(firing))
            reqs = await asyncio.to_thread(
                hook.wait_for, lambda rs: bool(webhook_alerts(rs, "firing")), 15
            )
            (got,) = webhook_alerts(reqs, "firing")
            assert got["labels"] == {
                "alertname": "host_cpu_high",
                "severity": "critical",
                "host": "web-1",
                "team": "infra",
            }
            assert got["annotations"] == {"summary": "CPU at 93.2% on web-1", "value": "93.2"}
            assert reqs[-1].json()["receiver"] == "hook"

            resolved = replace(firing, status="resolved", ends_at=time.time() - 1)
            await channel.send(notification(resolved))
            reqs = await asyncio.to_thread(
                hook.wait_for, lambda rs: bool(webhook_alerts(rs, "resolved")), 15
            )
            (gone,) = webhook_alerts(reqs, "resolved")
            assert gone["labels"] == got["labels"]
            assert gone["startsAt"] == got["startsAt"]
        finally:
            await channel.aclose()

    try:
        asyncio.run(scenario())
    except AssertionError:
        print(alertmanager.log.read_text()[-4000:])  # shown by pytest on failure
        raise
