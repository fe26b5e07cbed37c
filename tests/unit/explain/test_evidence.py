"""The evidence part of an explanation for the security rules (deploy/security.yaml,
rules/security/), from the collector's own sample as DetectSink gives it: the
patterns the rule reads and the lines they hit; a window rule shows every kept
line; a rule over no detecting collector has none. `vigil alerts` prints the
evidence annotation escaped, one line per log line."""

from __future__ import annotations

from engine.cli.tables import evidence_lines
from engine.explain.explain import explain
from tests.unit.detect import security_corpus as sc


def _explained(pack: str, rule: str) -> dict:  # type: ignore[type-arg]
    config = sc.load()
    collector, _, ip = sc.PACKS[pack]
    sink = sc.sinks(config)[collector]
    lines = sc.attack(pack)
    # another pack's lines from the same address: not this rule's evidence
    lines += [(t + 1, line.replace(sc.PACKS["xss"][2], ip)) for t, line in sc.attack("xss")][:2]
    run = sc.replay(sink, collector, sc.rules_of(config)[collector], lines)
    got = explain(
        config, rule, labels={"ip": ip}, values={collector: run.last}, state={},
        now=max(t for t, _ in lines) + 10,
    )  # fmt: skip
    (inst,) = got.to_dict()["instances"]
    return inst  # type: ignore[no-any-return]


def test_a_pattern_rule_names_its_patterns_and_only_their_lines() -> None:
    inst = _explained("sqli", "web_sqli")
    ev = inst["condition"]["evidence"]
    assert ev["source"] == "the sample of collector web"
    assert all(name.startswith("sqli_") for name in ev["hits"]) and ev["hits"]
    assert ev["lines"] and all(
        any(p.startswith("sqli_") for p in x["patterns"]) for x in ev["lines"]
    )
    assert not any("script" in x["line"] for x in ev["lines"])  # the xss lines stay out


def test_a_window_rule_shows_the_lines_kept_for_the_key() -> None:
    ev = _explained("web_auth", "web_auth_failures")["condition"]["evidence"]
    # the rule reads no pattern: every hit of the key is told, and every kept line
    assert ev["hits"] == {"xss_script": 2, "xss_dom": 2}
    assert len(ev["lines"]) == 10  # the collector keeps `evidence: 10`
    refused = [x for x in ev["lines"] if '"GET /api/v2/orders HTTP/1.1" 40' in x["line"]]
    assert refused and all(x["patterns"] == [] for x in refused)
    assert all(x in refused or x["patterns"] for x in ev["lines"])


def test_alerts_print_evidence_escaped() -> None:
    alert = {
        "fingerprint": "4f14725c50c0d107", "rule": "web_sqli", "labels": {"ip": "203.0.113.9"},
        "annotations": {"evidence": "a\nb \x1b[2J\x07c\nd\n"},
    }  # fmt: skip
    assert evidence_lines([alert], 2) == [
        "evidence of 4f14725c50c0 web_sqli {ip=203.0.113.9}, the last 2 of 3:",
        "  b \\x1b[2J\\x07c",
        "  d",
    ]
    assert evidence_lines([alert], 0) == []
    assert evidence_lines([{**alert, "annotations": {}}], 3) == []
