"""13.A3 in the web console: while the collector an alert reads is down, the
alert stays firing and its card says `stale`; the mark goes when the collector is
back, by the live update, without a reload. A real `vigil run` (its `file`
collector's file moved away) and Debian's Chromium through Playwright."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.integration.daemon import Daemon
from tests.integration.test_web_ui import CHROMIUM, CHROMIUM_ARGS, Browser, card, log_in

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

TOKEN = "vigil-ui-stale-viewer-token-3b9e"
RULES = """
group: app
interval: 100ms
rules:
  - id: queue_deep
    expr: app.queue > fixed.limit
    severity: critical
"""


def test_an_alert_of_a_collector_that_is_down_is_marked_stale(tmp_path: Path) -> None:
    d = Daemon(tmp_path, RULES, tokens={"dash": (TOKEN, "viewer")})
    d.set_values({"queue": 50})
    d.start()
    try:
        d.wait_for(lambda evs: d.alert_events("queue_deep") == ["firing"], what="firing")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.set_default_timeout(15_000)
                b = Browser(page)
                page.goto(d.url + "/")
                log_in(page, TOKEN)
                queue = card(page, "queue_deep")
                expect(queue).to_have_count(1)
                expect(queue.locator(".marks")).to_have_count(0)  # fresh data: no mark

                os.rename(d.metrics, d.metrics.with_suffix(".away"))
                d.wait_for(lambda evs: "stale" in d.alert_events("queue_deep"), what="stale")
                expect(queue.locator(".marks")).to_contain_text("stale")
                expect(queue).to_have_count(1)  # still listed: nothing resolved

                os.rename(d.metrics.with_suffix(".away"), d.metrics)
                d.wait_for(lambda evs: "stale_end" in d.alert_events("queue_deep"), what="back")
                expect(queue.locator(".marks")).to_have_count(0)
                assert b.page_errors == [], b.page_errors
            finally:
                browser.close()
    finally:
        assert d.stop() == 0
    assert d.alert_events("queue_deep") == ["firing", "stale", "stale_end"]
