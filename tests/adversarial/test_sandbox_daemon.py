"""14.E.15 against a real `vigil run` (under `prlimit --as`): a rule repeating a
static collector's list (`lists.lst * 100000000 == 1`, 17 GB before) is an
evaluation error while the daemon stays small and /health answers within 1 s;
a reload bringing three rules whose constants fold into hundreds of MB (875 MB
before) is rejected, naming file:line:col, without the daemon growing.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.adversarial.sandbox_bounded import CappedDaemon, health_time, wait_for_api

pytestmark = pytest.mark.slow

RULES = """
group: app
interval: 100ms
rules:
  - id: rep
    expr: lists.lst * 100000000 == 1
  - id: queue_deep
    expr: app.queue > fixed.limit
"""
MB = 1 << 20


def fold_bomb(i: int) -> str:
    items = ", ".join(["[0]*99999"] * 330)  # 3.6 KB of source; ~290 MB kept before
    return f'  - id: bomb{i}\n    expr: "app.queue != [{items}]"\n'


def test_growth_limits_hold_in_the_daemon_and_on_reload(tmp_path: Path) -> None:
    d = CappedDaemon(tmp_path, RULES)
    cfg = tmp_path / "vigil.yaml"
    cfg.write_text(
        cfg.read_text().replace(
            "collectors:\n",
            "collectors:\n  - {name: lists, type: static, values: {lst: [1, 2]}}\n",
        )
    )
    d.set_values({"queue": 1})
    d.start()
    slowest = 0.0
    try:
        wait_for_api(d.url)
        start = time.monotonic()
        while time.monotonic() < start + 1.5:  # ~15 evaluations of the bomb
            slowest = max(slowest, health_time(d.url))
            time.sleep(0.05)
        rss_before = d.rss()
        errors = [e["error"] for e in d.events() if e["event"] == "error" and e["rule"] == "rep"]
        assert errors == ["refused: the result would be longer than 100000"], errors
        assert "MemoryError" not in d.log()

        seq = max(e.get("seq", 0) for e in d.events())
        (tmp_path / "rules" / "r.yaml").write_text(RULES + "".join(fold_bomb(i) for i in range(3)))
        d.wait_for(
            lambda evs: any(e["event"] == "config_rejected" and e.get("seq", 0) > seq for e in evs),
            what="config_rejected",
        )
        for _ in range(10):
            slowest = max(slowest, health_time(d.url))
            time.sleep(0.05)
        rejected = [e for e in d.events() if e["event"] == "config_rejected"][-1]
        rss_after = d.rss()
    finally:
        assert d.stop() == 0
    refused = [e for e in rejected["errors"] if "refused: the constants" in e]
    assert len(refused) == 3, rejected["errors"]
    assert all(e.startswith("rules/r.yaml:") or "/rules/r.yaml:" in e for e in refused), refused
    assert slowest < 1.0, f"/health took {slowest:.2f} s"
    assert rss_before < 400 * MB, rss_before
    assert rss_after < rss_before + 50 * MB, (rss_before, rss_after)
