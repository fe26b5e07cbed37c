"""The import graph of engine/: no circles, and floors that run one way.

Every `import engine...` and `from engine... import ...` in engine/ counts, at
module level and inside functions alike (a function-level import is still a
dependency; it only runs later). The one exception is an import under
`if TYPE_CHECKING:`, which never runs and exists for the type checker only.

Floors, highest first; a module may import from its own floor or any lower one,
never from a higher one:

    7  cli
    6  daemon
    5  api, delivery, channels, explain, ruletest, report
    4  rules, journal, notify, collectors, httpclient
    3  config
    2  expr, templates, plugins
    1  common, runtime, errors (and engine/__init__.py)

`runtime` (the time budget, GC pacing, clock steps, the reload thread, child
processes) is event-loop mechanics that import nothing of vigil above `common`,
so it sits on the lowest floor, where collectors, channels and the daemon can
all use it.
"""

from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parent.parent / "engine"

FLOORS = {
    "cli": 7,
    "daemon": 6,
    "api": 5,
    "delivery": 5,
    "channels": 5,
    "explain": 5,
    "ruletest": 5,
    "report": 5,
    "rules": 4,
    "journal": 4,
    "notify": 4,
    "collectors": 4,
    "detect": 4,
    "httpclient": 4,
    "config": 3,
    "expr": 2,
    "templates": 2,
    "plugins": 2,
    "common": 1,
    "runtime": 1,
    "errors": 1,
    "__init__": 1,
}


def _modules() -> dict[str, Path]:
    out = {}
    for p in ENGINE.rglob("*.py"):
        parts = list(p.relative_to(ENGINE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = p
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, modules: dict[str, Path]) -> set[str]:
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "engine":
                    found.add(a.name)
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.level == 0
            and node.module.split(".")[0] == "engine"
        ):
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                found.add(sub if sub in modules else node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {m for m in found if m in modules}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {
        name: _imports(ast.parse(path.read_text(), str(path)), modules) - {name}
        for name, path in modules.items()
    }


def _floor(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    assert top in FLOORS, f"{module}: engine/{top} has no floor in tests/test_layout.py"
    return FLOORS[top]


def test_no_import_cycles() -> None:
    graph = _graph()
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []
    cycles: list[str] = []

    def dfs(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in state:
                dfs(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            dfs(node)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_floors_run_one_way() -> None:
    bad = [
        f"{src} (floor {_floor(src)}) imports {dst} (floor {_floor(dst)})"
        for src, deps in sorted(_graph().items())
        for dst in sorted(deps)
        if _floor(dst) > _floor(src)
    ]
    assert not bad, "imports from a lower floor to a higher one:\n" + "\n".join(bad)


def test_top_level_is_small() -> None:
    top = sorted(p.name for p in ENGINE.glob("*.py"))
    assert len(top) <= 8, top


def test_the_graph_is_seen() -> None:
    # Guards the walker itself: a known edge must show up, or the tests above pass vacuously.
    graph = _graph()
    assert "engine.errors" in graph["engine.config.load"]
    assert "engine.common.durations" in graph["engine.config.schema"]
