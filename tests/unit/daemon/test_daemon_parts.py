"""engine/daemon/ is composed, not layered: its parts are separate objects wired by
the composition root (app.py), none a subclass of another (a god object cut into
files by inheritance shares every attribute again)."""

from __future__ import annotations

import ast
from pathlib import Path

DAEMON = Path(__file__).resolve().parents[3] / "engine" / "daemon"


def _classes() -> dict[str, tuple[str, list[str]]]:
    """Every class defined in engine/daemon/: name -> (module, the names of its bases)."""
    out: dict[str, tuple[str, list[str]]] = {}
    for path in sorted(DAEMON.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef):
                bases = [b.id if isinstance(b, ast.Name) else ast.unparse(b) for b in node.bases]
                out[node.name] = (path.name, bases)
    return out


def test_no_daemon_part_inherits_from_another() -> None:
    classes = _classes()
    assert {"App", "Collecting", "Evaluation"} <= set(classes)  # the walk sees them
    layered = [
        f"{module}: {name}({base})"
        for name, (module, bases) in classes.items()
        for base in bases
        if base in classes
    ]
    assert layered == []


def test_daemon_modules_stay_small() -> None:
    sizes = {p.name: len(p.read_text().splitlines()) for p in DAEMON.glob("*.py")}
    assert max(sizes.values()) <= 600, sizes
