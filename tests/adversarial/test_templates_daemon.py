"""14.E.16 end to end: a real `vigil run` whose slack channel templates are bombs
(`'{:>{}}'.format('x', 300000000)` took +300 MB, `lipsum(300000)` 16 s per
render) sends the fallback message to a real receiver, and its event loop keeps
answering /health within 1 s throughout. The daemon runs under `prlimit --as`,
so a regression fails here instead of exhausting the machine.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.adversarial.sandbox_bounded import CappedDaemon, health_time, wait_for_api
from tests.integration.receivers import Receiver

pytestmark = pytest.mark.slow

RULES = """
group: app
interval: 100ms
rules:
  - id: queue_deep
    expr: app.queue > fixed.limit
    severity: critical
    labels: {team: infra}
    annotations:
      summary: "{{ '%*s' % (300000000, 'x') }}"
      description: "{{ labels.update({'team': 'changed'}) }}"
"""

CHANNELS = """
channels:
  - name: chat
    type: slack
    url: {url}/slack
    templates:
      title: "{{{{ lipsum(300000) }}}}"
      body: "{{{{ '{{:>{{}}}}'.format('x', 300000000) }}}}"
routes:
  - channels: [chat]
    group_by: [rule]
    group_wait: 0s
    group_interval: 200ms
    repeat_interval: 1h
"""


def test_bomb_templates_send_the_fallback_and_the_loop_stays_responsive(tmp_path: Path) -> None:
    with Receiver() as rx:
        d = CappedDaemon(tmp_path, RULES, CHANNELS.format(url=rx.url))
        d.set_values({"queue": 1})
        d.start()
        slowest = 0.0
        try:
            wait_for_api(d.url)
            d.set_values({"queue": 50})
            start = time.monotonic()
            while time.monotonic() < start + 30 and not [
                r for r in rx.requests if r.path == "/slack"
            ]:
                slowest = max(slowest, health_time(d.url))
                time.sleep(0.05)
            took = time.monotonic() - start  # lipsum(300000) alone took 16 s
            for _ in range(10):  # and after it: still answering
                slowest = max(slowest, health_time(d.url))
                time.sleep(0.05)
            firing = [e for e in d.events() if e.get("event") == "firing"]
        finally:
            assert d.stop() == 0
        sent = [r for r in rx.requests if r.path == "/slack"]
    assert sent, d.log()[-3000:]
    msg = sent[0].json()
    assert msg["text"] == "[FIRING:1] queue_deep"
    blocks = str(msg)
    assert "the notification template failed; this is the fallback text" in blocks
    assert "FIRING queue_deep [critical]" in blocks and "team=infra" in blocks
    assert slowest < 1.0, f"/health took {slowest:.2f} s"
    assert took < 5.0, f"the notification took {took:.1f} s"
    # the annotations failed on their own, and the mutation changed nothing
    assert firing, d.events()[-5:]
    ann = firing[0].get("annotations") or firing[0].get("alert", {}).get("annotations", {})
    assert str(ann.get("summary", "")).startswith("<error expanding template: SecurityError")
    assert str(ann.get("description", "")).startswith("<error expanding template: SecurityError")
