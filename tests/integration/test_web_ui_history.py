"""The web console's views over the history index, in a real headless Chromium
against `vigil run` as a real process (issue 17.2): the alerts view's resolved
alerts of the last N hours, the rules view's run-time facts (last evaluation,
value, failed evaluations) and one rule's history (timeline of episodes and
values chart) following a live resolve, the overview's alert volume and
noisiest rules from the history, the collectors' last collection; no console
errors, no CSP violations; screenshots at 1280 px and 360 px.

Helpers (browser, log in, screenshots) are test_web_ui.py's.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.integration.daemon import Daemon
from tests.integration.test_web_ui import (
    ARTIFACTS,
    AUTH,
    CHROMIUM,
    CHROMIUM_ARGS,
    TOKEN,
    Browser,
    log_in,
    shoot,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

RULES = """
group: app
interval: 100ms
rules:
  - id: queue_deep
    expr: app.queue > fixed.limit
    severity: critical
    labels: {team: infra}
  - id: conn_errors
    expr: app.errors > 0
    severity: warning
    labels: {team: web}
  - id: latency_high
    expr: app.latency > 1000
    severity: warning
  - id: ratio_broken
    expr: app.queue / app.zero > 1
    severity: info
"""
VALUES = {"queue": 50, "errors": 5, "latency": 10, "zero": 0}


def history(d: Daemon, query: str) -> dict[str, Any]:
    r = httpx.get(d.url + "/api/v1/history?" + query, headers=AUTH, timeout=5)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def wait_history(d: Daemon, query: str, cond: Any, what: str) -> dict[str, Any]:
    """The index follows the journal in a child process: poll it (bounded)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        got = history(d, query)
        if cond(got["episodes"]):
            return got
        time.sleep(0.2)
    raise AssertionError(f"history never showed {what}: {got}")


def rule(page: Page, rid: str) -> Any:
    return page.locator(f'li.rule-item[data-rule="{rid}"]')


@pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason=f"{CHROMIUM} is not installed")
def test_console_history_views_in_chromium(tmp_path: Path) -> None:
    t0 = time.monotonic()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    d = Daemon(tmp_path, RULES, tokens={"oncall": (TOKEN, "operator")})
    d.set_values(VALUES)
    d.start()
    try:
        # conn_errors fires, resolves, fires again: one resolved episode, one on
        d.wait_for(
            lambda e: (
                {"queue_deep", "conn_errors"}
                <= {x.get("rule") for x in e if x["event"] == "firing"}
            ),
            what="two rules firing",
        )
        d.set_values({**VALUES, "errors": 0})
        d.wait_for(
            lambda e: any(x["event"] == "resolved" and x.get("rule") == "conn_errors" for x in e),
            what="conn_errors resolved",
        )
        d.set_values({**VALUES, "errors": 9})
        wait_history(
            d,
            "rule=conn_errors&from=1h",
            lambda eps: len(eps) == 2 and sum(e["end"] is not None for e in eps) == 1,
            "conn_errors' two episodes",
        )
        # the rules endpoint says what the rules view shows (new: the old one had
        # no evaluation time, duration, value or failure count)
        r = httpx.get(d.url + "/api/v1/rules", headers=AUTH, timeout=5).json()["rules"]
        by = {x["id"]: x for x in r}
        assert by["queue_deep"]["firing"] == 1 and by["queue_deep"]["value"] == 50
        assert by["latency_high"]["value"] is None and by["latency_high"]["firing"] == 0
        assert by["ratio_broken"]["failures"] > 0
        for x in r:
            assert x["evaluated_at"] is not None and 0 <= x["evaluation_seconds"] < 1, x

        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.set_default_timeout(10_000)
                b = Browser(page)
                page.goto(d.url + "/")
                log_in(page, TOKEN)
                expect(page.locator("#live")).to_have_text("● live")
                active = page.locator("li.alert:not(.resolved-alert)")
                expect(active).to_have_count(3)  # queue_deep, conn_errors, rule_error
                expect(page.locator("#resolved")).to_have_count(0)

                # resolved alerts of the last N hours: apart, marked, with the filter
                page.locator("#show-resolved").check()
                expect(page.locator("#resolved-count")).to_have_text(
                    "Resolved in the last 24 h (1)"
                )
                gone = page.locator("li.resolved-alert")
                expect(gone).to_have_count(1)
                expect(gone.locator(".rule")).to_have_text("conn_errors")
                expect(gone.locator(".state")).to_have_text("resolved")
                expect(gone).to_contain_text("fired for")
                expect(active).to_have_count(3)  # the active list is unchanged
                expect(page).to_have_url(re.compile(r"#/alerts\?resolved=24$"))
                page.locator("#resolved-hours").select_option("1")
                expect(page.locator("#resolved-count")).to_have_text("Resolved in the last 1 h (1)")
                page.locator("#filter").fill('team="infra"')
                expect(page.locator("#resolved-count")).to_have_text("Resolved in the last 1 h (0)")
                page.locator("#filter").fill("")
                expect(gone).to_have_count(1)
                shoot(page, "alerts-resolved")
                page.locator("#show-resolved").uncheck()
                expect(page.locator("#resolved")).to_have_count(0)

                # rules: last evaluation, value, failures, health
                page.get_by_role("link", name="Rules").click()
                expect(page.locator("li.rule-item")).to_have_count(4)
                queue = rule(page, "queue_deep")
                expect(queue.locator(".head .state")).to_have_text("firing 1")
                expect(queue.locator(".runtime")).to_have_text(
                    re.compile(r"^evaluated \d+s ago \(its group in [\d.]+ ms\) · value 50$")
                )
                expect(rule(page, "latency_high").locator(".runtime")).to_contain_text(
                    "no live value"
                )
                broken = rule(page, "ratio_broken")
                expect(broken.locator(".runtime")).to_contain_text("failed evaluations")
                expect(broken.locator(".health")).to_contain_text("rule_error")

                # one rule's history, opened from the keyboard
                conn = rule(page, "conn_errors")
                toggle = conn.get_by_role("button", name="History")
                toggle.focus()
                page.keyboard.press("Enter")
                expect(conn.locator(".history-toggle")).to_have_attribute("aria-expanded", "true")
                panel = conn.locator(".rule-history")
                expect(panel.locator("svg.timeline")).to_be_visible()
                expect(panel.locator("rect.fire")).to_have_count(2)
                expect(panel.locator("rect.end")).to_have_count(1)
                expect(panel.locator("ol.episodes li")).to_have_count(2)
                expect(panel.locator("ol.episodes li").first).to_have_attribute(
                    "data-state", "firing"
                )
                # values at transitions: 5 firing, 0 resolved, 9 firing
                expect(panel.locator("svg.values circle")).to_have_count(3)
                expect(panel.locator("svg.values")).to_have_attribute(
                    "aria-label", "values recorded at transitions, from 0 to 9"
                )
                expect(conn.locator(".history-toggle")).to_be_focused()
                shoot(page, "rules-history")

                # live: it resolves while the panel is open; the panel follows
                d.set_values({**VALUES, "errors": 0})
                expect(panel.locator("rect.end")).to_have_count(2, timeout=15_000)
                expect(conn.locator(".head .state")).to_have_text("ok")

                # overview: volume per hour and the noisiest rules, from the history
                page.get_by_role("link", name="Overview").click()
                expect(page.locator("#volume svg.chart")).to_be_visible()
                expect(page.locator("#volume rect.bar")).to_have_count(25)  # 24 h by the hour
                noisy = page.locator("#noisy-list li")
                expect(page.locator("#noisy-title")).to_have_text("Noisiest rules, last 24 h")
                expect(noisy.first).to_have_attribute("data-rule", "conn_errors")
                expect(noisy.first).to_have_text("conn_errors 2 alerts, 2 fired")
                page.get_by_role("button", name="7 d").click()
                expect(page.locator("#noisy-title")).to_have_text("Noisiest rules, last 7 d")
                expect(page.locator("#volume rect.bar")).to_have_count(169)
                shoot(page, "overview-history")
                # a noisy rule links to its history
                noisy.first.get_by_role("link").click()
                expect(rule(page, "conn_errors").locator("svg.timeline")).to_be_visible()

                # collectors: the last good collection
                page.get_by_role("link", name="System").click()
                expect(page.locator('tr[data-collector="app"] td.last')).to_have_text(
                    re.compile(r"^\d+s ago$")
                )
                shoot(page, "system-collectors")

                assert b.native_dialogs == []
                assert b.page_errors == []
                assert b.problems() == []
                assert b.csp_violations() == []
                expect(page.locator("#error")).to_have_text("")

                dark = browser.new_page(
                    color_scheme="dark", viewport={"width": 1280, "height": 800}
                )
                dark.goto(d.url + "/#/rules?rule=conn_errors")
                log_in(dark, TOKEN)
                expect(rule(dark, "conn_errors").locator("svg.values")).to_be_visible()
                shoot(dark, "rules-history-dark")
                dark.close()
            finally:
                browser.close()
    finally:
        assert d.stop() == 0
    assert time.monotonic() - t0 < 150
