"""`vigil test` predicts what the real daemon does.

The same rules run twice: in `vigil test`'s simulation (engine.ruletest.ruletest.predict)
and in a real `vigil run` process whose `file` collector is fed the test's series
on the real clock, one step every 200 ms. The journal's transitions must be the
same, per alert, in the same order, and at the predicted times: every transition
is late by about the same lag (the collector's and the group's phase), and no
transition's lag differs from the others' by more than one interval.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from engine.journal.format import parse_ts
from engine.ruletest import ruletest
from tests.integration.daemon import Daemon

pytestmark = pytest.mark.slow

INTERVAL = 0.2

RULES = """
group: replay
interval: 200ms
rules:
  - id: queue_deep
    expr: app.queue > fixed.limit
    for: 1s
    severity: critical
    annotations: {summary: "queue at {{ value }}"}
  - id: errors_burst
    expr: app.errors > 5
    consecutive: 3
  - id: latency_high
    expr: app.latency > 100
    keep_firing_for: 500ms
  - id: disk_full
    each: app.disks
    expr: it.percent > 90
    for: 400ms
  - id: feed_stale
    expr: app.feed < 1
    no_data: alert
    for: 600ms
"""

# Every phase lasts several steps, so that a value the daemon happens to see one
# tick early or late shifts a transition by a tick but never changes the sequence.
TEST = """
rule_files: [../r.yaml]
evaluation_interval: 200ms
collectors: {fixed: {limit: 10}}
tests:
  - name: replayed against the daemon
    series:
      app.queue: "1x4 50x9 2x30"          # 50 from 1.0s to 2.8s
      app.errors: "0x19 9x7 0x17"         # 9 from 4.0s to 5.4s
      app.latency: "10x9 500x4 10x30"     # 500 from 2.0s to 2.8s
      app.feed: "5x34 _x5 5x4"            # missing from 7.0s to 7.8s
      app.disks:
        - {labels: {mountpoint: /}, percent: "50x29 95x8 50x6"}   # 95 from 6.0s to 7.6s
        - {labels: {mountpoint: /var}, percent: "50x44"}
    alerts:
      - at: 1.8s
        expect: [{rule: queue_deep, state: pending, value: 50}]
      - at: 2s
        expect:
          - {rule: queue_deep, state: firing, annotations: {summary: queue at 50}}
          - {rule: latency_high, state: firing}
      - at: 3.2s
        expect: [{rule: latency_high, state: firing, value: 10}]
      - at: 4.4s
        expect: [{rule: errors_burst, state: firing}]
      - at: 6.4s
        expect: [{rule: disk_full, state: firing, labels: {mountpoint: /}}]
      - at: 7.6s
        expect:
          - {rule: feed_stale, state: firing, no_data: true}
          - {rule: disk_full, state: firing, labels: {mountpoint: /}}
      - at: 8.8s
        expect: []
"""


def by_alert(events: list[tuple[float, str, str, dict[str, str]]]) -> dict[Any, list[Any]]:
    out: dict[Any, list[Any]] = defaultdict(list)
    for at, rule, kind, labels in events:
        out[(rule, tuple(sorted(labels.items())))].append((kind, at))
    return out


def test_the_daemon_journals_the_predicted_transitions(tmp_path: Path) -> None:
    d = Daemon(tmp_path, RULES)
    test_file = tmp_path / "rules" / "tests" / "replay.yaml"
    test_file.parent.mkdir()
    test_file.write_text(TEST)

    # the test passes in simulation, and says what the daemon should do
    result = ruletest.run_file(str(test_file))
    assert not result.problems, [p.format() for p in result.problems]
    assert result.cases[0].passed, [f.headline() for f in result.cases[0].failures]
    predicted = [(t.at, t.rule, t.event, dict(t.labels)) for t in ruletest.predict(str(test_file))]
    interval, steps = ruletest.step_values(str(test_file))
    assert interval == INTERVAL and len(steps) == 45
    assert len(predicted) >= 15

    # the real daemon, fed the same values on the real clock
    d.set_values(steps[0]["app"])
    d.start()
    try:
        time.sleep(0.6)  # several evaluations of step 0: all quiet
        t0 = time.time()
        for i, values in enumerate(steps[1:], 1):
            time.sleep(max(0.0, t0 + i * INTERVAL - time.time()))
            d.set_values(values["app"])
        time.sleep(0.6)
    finally:
        assert d.stop() == 0
    journal = [
        (parse_ts(e["ts"]) - t0, e["rule"], e["event"], e.get("labels", {}))
        for e in d.events()
        if "alert" in e and e.get("rule") not in ("collector_down", "config_invalid")
    ]
    assert all(at > 0 for at, *_ in journal), "a transition before the replay started"

    want, got = by_alert(predicted), by_alert(journal)
    assert {k: [e for e, _ in v] for k, v in got.items()} == {
        k: [e for e, _ in v] for k, v in want.items()
    }
    lags = [
        (g_at - w_at, key, kind)
        for key in want
        for (kind, w_at), (_, g_at) in zip(want[key], got[key], strict=True)
    ]
    median = statistics.median(lag for lag, _, _ in lags)
    # the common lag: the collector's read (every 100ms) and the group's tick
    assert -0.05 <= median <= 3 * INTERVAL, lags
    off = [(round(lag - median, 3), key, kind) for lag, key, kind in lags]
    assert all(abs(x) <= INTERVAL + 0.05 for x, _, _ in off), off
