"""The report of a fixed journal: golden Markdown, CSV and JSON; the JSON valid
against the published schema; the same bytes every time."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest

from engine.config.schema import schema
from engine.report.build import make_report, render
from tests.unit.report import fixed

pytestmark = pytest.mark.timeout(60)

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    d = tmp_path_factory.mktemp("journal")
    fixed.write(str(d))
    return make_report(str(d), fixed.OPTIONS, fixed.INTERVALS)


@pytest.mark.parametrize("fmt", ["md", "csv", "json"])
def test_golden(report: dict, fmt: str) -> None:
    got = render(report, fmt)
    path = GOLDEN / f"fixed.{fmt}"
    if os.environ.get("VIGIL_UPDATE_GOLDEN"):
        path.write_bytes(got)
    assert got == path.read_bytes(), f"{path} differs; VIGIL_UPDATE_GOLDEN=1 rewrites it"


def test_json_validates_against_the_published_schema(report: dict) -> None:
    doc = json.loads(render(report, "json"))
    jsonschema.Draft7Validator(schema("report")).validate(doc)
    published = json.loads(
        (Path(__file__).parents[3] / "schemas" / "report.schema.json").read_text()
    )
    assert published == schema("report")


def test_figures_of_the_fixed_journal(report: dict) -> None:
    rules = {r["name"]: r for r in report["rules"]}
    http = rules["http_down"]
    # three incidents, acknowledged after 300 s and 60 s; resolved after 1800, 600, 5400 s
    assert (http["incidents"], http["acknowledged"], http["open"]) == (3, 2, 0)
    assert http["mtta"] == {"mean": 180.0, "median": 180.0, "p95": 300.0}
    assert http["mttr"] == {"mean": 2600.0, "median": 1800.0, "p95": 5400.0}
    assert http["time_firing_pct"] == round(100 * 7800 / (48 * 3600), 2)
    assert (http["escalations"], http["notifications"]) == (1, 7)
    # 02:00 and 03:00 are off-hours and sleep-hours; the escalation at 14:16 neither
    assert (http["off_hours"], http["sleep_hours"]) == (4, 4)
    cpu = rules["cpu_high"]
    assert (cpu["incidents"], cpu["notification_failures"], cpu["notifications"]) == (4, 1, 3)
    assert rules["disk_full"]["open"] == 1 and rules["disk_full"]["mttr"] is None
    assert report["totals"]["actionable_rate"] == round(2 / 8, 4)
    assert report["flapping"] == [{"rule": "cpu_high", "flaps": 1, "previous": 0, "change": 1}]
    # disk_full fired once in the previous period too
    assert {n["rule"]: n["previous"] for n in report["noisiest"]} == {
        "cpu_high": 0,
        "http_down": 0,
        "disk_full": 1,
    }
    assert {r["name"] for r in report["routes"]} == {"#0", "#1"}
    assert {r["name"] for r in report["teams"]} == {"ops", "web"}
    # the shop was down 7,800 s; the 03:00-04:00 maintenance hour (both days) covers
    # the 600 s outage at 03:01 and is left out of the time observed
    (target,) = report["availability"]["targets"]
    assert target["down_seconds"] == 7200.0
    assert target["observed_seconds"] == 46 * 3600.0
    assert target["availability_pct"] == round(100 * (1 - 7200 / (46 * 3600)), 3)


def test_same_journal_same_bytes(tmp_path: Path, report: dict) -> None:
    fixed.write(str(tmp_path))
    again = make_report(str(tmp_path), fixed.OPTIONS, fixed.INTERVALS)
    for fmt in ("html", "md", "csv", "json"):
        assert render(again, fmt) == render(report, fmt)
