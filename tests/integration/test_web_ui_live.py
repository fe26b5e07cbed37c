"""What a console tab reads again when the live stream says something changed:
only the parts of the state the event can change and its view shows. Every read
is the daemon's work, times every tab that follows it (issue 17's "20 browsers
follow live updates"), so an alert firing on the alerts view reads the alert
list, not the silences and the status too; a silence on the silences view reads
silences and alerts; a reload (a kind of event with no narrower meaning) reads
everything. In Debian's headless Chromium against `vigil run`.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.integration.daemon import Daemon
from tests.integration.test_web_ui import (
    AUTH,
    CHROMIUM,
    CHROMIUM_ARGS,
    RULES,
    TOKEN,
    VALUES,
    Browser,
    card,
    log_in,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(180),
    pytest.mark.skipif(
        not os.access(CHROMIUM, os.X_OK),
        reason=f"{CHROMIUM} is not installed (deploy/setup.sh installs Debian's chromium)",
    ),
]

PARTS = ("/api/v1/alerts", "/api/v1/silences", "/api/v1/status")
# the console's slow safety net (a full read every 60 s) switched off, so that
# every read seen here is one the live stream caused
NO_SAFETY_NET = (
    "const every = window.setInterval;"
    "window.setInterval = (f, ms, ...a) => (ms >= 60000 ? 0 : every(f, ms, ...a));"
)


class Reads:
    """The API paths (without query) the page asked for since `mark()`."""

    def __init__(self, page: Page, url: str) -> None:
        self.url = url
        self.seen: list[str] = []
        page.on("request", lambda r: self.seen.append(r.url.removeprefix(url).partition("?")[0]))

    def mark(self) -> None:
        self.seen.clear()

    def parts(self) -> set[str]:
        return {p for p in self.seen if p in PARTS}


def settle(page: Page) -> None:
    """Past the tab's debounce (at most 750 ms) and its reads' answers."""
    page.wait_for_timeout(1500)


def test_a_tab_reads_again_only_what_an_event_changed(tmp_path: Path) -> None:
    d = Daemon(tmp_path, RULES, tokens={"oncall": (TOKEN, "operator")})
    d.set_values(VALUES)
    d.start()
    try:
        d.wait_for(lambda e: sum(x["event"] == "firing" for x in e) >= 3, what="three rules firing")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.set_default_timeout(10_000)
                b = Browser(page)
                page.add_init_script(NO_SAFETY_NET)
                reads = Reads(page, d.url)
                page.goto(d.url + "/")
                log_in(page, TOKEN)
                expect(page.locator("#live")).to_have_text("● live")
                expect(page.locator("#count")).to_have_text("Alerts (3 of 3)")
                settle(page)  # the reads after connecting (whatever was missed) are done

                # an alert fires (with its delivery, and the page's ticket audited):
                # the alerts view reads the alert list, nothing else
                reads.mark()
                d.set_values({**VALUES, "errors": 7})
                expect(card(page, "conn_errors")).to_be_visible()
                settle(page)
                assert reads.parts() == {"/api/v1/alerts"}, reads.seen

                # a silence, on the silences view: its list and the alerts it mutes
                page.get_by_role("link", name="Silences").click()
                expect(page.locator("#silence-count")).to_have_text("Active silences (0)")
                settle(page)
                reads.mark()
                r = httpx.post(
                    d.url + "/api/v1/silences",
                    headers=AUTH,
                    json={
                        "matchers": [{"label": "team", "value": "web"}],
                        "for": "1h",
                        "reason": "from the test",
                    },
                    timeout=10,
                )
                assert r.status_code == 201, r.text
                expect(page.locator("li.silence")).to_have_count(1)
                settle(page)
                assert reads.parts() == {"/api/v1/silences", "/api/v1/alerts"}, (
                    reads.seen,
                    [e["event"] for e in d.events()][-4:],
                )

                # a reload may change anything (the header's version, every view)
                reads.mark()
                loaded = sum(e["event"] == "config_loaded" for e in d.events())
                assert d.proc is not None
                d.proc.send_signal(signal.SIGHUP)
                d.wait_for(
                    lambda e: sum(x["event"] == "config_loaded" for x in e) > loaded,
                    what="the reload",
                )
                deadline = time.monotonic() + 10
                while reads.parts() != set(PARTS) and time.monotonic() < deadline:
                    page.wait_for_timeout(100)
                assert reads.parts() == set(PARTS), reads.seen
                assert b.problems() == [] and b.page_errors == []
            finally:
                browser.close()
    finally:
        d.stop()
