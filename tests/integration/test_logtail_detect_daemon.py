"""A real `vigil run` with a `logtail` collector that parses and detects: nginx
access-log lines are appended to a followed file; SQL injection from one address
fires an `each: web.keys` alert for that address, with the matching lines as
evidence; an address sending ordinary requests gets none. Bad detection settings
in vigil.yaml are one `file:line:col` problem each."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.daemon import VIGIL, Daemon

RULES = """
group: web
interval: 100ms
rules:
  - id: web_sqli
    each: web.keys
    expr: it.hits.sqli >= 3
    severity: critical
    annotations:
      summary: "{{ labels.ip }}: {{ it.hits.sqli }} SQL injection attempts"
      evidence: "{% for e in it.evidence %}{{ e.line }}\\n{% endfor %}"
"""

COLLECTOR = (
    "  - {{name: web, type: logtail, paths: [{log}], interval: 100ms, start: beginning,\n"
    "     format: nginx, key: ip, packs: [sqli, scanners],\n"
    "     windows: {{errors_5m: {{kind: count, window: 5m, where: {{status: ['404']}}}}}}}}\n"
)


def access(ip: str, target: str, status: int = 200) -> str:
    return (
        f'{ip} - - [07/Dec/2026:01:30:00 +0000] "GET {target} HTTP/1.1" {status} 512 '
        f'"-" "Mozilla/5.0 (X11; Linux x86_64)"\n'
    )


def explain(cfg: Path, *args: str) -> str:
    got = subprocess.run(
        [VIGIL, "explain", "web_sqli", "--labels", "ip=203.0.113.9", "-c", str(cfg), *args],
        capture_output=True, text=True, timeout=60, env={**os.environ, "VIGIL_TOKEN": "viewer-token"},
    )  # fmt: skip
    assert got.returncode == 0, got.stdout + got.stderr
    return got.stdout


def fired(evs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in evs if e.get("rule") == "web_sqli" and e["event"] == "firing"]


def test_sqli_lines_appended_to_a_followed_log_fire_one_alert_for_that_address(
    tmp_path: Path,
) -> None:
    log = tmp_path / "access.log"
    log.write_text(access("198.51.100.7", "/index.html"))
    d = Daemon(tmp_path, RULES, tokens={"viewer": ("viewer-token", "viewer")})
    cfg = tmp_path / "vigil.yaml"
    cfg.write_text(
        cfg.read_text().replace("collectors:\n", "collectors:\n" + COLLECTOR.format(log=log))
    )
    attacks = [
        "/search?q=1'%20UNION%20SELECT%20username,password%20FROM%20users--",
        "/item?id=1%27%20OR%20%271%27%3D%271",
        "/api?id=1%20AND%20SLEEP(5)",
    ]
    try:
        d.start()
        d.wait_for(lambda evs: any(e["event"] == "started" for e in evs), 30, "the start")
        with log.open("a") as f:
            for i, target in enumerate(attacks):
                f.write(access("203.0.113.9", target))
                f.write(access("198.51.100.7", f"/products/{i}?ref=home"))
                f.flush()
        evs = d.wait_for(lambda evs: bool(fired(evs)), 30, "the SQLi alert")
        online = explain(cfg, "--url", d.url)
        listed = subprocess.run(
            [VIGIL, "alerts", "--url", d.url, "--evidence", "2"], capture_output=True,
            text=True, timeout=60, env={**os.environ, "VIGIL_TOKEN": "viewer-token"},
        )  # fmt: skip
        api = httpx.get(
            f"{d.url}/api/v1/alerts", headers={"Authorization": "Bearer viewer-token"}, timeout=10
        ).json()["alerts"]
        assert d.stop() == 0
        offline = explain(cfg, "--no-collect")
    finally:
        if d.proc is not None and d.proc.poll() is None:
            d.stop()
    alerts = fired(evs)
    assert [a["labels"]["ip"] for a in alerts] == ["203.0.113.9"]
    alert = alerts[0]
    assert alert["value"] == 3
    assert alert["annotations"]["summary"] == "203.0.113.9: 3 SQL injection attempts"
    evidence = alert["annotations"]["evidence"].splitlines()
    assert len(evidence) == 3
    assert all(line.startswith("203.0.113.9 ") for line in evidence)
    assert "UNION%20SELECT" in evidence[0]

    # vigil alerts shows the last lines behind the alert; the API has them all
    assert listed.returncode == 0, listed.stderr
    shown = listed.stdout.splitlines()
    head = next(i for i, x in enumerate(shown) if x.startswith("evidence of "))
    assert shown[head].endswith("web_sqli {ip=203.0.113.9}, the last 2 of 3:")
    assert shown[head + 1] == "  " + evidence[1] and shown[head + 2] == "  " + evidence[2]
    (one,) = api
    assert one["annotations"]["evidence"].splitlines() == evidence

    # vigil explain names the patterns and the lines: online from the live sample
    # (with where each line is in the file), offline from the journaled evidence
    for out, source in ((online, "the sample of collector web"),
                        (offline, "the alert's evidence annotation (journal)")):  # fmt: skip
        assert f"  evidence, from {source}: patterns hit: " in out, out
        shown = out[out.index("  evidence, from") :].splitlines()
        head = shown[0]
        for name in ("sqli_union", "sqli_tautology", "sqli_functions"):
            assert f"{name} 1" in head, head
        lines = [x for x in shown[1:4]]
        assert all("203.0.113.9 - - " in x for x in lines), shown
        assert "[sqli_union" in lines[0] and "UNION%20SELECT" in lines[0]
        assert "[sqli_functions] " in lines[2] and "SLEEP(5)" in lines[2]
        assert "198.51.100.7" not in out
    assert f"{log}@" in online  # the sample knows the file and the offset


BAD = [
    # (the collector's last line, the column of the problem, what it says)
    ("    packs: [sqli, nosuch]", 19, "packs[1]: 'nosuch'"),
    (
        "    windows: {errs: {where: {outcome: [failed]}}}",
        39,
        "format nginx has no field 'outcome'",
    ),
    ("    patterns: [{name: p, field: path, regex: 'a(b'}]", 16, "not an RE2 regex: missing )"),
]


@pytest.mark.parametrize("last, col, says", BAD)
def test_bad_detection_settings_are_one_problem_at_their_place(
    tmp_path: Path, last: str, col: int, says: str
) -> None:
    Daemon(tmp_path, RULES)  # writes the config
    cfg = tmp_path / "vigil.yaml"
    bad = (
        "  - name: web\n"
        "    type: logtail\n"
        f"    paths: [{tmp_path}/access.log]\n"
        "    format: nginx\n"
        f"{last}\n"
    )
    cfg.write_text(cfg.read_text().replace("collectors:\n", "collectors:\n" + bad))
    got = subprocess.run(
        [VIGIL, "validate", "-c", str(cfg)], capture_output=True, text=True, timeout=60
    )
    assert got.returncode == 1, got.stdout + got.stderr
    lines = [x for x in got.stderr.splitlines() if x.startswith(str(cfg))]
    assert len(lines) == 1, got.stderr
    line = cfg.read_text().splitlines().index(last) + 1
    assert lines[0].startswith(f"{cfg}:{line}:{col}: "), lines[0]
    assert says in lines[0]
    assert "Traceback" not in got.stdout + got.stderr
