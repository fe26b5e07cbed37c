"""vigil as an operator installs it: the wheel, in a fresh virtualenv outside the checkout.

The wheel is built from a copy of this checkout (pip wheel, build isolation: the
setuptools of pyproject's build-system), installed with its dependencies from the
package index into a new virtualenv, and run from a temporary folder holding a copy
of the shipped example (rules/, channels/, deploy/vigil.yaml). Nothing of the
checkout is on sys.path or in the working directory, so a file the code reads from
the checkout instead of from its package (the JSON Schemas did) fails here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.checkout import copy_source

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _run(*cmd: str | Path, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["XDG_CACHE_HOME"] = str(cwd / ".cache")  # no validator cached by the checkout's runs
    return subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(the wheel, the vigil script of a fresh virtualenv it is installed in)."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    copy_source(src, tests=False)
    built = _run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", base / "dist", src, cwd=base
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (base / "dist").glob("vigil-*.whl")
    venv = base / "venv"
    made = _run(sys.executable, "-m", "venv", venv, cwd=base, timeout=120)
    assert made.returncode == 0, made.stderr
    pip = _run(venv / "bin" / "python", "-m", "pip", "install", "-q", wheel, cwd=base)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    shutil.rmtree(src)  # the installed vigil must not need it
    yield wheel, venv / "bin" / "vigil"


@pytest.fixture
def example(tmp_path: Path) -> Path:
    for d in ("rules", "channels"):
        shutil.copytree(ROOT / d, tmp_path / d)
    (tmp_path / "deploy").mkdir()
    shutil.copy(ROOT / "deploy" / "vigil.yaml", tmp_path / "deploy")
    return tmp_path


def test_the_wheel_carries_the_schemas_byte_for_byte(installed: tuple[Path, Path]) -> None:
    wheel, _ = installed
    with zipfile.ZipFile(wheel) as z:
        for f in sorted((ROOT / "schemas").glob("*.schema.json")):
            assert z.read(f"engine/config/schemas/{f.name}") == f.read_bytes(), f.name


def test_the_wheel_carries_the_web_console(installed: tuple[Path, Path]) -> None:
    wheel, _ = installed
    shipped = sorted((ROOT / "engine" / "api" / "console").iterdir())
    assert {"index.html", "app.js", "style.css"} <= {f.name for f in shipped}
    with zipfile.ZipFile(wheel) as z:
        for f in shipped:
            assert z.read(f"engine/api/console/{f.name}") == f.read_bytes(), f.name


def test_the_installed_vigil_validates_tests_and_runs_the_example(
    installed: tuple[Path, Path], example: Path
) -> None:
    _, vigil = installed
    cfg = example / "deploy" / "vigil.yaml"
    validated = _run(vigil, "validate", "-c", cfg, cwd=example, timeout=120)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert validated.stdout.startswith("ok: 4 files"), validated.stdout

    tested = _run(vigil, "test", "rules/tests", cwd=example, timeout=300)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "tests in 4 file(s) passed" in tested.stdout, tested.stdout

    once = _run(vigil, "run", "--once", "-c", cfg, cwd=example, timeout=120)
    assert once.returncode == 0, once.stdout + once.stderr
    assert "host_cpu_high" in once.stdout and "Traceback" not in once.stderr, once.stderr

    # a bad rule is reported at its place, not as a missing-file traceback
    host = example / "rules" / "host.yaml"
    host.write_text(host.read_text().replace("for: 5m", "for: 5 minutes", 1))
    bad = _run(vigil, "validate", "-c", cfg, cwd=example, timeout=120)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr, bad.stderr
    line = host.read_text().splitlines().index("    for: 5 minutes") + 1
    assert f"rules/host.yaml:{line}:10: rules[3].for: expected a duration" in bad.stderr, bad.stderr


def test_the_installed_vigil_prints_its_schemas(
    installed: tuple[Path, Path], tmp_path: Path
) -> None:
    _, vigil = installed
    for name in ("config", "rules", "channels", "ruletest"):
        out = _run(vigil, "schema", name, cwd=tmp_path, timeout=60)
        assert out.returncode == 0, out.stderr
        shipped = json.loads((ROOT / "schemas" / f"{name}.schema.json").read_text())
        assert json.loads(out.stdout) == shipped
