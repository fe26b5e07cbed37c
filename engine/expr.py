"""Expression sandbox (first version: compile-time checks only).

The public contract, which the full version keeps:

    compile_expr(source, names=...) -> Expression     raises ExprError(message, col)
    Expression.names       top-level names the expression reads (collector names, `it`)
    Expression.functions   function names it calls
    Expression.windows     window lengths (seconds) passed to *_over / rate / delta / changes
    Expression.evaluate(scope) -> Any                  raises ExprError
"""

from __future__ import annotations

import ast
from collections.abc import Collection, Mapping
from typing import Any

from engine.durations import parse_duration
from engine.errors import ExprError

WINDOW_FUNCTIONS = frozenset(
    {"avg_over", "max_over", "min_over", "sum_over", "count_over", "rate", "delta", "changes"}
)
FUNCTIONS = WINDOW_FUNCTIONS | frozenset(
    {"absent", "abs", "min", "max", "round", "len", "hour", "weekday", "now", "int", "float", "str"}
)
MAX_LENGTH = 4096

_ALLOWED = (
    ast.Expression, ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Compare, ast.Call, ast.Constant,
    ast.Name, ast.Attribute, ast.Subscript, ast.Load, ast.List, ast.Tuple, ast.Dict, ast.IfExp,
    ast.And, ast.Or, ast.Not, ast.USub, ast.UAdd, ast.Add, ast.Sub, ast.Mult, ast.Div,
    ast.FloorDiv, ast.Mod, ast.Pow, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE,
    ast.In, ast.NotIn, ast.Is, ast.IsNot, ast.keyword, ast.Slice,
)  # fmt: skip


class Expression:
    __slots__ = ("functions", "names", "source", "tree", "windows")

    def __init__(
        self,
        source: str,
        tree: ast.Expression,
        names: frozenset[str],
        functions: frozenset[str],
        windows: tuple[float, ...],
    ) -> None:
        self.source = source
        self.tree = tree
        self.names = names
        self.functions = functions
        self.windows = windows

    def evaluate(self, scope: Mapping[str, Any]) -> Any:
        raise ExprError("evaluation is not built yet")


def compile_expr(source: str, *, names: Collection[str]) -> Expression:
    if len(source) > MAX_LENGTH:
        raise ExprError(f"expression is {len(source)} characters; the limit is {MAX_LENGTH}", 0)
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as e:
        raise ExprError(f"syntax error: {e.msg}", (e.offset or 1) - 1) from None
    except (ValueError, RecursionError, MemoryError) as e:
        raise ExprError(f"cannot parse: {e}", 0) from None
    used: set[str] = set()
    funcs: set[str] = set()
    windows: list[float] = []
    for node in ast.walk(tree):
        col = getattr(node, "col_offset", 0)
        if not isinstance(node, _ALLOWED):
            raise ExprError(f"{type(node).__name__} is not allowed in an expression", col)
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise ExprError(f"attribute {node.attr!r} is not allowed", col)
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name):
                raise ExprError("only the built-in functions may be called", col)
            fname = node.func.id
            if fname not in FUNCTIONS:
                raise ExprError(f"unknown function {fname!r}", col)
            funcs.add(fname)
            if fname in WINDOW_FUNCTIONS and len(node.args) >= 2:
                w = node.args[1]
                if not (isinstance(w, ast.Constant) and isinstance(w.value, str)):
                    raise ExprError(f"{fname}() needs a window such as \"5m\"", col)
                try:
                    windows.append(parse_duration(w.value))
                except ValueError as e:
                    raise ExprError(str(e), w.col_offset) from None
        elif isinstance(node, ast.Name) and node.id not in FUNCTIONS:
            if node.id not in names:
                raise ExprError(f"unknown name {node.id!r}: no collector provides it", col)
            used.add(node.id)
    return Expression(source, tree, frozenset(used), frozenset(funcs), tuple(windows))
