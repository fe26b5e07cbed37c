"""The web page at `/` in a real headless Chromium against `vigil run` as a real
process: log in with a token, see the firing alerts, ack one, silence another,
the volume chart, a wrong token; no console errors and no CSP violations.

The browser is Debian's `chromium` (deploy/setup.sh installs it) driven by
Playwright from PyPI with `executable_path`; Playwright's own browser download
(`playwright install`) is never used: it cannot work on a closed network.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import ConsoleMessage, Dialog, Page, expect, sync_playwright

from engine.common.timefmt import to_epoch
from tests.integration.daemon import Daemon

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# what this closed network needs (see deploy/setup.sh): nothing may try to reach
# Google's services, or Chromium's refused connections pile up at every start
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

TOKEN = "vigil-ui-operator-token-7d41c2"  # distinctive: never in the journal
RULES = """
group: app
interval: 100ms
rules:
  - id: queue_deep
    expr: app.queue > fixed.limit
    severity: critical
    labels: {team: infra}
    annotations: {summary: "queue at {{ value }}"}
  - id: disk_bytes_high
    expr: app.disk_bytes > 1000000
    severity: warning
"""
NOTE = "looking at it from the browser"
REASON = "disk cleanup under way"


class Browser:
    """One page with everything it said: console messages, uncaught errors,
    CSP violations (a listener installed before the page's own script runs),
    and the prompts it asked, answered from `answers` (prefix of the message)."""

    def __init__(self, page: Page, answers: dict[str, str]) -> None:
        self.page = page
        self.answers = answers
        self.console: list[ConsoleMessage] = []
        self.page_errors: list[str] = []
        self.dialogs: list[str] = []
        page.on("console", lambda m: self.console.append(m))
        page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        page.on("dialog", self._dialog)
        page.add_init_script(
            "window.__csp = [];"
            "document.addEventListener('securitypolicyviolation', (e) => window.__csp.push("
            "e.violatedDirective + ' ' + (e.blockedURI || 'inline') + ' ' + e.sourceFile + ':'"
            " + e.lineNumber));"
        )

    def _dialog(self, d: Dialog) -> None:
        self.dialogs.append(f"{d.type}: {d.message}")
        for prefix, answer in self.answers.items():
            if d.message.startswith(prefix):
                d.accept(answer)
                return
        d.dismiss()

    def csp_violations(self) -> list[str]:
        found: list[str] = self.page.evaluate("window.__csp")
        return found

    def problems(self) -> list[str]:
        """Console errors and warnings, except Chromium's own network line for
        each request the server answered 401 (the wrong token, on purpose)."""
        out = []
        for m in self.console:
            if m.type not in ("error", "warning"):
                continue
            if m.type == "error" and "status of 401" in m.text and "/api/v1/" in m.location["url"]:
                continue
            out.append(f"{m.type}: {m.text} ({m.location})")
        return out


def row(page: Page, rule: str) -> Any:
    return page.locator("#alerts tr").filter(has=page.get_by_role("cell", name=rule, exact=True))


def log_in(page: Page, token: str) -> None:
    page.locator("#token").fill(token)
    page.get_by_role("button", name="open").click()


@pytest.mark.skipif(
    not os.access(CHROMIUM, os.X_OK),
    reason=f"{CHROMIUM} is not installed (deploy/setup.sh installs Debian's chromium as root)",
)
def test_web_page_in_chromium(tmp_path: Path) -> None:
    t0 = time.monotonic()
    d = Daemon(tmp_path, RULES, tokens={"oncall": (TOKEN, "operator")})
    # 1234567 tells whether the page shows a value as it is (not rounded to 1235000)
    d.set_values({"queue": 50, "disk_bytes": 1234567})
    d.start()
    try:
        evs = d.wait_for(
            lambda e: (
                {x.get("rule") for x in e if x["event"] == "firing"}
                >= {"queue_deep", "disk_bytes_high"}
            ),
            what="both rules firing",
        )
        fps = {e["rule"]: e["alert"] for e in evs if e["event"] == "firing"}
        with sync_playwright() as pw:
            # launch() gives each run a fresh, empty profile (its own --user-data-dir)
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            try:
                page = browser.new_page()
                page.set_default_timeout(10_000)
                b = Browser(
                    page,
                    {
                        "Acknowledge queue_deep": NOTE,
                        "For how long?": "",  # until resolved
                        "Silence this alert for": "2h",
                        "Reason": REASON,
                    },
                )
                response = page.goto(d.url + "/")
                assert response is not None and response.status == 200
                assert "script-src 'sha256-" in response.headers["content-security-policy"]

                # no token yet: the page asks for one and shows nothing else
                expect(page.locator("#login")).to_be_visible()
                expect(page.locator("#app")).to_be_hidden()

                # a wrong token is rejected, and the page says so
                log_in(page, "not-the-token")
                expect(page.locator("#error")).to_contain_text("token rejected")
                expect(page.locator("#login")).to_be_visible()
                expect(page.locator("#app")).to_be_hidden()

                # the right one opens the page, and the old message goes away
                log_in(page, TOKEN)
                expect(page.locator("#app")).to_be_visible()
                expect(page.locator("#login")).to_be_hidden()
                expect(page.locator("#error")).to_have_text("")
                expect(page.locator("#status")).to_contain_text("v0.1.0")
                expect(page.locator("#count")).to_have_text("Active alerts (2)")
                expect(page.locator("#alerts tr")).to_have_count(2)
                queue, disk = row(page, "queue_deep"), row(page, "disk_bytes_high")
                expect(queue.locator(".sev")).to_have_text("critical")
                expect(disk.locator(".sev")).to_have_text("warning")
                expect(queue).to_contain_text("firing")
                expect(queue).to_contain_text("team=infra")
                expect(queue).to_contain_text("queue at 50")
                expect(queue).to_contain_text(fps["queue_deep"])
                expect(disk.get_by_role("cell", name="1234567", exact=True)).to_have_count(1)

                # the volume chart: an inline SVG of 24 hourly bars; both alerts
                # started within the last hour, so the last bar is the full one
                chart = page.locator("svg#chart")
                expect(chart).to_be_visible()
                expect(chart.locator("rect.bar")).to_have_count(24)
                expect(chart.locator("text", has_text="max 2")).to_have_count(1)
                heights = [
                    float(h or 0)
                    for h in chart.locator("rect.bar").evaluate_all(
                        "rs => rs.map(r => r.getAttribute('height'))"
                    )
                ]
                assert heights[-1] == 85 and sum(heights[:-1]) == 0, heights

                # ack through the page: it asks for a note (and how long)
                queue.get_by_role("button", name="ack", exact=True).click()
                expect(queue).to_contain_text(f"acked by oncall: {NOTE}")
                expect(queue.get_by_role("button", name="unack", exact=True)).to_be_visible()
                evs = d.wait_for(
                    lambda e: any(x["event"] == "audit" and x["action"] == "ack" for x in e),
                    what="the ack's audit",
                )
                (acked,) = [e for e in evs if e["event"] == "acknowledged"]
                assert acked["alert"] == fps["queue_deep"]
                assert acked["by"] == "oncall" and acked["note"] == NOTE
                assert acked["until"] is None
                (audit,) = [e for e in evs if e["event"] == "audit" and e["action"] == "ack"]
                assert audit["by"] == "oncall" and audit["result"] == "ok"
                assert audit["alert"] == fps["queue_deep"]

                # silence through the page: for how long, and why
                disk.get_by_role("button", name="silence", exact=True).click()
                expect(disk.locator(".mark")).to_have_text("silenced")
                evs = d.wait_for(
                    lambda e: any(
                        x["event"] == "audit" and x["action"] == "silence_create" for x in e
                    ),
                    what="the silence's audit",
                )
                (created,) = [e for e in evs if e["event"] == "silence_created"]
                assert created["matchers"] == [{"label": "rule", "value": "disk_bytes_high"}]
                assert created["reason"] == REASON and created["created_by"] == "oncall"
                until = to_epoch(created["until"])  # RFC 3339 in the journal (13.18)
                assert until is not None and 7000 < until - time.time() <= 7200
                (audit,) = [
                    e for e in evs if e["event"] == "audit" and e["action"] == "silence_create"
                ]
                assert audit["by"] == "oncall" and audit["result"] == "ok"
                # the other alert stays as it was
                expect(queue.locator(".mark")).to_have_text(f"acked by oncall: {NOTE}")

                assert b.dialogs == [
                    "prompt: Acknowledge queue_deep: note",
                    "prompt: For how long? (e.g. 2h; empty: until resolved)",
                    "prompt: Silence this alert for (e.g. 2h)",
                    "prompt: Reason",
                ]
                assert b.page_errors == []
                assert b.problems() == []
                assert b.csp_violations() == []
                assert page.locator("#error").text_content() == ""

                # a browser whose clock is 5 minutes behind the daemon's (a laptop
                # looking at a server) still counts the alerts that just started
                late = browser.new_page()
                late.clock.set_fixed_time(time.time() - 300)
                late.goto(d.url + "/")
                log_in(late, TOKEN)
                expect(late.locator("#alerts tr")).to_have_count(2)
                expect(late.locator("svg#chart text", has_text="max 2")).to_have_count(1)
                late.close()

                # the CSP listener does see a violation: an injected inline script
                # is refused (so the empty list above means something)
                page.evaluate(
                    "() => { const s = document.createElement('script');"
                    " s.textContent = 'window.__injected = 1'; document.body.appendChild(s); }"
                )
                page.wait_for_function("window.__csp.length > 0")
                (violation,) = b.csp_violations()
                assert violation.startswith("script-src"), violation
                assert page.evaluate("window.__injected") is None
            finally:
                browser.close()
        assert TOKEN not in d.journal.read_text()
    finally:
        assert d.stop() == 0
    assert time.monotonic() - t0 < 60
