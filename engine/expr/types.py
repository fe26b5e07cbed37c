"""What `vigil validate` can tell about an expression beyond "it compiles".

Given what each collector is known to provide (its metric names, and the kind of
each value where known), `check(source, catalog)` finds, before anything runs:

  * a metric no collector of that name provides: `system.cpu_prcent` (with a
    did-you-mean), which would otherwise sit in no_data forever;
  * an operation that fails on every evaluation: `app.queue > "a"` where
    app.queue is a number, `"x" - 1`;
  * a rule condition that can never be a boolean: `system.cpu_percent * 2`.

Only what is known is judged: a collector whose names are only known at run time
(a file without a declared `metrics:` list, a push collector, a third-party type
without the hook) and values of unknown kind (`json_value`, `it.x`) pass. The
expression has compiled already (engine/expr/compiler.py), so the tree is the sandbox's
subset of Python. Kinds: number, string, bool, none, list, map, any.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field

from engine.errors import ExprError

ANY = "any"
_NUMBER_FUNCS = frozenset(
    {"abs", "round", "len", "hour", "weekday", "now", "int", "float"}
    | {"avg_over", "max_over", "min_over", "sum_over", "count_over", "rate", "delta", "changes"}
)
_ORDER = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_WORDS = {"number": "a number", "string": "a string", "bool": "a boolean", "none": "None"}
_WORDS |= {"list": "a list", "map": "a mapping"}


@dataclass(frozen=True, slots=True)
class Provides:
    """What one collector provides: its metric names (None: known only at run time)
    and the kind of the values whose kind is known."""

    type: str
    names: frozenset[str] | None
    kinds: Mapping[str, str] = field(default_factory=dict)


def kind_of(value: object) -> str:
    """The kind of a plain value (a static collector's, a literal)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, Mapping):
        return "map"
    return ANY


def check(source: str, catalog: Mapping[str, Provides], *, condition: bool) -> list[ExprError]:
    """Every problem found in `source` (already compiled), with 0-based columns as
    ExprError gives them. `condition`: the result must be a boolean (expr,
    resolve_expr), not a value (each)."""
    text = source.lstrip()
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []  # compile_expr has said what is wrong
    w = _Walker(source, text, catalog)
    result = w.kind(tree.body)
    if condition and result not in (ANY, "bool"):
        w.add(
            tree.body,
            f"the result is {_WORDS.get(result, result)}, not a boolean: a rule's condition "
            "must be true or false; compare it (e.g. `... > 90`)",
        )
    return w.problems


class _Walker:
    def __init__(self, source: str, text: str, catalog: Mapping[str, Provides]) -> None:
        self.offset = len(source) - len(text)
        self.lines = text.split("\n")
        self.catalog = catalog
        self.problems: list[ExprError] = []

    def col(self, node: ast.AST, byte_col: int | None = None) -> int:
        lineno: int = getattr(node, "lineno", 1)
        if byte_col is None:
            byte_col = getattr(node, "col_offset", 0)
        i = min(max(lineno - 1, 0), len(self.lines) - 1)
        chars = len(self.lines[i].encode()[:byte_col].decode("utf-8", "ignore"))
        return self.offset + sum(len(x) + 1 for x in self.lines[:i]) + chars

    def add(self, node: ast.AST, message: str, byte_col: int | None = None) -> None:
        self.problems.append(ExprError(message, self.col(node, byte_col)))

    # the kind of each node, checking as it goes

    def kind(self, node: ast.expr) -> str:
        if isinstance(node, ast.Constant):
            return kind_of(node.value)
        if isinstance(node, ast.Attribute | ast.Subscript | ast.Name):
            return self.read(node)
        if isinstance(node, ast.BoolOp):
            kinds = {self.kind(v) for v in node.values}
            return "bool" if kinds == {"bool"} else ANY
        if isinstance(node, ast.UnaryOp):
            inner = self.kind(node.operand)
            if isinstance(node.op, ast.Not):
                return "bool"
            if inner in ("string", "list", "map", "none"):
                self.add(node, f"cannot negate {_WORDS[inner]}")
                return ANY
            return "number" if inner in ("number", "bool") else ANY
        if isinstance(node, ast.BinOp):
            return self.binop(node)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.IfExp):
            self.kind(node.test)
            a, b = self.kind(node.body), self.kind(node.orelse)
            return a if a == b else ANY
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            for e in node.elts:
                self.kind(e)
            return "list"
        if isinstance(node, ast.Dict):
            for v in (*node.keys, *node.values):
                if v is not None:
                    self.kind(v)
            return "map"
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                self.kind(child)
        return ANY

    def read(self, node: ast.expr) -> str:
        """A dotted or indexed read: `collector.metric...`, checked against the catalog."""
        chain: list[tuple[str | int | None, ast.expr]] = []
        cur = node
        while isinstance(cur, ast.Attribute | ast.Subscript):
            if isinstance(cur, ast.Attribute):
                chain.append((cur.attr, cur))
            else:
                s = cur.slice
                if not isinstance(s, ast.Constant):
                    self.kind(s)
                key = s.value if isinstance(s, ast.Constant) else None
                chain.append((key if isinstance(key, str | int) else None, cur))
            cur = cur.value
        if not isinstance(cur, ast.Name):
            self.kind(cur)
            return ANY
        chain.reverse()
        provides = self.catalog.get(cur.id)
        if provides is None:
            return ANY  # `it`, or a collector whose names are not known
        if not chain:
            return "map"
        metric, at = chain[0]
        if not isinstance(metric, str):
            return ANY
        if provides.names is not None and metric not in provides.names:
            self.unknown_metric(cur.id, provides, metric, at)
            return ANY
        return provides.kinds.get(metric, ANY) if len(chain) == 1 else ANY

    def unknown_metric(self, name: str, provides: Provides, metric: str, at: ast.expr) -> None:
        assert provides.names is not None
        close = difflib.get_close_matches(metric, sorted(provides.names), n=1, cutoff=0.6)
        msg = f"{name} ({provides.type} collector) has no metric {metric!r}"
        if close:
            msg += f"; did you mean {close[0]!r}?"
        elif not provides.names:
            msg += "; it declares none"
        elif len(provides.names) <= 12:
            msg += "; it provides " + ", ".join(sorted(provides.names))
        if isinstance(at, ast.Attribute):  # point at the metric's name, not the dot
            end = getattr(at, "end_col_offset", None)
            byte_col = end - len(metric.encode()) if end is not None else None
            same_line = getattr(at, "end_lineno", None) == getattr(at, "lineno", None)
            self.add(at, msg, byte_col if same_line else None)
        else:
            self.add(at, msg)

    def binop(self, node: ast.BinOp) -> str:
        a, b = self.kind(node.left), self.kind(node.right)
        op = node.op
        known = ANY not in (a, b)
        if isinstance(op, ast.Add):
            if a == b and a in ("number", "string", "list"):
                return a
            if {a, b} <= {"number", "bool"}:
                return "number"
            if known:
                self.add(node, f"cannot add {_WORDS[a]} and {_WORDS[b]}")
            return ANY
        if isinstance(op, ast.Mult):
            if {a, b} <= {"number", "bool"}:
                return "number"
            if {a, b} in ({"string", "number"}, {"list", "number"}):
                return "string" if "string" in (a, b) else "list"
            if known:
                self.add(node, f"cannot multiply {_WORDS[a]} by {_WORDS[b]}")
            return ANY
        if a in ("number", "bool") and b in ("number", "bool"):
            return "number"
        for side in (a, b):
            if side in ("string", "list", "map", "none"):
                self.add(node, f"arithmetic on {_WORDS[side]}: it fails on every evaluation")
                return ANY
        return ANY

    def compare(self, node: ast.Compare) -> str:
        left = self.kind(node.left)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = self.kind(right_node)
            if isinstance(op, _ORDER) and ANY not in (left, right):
                numeric = {left, right} <= {"number", "bool"}
                same = left == right and left in ("string", "list")
                if not (numeric or same):
                    self.add(
                        node,
                        f"cannot compare {_WORDS[left]} with {_WORDS[right]} "
                        "(fails on every evaluation)",
                    )
            left = right
        return "bool"

    def call(self, node: ast.Call) -> str:
        name = node.func.id if isinstance(node.func, ast.Name) else ""
        kinds = [self.kind(a) for a in node.args]
        if name == "absent":
            return "bool"
        if name == "str":
            return "string"
        if name in _NUMBER_FUNCS:
            return "number"
        if name in ("min", "max") and kinds and all(k == "number" for k in kinds):
            return "number"
        return ANY
