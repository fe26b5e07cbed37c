"""The source side of an expression: its length and nesting limits, parsing,
the check of every AST node (allowed types, names, attributes, call shapes),
and mapping the parser's UTF-8 byte columns to character offsets for ExprError.
Separate from the compiler so that what is refused is readable in one place.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from typing import Final

from simpleeval import DISALLOW_METHODS, DISALLOW_PREFIXES

from engine.errors import ExprError
from engine.expr.failures import describe
from engine.expr.limits import SCALARS as _SCALARS
from engine.expr.operators import BINOPS, OP_TEXT

MAX_LENGTH: Final = 4096
MAX_DEPTH: Final = 50

_REFUSED: Final[dict[type[ast.AST], str]] = {
    ast.NamedExpr: "assignment expressions (:=) are not allowed",
    ast.Lambda: "lambda is not allowed",
    ast.ListComp: "comprehensions are not supported; use `each` to check every element",
    ast.SetComp: "comprehensions are not supported; use `each` to check every element",
    ast.DictComp: "comprehensions are not supported; use `each` to check every element",
    ast.GeneratorExp: "generator expressions are not supported; use `each` to check every element",
    ast.JoinedStr: "f-strings are not allowed",
    ast.FormattedValue: "f-strings are not allowed",
    ast.Starred: "* unpacking is not allowed",
    ast.keyword: "keyword arguments are not supported",
    ast.Await: "await is not allowed",
    ast.Yield: "yield is not allowed",
    ast.YieldFrom: "yield is not allowed",
}
_ALLOWED: Final = frozenset(
    {
        ast.BoolOp,
        ast.BinOp,
        ast.UnaryOp,
        ast.Compare,
        ast.Call,
        ast.Constant,
        ast.Name,
        ast.Attribute,
        ast.Subscript,
        ast.Slice,
        ast.List,
        ast.Tuple,
        ast.Set,
        ast.Dict,
        ast.IfExp,
    }
)
_LINE: Final = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
_BAD_ATTR_PREFIXES: Final = tuple(DISALLOW_PREFIXES)
_BAD_ATTRS: Final = frozenset(DISALLOW_METHODS)


def _children(node: ast.AST) -> list[ast.AST]:
    """The expression children of an allowed node (ast.iter_child_nodes is
    generic and was most of the compile time)."""
    if isinstance(node, ast.BinOp):
        return [node.left, node.right]
    if isinstance(node, ast.Compare):
        return [node.left, *node.comparators]
    if isinstance(node, ast.Attribute):
        return [node.value]
    if isinstance(node, ast.BoolOp):
        return list(node.values)
    if isinstance(node, ast.Call):
        return [node.func, *node.args, *node.keywords]
    if isinstance(node, ast.UnaryOp):
        return [node.operand]
    if isinstance(node, ast.Subscript):
        return [node.value, node.slice]
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return list(node.elts)
    if isinstance(node, ast.Dict):
        return [*(k for k in node.keys if k is not None), *node.values]
    if isinstance(node, ast.IfExp):
        return [node.test, node.body, node.orelse]
    if isinstance(node, ast.Slice):
        return [p for p in (node.lower, node.upper, node.step) if p is not None]
    return []  # Constant, Name


class Source:
    """One expression's text: parses it, checks the tree, locates nodes."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.text = source.lstrip()
        self.offset = len(source) - len(self.text)  # the parser refuses leading blanks
        # Split where the tokenizer does; str.splitlines also splits on \x0c, \u2028 ...
        self.lines = _LINE.findall(self.text) or [""]
        self.simple = len(self.lines) == 1 and self.text.isascii()  # bytes == chars
        self.starts: list[int] = []
        n = 0
        for line in self.lines:
            self.starts.append(n)
            n += len(line)

    # positions: ast gives UTF-8 byte columns per line; ExprError wants characters

    def at(self, lineno: int | None, char_col: int) -> int:
        i = min(max((lineno or 1) - 1, 0), len(self.lines) - 1)
        return self.offset + self.starts[i] + max(char_col, 0)

    def col(self, node: ast.AST | _EndPos) -> int:
        byte_col: int = getattr(node, "col_offset", 0)
        if self.simple:
            return self.offset + byte_col
        lineno: int = getattr(node, "lineno", 1)
        i = min(max(lineno - 1, 0), len(self.lines) - 1)
        line = self.lines[i]
        if not line.isascii():
            byte_col = len(line.encode()[:byte_col].decode("utf-8", "ignore"))
        return self.at(lineno, byte_col)

    def attr_col(self, node: ast.Attribute) -> int:
        end = _EndPos(node.end_lineno, node.end_col_offset)
        return self.col(end) - len(node.attr)

    def parse(self) -> ast.Expression:
        """The checked tree; ExprError (with `col`) for anything refused."""
        source, text = self.source, self.text
        if not text.strip():
            raise ExprError("expression is empty", 0)
        self.check_brackets()
        try:
            tree = ast.parse(text, mode="eval")
        except SyntaxError as e:
            hint = _statement_hint(text)
            msg = hint or f"syntax error: {e.msg}"
            # CPython reports offset 0 for "unexpected end of input".
            col = self.at(e.lineno, e.offset - 1) if e.offset else len(source.rstrip())
            raise ExprError(msg, col) from None
        except (RecursionError, MemoryError):
            raise ExprError(
                f"expression is nested too deeply (limit {MAX_DEPTH} levels)", 0
            ) from None
        except ValueError as e:  # NUL characters, on Python versions that say so this way
            raise ExprError(f"cannot parse: {describe(e)}", 0) from None
        self.check(tree)
        return tree

    def check_brackets(self) -> None:
        # Parentheses leave no AST node, so the AST depth check cannot see
        # `((((1))))`; CPython's parser recurses on them. Tokenising (so that
        # brackets in strings do not count) runs only when the bracket count
        # could exceed the limit; tokenizer errors are left to the parser.
        text = self.text
        if text.count("(") + text.count("[") + text.count("{") <= MAX_DEPTH:
            return
        depth = 0
        try:
            for tok in tokenize.generate_tokens(io.StringIO(self.text).readline):
                if tok.type != tokenize.OP:
                    continue
                if tok.string in ("(", "[", "{"):
                    depth += 1
                    if depth > MAX_DEPTH:
                        raise ExprError(
                            f"brackets are nested too deeply (limit {MAX_DEPTH} levels)",
                            self.at(tok.start[0], tok.start[1]),
                        )
                elif tok.string in (")", "]", "}"):
                    depth -= 1
        except (tokenize.TokenError, SyntaxError):
            return

    def check(self, tree: ast.Expression) -> None:
        """Every node: allowed type, depth, attribute names, call shape. The
        walk is iterative so a deep tree cannot exhaust the stack; of several
        problems the one most about safety, then leftmost, is reported."""
        problems: list[tuple[int, int, str]] = []
        stack: list[tuple[ast.AST, int]] = [(tree.body, 1)]
        while stack:
            node, depth = stack.pop()
            if depth > MAX_DEPTH:
                raise ExprError(
                    f"expression is nested too deeply (limit {MAX_DEPTH} levels)", self.col(node)
                )
            t = type(node)
            if t not in _ALLOWED:
                msg = _REFUSED.get(t, f"{t.__name__} is not allowed in an expression")
                problems.append((0, self.col(node), msg))
                continue
            if isinstance(node, ast.Attribute):
                attr = node.attr
                if attr.startswith(_BAD_ATTR_PREFIXES) or attr in _BAD_ATTRS:
                    problems.append((0, self.attr_col(node), f"attribute {attr!r} is not allowed"))
            elif isinstance(node, ast.Name):
                if node.id.startswith("_"):
                    problems.append((0, self.col(node), f"name {node.id!r} is not allowed"))
            elif isinstance(node, ast.Call):
                f = node.func
                if isinstance(f, ast.Attribute):
                    problems.append(
                        (
                            1,
                            self.attr_col(f),
                            f"method calls are not allowed ({f.attr}); "
                            "only the built-in functions can be called",
                        )
                    )
                elif not isinstance(f, ast.Name):
                    problems.append(
                        (1, self.col(f), "only the built-in functions can be called, by name")
                    )
            elif isinstance(node, ast.BinOp):
                if type(node.op) not in BINOPS:
                    op = OP_TEXT.get(type(node.op), type(node.op).__name__)
                    problems.append((1, self.col(node), f"operator {op} is not supported"))
            elif isinstance(node, ast.Dict):
                if any(k is None for k in node.keys):
                    problems.append((0, self.col(node), "** unpacking is not allowed"))
            elif isinstance(node, ast.Constant) and type(node.value) not in _SCALARS:
                kind = type(node.value).__name__
                problems.append((1, self.col(node), f"{kind} literals are not supported"))
            for child in _children(node):
                stack.append((child, depth + 1))
        if problems:
            _, col, msg = min(problems)
            raise ExprError(msg, col)


class _EndPos:
    """Stands in for a node to locate its end (`attr_col`)."""

    __slots__ = ("col_offset", "lineno")

    def __init__(self, lineno: int | None, col_offset: int | None) -> None:
        self.lineno = lineno or 1
        self.col_offset = col_offset or 0


def _statement_hint(text: str) -> str | None:
    """A clearer message when the text parses as statements, not an expression."""
    try:
        mod = ast.parse(text, mode="exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    if len(mod.body) > 1:
        return "only one expression is allowed (no ';' or several statements)"
    if not mod.body:
        return None
    st = mod.body[0]
    if isinstance(st, ast.Assign | ast.AugAssign | ast.AnnAssign):
        return "assignment is not allowed; use == to compare"
    if not isinstance(st, ast.Expr):
        return f"statements ({type(st).__name__.lower()}) are not allowed; write one expression"
    return None
