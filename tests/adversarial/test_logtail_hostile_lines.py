"""Hostile log lines (issue 14 F, for issue 16's logtail boundary): whoever can reach
a web server writes what vigil reads. Their lines carry markup, terminal escapes,
NUL bytes, invalid UTF-8, lines of megabytes and floods of fresh keys, and all of
it flows into alert labels, annotations and evidence, then into the API, the CLI
and the web console.

Against a real daemon following a real file: /health answers within 1 s
throughout; keys and alerts stay within their caps (one cardinality_exceeded
alert says so); the API's JSON carries the hostile text verbatim as text;
`vigil alerts` prints no raw control character to the operator's terminal; and
Debian's Chromium shows the markup as text without running any of it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.adversarial._api_live import VIEWER, health_during, make_daemon, stop_clean, wait_ready
from tests.integration.daemon import VIGIL

MARKUP = "<img/src=x/onerror=document.title='pwned-ip'>"
SCRIPT_UA = "<script>document.title='pwned-ua'</script><b>bold</b>"
ESCAPES = "\x1b]0;pwned-title\x07\x1b[2J"  # retitle the terminal, clear the screen
MAX_KEYS = 2000
MAX_ALERTS = 300
FLOOD = 20_000

RULES = f"""
group: web
interval: 200ms
rules:
  - id: web_sqli
    each: web.keys
    expr: it.hits.sqli >= 1
    max_alerts: {MAX_ALERTS}
    severity: warning
    annotations:
      summary: "{{{{ labels.ip }}}} sent {{{{ it.hits.sqli }}}} SQL injections"
      evidence: "{{% for e in it.evidence %}}{{{{ e.line }}}}\\n{{% endfor %}}"
"""


def access(ip: str, target: str, ua: str = "Mozilla/5.0") -> bytes:
    line = f'{ip} - - [07/Dec/2026:01:30:00 +0000] "GET {target} HTTP/1.1" 200 5 "-" "{ua}"\n'
    return line.encode("utf-8", "surrogateescape")


SQLI = "/item?id=1%27%20OR%20%271%27%3D%271"


def alerts(d: Any) -> list[dict[str, Any]]:
    r = httpx.get(
        f"{d.url}/api/v1/alerts",
        headers={"Authorization": f"Bearer {VIEWER}"},
        timeout=10,
        trust_env=False,
    )
    assert r.status_code == 200, r.text[:300]
    return list(r.json()["alerts"])


def test_hostile_log_lines_stay_text_and_within_bounds(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_bytes(b"")
    collector = (
        f"  - {{name: web, type: logtail, paths: [{log}], interval: 200ms,\n"
        f"     max_line_bytes: 4KiB, format: nginx, key: ip, packs: [sqli],\n"
        f"     max_keys: {MAX_KEYS}, evidence: 3}}\n"
    )
    d = make_daemon(tmp_path, RULES)
    cfg = tmp_path / "vigil.yaml"
    cfg.write_text(cfg.read_text().replace("collectors:\n", "collectors:\n" + collector))
    d.start()
    try:
        wait_ready(d)
        d.wait_for(lambda evs: any(e["event"] == "collector_state" for e in evs), 30, "a pass")
        with health_during(d):
            with log.open("ab") as f:
                f.write(access(MARKUP, SQLI, SCRIPT_UA))
                f.write(access(ESCAPES.replace(" ", ""), SQLI, ESCAPES))
                # NUL, invalid UTF-8 and an encoded lone surrogate in the target
                f.write(access("198.51.100.20", SQLI + "%00\x00", "a\udcffb"))
                # 2 MB on one line, the attack at its start: cut to max_line_bytes
                f.write(access("198.51.100.21", SQLI + "&pad=" + "A" * 2_000_000))
            d.wait_for(
                lambda evs: any(
                    e["event"] == "firing" and e.get("labels", {}).get("ip") == MARKUP for e in evs
                ),
                30,
                "the alert of the markup address",
            )
            with log.open("ab") as f:
                # a flood of fresh addresses, each with one attack
                for i in range(FLOOD):
                    f.write(access(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", SQLI))
            d.wait_for(
                lambda evs: any(
                    e["event"] == "firing" and e.get("rule") == "cardinality_exceeded" for e in evs
                ),
                60,
                "cardinality_exceeded",
            )
            got = alerts(d)
        sqli = [a for a in got if a["rule"] == "web_sqli"]
        assert len(sqli) <= MAX_ALERTS
        by_ip = {a["labels"]["ip"]: a for a in sqli}
        # the markup is a label, verbatim, text in JSON
        assert MARKUP in by_ip, sorted(by_ip)[:5]
        assert SCRIPT_UA in by_ip[MARKUP]["annotations"]["evidence"]
        # the cut line is at most max_line_bytes in the evidence
        long = by_ip.get("198.51.100.21")
        if long is not None:
            assert all(len(x.encode()) <= 4096 for x in long["annotations"]["evidence"].split("\n"))
        # the odd bytes became text (U+FFFD), never a failure to encode
        odd = by_ip.get("198.51.100.20")
        if odd is not None:
            assert "\ufffd" in odd["annotations"]["evidence"]
        rss = psutil.Process(d.proc.pid).memory_info().rss if d.proc else 0
        assert rss < 400 * 2**20, f"the daemon holds {rss / 2**20:.0f} MB"

        # the operator's terminal: no raw control character from the data
        out = subprocess.run(
            [VIGIL, "alerts", "--url", d.url],
            capture_output=True, timeout=60, env={**os.environ, "VIGIL_TOKEN": VIEWER},
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        controls = sorted({chr(b) for b in out.stdout if b < 32 and b not in (9, 10)})
        bad = [x for x in out.stdout.splitlines() if any(b < 32 and b != 9 for b in x)]
        assert not controls, f"raw control characters reach the terminal: {bad[:3]!r}"
        assert b"pwned-title" in out.stdout, "the escaped text is still shown"

        browse(d.url)
    finally:
        if d.proc is not None and d.proc.poll() is None:
            stop_clean(d)


def browse(url: str) -> None:
    """The console lists the hostile alert as text: no markup of the data is
    rendered, no script of it runs."""
    from tests.integration.test_web_ui import CHROMIUM, CHROMIUM_ARGS, log_in

    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(20_000)
            dialogs: list[str] = []
            page.on("dialog", lambda dlg: (dialogs.append(dlg.message), dlg.dismiss()))
            page.goto(url + "/")
            log_in(page, VIEWER)
            page.locator("#filter").fill(f'ip="{MARKUP}"')
            page.locator("li.alert").get_by_text(MARKUP).first.wait_for()
            assert "pwned" not in page.title()
            assert page.locator("img[src='x']").count() == 0
            assert page.evaluate("document.querySelectorAll('script:not([src])').length") == 0
            assert dialogs == []
        finally:
            browser.close()
