"""Every invalid fixture in tests/testdata/bad/ gives exactly the problems it
declares: file, line, column, field and message.

A fixture file lists its expected problems in trailing `# expect: LINE:COL: ...`
comments; a fixture folder (for problems across files) has an expect.txt.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.config.build import ConfigLoader

ROOT = Path(__file__).resolve().parents[3]
BAD = "tests/testdata/bad"
CONTEXT = "tests/testdata/context/vigil.yaml"
FIXTURES = sorted(os.listdir(ROOT / BAD))


def expected(name: str) -> list[str]:
    path = ROOT / BAD / name
    if path.is_dir():
        return (path / "expect.txt").read_text().splitlines()
    lines = path.read_bytes().decode("utf-8", "replace").splitlines()
    prefix = "# expect: "
    return [f"{BAD}/{name}:{ln[len(prefix) :]}" for ln in lines if ln.startswith(prefix)]


def test_there_are_at_least_40_fixtures() -> None:
    assert len(FIXTURES) >= 40


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_gives_its_exact_problems(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # messages name files as given on the command line
    monkeypatch.delenv("VIGIL_TEST_SURELY_UNSET_VAR", raising=False)
    want = expected(name)
    assert want, f"{name} declares no expected problem"
    result = ConfigLoader().load(CONTEXT, [f"{BAD}/{name}"])
    assert result.config is None
    assert [p.format() for p in result.problems] == want


def test_an_empty_file_names_its_first_position(tmp_path: Path) -> None:
    f = tmp_path / "empty.yaml"
    f.write_bytes(b"")
    result = ConfigLoader().load(None, [str(f)])
    assert [p.format() for p in result.problems] == [f"{f}:1:1: file is empty; expected a mapping"]


def test_an_oversized_file_is_refused_before_parsing(tmp_path: Path) -> None:
    f = tmp_path / "big.yaml"
    f.write_text("group: g\nrules: []\n# " + "x" * (1024 * 1024) + "\n")
    result = ConfigLoader().load(None, [str(f)])
    assert [p.format() for p in result.problems] == [
        f"{f}:1:1: file is {f.stat().st_size} bytes; the limit is 1048576"
    ]
