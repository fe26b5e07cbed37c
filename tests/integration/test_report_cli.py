"""`vigil report` as an operator runs it: the real command over a real journal and
config (time intervals from a channel file, the availability rule found through
its http collector); the HTML opened in headless Chromium, screenshotted wide,
narrow and printed, with no request leaving the file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from playwright.sync_api import Request, sync_playwright

from engine.config.schema import schema
from tests.integration.test_web_ui import CHROMIUM, CHROMIUM_ARGS  # nothing may reach out
from tests.unit.report import fixed

pytestmark = pytest.mark.timeout(180)

VIGIL = str(Path(sys.executable).with_name("vigil"))
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "report"
UNTIL = "2026-12-03T00:00:00Z"

CHANNELS = """\
channels:
  - {name: ops, type: log}
routes:
  - {match: {team: web}, channels: [ops]}
  - {match: {team: ops}, channels: [ops]}
time_intervals:
  - {name: off_hours, times: ["00:00-08:00", "18:00-24:00"]}
  - {name: sleep_hours, times: ["00:00-07:00"]}
  - {name: maintenance, times: ["03:00-04:00"]}
"""
RULES = """\
group: checks
interval: 30s
rules:
  - {id: http_down, expr: "shop.up < 1", labels: {team: web}}
  - {id: cpu_high, expr: "host.cpu > 90", labels: {team: ops}}
  - {id: disk_full, expr: "host.disk > 95", labels: {team: ops}}
"""
CONFIG = """\
rules: [rules]
channels: [channels]
data_dir: data
collectors:
  - {name: shop, type: http, url: "http://127.0.0.1:9/health"}
  - {name: host, type: static, values: {cpu: 1, disk: 1}}
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "rules").mkdir()
    (tmp_path / "channels").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(RULES)
    (tmp_path / "channels" / "c.yaml").write_text(CHANNELS)
    (tmp_path / "vigil.yaml").write_text(CONFIG)
    fixed.write(str(tmp_path / "data"))
    return tmp_path


def vigil(site: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([VIGIL, *args], cwd=site, capture_output=True, timeout=60)


def test_report_command_is_deterministic_and_valid(site: Path) -> None:
    outs = []
    for _ in range(2):
        p = vigil(site, "report", "--since", "2d", "--until", UNTIL, "--format", "json")
        assert p.returncode == 0, p.stderr.decode()
        outs.append(p.stdout)
    assert outs[0] == outs[1]
    doc = json.loads(outs[0])
    jsonschema.Draft7Validator(schema("report")).validate(doc)
    # from the config: the intervals by their default names, the http collector's rule
    assert doc["interruptions"]["off_hours"] == {"interval": "off_hours", "count": 7}
    assert doc["availability"]["rules"] == ["http_down"]
    assert doc["availability"]["maintenance"] == "maintenance"
    # -o picks the format from the extension
    p = vigil(site, "report", "--since", "2d", "--until", UNTIL, "-o", "r.csv")
    assert p.returncode == 0 and (site / "r.csv").read_text().startswith("rule,incidents,")
    p = vigil(site, "schema", "report")
    assert json.loads(p.stdout) == schema("report")


def test_report_refuses_bad_arguments_in_one_line(site: Path) -> None:
    for args, words in (
        (("--off-hours", "nights"), "no such time interval"),
        (("--since", "yesterday"), "neither a duration"),
        (("--top", "-1"), "expected 0 or more"),
        (
            ("--since", "1h", "--until", "2026-12-01T00:00:00Z", "--data-dir", "nowhere"),
            "no such journal",
        ),
    ):
        p = vigil(site, "report", *args)
        err = p.stderr.decode()
        assert p.returncode != 0 and words in err, err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason=f"{CHROMIUM} is not installed")
def test_html_report_in_chromium(site: Path) -> None:
    p = vigil(site, "report", "--since", "2d", "--until", UNTIL, "-o", "report.html")
    assert p.returncode == 0, p.stderr.decode()
    html = (site / "report.html").read_text()
    assert "<script" not in html and "http://" not in html.replace("http://127.0.0.1:9", "")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    requests: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(
                viewport={"width": 1280, "height": 900}, java_script_enabled=False
            )
            page.set_default_timeout(20_000)

            def seen(r: Request) -> None:
                requests.append(r.url)

            page.on("request", seen)
            page.goto((site / "report.html").as_uri())
            assert requests == [(site / "report.html").as_uri()]  # self-contained
            assert page.locator("svg").count() == 3
            assert page.locator("svg rect.bar").count() > 3
            assert page.locator("h2").all_inner_texts()[:3] == [
                "Rules",
                "Routes",
                "Teams (label team)",
            ]
            rows = page.locator("table").first.locator("tbody tr").all_inner_texts()
            assert [r.split("\t")[0] for r in rows] == ["cpu_high", "disk_full", "http_down"]
            page.screenshot(path=str(ARTIFACTS / "report-1280.png"), full_page=True)
            page.set_viewport_size({"width": 360, "height": 800})
            # narrow: the tables scroll inside their box, the page itself does not
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 360, width
            page.screenshot(path=str(ARTIFACTS / "report-360.png"), full_page=True)
            page.set_viewport_size({"width": 1123, "height": 794})  # A4 landscape at 96 dpi
            page.emulate_media(media="print")
            page.screenshot(path=str(ARTIFACTS / "report-print.png"), full_page=True)
            pdf = page.pdf(path=str(ARTIFACTS / "report.pdf"), format="A4", landscape=True)
            assert pdf[:5] == b"%PDF-" and len(pdf) > 5000
        finally:
            browser.close()
    print(f"\nscreenshots: {ARTIFACTS}")
