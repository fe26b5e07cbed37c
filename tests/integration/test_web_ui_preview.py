"""The web console's "Preview notification" dialog (issue 17.5) in a real
headless Chromium against `vigil run` as a real process, a real webhook
receiver and a real file channel: opened from an alert and from the system
view's channels, it shows what POST /api/v1/channels/{name}/preview answers for
the same alert and channel (the subject and body of the channel's templates,
the HTTP request's target, headers and body), marked "not sent", and nothing is
sent (the receiver sees no request, no file is written, the journal has no
delivery). A viewer token, which the endpoint refuses, is not offered it.
Screenshots at 1280 px and 360 px.

Helpers (browser, log in, screenshots) are test_web_ui.py's.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.integration.daemon import Daemon
from tests.integration.receivers import Receiver
from tests.integration.test_web_ui import (
    ARTIFACTS,
    AUTH,
    CHROMIUM,
    CHROMIUM_ARGS,
    TOKEN,
    Browser,
    card,
    log_in,
    shoot,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

VIEWER = "vigil-ui-viewer-token-52be90"
RULES = """
group: app
interval: 100ms
rules:
  - id: queue_deep
    expr: app.queue > 10
    severity: critical
    labels: {team: infra}
    annotations: {summary: "queue at {{ value }}"}
  - id: conn_errors
    expr: app.errors > 0
    severity: warning
    labels: {team: web}
"""
# no route takes an alert to either channel: whatever reaches them was sent by a preview
CHANNELS = """
channels:
  - {{name: hook, type: webhook, url: "{url}/hook"}}
  - name: archive
    type: file
    path: archive.jsonl
    templates:
      title: "[{{{{ severity|upper }}}}] {{{{ rule }}}} on team {{{{ labels.team }}}}"
      body: "{{{{ annotations.summary }}}} (value {{{{ value }}}})"
routes:
  - match: {{team: nobody}}
    channels: [hook, archive]
"""


def api_preview(d: Daemon, channel: str, body: dict[str, Any]) -> dict[str, Any]:
    r = httpx.post(
        f"{d.url}/api/v1/channels/{channel}/preview", json=body, headers=AUTH, timeout=10
    )
    assert r.status_code == 200, r.text
    got: dict[str, Any] = r.json()
    return got


def the_line(text: str) -> dict[str, Any]:
    """The file channel's line without its `ts` (the time of the preview)."""
    record: dict[str, Any] = json.loads(text)
    record.pop("ts")
    return record


def shows_hook(page: Page, want: dict[str, Any]) -> None:
    out = page.locator("#preview-out")
    (w,) = want["wire"]
    expect(out.locator(".w-body")).to_have_text(w["body"])
    expect(out.locator(".w-target")).to_have_text(w["target"])
    headers = "\n".join(f"{k}: {v}" for k, v in w["headers"])
    expect(out.locator(".w-headers")).to_have_text(headers)
    # the webhook sends JSON, not rendered text: no title or body shown
    expect(out.locator(".p-title")).to_have_count(0)


@pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason=f"{CHROMIUM} is not installed")
def test_preview_dialog_shows_what_the_api_renders_and_sends_nothing(tmp_path: Path) -> None:
    t0 = time.monotonic()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with Receiver() as rx:
        d = Daemon(
            tmp_path,
            RULES,
            CHANNELS.format(url=rx.url),
            tokens={"oncall": (TOKEN, "operator"), "watcher": (VIEWER, "viewer")},
        )
        d.set_values({"queue": 50, "errors": 3})
        d.start()
        try:
            evs = d.wait_for(
                lambda e: (
                    {"queue_deep", "conn_errors"}
                    <= {x.get("rule") for x in e if x["event"] == "firing"}
                ),
                what="two rules firing",
            )
            fp = next(e["alert"] for e in evs if e.get("rule") == "queue_deep")
            hook = api_preview(d, "hook", {"alert": fp})
            archive = api_preview(d, "archive", {"alert": fp})
            assert archive["notification"]["title"] == "[CRITICAL] queue_deep on team infra"
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
                    queue = card(page, "queue_deep")
                    expect(queue).to_be_visible()

                    # from an alert: the alert chosen, the channel left to choose
                    button = queue.get_by_role("button", name="Preview", exact=True)
                    button.click()
                    dialog = page.locator("#preview-dialog")
                    expect(dialog).to_be_visible()
                    expect(page.locator("#preview-not-sent")).to_contain_text("Not sent.")
                    expect(page.locator("#preview-channel")).to_be_focused()
                    expect(page.locator("#preview-alert")).to_have_value(fp)
                    page.locator("#preview-channel").select_option("hook")
                    expect(page.locator("#preview-what")).to_have_text(
                        "hook (webhook): 1 alert, firing"
                    )
                    shows_hook(page, hook)
                    page.locator("#preview-channel").select_option("archive")
                    out = page.locator("#preview-out")
                    expect(out.locator(".p-title")).to_have_text(archive["notification"]["title"])
                    expect(out.locator(".p-body")).to_have_text(archive["notification"]["body"])
                    expect(out.locator(".w-target")).to_have_text(archive["wire"][0]["target"])
                    line = out.locator(".w-body").text_content()
                    assert line is not None
                    assert the_line(line) == the_line(archive["wire"][0]["body"])
                    shoot(page, "preview-alert", full_page=False)
                    # the resolve, from the keyboard
                    page.locator("#preview-resolved").focus()
                    page.keyboard.press("Space")
                    expect(page.locator("#preview-what")).to_have_text(
                        "archive (file): 1 alert, resolved"
                    )
                    page.keyboard.press("Escape")
                    expect(dialog).to_be_hidden()
                    expect(button).to_be_focused()

                    # from the system view's channels: the channel chosen, the test
                    # notification until an alert is picked
                    page.get_by_role("link", name="System").click()
                    from_system = page.get_by_role("button", name="Preview hook")
                    from_system.click()
                    expect(dialog).to_be_visible()
                    expect(page.locator("#preview-channel")).to_have_value("hook")
                    expect(page.locator("#preview-alert")).to_be_focused()
                    expect(page.locator("#preview-what")).to_have_text(
                        "hook (webhook): the test notification"
                    )
                    page.locator("#preview-alert").select_option(fp)
                    shows_hook(page, hook)
                    shoot(page, "preview-system", full_page=False)
                    page.get_by_role("button", name="Close").click()
                    expect(dialog).to_be_hidden()
                    expect(from_system).to_be_focused()
                    shoot(page, "system-preview-column")

                    assert b.page_errors == [] and b.problems() == []
                    assert b.csp_violations() == []
                    expect(page.locator("#error")).to_have_text("")

                    # a viewer: the endpoint refuses it, and the console does not offer it
                    r = httpx.post(
                        f"{d.url}/api/v1/channels/hook/preview",
                        json={"alert": fp},
                        headers={"Authorization": f"Bearer {VIEWER}"},
                        timeout=10,
                    )
                    assert r.status_code == 403, r.text
                    viewer = browser.new_page(viewport={"width": 1280, "height": 800})
                    viewer.set_default_timeout(10_000)
                    viewer.goto(d.url + "/")
                    log_in(viewer, VIEWER)
                    expect(card(viewer, "queue_deep")).to_be_visible()
                    # nor any other action its token may not take (each answers 403)
                    for name in ("Preview", "Ack", "Unack", "Silence"):
                        expect(viewer.get_by_role("button", name=name, exact=True)).to_have_count(0)
                    viewer.get_by_role("link", name="Silences").click()
                    expect(viewer.locator("#silence-count")).to_be_visible()
                    expect(viewer.locator("#new-silence")).to_be_hidden()
                    expect(viewer.get_by_role("button", name="Expire", exact=True)).to_have_count(0)
                    viewer.get_by_role("link", name="System").click()
                    expect(viewer.locator('tr[data-channel="hook"]')).to_be_visible()
                    expect(viewer.locator("button.preview-channel")).to_have_count(0)
                    viewer.close()

                    # dark mode follows the system, the dialog too
                    dark = browser.new_page(
                        color_scheme="dark", viewport={"width": 1280, "height": 800}
                    )
                    dark.set_default_timeout(10_000)
                    dark.goto(d.url + "/")
                    log_in(dark, TOKEN)
                    card(dark, "queue_deep").get_by_role("button", name="Preview").click()
                    dark.locator("#preview-channel").select_option("archive")
                    expect(dark.locator("#preview-out .p-title")).to_have_text(
                        archive["notification"]["title"]
                    )
                    bg = dark.evaluate(
                        "getComputedStyle(document.getElementById('preview-dialog')).backgroundColor"
                    )
                    assert bg == "rgb(27, 31, 39)", bg  # --card of the dark scheme
                    shoot(dark, "preview-dark", full_page=False)
                    dark.close()
                finally:
                    browser.close()
            # nothing was sent: the receiver saw nothing, no line was written, no delivery journaled
            time.sleep(1)  # a send the previews had started would have arrived by now
            assert rx.requests == []
            assert not (d.root / "archive.jsonl").exists()
            events = d.events()
            assert not [e for e in events if e["event"] in ("notified", "notify_failed")]
            previews = [e for e in events if e.get("action") == "channel_preview"]
            assert len(previews) >= 6 and {e["by"] for e in previews} == {"oncall"}
        finally:
            assert d.stop() == 0
    assert time.monotonic() - t0 < 150
