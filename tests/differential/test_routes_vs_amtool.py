"""13.A.10, against the real Alertmanager: the same routing tree is written as an
Alertmanager config and as a vigil channel file, and for each label set the
receivers `amtool config routes test` names (Debian's prometheus-alertmanager
0.25) must be the channels vigil's router picks, in the same order.

Alertmanager's root route is a vigil top-level route without matchers whose
`routes:` are the root's children: the root gets an alert only when no child
matches, in both. Covered: nested routes and their fallback to the parent,
`continue` at several levels, `=`, `!=`, `=~`, `!~`, a regex on a missing label
(a missing label is ""), full anchoring, and `match`/`match_re` maps next to
`matchers` strings.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.config.build import ConfigLoader
from engine.notify import router

pytestmark = pytest.mark.timeout(120)

AMTOOL = shutil.which("amtool")
CONTEXT = Path(__file__).resolve().parents[1] / "testdata" / "context" / "vigil.yaml"

# (matchers, receiver, continue, children); matchers are Alertmanager strings
Node = tuple[list[str], str, bool, list[Any]]
TREE: list[Node] = [
    (
        ['team=~"db|storage"'],
        "db",
        False,
        [
            (['severity="critical"'], "db_pager", True, []),
            (['env!="staging"'], "db_prod", False, [(['service="audit"'], "audit", False, [])]),
            (['service=~"back.*"'], "backup", False, []),
        ],
    ),
    (['zone=~".*"', 'host!~"web-.*"'], "anyzone", True, []),
    (['zone=~".+"'], "zoned", False, [(['zone!="eu"'], "not_eu", True, []), ([], "eu", False, [])]),
    (['host=~"web"'], "web_exact", False, []),
    (['host=~"web-[0-9]+"', 'team!=""'], "web_team", False, []),
]
LABEL_SETS: list[dict[str, str]] = [
    {},
    {"team": "db"},
    {"team": "db", "env": "staging"},
    {"team": "db", "severity": "critical"},
    {"team": "db", "severity": "critical", "env": "staging"},
    {"team": "db", "service": "audit"},
    {"team": "db", "service": "audit", "severity": "critical"},
    {"team": "db", "env": "staging", "service": "backup"},
    {"team": "storage", "env": "staging", "service": "audit"},
    {"team": "dbx"},
    {"host": "web-1"},
    {"host": "web-1", "team": "web"},
    {"host": "web"},
    {"host": "web-1", "zone": "eu"},
    {"host": "db-1", "zone": "us"},
    {"zone": "eu"},
    {"zone": ""},
    {"team": "", "host": "web-2"},
]


def am_route(node: Node) -> dict[str, Any]:
    matchers, receiver, cont, children = node
    out: dict[str, Any] = {"receiver": receiver}
    if matchers:
        out["matchers"] = matchers
    if cont:
        out["continue"] = True
    if children:
        out["routes"] = [am_route(c) for c in children]
    return out


def vigil_route(node: Node, depth: int) -> dict[str, Any]:
    matchers, receiver, cont, children = node
    out: dict[str, Any] = {"channels": [receiver]}
    if matchers:
        # one of each written form, so both build paths are compared
        if depth % 2 and all("=~" in m and "!" not in m for m in matchers):
            out["match_re"] = {m.split("=~")[0]: yaml.safe_load(m.split("=~")[1]) for m in matchers}
        else:
            out["matchers"] = matchers
    if cont:
        out["continue"] = True
    if children:
        out["routes"] = [vigil_route(c, depth + 1) for c in children]
    return out


def receivers(node: Node, acc: set[str]) -> set[str]:
    acc.add(node[1])
    for c in node[3]:
        receivers(c, acc)
    return acc


@pytest.mark.skipif(AMTOOL is None, reason="amtool (Debian prometheus-alertmanager) not installed")
def test_routing_agrees_with_alertmanager(tmp_path: Path) -> None:
    assert AMTOOL is not None
    root: Node = ([], "default", False, TREE)
    names = sorted(receivers(root, set()))
    am = {"route": am_route(root), "receivers": [{"name": n} for n in names]}
    (tmp_path / "am.yml").write_text(yaml.safe_dump(am))
    vigil = {
        "channels": [{"name": n, "type": "memory"} for n in names],
        "routes": [vigil_route(root, 0)],
    }
    (tmp_path / "channels.yaml").write_text(yaml.safe_dump(vigil))
    result = ConfigLoader().load(str(CONTEXT), [str(tmp_path / "channels.yaml")])
    assert result.config is not None, [p.format() for p in result.problems]
    config = result.config

    mismatches = []
    for labels in LABEL_SETS:
        full = {"rule": "probe", "severity": "warning", **labels}
        args = [f"{k}={v}" for k, v in full.items()]
        proc = subprocess.run(
            [AMTOOL, "config", "routes", "test", f"--config.file={tmp_path / 'am.yml'}", *args],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert proc.returncode == 0, proc.stderr
        want = proc.stdout.strip().split(",")
        ml = router.match_labels(labels, "probe", full["severity"])
        got = [c for _, r in router.targets(config, ml) for c in r.channels]
        if got != want:
            mismatches.append((labels, want, got))
    assert mismatches == [], mismatches
