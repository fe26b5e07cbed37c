"""A template so large that compiling it would hold the GIL for seconds (Jinja
compiles its Python source in one call) is refused at load, in clear words."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

VIGIL = str(Path(sys.executable).parent / "vigil")


def _config(root: Path, annotation: str) -> Path:
    (root / "rules").mkdir()
    (root / "channels").mkdir()
    (root / "vigil.yaml").write_text(
        "collectors:\n  - {name: app, type: static, values: {queue: 1}}\n"
        "rules: [rules]\nchannels: [channels]\n"
    )
    (root / "rules" / "r.yaml").write_text(
        "group: g\nrules:\n  - id: big\n    expr: app.queue > 5\n"
        f"    annotations: {{summary: '{annotation}'}}\n"
    )
    (root / "channels" / "c.yaml").write_text(
        "channels:\n  - {name: c, type: log}\nroutes:\n  - {channels: [c]}\n"
    )
    return root / "vigil.yaml"


def test_a_huge_template_is_refused_quickly_with_one_line(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "{{ 1 }}" * 100_000)
    t0 = time.monotonic()
    out = subprocess.run(
        [VIGIL, "validate", "-c", str(cfg)], capture_output=True, text=True, timeout=60
    )
    took = time.monotonic() - t0
    assert out.returncode == 1, out
    problems = [line for line in out.stdout.splitlines() + out.stderr.splitlines() if ":" in line]
    assert any(
        "r.yaml:5:" in line
        and "annotations.summary" in line
        and "700,000 characters long; at most 65,536" in line
        for line in problems
    ), out
    assert "Traceback" not in out.stderr
    assert took < 10, took


def test_a_template_under_the_cap_is_fine(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "{{ labels.host }} " * 1_000)
    out = subprocess.run(
        [VIGIL, "validate", "-c", str(cfg)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out
