"""Online `vigil explain` reads the running daemon's notification pipeline: a real
daemon whose channel is at its rate limit holds the newer alerts' notifications,
and `vigil explain RULE --url` names the limit, what it holds and when the digest
goes. Before, online explain had neither the pipeline nor the limiter's state and
said nothing of the limit."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.daemon import VIGIL, Daemon
from tests.integration.test_reload import TOKENS, VIEWER, wait_ready

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

RULES = """\
group: app
interval: 100ms
rules:
  - id: item_hot
    each: app.items
    expr: it.v > 0
"""
CHANNELS = """\
channels:
  - {name: archive, type: file, path: notifications.jsonl, rate_limit: {max: 1, per: 1h}}
routes:
  - channels: [archive]
    group_by: ['...']
    group_wait: 0s
"""


def test_online_explain_names_the_rate_limit_and_when_the_digest_goes(tmp_path: Path) -> None:
    d = Daemon(tmp_path, RULES, CHANNELS, tokens=TOKENS)
    d.set_values({"items": [{"labels": {"item": f"i{i}"}, "v": 1} for i in range(3)]})
    d.start()
    try:
        wait_ready(d)
        sent = tmp_path / "channels" / "notifications.jsonl"
        deadline = time.monotonic() + 30
        while not (sent.exists() and sent.read_text().strip()):
            assert time.monotonic() < deadline, "nothing was sent"
            time.sleep(0.1)
        d.wait_for(lambda evs: [e["event"] for e in evs].count("firing") >= 3, what="firing")
        time.sleep(0.5)  # the other two reach the limiter, which holds them
        told = {a["labels"]["item"] for line in sent.read_text().splitlines()
                for a in json.loads(line)["alerts"]}  # fmt: skip
        assert len(told) == 1, told  # one per hour: the first only
        held = sorted({"i0", "i1", "i2"} - told)[0]
        out = subprocess.run(
            [VIGIL, "explain", "item_hot", "--url", d.url, "--label", f"item={held}",
             "--format", "json"],
            env={**os.environ, "VIGIL_TOKEN": VIEWER}, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        inst = json.loads(out.stdout)["instances"][0]
        reasons = {r["code"]: r for r in inst["delivery"]["withheld"]}
        rl = reasons["rate_limited"]
        assert rl["channel"] == "archive" and rl["data"]["held"] == 2, rl
        assert rl["next_at"] is not None and "digest" in rl["text"]
        text = subprocess.run(
            [VIGIL, "explain", "item_hot", "--url", d.url, "--label", f"item={held}"],
            env={**os.environ, "VIGIL_TOKEN": VIEWER}, capture_output=True, text=True, timeout=60,
        ).stdout  # fmt: skip
        assert "rate limit" in text and "digest" in text, text
        assert re.search(r"digest at \d{4}-\d\d-\d\dT", text), text  # when it goes
    finally:
        d.stop()
    assert "Traceback" not in d.log()
