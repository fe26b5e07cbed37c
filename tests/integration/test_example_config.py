"""The shipped example configuration (deploy/vigil.yaml, rules/, channels/) as a
real daemon: it starts clean, with its self-probe of its own API passing."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.integration.daemon import VIGIL

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_example_starts_without_its_self_probe_going_pending(tmp_path: Path) -> None:
    for d in ("rules", "channels", "deploy"):
        shutil.copytree(ROOT / d, tmp_path / d)
    port = _free_port()
    cfg = tmp_path / "deploy" / "vigil.yaml"
    cfg.write_text(cfg.read_text().replace("9595", str(port)))
    with open(tmp_path / "daemon.log", "w") as log:
        proc = subprocess.Popen([VIGIL, "run", "-c", str(cfg)], stdout=log, stderr=log)
    journal = tmp_path / "data" / "alerts.jsonl"
    try:
        deadline = time.monotonic() + 20
        events: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            if journal.exists():
                events = [json.loads(x) for x in journal.read_text().splitlines() if x]
                if any(e["event"] == "started" for e in events):
                    break
            time.sleep(0.1)
        assert any(e["event"] == "started" for e in events), (tmp_path / "daemon.log").read_text()
        time.sleep(1.5)  # the first collections and evaluations
        events = [json.loads(x) for x in journal.read_text().splitlines() if x]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
    self_probe = [e for e in events if e.get("rule") == "self_api_down"]
    assert self_probe == [], self_probe
    assert proc.returncode == 0
