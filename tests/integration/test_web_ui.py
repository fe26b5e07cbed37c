"""The web console in a real headless Chromium against `vigil run` as a real
process: log in with a token, filter with label matchers, group by a label,
facets, acknowledge with a note in a dialog, silence from an alert with the
matcher editor's preview (its count is what the silence then silences), edit
and expire the silence, and follow a live update (an alert that fires while
the page is open appears without a reload); no console errors, no CSP
violations; screenshots of every view at 1280 px and 360 px.

The browser is Debian's `chromium` (deploy/setup.sh installs it) driven by
Playwright from PyPI with `executable_path`; Playwright's own browser download
(`playwright install`) is never used: it cannot work on a closed network.

Screenshots go to tests/artifacts/console/ (git-ignored; the path is printed).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, Page, expect, sync_playwright

from engine.common.timefmt import to_epoch
from tests.integration.daemon import Daemon

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

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
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "console"

TOKEN = "vigil-ui-operator-token-7d41c2"  # distinctive: never in the journal
AUTH = {"Authorization": f"Bearer {TOKEN}"}
RULES = """
group: app
interval: 100ms
rules:
  - id: queue_deep
    expr: app.queue > fixed.limit
    severity: critical
    labels: {team: infra}
    annotations: {summary: "queue at {{ value }}", runbook_url: "https://runbooks.example/queue"}
  - id: api_latency
    expr: app.latency > 100
    severity: warning
    labels: {team: infra, service: api}
    annotations: {summary: "p99 latency {{ value }} ms", runbook_url: "javascript:alert(1)"}
  - id: disk_bytes_high
    expr: app.disk_bytes > 1000000
    severity: warning
    labels: {team: storage}
  - id: conn_errors
    expr: app.errors > 0
    severity: critical
    labels: {team: web}
    annotations: {summary: "{{ value }} connection errors"}
"""
CHANNELS = """
channels:
  - {name: archive, type: file, path: notifications.jsonl}
routes:
  - match: {severity: critical}
    channels: [archive]
    group_wait: 0s
"""
VALUES = {"queue": 50, "latency": 250, "disk_bytes": 1234567, "errors": 0}
NOTE = "looking at it from the browser"
REASON = "infra maintenance"


class Browser:
    """One page with everything it said: console messages, uncaught errors and
    CSP violations (a listener installed before the page's own script runs)."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.console: list[ConsoleMessage] = []
        self.page_errors: list[str] = []
        self.native_dialogs: list[str] = []  # alert/confirm/prompt: the console uses none
        page.on("console", lambda m: self.console.append(m))
        page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        page.on("dialog", lambda d: (self.native_dialogs.append(d.message), d.dismiss()))
        page.add_init_script(
            "window.__csp = [];"
            "document.addEventListener('securitypolicyviolation', (e) => window.__csp.push("
            "e.violatedDirective + ' ' + (e.blockedURI || 'inline') + ' ' + e.sourceFile + ':'"
            " + e.lineNumber));"
        )

    def csp_violations(self) -> list[str]:
        found: list[str] = self.page.evaluate("window.__csp")
        return found

    def problems(self) -> list[str]:
        """Console errors and warnings, except Chromium's own network line for
        the requests refused on purpose: 401 for the wrong token, 422 for the
        acknowledgement with a duration that is not one."""
        expected = (("status of 401", "/api/v1/"), ("status of 422", "/ack"))
        out = []
        for m in self.console:
            if m.type not in ("error", "warning"):
                continue
            if m.type == "error" and any(
                code in m.text and url in m.location["url"] for code, url in expected
            ):
                continue
            out.append(f"{m.type}: {m.text} ({m.location})")
        return out


def card(page: Page, rule: str) -> Any:
    return page.locator("li.alert").filter(has=page.locator(".rule").get_by_text(rule, exact=True))


def log_in(page: Page, token: str) -> None:
    page.locator("#token").fill(token)
    page.get_by_role("button", name="Open").click()


def shoot(page: Page, name: str, *, full_page: bool = True) -> None:
    """The page at 1280 and 360 px wide (full height, except under a modal
    dialog, whose backdrop covers the window), and nothing wider than 360."""
    for width in (1280, 360):
        page.set_viewport_size({"width": width, "height": 800})
        page.wait_for_timeout(100)
        page.screenshot(path=ARTIFACTS / f"{name}-{width}.png", full_page=full_page)
        if width == 360:
            wide = page.evaluate("document.documentElement.scrollWidth")
            assert wide <= 360, f"{name}: {wide} px wide at 360"
    page.set_viewport_size({"width": 1280, "height": 800})


def journal_silences(d: Daemon) -> list[dict[str, Any]]:
    return [e for e in d.events() if e["event"] == "silence_created"]


@pytest.mark.skipif(
    not os.access(CHROMIUM, os.X_OK),
    reason=f"{CHROMIUM} is not installed (deploy/setup.sh installs Debian's chromium as root)",
)
def test_web_console_in_chromium(tmp_path: Path) -> None:
    t0 = time.monotonic()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {ARTIFACTS}")
    d = Daemon(tmp_path, RULES, CHANNELS, tokens={"oncall": (TOKEN, "operator")})
    d.set_values(VALUES)
    d.start()
    try:
        evs = d.wait_for(
            lambda e: (
                {x.get("rule") for x in e if x["event"] == "firing"}
                >= {"queue_deep", "disk_bytes_high", "api_latency"}
            ),
            what="three rules firing",
        )
        fps = {e["rule"]: e["alert"] for e in evs if e["event"] == "firing"}
        with sync_playwright() as pw:
            # launch() gives each run a fresh, empty profile (its own --user-data-dir)
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.set_default_timeout(10_000)
                b = Browser(page)
                response = page.goto(d.url + "/")
                assert response is not None and response.status == 200
                assert "script-src 'self';" in response.headers["content-security-policy"]

                # no token yet: the page asks for one and shows nothing else
                expect(page.locator("#login")).to_be_visible()
                expect(page.locator("#app")).to_be_hidden()
                expect(page.locator("#token")).to_be_focused()
                shoot(page, "login")

                # a wrong token is rejected, and the page says so
                log_in(page, "not-the-token")
                expect(page.locator("#error")).to_contain_text("token rejected")
                expect(page.locator("#login")).to_be_visible()

                # the right one opens the alerts view, and the old message goes away
                log_in(page, TOKEN)
                expect(page.locator("#app")).to_be_visible()
                expect(page.locator("#login")).to_be_hidden()
                expect(page.locator("#error")).to_have_text("")
                expect(page.locator("#status")).to_contain_text("v0.1.0")
                expect(page.locator("#live")).to_have_text("● live")
                expect(page.locator("#count")).to_have_text("Alerts (3 of 3)")
                queue, latency, disk = (
                    card(page, "queue_deep"),
                    card(page, "api_latency"),
                    card(page, "disk_bytes_high"),
                )
                expect(queue.locator(".sev")).to_have_text("critical")
                expect(disk.locator(".sev")).to_have_text("warning")
                expect(queue).to_contain_text("queue at 50")
                expect(queue.locator(".fp")).to_have_text(fps["queue_deep"])
                expect(disk.locator(".value")).to_have_text("1234567")  # as it is, not rounded
                # runbook links: http(s) ones are links that open apart; others are not links
                link = queue.get_by_role("link", name="Runbook")
                expect(link).to_have_attribute("href", "https://runbooks.example/queue")
                expect(link).to_have_attribute("target", "_blank")
                expect(link).to_have_attribute("rel", "noopener noreferrer")
                expect(latency.get_by_role("link")).to_have_count(0)
                expect(disk.get_by_role("link")).to_have_count(0)  # none given

                # filter with label matchers, as Alertmanager writes them
                flt = page.locator("#filter")
                for text, shown in (
                    ('team="infra"', {"queue_deep", "api_latency"}),
                    ('{team!="infra"}', {"disk_bytes_high"}),
                    ('team=~"inf.*", severity!~"crit.*"', {"api_latency"}),
                    ("service=api", {"api_latency"}),
                    ('service!="api"', {"queue_deep", "disk_bytes_high"}),  # absent is ""
                ):
                    flt.fill(text)
                    expect(page.locator("li.alert .rule")).to_have_count(len(shown))
                    assert set(page.locator("li.alert .rule").all_text_contents()) == shown, text
                    expect(page.locator("#filter-error")).to_have_text("")
                # a bad matcher says why and keeps the last good filter
                flt.fill('team=~"("')
                expect(page.locator("#filter-error")).to_contain_text("not a valid regex")
                expect(flt).to_have_attribute("aria-invalid", "true")
                expect(page.locator("li.alert")).to_have_count(2)
                # a label chip adds its matcher
                flt.fill("")
                expect(page.locator("li.alert")).to_have_count(3)
                disk.get_by_role("button", name="team=storage").click()
                expect(flt).to_have_value('team="storage"')
                expect(page.locator("li.alert")).to_have_count(1)
                flt.fill("")

                # facets: severity and state, with counts
                warn = page.locator("#facet-severity label", has_text="warning")
                expect(warn.locator(".n")).to_have_text("2")
                warn.locator("input").uncheck()
                expect(page.locator("li.alert")).to_have_count(1)
                expect(page.locator("#count")).to_have_text("Alerts (1 of 3)")
                warn.locator("input").check()
                expect(page.locator("li.alert")).to_have_count(3)

                # group by a label: collapsible groups with their counts
                page.locator("#group-by").select_option("team")
                toggles = page.locator(".group-toggle")
                expect(toggles).to_have_count(2)
                expect(toggles.nth(0)).to_have_text(re.compile(r"team=infra\s+2$"))
                expect(toggles.nth(1)).to_have_text(re.compile(r"team=storage\s+1$"))
                toggles.nth(0).click()
                expect(toggles.nth(0)).to_have_attribute("aria-expanded", "false")
                expect(queue).to_be_hidden()
                expect(disk).to_be_visible()
                shoot(page, "alerts-grouped")
                page.keyboard.press("Enter")  # focus stayed on the toggle: the keyboard opens it
                expect(toggles.nth(0)).to_have_attribute("aria-expanded", "true")
                expect(queue).to_be_visible()
                # filter and grouping are in the address: a reload (or a shared link) keeps them
                flt.fill('severity="warning"')
                expect(page).to_have_url(
                    re.compile(r"#/alerts\?filter=severity%3D%22warning%22&group=team$")
                )
                page.reload()
                expect(page.locator("#filter")).to_have_value('severity="warning"')
                expect(page.locator("#group-by")).to_have_value("team")
                expect(page.locator("li.alert")).to_have_count(2)
                expect(toggles).to_have_count(2)
                page.locator("#filter").fill("")
                page.locator("#group-by").select_option("")
                expect(toggles).to_have_count(0)
                expect(page).to_have_url(re.compile(r"/#/alerts$"))

                # acknowledge in a dialog: focus moves into it, Esc closes it, focus comes back
                ack = queue.get_by_role("button", name="Ack", exact=True)
                ack.click()
                dialog = page.locator("#ack-dialog")
                expect(dialog).to_be_visible()
                expect(page.locator("#ack-note")).to_be_focused()
                expect(page.locator("#ack-what")).to_contain_text("queue_deep team=infra")
                page.keyboard.press("Escape")
                expect(dialog).to_be_hidden()
                expect(ack).to_be_focused()
                page.keyboard.press("Enter")
                expect(dialog).to_be_visible()
                page.locator("#ack-note").fill(NOTE)
                page.keyboard.press("Tab")
                expect(page.locator("#ack-for")).to_be_focused()
                page.keyboard.type("nonsense")
                page.get_by_role("button", name="Acknowledge").click()
                expect(page.locator("#ack-error")).to_contain_text("for:")  # the API's reason
                expect(dialog).to_be_visible()
                page.locator("#ack-for").fill("2h")
                shoot(page, "ack-dialog", full_page=False)
                page.get_by_role("button", name="Acknowledge").click()
                expect(dialog).to_be_hidden()
                expect(queue.locator(".marks")).to_contain_text(f"acked by oncall: {NOTE}")
                expect(queue.get_by_role("button", name="Unack")).to_be_visible()
                evs = d.wait_for(
                    lambda e: any(x["event"] == "acknowledged" for x in e), what="the ack"
                )
                (acked,) = [e for e in evs if e["event"] == "acknowledged"]
                assert acked["alert"] == fps["queue_deep"]
                assert acked["by"] == "oncall" and acked["note"] == NOTE
                ack_until = to_epoch(acked["until"])
                assert ack_until is not None and 7000 < ack_until - time.time() <= 7200

                # silence from an alert: the editor starts with the alert's labels and
                # previews which alerts it will hit
                latency.get_by_role("button", name="Silence").click()
                sdialog = page.locator("#silence-dialog")
                expect(sdialog).to_be_visible()
                rows = page.locator(".matcher-row")
                expect(rows).to_have_count(3)  # rule, service, team
                preview = page.locator("#silence-preview")
                expect(preview).to_have_text("Matches 1 of 3 active alerts.")
                # widen it: drop rule and service, team=~"inf.*"
                for label in ("rule", "service"):
                    row = rows.filter(has=page.locator(f'input.m-label[value="{label}"]'))
                    row.get_by_role("button", name="remove matcher").click()
                expect(rows).to_have_count(1)
                rows.locator(".m-op").select_option("=~")
                rows.locator(".m-value").fill("inf.*")
                expect(preview).to_have_text("Matches 2 of 3 active alerts.")
                expect(page.locator("#silence-preview-list li")).to_have_count(2)
                page.locator("#silence-reason").fill(REASON)
                expect(page.locator("#silence-for")).to_have_value("2h")
                shoot(page, "silence-dialog", full_page=False)
                page.get_by_role("button", name="Create silence").click()
                expect(sdialog).to_be_hidden()
                # the preview's count is what the silence silences
                silenced = page.locator("li.alert .marks", has_text="silenced")
                expect(silenced).to_have_count(2)
                expect(latency.locator(".marks")).to_contain_text("silenced")
                expect(disk.locator(".marks")).to_have_count(0)
                evs = d.wait_for(lambda e: len(journal_silences(d)) == 1, what="the silence")
                (created,) = [e for e in evs if e["event"] == "silence_created"]
                assert created["matchers"] == [{"label": "team", "regex": "inf.*"}]
                assert created["reason"] == REASON and created["created_by"] == "oncall"
                until = to_epoch(created["until"])
                assert until is not None and 7000 < until - time.time() <= 7200
                shoot(page, "alerts")

                # the silences view: reason, matchers, expiry; edit, then expire
                page.get_by_role("link", name="Silences").click()
                expect(page.locator("#silence-count")).to_have_text("Active silences (1)")
                item = page.locator("li.silence")
                expect(item.locator(".reason")).to_have_text(REASON)
                expect(item.locator(".chip")).to_have_text('team=~"inf.*"')
                expect(item.locator(".until")).to_have_text(re.compile(r"^expires in (2h|1\d\dm)$"))
                expect(item).to_contain_text("by oncall")
                expect(item).to_contain_text("matches 2 active alerts")
                shoot(page, "silences")
                item.get_by_role("button", name="Edit").click()
                expect(sdialog).to_be_visible()
                expect(page.locator("#silence-title")).to_have_text("Edit silence")
                expect(rows.locator(".m-value")).to_have_value("inf.*")
                expect(preview).to_have_text("Matches 2 of 3 active alerts.")
                rows.locator(".m-op").select_option("=")
                rows.locator(".m-value").fill("storage")
                expect(preview).to_have_text("Matches 1 of 3 active alerts.")
                page.locator("#silence-reason").fill("storage maintenance")
                page.get_by_role("button", name="Replace silence").click()
                expect(sdialog).to_be_hidden()
                expect(page.locator("li.silence")).to_have_count(1)
                expect(page.locator("li.silence .reason")).to_have_text("storage maintenance")
                evs = d.wait_for(
                    lambda e: (
                        len(journal_silences(d)) == 2
                        and any(x["event"] == "silence_expired" for x in e)
                    ),
                    what="the edit: a new silence, the old one expired",
                )
                new = journal_silences(d)[-1]
                assert new["matchers"] == [{"label": "team", "value": "storage"}]
                (expired,) = [e for e in evs if e["event"] == "silence_expired"]
                assert expired["id"] == created["id"]
                # expire it, confirmed in a dialog
                page.locator("li.silence").get_by_role("button", name="Expire").click()
                expect(page.locator("#confirm-dialog")).to_be_visible()
                expect(page.locator("#confirm-ok")).to_be_focused()
                page.locator("#confirm-ok").click()
                expect(page.locator("#silence-count")).to_have_text("Active silences (0)")
                d.wait_for(
                    lambda e: sum(x["event"] == "silence_expired" for x in e) == 2,
                    what="the expiry",
                )
                page.get_by_role("button", name="Expired").click()
                expect(page.locator("li.silence")).to_have_count(2)
                shoot(page, "silences-expired")

                # live: an alert that fires while the page is open appears without a reload
                page.get_by_role("link", name="Alerts").click()
                expect(page.locator("li.alert")).to_have_count(3)
                expect(page.locator("li.alert .marks", has_text="silenced")).to_have_count(0)
                page.evaluate("window.__same_page = true")
                d.set_values({**VALUES, "errors": 7})
                d.wait_for(
                    lambda e: any(
                        x["event"] == "firing" and x.get("rule") == "conn_errors" for x in e
                    ),
                    what="conn_errors firing",
                )
                conn = card(page, "conn_errors")
                expect(conn).to_be_visible(timeout=10_000)  # the poll is every 60 s
                expect(conn).to_contain_text("7 connection errors")
                expect(page.locator("#count")).to_have_text("Alerts (4 of 4)")
                assert page.evaluate("window.__same_page") is True

                # the overview: counts now; the volume chart only where the daemon
                # keeps a history index (GET /api/v1/history/counts), else left out
                page.get_by_role("link", name="Overview").click()
                expect(page.locator('[data-tile="firing"] .tile-n')).to_have_text("4")
                expect(page.locator('[data-tile="unacknowledged"] .tile-n')).to_have_text("3")
                expect(page.locator("#noisy-list li")).to_have_count(4)
                counts = httpx.get(
                    d.url + "/api/v1/history/counts?by=hour", headers=AUTH, timeout=5
                )
                if counts.status_code == 404:
                    expect(page.locator("#volume")).to_be_hidden()
                else:
                    assert counts.status_code == 200, counts.text
                    expect(page.locator("#volume svg.chart")).to_be_visible()
                    assert page.locator("#volume rect.bar").count() >= 24
                shoot(page, "overview")

                # rules: each with its state now and its health
                page.get_by_role("link", name="Rules").click()
                expect(page.locator("li.rule-item")).to_have_count(4)
                rule = page.locator('li.rule-item[data-rule="queue_deep"]')
                expect(rule.locator(".state")).to_have_text("firing 1")
                expect(rule.locator(".expr")).to_have_text("app.queue > fixed.limit")
                expect(rule.locator(".health")).to_have_text("healthy")
                page.locator("#rule-find").fill("disk")
                expect(page.locator("li.rule-item")).to_have_count(1)
                page.locator("#rule-find").fill("")
                shoot(page, "rules")

                # collectors and channels
                page.get_by_role("link", name="System").click()
                expect(page.locator('tr[data-collector="app"] .badge')).to_have_text("up")
                expect(page.locator('tr[data-collector="fixed"] .badge')).to_have_text("up")
                archive = page.locator('tr[data-channel="archive"]')
                expect(archive.locator(".badge")).to_have_text("closed")
                expect(archive.locator("td.num").nth(1)).not_to_have_text("0")  # sent
                expect(page.locator("#daemon")).to_contain_text("ready")
                shoot(page, "system")

                assert b.native_dialogs == []  # no prompt(), confirm() or alert()
                assert b.page_errors == []
                assert b.problems() == []
                assert b.csp_violations() == []
                expect(page.locator("#error")).to_have_text("")

                # dark mode follows the system
                dark = browser.new_page(
                    color_scheme="dark", viewport={"width": 1280, "height": 800}
                )
                dark.goto(d.url + "/")
                log_in(dark, TOKEN)
                expect(dark.locator("li.alert")).to_have_count(4)

                bg = dark.evaluate("getComputedStyle(document.body).backgroundColor")
                assert bg == "rgb(18, 21, 27)", bg
                shoot(dark, "alerts-dark")
                dark.close()

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
    assert time.monotonic() - t0 < 150


MANY_RULES = """
group: app
interval: 1s
rules:
  - id: disk_full
    each: app.disks
    expr: it.used > 90
    severity: warning
"""
MANY = 10_000


@pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason=f"{CHROMIUM} is not installed")
def test_console_first_load_with_10000_alerts(tmp_path: Path) -> None:
    """Issue 17's budget: the console's first load with 10,000 active alerts in at
    most a second (from the token's submit to the list drawn; the best of three
    fresh pages, as the machine is shared), and a filter over them that answers
    at once."""
    d = Daemon(tmp_path, MANY_RULES, tokens={"oncall": (TOKEN, "operator")})
    disks = [{"labels": {"disk": f"d{i:05}", "team": f"t{i % 5}"}, "used": 95} for i in range(MANY)]
    d.set_values({"disks": disks})
    d.start()
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                r = httpx.get(d.url + "/api/v1/alerts?state=firing", headers=AUTH, timeout=10)
                if r.status_code == 200 and len(r.json()["alerts"]) == MANY:
                    break
            except httpx.TransportError:  # the API is not listening yet
                pass
            time.sleep(0.5)
        else:
            raise AssertionError("10,000 alerts did not fire")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            try:
                loads = []
                for i in range(3):
                    page = browser.new_page(viewport={"width": 1280, "height": 800})
                    b = Browser(page)
                    page.goto(d.url + "/")
                    page.locator("#token").fill(TOKEN)
                    t0 = time.monotonic()
                    page.get_by_role("button", name="Open").click()
                    expect(page.locator("#count")).to_have_text(
                        f"Alerts ({MANY} of {MANY})", timeout=20_000
                    )
                    expect(page.locator("li.alert").first).to_be_visible()
                    loads.append(time.monotonic() - t0)
                    assert b.page_errors == [] and b.problems() == []
                    if i < 2:
                        page.close()
                t1 = time.monotonic()
                page.locator("#filter").fill('disk="d04242"')
                expect(page.locator("li.alert")).to_have_count(1)
                filtered = time.monotonic() - t1
                print(
                    f"\nfirst load with {MANY} alerts: "
                    + ", ".join(f"{x * 1000:.0f}" for x in loads)
                    + f" ms; filter: {filtered * 1000:.0f} ms"
                )
                assert min(loads) <= 1.0, loads
                assert filtered <= 0.5, filtered
            finally:
                browser.close()
    finally:
        assert d.stop() == 0
