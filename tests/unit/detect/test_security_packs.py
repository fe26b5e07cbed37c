"""Every security pack (rules/security/ over deploy/security.yaml's collectors)
detects its attack corpus and stays quiet on the benign corpus; the rates are
printed (`pytest -s`, or `python -m tests.unit.detect.security_corpus`). The same
corpora, as the samples the collector gave, pass as `vigil test` cases. The
allowlists (per pack, per network, per field) keep their lines out."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from tests.integration.daemon import VIGIL
from tests.unit.detect import security_corpus as sc

ROOT = Path(__file__).resolve().parents[3]
RULE_FILES = {"web": ROOT / "rules" / "security" / "web.yaml",
              "auth": ROOT / "rules" / "security" / "sshd.yaml"}  # fmt: skip


def test_every_pack_detects_its_attack_and_no_rule_fires_on_benign_traffic() -> None:
    rows = sc.rates()
    print()
    for line in sc.table(rows):
        print(line)
    assert {r.pack for r in rows} == set(sc.PACKS)
    for r in rows:
        assert r.detected, f"{r.pack}: {r.rule} did not fire for the attacker"
        assert r.others == (), f"{r.pack}: other rules fired for its attacker: {r.others}"
        assert r.fp_rate <= sc.MAX_FALSE_POSITIVE_RATE, f"{r.pack}: {r.false_positives}"
        if r.pack in sc.PATTERN_PACKS:
            assert r.attack_lines_hit == r.attack_lines, r
            assert r.benign_lines_hit == 0, r
            assert r.benign_lines > 3000


def test_allowlists_keep_their_lines_out() -> None:
    config = sc.load()
    rules = sc.rules_of(config)["web"]
    # loopback is in allow_networks: its attack counts for nothing
    lines = [(t, line.replace(sc.PACKS["sqli"][2], "127.0.0.1")) for t, line in sc.attack("sqli")]
    run = sc.replay(sc.sinks(config)["web"], "web", rules, lines)
    assert run.fired == {} and run.last["totals"]["allowed"] == len(lines)
    # the scanners pack's own allowlist: its path is no probe, other packs still see it
    t = sc.ATTACK_START
    probe = [(t + i, sc.access(t + i, "203.0.113.30", "/cgi-bin/status", 200)) for i in range(9)]
    run = sc.replay(sc.sinks(config)["web"], "web", rules, probe)
    assert run.fired == {} and run.last["totals"]["hits"]["scanners"] == 0
    run = sc.replay(sc.sinks(config)["web"], "web", rules, [
        (t + i, sc.access(t + i, "203.0.113.30", "/cgi-bin/luci", 200)) for i in range(9)
    ])  # fmt: skip
    assert run.fired == {"web_scanner": {"203.0.113.30"}}
    # a monitor's user agent (`allow: {ua: ...}`) is skipped whole
    ua = "UptimeRobot/2.0 (http://www.uptimerobot.com/)"
    lines = [(t + i, sc.access(t + i, "203.0.113.31", "/x?id=1'--", 200, ua=ua)) for i in range(5)]
    run = sc.replay(sc.sinks(config)["web"], "web", rules, lines)
    assert run.fired == {}


def _ruletest(collector: str, start: float, tests: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "rule_files": [str(RULE_FILES[collector])],
        "evaluation_interval": "10s",
        "start": sc.datetime.fromtimestamp(start, sc.UTC).isoformat(),
        "tests": tests,
    }


def test_the_corpora_pass_as_vigil_test_cases(tmp_path: Path) -> None:
    """Each pack's attack, as the sample the collector gave at its end, fires the
    pack's rule for the attacker with the attack lines as evidence; every 10
    minutes of benign traffic, as sampled then, fires nothing."""
    config = sc.load()
    rules = sc.rules_of(config)
    by_collector: dict[str, list[dict[str, Any]]] = {"web": [], "auth": []}
    for pack, (collector, rule, ip) in sc.PACKS.items():
        run = sc.replay(sc.sinks(config)[collector], collector, rules[collector], sc.attack(pack))
        by_collector[collector].append({
            "name": f"attack corpus: {pack}",
            "collectors": {collector: {"keys": run.last["keys"]}},
            "alerts": [{"at": "0s", "expect": [{
                "rule": rule, "state": "firing", "labels": {"ip": ip},
                # every evidence line is one of the attacker's
                "annotations_regex": {"evidence": f"^((.*{re.escape(ip)} .*)\n)+$"},
            }]}],
        })  # fmt: skip
    files = []
    for collector, tests in by_collector.items():
        f = tmp_path / f"attack_{collector}.yaml"
        f.write_text(json.dumps(_ruletest(collector, sc.ATTACK_START, tests)))
        files.append(f)
    for collector in ("web", "auth"):
        lines = sc.benign(collector)
        sink, start = sc.sinks(config)[collector], lines[0][0]
        tests = []
        for minute in range(10, 190, 10):  # the sample every 10 minutes
            now = start + minute * 60
            sink.feed([line for t, line in lines if now - 600 <= t < now], now)
            sample = sink.snapshot(now)
            tests.append({
                "name": f"benign corpus: minute {minute}", "start": _iso(now),
                "collectors": {collector: {"keys": sample["keys"]}},
                "alerts": [{"at": "0s", "expect": []}],
            })  # fmt: skip
        assert sum(len(t["collectors"][collector]["keys"]) for t in tests) > 0
        f = tmp_path / f"benign_{collector}.yaml"
        f.write_text(json.dumps(_ruletest(collector, start, tests)))
        files.append(f)
    got = subprocess.run(
        [VIGIL, "test", *map(str, files)], capture_output=True, text=True, timeout=120
    )
    assert got.returncode == 0, got.stdout + got.stderr
    assert "ok: 47 tests in 4 file(s) passed" in got.stdout, got.stdout


def _iso(t: float) -> str:
    return sc.datetime.fromtimestamp(t, sc.UTC).isoformat()
