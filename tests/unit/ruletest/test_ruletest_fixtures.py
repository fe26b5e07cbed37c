"""The deliberately failing rule tests in tests/testdata/ruletests/ give exactly
the output in their `.out` file: exit code, stdout (file:line, simulated time,
the diff) and stderr (file:line:col of invalid test files).

Regenerate after an intended change of the output with
`VIGIL_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/ruletest/test_ruletest_fixtures.py`
and read the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.cli.main import main

ROOT = Path(__file__).resolve().parents[3]
DIR = "tests/testdata/ruletests"
SUPPORT = {"rules.yaml", "channels.yaml"}  # what the fixtures load, not fixtures
FIXTURES = sorted(p.stem for p in (ROOT / DIR).glob("*.yaml") if p.name not in SUPPORT)
EXIT = {
    "wrong_state": 1,
    "wrong_labels": 1,
    "wrong_annotation": 1,
    "wrong_notification": 1,
    "invalid_schema": 2,
    "unknown_rule_file": 2,
    "unknown_rule": 2,
    "bad_series": 2,
    "invalid_yaml": 2,
    "rules_do_not_load": 2,
    "template_fails": 1,
}


def run(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code = main(["test", *args])
    out = capsys.readouterr()
    return f"exit: {code}\n--- stdout\n{out.out}--- stderr\n{out.err}"


def test_every_fixture_has_an_exit_code() -> None:
    assert sorted(EXIT) == FIXTURES


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_output_is_exact(
    name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)  # messages name files as given on the command line
    got = run(capsys, f"{DIR}/{name}.yaml")
    golden = ROOT / DIR / f"{name}.out"
    if os.environ.get("VIGIL_UPDATE_GOLDEN"):
        golden.write_text(got)
    assert got == golden.read_text()
    assert got.startswith(f"exit: {EXIT[name]}\n")


def test_columns_point_at_the_bad_series_term(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)
    lines = (ROOT / DIR / "bad_series.yaml").read_text().splitlines()
    out = run(capsys, f"{DIR}/bad_series.yaml")
    for term in ("20+x3", "9y"):
        msg = next(m for m in out.splitlines() if f"'{term}'" in m)
        _, line, col = msg.split(":")[:3]
        assert lines[int(line) - 1][int(col) - 1 :].startswith(term), msg


def test_many_files_invalid_wins_and_failures_are_still_reported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)
    out = run(capsys, f"{DIR}/wrong_state.yaml", f"{DIR}/bad_series.yaml", "rules/tests")
    assert out.startswith("exit: 2\n")
    assert f'{DIR}/wrong_state.yaml:9: FAIL "queue deep fires after 2m" at 2m' in out
    assert f"{DIR}/bad_series.yaml:5:28:" in out
    assert "rules/tests/host.yaml: " in out and "tests passed" in out


@pytest.mark.parametrize("formats", [["--format", "text", "-v"], ["--format", "json"]])
def test_files_in_several_processes_give_the_same_output(
    formats: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    files = [f"{DIR}/{name}.yaml" for name in FIXTURES] + ["rules/tests"]
    serial = run(capsys, "-j", "1", *formats, *files)
    assert run(capsys, "-j", "3", *formats, *files) == serial
    assert serial.startswith("exit: 2\n")
