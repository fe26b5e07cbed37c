"""engine/daemon/watch_paths.py: configured paths resolved as the kernel does, noting every
name on the way (what the watcher must watch to see a deploy swap them)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.daemon.watch_paths import make_plan, resolve


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "releases" / "v1" / "rules").mkdir(parents=True)
    (tmp_path / "releases" / "v1" / "vigil.yaml").write_text("")
    os.symlink("releases/v1", tmp_path / "current")
    os.symlink(tmp_path / "current" / "vigil.yaml", tmp_path / "vigil.yaml")  # absolute
    os.symlink("../current/rules/..", tmp_path / "releases" / "up")  # `..` after a link
    os.symlink("loop", tmp_path / "loop")
    return tmp_path


@pytest.mark.parametrize(
    "rel",
    ["current/rules", "vigil.yaml", "current/./rules/../vigil.yaml", "releases/up", "loop",
     "current/missing/deeper", "current"],
)  # fmt: skip
def test_resolves_as_realpath(tree: Path, rel: str) -> None:
    names: set[str] = set()
    assert resolve(str(tree / rel), names) == os.path.realpath(tree / rel)


def test_notes_every_name_on_the_way(tree: Path) -> None:
    names: set[str] = set()
    resolve(str(tree / "vigil.yaml"), names)
    # the link itself, the link it points through, and the target's names
    for n in ("vigil.yaml", "current", "releases", "releases/v1", "releases/v1/vigil.yaml"):
        assert str(tree / n) in names, n


def test_plan_watches_the_folders_holding_those_names(tree: Path) -> None:
    plan = make_plan([str(tree / "current" / "rules"), str(tree / "vigil.yaml")])
    real_rules = str(tree / "releases" / "v1" / "rules")
    assert plan.roots == (real_rules,)
    assert (real_rules, True) in plan.watches  # recursively
    # where `current` is swapped, and where `rules` would be renamed over
    assert (str(tree), False) in plan.watches
    assert (str(tree / "releases" / "v1"), False) in plan.watches
    assert (real_rules, False) not in plan.watches  # the recursive watch hears it


def test_a_folder_made_again_is_another_plan(tree: Path) -> None:
    rules = tree / "releases" / "v1" / "rules"
    before = make_plan([str(rules)])
    os.rename(rules, tree / "old")
    rules.mkdir()
    assert make_plan([str(rules)]) != before  # another inode under the same name
