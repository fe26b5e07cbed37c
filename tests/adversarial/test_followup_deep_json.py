"""14.A2 residue: JSON nested ~1,000 levels deep in ONE value does not down the
whole source. json.loads raised RecursionError, so the `file` collector failed
(collector_down, every rule on it blind), a push was refused and the http
collector's json_path said "not JSON". Now the deep part is cut at the boundary
(null, logged once) and the other values keep working (engine/common/json_bounded.py)."""

from __future__ import annotations

from pathlib import Path

import httpx

from engine.common.boundary import clean
from engine.common.json_bounded import loads
from tests.adversarial._api_live import HealthProbe, wait_ready
from tests.integration.daemon import Daemon
from tests.integration.receivers import Receiver, Reply
from tests.integration.test_http_collector import probe
from tests.unit.collectors.test_collectors_command import collect, py

# written by hand: json.dumps itself cannot write it
DEEP = "[" * 1000 + "0" + "]" * 1000

RULES = """
group: app
interval: 100ms
rules:
  - id: queue_deep
    expr: app.queue > fixed.limit
  - id: pushed_high
    expr: biz.orders > 3
"""


def test_a_deep_value_is_cut_and_the_rest_of_file_and_push_still_alert(tmp_path: Path) -> None:
    d = Daemon(tmp_path, RULES, tokens={"ops": ("op-token", "operator")})
    cfg = tmp_path / "vigil.yaml"
    cfg.write_text(
        cfg.read_text().replace("collectors:\n", "collectors:\n  - {name: biz, type: push}\n", 1)
    )
    d.metrics.write_text(f'{{"queue": 50, "deep": {DEEP}}}')
    d.start()
    try:
        wait_ready(d)
        with HealthProbe(d) as health:  # /health within 1 s throughout the attack
            d.wait_for(lambda evs: "firing" in d.alert_events("queue_deep"), 30, "queue_deep")
            assert "collector_down" not in {e.get("rule") for e in d.events()}
            with httpx.Client(base_url=d.url, timeout=10) as c:
                r = c.post(
                    "/api/v1/metrics",
                    content=f'{{"collector": "biz", "values": {{"orders": 9, "deep": {DEEP}}}}}',
                    headers={
                        "Authorization": "Bearer op-token",
                        "Content-Type": "application/json",
                    },
                )
                assert r.status_code == 200, r.text
            d.wait_for(lambda evs: "firing" in d.alert_events("pushed_high"), 30, "pushed_high")
        health.check()
    finally:
        code = d.stop()
    log = d.log()
    assert code == 0, log[-3000:]
    assert "nested deeper than" in log  # the boundary's marker, in its one log line
    assert "Traceback" not in log and "not valid JSON" not in log, log[-3000:]


def test_http_json_path_reads_a_body_with_a_deep_part() -> None:
    body = f'{{"status": "ok", "deep": {DEEP}}}'.encode()
    with Receiver(Reply(200, body, {"content-type": "application/json"})) as rx:
        s = probe(url=f"{rx.url}/json", json_path="$.status")
    assert (s["json_value"], s["error"]) == ("ok", None), s


def test_the_deep_part_becomes_null_past_the_depth_and_broken_json_stays_an_error() -> None:
    v = loads(f'{{"a": 1, "deep": {DEEP}, "s": "[[{{"}}')
    assert (v["a"], v["s"]) == (1, "[[{")
    x, n = v["deep"], 0
    while isinstance(x, list):
        x, n = x[0], n + 1
    assert x is None and 10 < n < 30
    for bad in (b"[" * 3000, b'"' + b"[" * 3000, b'{"a":' * 3000):
        try:
            loads(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad[:10]!r} parsed")


def test_the_command_collector_keeps_its_other_values_beside_a_deep_one() -> None:
    code = "print('{\"ok\": 1, \"deep\": ' + '[' * 1000 + '0' + ']' * 1000 + '}')"
    got = collect(py(code, parse="json"))
    assert got["ok"] == 1
    sample, cut = clean(got)  # what the daemon does with every sample
    assert sample["ok"] == 1 and cut is not None and "nested deeper than" in cut
