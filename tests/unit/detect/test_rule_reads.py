"""The sink's `keys` list is what an ordinary `each` rule reads: one alert per
offending key, labelled with it, from the real evaluator."""

from __future__ import annotations

from engine.config.model import Rule, RuleGroup
from engine.detect.settings import parse
from engine.detect.sink import DetectSink
from engine.expr.compiler import compile_expr
from engine.expr.history import History
from engine.rules.evaluator import Evaluator, Snapshot
from tests.unit.detect.test_sink import web

EXPR = "it.hits.sqli >= 3 or it.probes_full"


def test_an_each_rule_fires_once_per_offending_ip() -> None:
    sink = DetectSink(
        parse(
            {
                "format": "nginx",
                "packs": ["sqli", "scanners"],
                "windows": {
                    "probes": {"kind": "bucket", "capacity": 4, "leak": 0.1, "lines": ["scanners"]}
                },
            }
        )
    )
    lines = [web("203.0.113.5", f"/q?id={i}%27%20or%20%271%27=%271") for i in range(3)]
    lines += [
        web("198.51.100.9", p) for p in ("/.env", "/.git/config", "/phpmyadmin/", "/cgi-bin/x")
    ]
    lines += [web("203.0.113.6", "/q?id=1%27%20or%20%271%27=%271")]  # one try: below the threshold
    lines += [web("192.0.2.1", "/products/1")] * 5
    sink.feed(lines, 1000.0, "/var/log/nginx/access.log", 0)
    rule = Rule(
        id="web_attack",
        group="security",
        expr=EXPR,
        compiled=compile_expr(EXPR, names={"web", "it"}),
        each="web.keys",
        compiled_each=compile_expr("web.keys", names={"web"}),
        severity="warning",
    )
    values = {"web": sink.values(1000.0)}
    out = Evaluator(History(600)).run_group(
        RuleGroup("security", 1.0, (rule,)), Snapshot(values, frozenset(), 1000.0, 1.0)
    )
    firing = sorted(dict(t.event.alert.labels)["ip"] for t in out if t.event is not None)
    assert firing == ["198.51.100.9", "203.0.113.5"]
