"""The pre-commit hooks, run by the real `pre-commit` in a temporary rules repository.

The hooks repository is a temporary git repository holding this checkout's
.pre-commit-hooks.yaml (pre-commit clones it by path and `rev`, without network);
the rules repository is the shipped example configuration. A good rule change is
committed; a bad one is blocked by `git commit`, with the file:line of the problem
in the output. The `-system` hooks run the vigil of this virtualenv (on PATH), so
nothing is installed; the `repo: local` form of docs/rules-as-code.md is run too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.checkout import copy_source

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PRE_COMMIT = BIN / "pre-commit"

VIGIL_YAML = """\
rules: [rules]
channels: [channels]
collectors:
  - {name: system, type: system}
  - {name: self, type: http, url: "http://127.0.0.1:9595/health"}
"""

LOCAL_CONFIG = """\
repos:
  - repo: local
    hooks:
      - {id: vigil-validate, name: vigil validate, entry: vigil validate, language: system,
         types: [yaml], pass_filenames: false}
      - {id: vigil-test, name: vigil test, entry: vigil test rules/tests, language: system,
         types: [yaml], pass_filenames: false}
"""


def sh(
    cwd: Path, *cmd: str, env: dict[str, str], ok: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if ok and proc.returncode != 0:
        raise AssertionError(f"{cmd} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    if shutil.which("git") is None or not PRE_COMMIT.exists():
        pytest.skip("needs git and pre-commit (pip install -e '.[test]')")
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text("[init]\n\tdefaultBranch = main\n")
    return {
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(tmp_path),
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-cache"),
        "GIT_CONFIG_GLOBAL": str(gitconfig),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "rules",
        "GIT_AUTHOR_EMAIL": "rules@example.org",
        "GIT_COMMITTER_NAME": "rules",
        "GIT_COMMITTER_EMAIL": "rules@example.org",
        "NO_COLOR": "1",
        "LANG": "C.UTF-8",
    }


def hooks_repo(tmp_path: Path, env: dict[str, str]) -> tuple[Path, str]:
    repo = tmp_path / "vigil-hooks"
    repo.mkdir()
    shutil.copy(ROOT / ".pre-commit-hooks.yaml", repo)
    sh(repo, "git", "init", "-q", env=env)
    sh(repo, "git", "add", "-A", env=env)
    sh(repo, "git", "commit", "-q", "-m", "hooks", env=env)
    rev = sh(repo, "git", "rev-parse", "HEAD", env=env).stdout.strip()
    return repo, rev


def rules_repo(tmp_path: Path, env: dict[str, str], config: str) -> Path:
    repo = tmp_path / "rules-repo"
    (repo / "rules" / "tests").mkdir(parents=True)
    (repo / "channels").mkdir()
    for f in (ROOT / "rules").glob("*.yaml"):
        shutil.copy(f, repo / "rules")
    for f in (ROOT / "rules" / "tests").glob("*.yaml"):
        shutil.copy(f, repo / "rules" / "tests")
    shutil.copy(ROOT / "channels" / "default.yaml", repo / "channels")
    (repo / "vigil.yaml").write_text(VIGIL_YAML)
    (repo / ".pre-commit-config.yaml").write_text(config)
    sh(repo, "git", "init", "-q", env=env)
    sh(repo, str(PRE_COMMIT), "install", env=env)
    sh(repo, "git", "add", "-A", env=env)
    first = sh(repo, "git", "commit", "-m", "example rules", env=env)
    assert "vigil test" in first.stdout + first.stderr and "Passed" in first.stdout + first.stderr
    return repo


def edit(repo: Path, file: str, old: str, new: str, env: dict[str, str]) -> None:
    path = repo / file
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    sh(repo, "git", "add", file, env=env)


def commit(repo: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return sh(repo, "git", "commit", "-m", "change", env=env, ok=False)


def line_of(repo: Path, file: str, text: str) -> int:
    lines = (repo / file).read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def test_hooks_from_the_hooks_repository_pass_a_good_change_and_block_bad_ones(
    tmp_path: Path, env: dict[str, str]
) -> None:
    hooks, rev = hooks_repo(tmp_path, env)
    config = (
        f"repos:\n  - repo: {hooks}\n    rev: {rev}\n    hooks:\n"
        "      - id: vigil-validate-system\n      - id: vigil-test-system\n"
    )
    repo = rules_repo(tmp_path, env, config)

    # a good change: a lower swap threshold; every test still holds
    edit(repo, "rules/host.yaml", "system.swap_percent > 50", "system.swap_percent > 40", env)
    good = commit(repo, env)
    assert good.returncode == 0, good.stdout + good.stderr
    assert (good.stdout + good.stderr).count("Passed") == 2

    # a bad change that validation catches: the commit is blocked at file:line:col
    edit(repo, "rules/host.yaml", "for: 5m", "for: 5 minutes", env)
    bad = commit(repo, env)
    out = bad.stdout + bad.stderr
    assert bad.returncode != 0
    line = line_of(repo, "rules/host.yaml", "for: 5 minutes")
    assert f"rules/host.yaml:{line}:10: rules[3].for: expected a duration such as" in out, out
    assert "vigil validate" in out and "Failed" in out
    assert sh(repo, "git", "log", "--oneline", env=env).stdout.count("\n") == 2  # not committed
    edit(repo, "rules/host.yaml", "for: 5 minutes", "for: 5m", env)

    # a bad change that a rule test catches: the failing expectation's file:line
    edit(repo, "rules/host.yaml", "system.cpu_percent > 90", "system.cpu_percent > 96", env)
    bad = commit(repo, env)
    out = bad.stdout + bad.stderr
    assert bad.returncode != 0
    assert "vigil validate" in out and "Passed" in out  # it is valid, but wrong
    line = line_of(repo, "rules/tests/host.yaml", "{rule: host_cpu_high, state: pending, labels")
    assert f'rules/tests/host.yaml:{line}: FAIL "cpu above 90 is pending' in out, out
    assert "- {rule: host_cpu_high, state: pending" in out


def test_the_python_hooks_install_vigil_and_validate(tmp_path: Path, env: dict[str, str]) -> None:
    """vigil-validate / vigil-test (`language: python`): pre-commit pip-installs the hooks
    repository (here a copy of this checkout) into its own virtualenv, dependencies from
    the package index, and runs that vigil, which has only its package data to go on."""
    hooks = tmp_path / "vigil-src"
    copy_source(hooks)
    sh(hooks, "git", "init", "-q", env=env)
    sh(hooks, "git", "add", "-A", env=env)
    sh(hooks, "git", "commit", "-q", "-m", "vigil", env=env)
    rev = sh(hooks, "git", "rev-parse", "HEAD", env=env).stdout.strip()
    config = (
        f"repos:\n  - repo: {hooks}\n    rev: {rev}\n    hooks:\n"
        "      - id: vigil-validate\n      - id: vigil-test\n"
    )
    # pip's own settings (index, find-links) come along; nothing else of this environment
    env = env | {k: v for k, v in os.environ.items() if k.startswith("PIP_")}
    repo = rules_repo(tmp_path, env, config)  # the first commit passed both hooks
    edit(repo, "rules/host.yaml", "for: 5m", "for: 5 minutes", env)
    bad = commit(repo, env)
    out = bad.stdout + bad.stderr
    assert bad.returncode != 0 and "Traceback" not in out, out
    line = line_of(repo, "rules/host.yaml", "for: 5 minutes")
    assert f"rules/host.yaml:{line}:10: rules[3].for: expected a duration such as" in out, out


def test_the_local_hooks_of_the_docs_work_too(tmp_path: Path, env: dict[str, str]) -> None:
    repo = rules_repo(tmp_path, env, LOCAL_CONFIG)
    ok = sh(repo, str(PRE_COMMIT), "run", "--all-files", env=env, ok=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    (repo / "rules" / "tests" / "host.yaml").write_text(
        (repo / "rules" / "tests" / "host.yaml")
        .read_text()
        .replace('summary: "Memory at 95.0%"', 'summary: "Memory at 96.0%"')
    )
    bad = sh(repo, str(PRE_COMMIT), "run", "--all-files", env=env, ok=False)
    assert bad.returncode == 1
    line = line_of(repo, "rules/tests/host.yaml", "Memory at 96.0%")
    assert f'rules/tests/host.yaml:{line}: FAIL "memory fires on the third' in bad.stdout
