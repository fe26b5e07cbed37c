"""Expression sandbox: compile once at load, evaluate many times.

    compile_expr(source, names=...) -> Expression     raises ExprError(message, col)
    Expression.names       top-level names the expression reads (collector names, `it`)
    Expression.functions   function names it calls
    Expression.windows     window lengths (seconds) passed to *_over / rate / delta / changes
    Expression.series      history keys of collector metrics read by window functions
    Expression.it_series   key suffixes of `it.x` metrics read by window functions
    Expression.evaluate(scope) -> Any          raises ExprError; MissingData for missing values
    Expression.evaluate_bool(scope) -> bool    ... and ExprError for a non-boolean result

The language is a small subset of Python expressions, with simpleeval's rules
and limits: literals (str, int, float, True/False/None, lists, tuples, sets,
dicts), names, dotted access, subscripts and slices, arithmetic, bit and
comparison operators, `and`/`or`/`not`, `x if c else y`, and calls of the
built-in functions in FUNCTIONS. There are no method calls (which removes
`"".format`, `ljust`, `replace`, `join` ... at compile time), no attribute
access on anything but mappings (`a.b` is `a["b"]`, never `getattr`), no
underscore attributes, no f-strings or `%` string formatting, no
comprehensions (a rule with `each` covers "every element"), no lambda,
assignment, keyword arguments or unpacking.

`compile_expr` checks the AST (types, depth, names, functions, arity, windows),
folds literal-only subtrees under the same limits (so `9**9**8` is refused at
load), and turns the rest into a tree of closures. Evaluation walks no AST and
keeps no state outside its `EvalScope` argument, so one Expression may be
evaluated from many threads at once.

Limits: simpleeval's MAX_POWER, MAX_SHIFT and MAX_STRING_LENGTH apply as in
simpleeval; MAX_COMPREHENSION_LENGTH bounds the elements min()/max() scan
(comprehensions themselves are refused); and beyond simpleeval:
  * source length MAX_LENGTH, nesting (AST levels and brackets) MAX_DEPTH;
  * integer results of `*` and `**` at most MAX_INT_BITS bits (simpleeval
    lets `1999999**1999999` run for seconds);
  * no int<->str conversion beyond MAX_STR_INT_DIGITS digits (quadratic in
    CPython), without relying on sys.set_int_max_str_digits;
  * repeating a list that holds containers (`[[1]*9999]*9999` would make
    comparisons cost len**2); `round` ndigits within +-MAX_ROUND_DIGITS;
  * folded constants: at most MAX_CONST_CELLS elements and characters built
    per expression.
Every limit is checked before the operation runs and holds for any value,
whatever its type (collectors hand out list and dict subclasses): see
engine/expr/limits.py.

Values: `system.cpu_percent` is `scope.values["system"]["cpu_percent"]`;
`it` is `scope.it`, the `each` element. A missing collector, key or index raises
MissingData (the caller applies the rule's no_data policy), and so does reading
through a None (`a.b` where a is None); None itself is a value (`x is None`).
`absent(x)` is True exactly when reading x raises MissingData. Results may share structure
with the scope's values: callers treat them as read-only (constants are
copied before they escape).
"""

from __future__ import annotations

import ast
import copy
import io
import operator
import re
import tokenize
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from typing import Any, Final

from simpleeval import (
    DISALLOW_METHODS,
    DISALLOW_PREFIXES,
    MAX_COMPREHENSION_LENGTH,
    MAX_STRING_LENGTH,
)

from engine.common.durations import parse_duration
from engine.errors import ExprError
from engine.expr.history import History, key_part
from engine.expr.limits import CONTAINERS as _CONTAINERS
from engine.expr.limits import (
    MAX_CONST_CELLS,
    MAX_ROUND_DIGITS,
    MAX_STR_INT_DIGITS,
    built_size,
    fold_growth,
    safe_add,
    safe_lshift,
    safe_mod,
    safe_mult,
    safe_pow,
    safe_rshift,
)
from engine.expr.limits import MAX_INT_BITS as MAX_INT_BITS  # where it used to live
from engine.expr.limits import MAX_STR_INT_BITS as _MAX_STR_INT_BITS
from engine.expr.limits import SCALARS as _SCALARS
from engine.expr.limits import SEQ as _SEQ
from engine.expr.limits import show as _show
from engine.expr.limits import too_big as _too_big

__all__ = [
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "WINDOW_FUNCTIONS",
    "EvalScope",
    "Expression",
    "MissingData",
    "compile_expr",
]

MAX_LENGTH: Final = 4096
MAX_DEPTH: Final = 50

WINDOW_FUNCTIONS: Final = frozenset(
    {"avg_over", "max_over", "min_over", "sum_over", "count_over", "rate", "delta", "changes"}
)
FUNCTIONS: Final = WINDOW_FUNCTIONS | frozenset(
    {"absent", "abs", "min", "max", "round", "len", "hour", "weekday", "now", "int", "float", "str"}
)
IT: Final = "it"

Fn = Callable[["EvalScope"], Any]


class MissingData(ExprError):
    """A value the expression reads is missing (collector down, key or index
    absent, no samples in a window): the caller applies the rule's no_data."""


@dataclass(frozen=True, slots=True)
class EvalScope:
    """Everything one evaluation may read. Immutable; build one per evaluation
    (or per `each` element with `for_element`).

    values   collector name -> its metrics (primitives, lists, dicts), read-only
    now      wall-clock epoch seconds (UTC) for hour(), weekday(), now() and windows
    history  samples behind the window functions; None: they raise MissingData
    it       the `each` element (None outside `each`)
    it_key   prefix of the element's history keys (e.g. its fingerprint); see
             engine/expr/history.py
    tz       timezone for hour() and weekday(); None is UTC
    """

    values: Mapping[str, Mapping[str, Any]]
    now: float
    history: History | None = None
    it: Any = None
    it_key: str = ""
    tz: tzinfo | None = None

    def for_element(self, it: Any, it_key: str) -> EvalScope:
        return replace(self, it=it, it_key=it_key)


# --- the operators as the sandbox runs them (limits: engine/expr/limits.py) ---

_BINOPS: Final[dict[type[ast.operator], Callable[[Any, Any], Any]]] = {
    ast.Add: safe_add,
    ast.Sub: operator.sub,
    ast.Mult: safe_mult,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: safe_mod,
    ast.Pow: safe_pow,
    ast.LShift: safe_lshift,
    ast.RShift: safe_rshift,
    ast.BitOr: operator.or_,
    ast.BitAnd: operator.and_,
    ast.BitXor: operator.xor,
}
# Operators that cannot amplify anything when one side is a number: a str, list
# or set on the other side raises TypeError.
_PLAIN_WITH_NUMBER: Final[
    dict[type[ast.operator], tuple[Callable[[Fn, Any], Fn], Callable[[Any, Fn], Fn]]]
] = {
    ast.Add: (lambda f, k: lambda s: f(s) + k, lambda k, f: lambda s: k + f(s)),
    ast.Sub: (lambda f, k: lambda s: f(s) - k, lambda k, f: lambda s: k - f(s)),
    ast.Div: (lambda f, k: lambda s: f(s) / k, lambda k, f: lambda s: k / f(s)),
    ast.FloorDiv: (lambda f, k: lambda s: f(s) // k, lambda k, f: lambda s: k // f(s)),
}
_UNARY: Final[dict[type[ast.unaryop], Callable[[Any], Any]]] = {
    ast.Not: operator.not_,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
    ast.Invert: operator.invert,
}


def _in(a: Any, b: Any) -> bool:
    return a in b


def _not_in(a: Any, b: Any) -> bool:
    return a not in b


_CMP: Final[dict[type[ast.cmpop], Callable[[Any, Any], Any]]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: _in,
    ast.NotIn: _not_in,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}
# One closure per operator for the common shapes: calling operator.gt costs
# about as much as the comparison itself.
_CMP_DC: Final[dict[type[ast.cmpop], Callable[[Fn, Any], Fn]]] = {
    ast.Eq: lambda f, k: lambda s: f(s) == k,
    ast.NotEq: lambda f, k: lambda s: f(s) != k,
    ast.Lt: lambda f, k: lambda s: f(s) < k,
    ast.LtE: lambda f, k: lambda s: f(s) <= k,
    ast.Gt: lambda f, k: lambda s: f(s) > k,
    ast.GtE: lambda f, k: lambda s: f(s) >= k,
}
_CMP_CD: Final[dict[type[ast.cmpop], Callable[[Any, Fn], Fn]]] = {
    ast.Eq: lambda k, f: lambda s: k == f(s),
    ast.NotEq: lambda k, f: lambda s: k != f(s),
    ast.Lt: lambda k, f: lambda s: k < f(s),
    ast.LtE: lambda k, f: lambda s: k <= f(s),
    ast.Gt: lambda k, f: lambda s: k > f(s),
    ast.GtE: lambda k, f: lambda s: k >= f(s),
}
_CMP_DD: Final[dict[type[ast.cmpop], Callable[[Fn, Fn], Fn]]] = {
    ast.Eq: lambda f, g: lambda s: f(s) == g(s),
    ast.NotEq: lambda f, g: lambda s: f(s) != g(s),
    ast.Lt: lambda f, g: lambda s: f(s) < g(s),
    ast.LtE: lambda f, g: lambda s: f(s) <= g(s),
    ast.Gt: lambda f, g: lambda s: f(s) > g(s),
    ast.GtE: lambda f, g: lambda s: f(s) >= g(s),
}
_OP_TEXT: Final[dict[type[ast.AST], str]] = {
    ast.MatMult: "@",
    ast.Is: "is",
    ast.IsNot: "is not",
}


# --- the function library ----------------------------------------------------


def _str(x: Any) -> str:
    if isinstance(x, int) and x.bit_length() > _MAX_STR_INT_BITS:
        raise _too_big(f"str() of an integer with more than {MAX_STR_INT_DIGITS} digits")
    if x is None or isinstance(x, _SCALARS):
        return str(x)
    raise ExprError(f"str() takes a number, a string, a boolean or None, not {_a(x)}")


def _int(x: Any) -> int:
    if isinstance(x, str | bytes) and len(x) > MAX_STR_INT_DIGITS:
        raise _too_big(f"int() of a string longer than {MAX_STR_INT_DIGITS} characters")
    return int(x)


def _float(x: Any) -> float:
    return float(x)


def _round(x: Any, ndigits: Any = None) -> Any:
    if ndigits is None:
        return round(x)
    # round(12, -10**9) computes 10**(10**9) inside CPython.
    if not isinstance(ndigits, int) or abs(ndigits) > MAX_ROUND_DIGITS:
        raise ExprError(f"round() digits must be an integer within +-{MAX_ROUND_DIGITS}")
    return round(x, ndigits)


def _iterable(args: tuple[Any, ...], name: str) -> Any:
    if len(args) != 1:
        return args
    it = args[0]
    if not isinstance(it, (*_CONTAINERS, str)):
        raise ExprError(f"{name}() of one argument needs a list, not {_a(it)}")
    if len(it) > MAX_COMPREHENSION_LENGTH:
        raise _too_big(f"{name}() over more than {MAX_COMPREHENSION_LENGTH} elements")
    return it


def _min(*args: Any) -> Any:
    return min(_iterable(args, "min"))


def _max(*args: Any) -> Any:
    return max(_iterable(args, "max"))


# name -> (implementation, min args, max args or None)
_PURE: Final[dict[str, tuple[Callable[..., Any], int, int | None]]] = {
    "abs": (abs, 1, 1),
    "len": (len, 1, 1),
    "round": (_round, 1, 2),
    "min": (_min, 1, None),
    "max": (_max, 1, None),
    "int": (_int, 1, 1),
    "float": (_float, 1, 1),
    "str": (_str, 1, 1),
}
_WINDOW_QUERIES: Final[dict[str, Callable[[History, str, float, float], Any]]] = {
    "avg_over": History.avg,
    "max_over": History.max,
    "min_over": History.min,
    "sum_over": History.sum,
    "count_over": History.count,
    "rate": History.rate,
    "delta": History.delta,
    "changes": History.changes,
}


def _clock(s: EvalScope) -> datetime:
    try:
        return datetime.fromtimestamp(s.now, s.tz if s.tz is not None else UTC)
    except (OverflowError, OSError, ValueError) as e:
        raise ExprError(f"now is not a usable time: {_describe(e)}") from None


# --- messages that never format a huge value ---------------------------------


def _describe(e: BaseException) -> str:
    # Only a string argument is shown: str(KeyError(10**5000)) would format the int.
    arg = e.args[0] if e.args else None
    text = arg if isinstance(arg, str) else ""
    if len(text) > 200:
        text = text[:200] + "..."
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


_ERRORS: Final = (
    ArithmeticError,
    LookupError,
    TypeError,
    ValueError,
    AttributeError,
    MemoryError,
    RecursionError,
)


def _failure(e: BaseException) -> ExprError:
    # Collectors report a metric they cannot read here as None (inodes on btrfs,
    # latency of a target that is down). Comparing or computing with it means
    # "no data", which the rule's no_data policy handles, not an expression bug.
    if isinstance(e, TypeError) and "'NoneType'" in str(e.args[0] if e.args else ""):
        return MissingData("a value it needs is null (not available)")
    return ExprError(_describe(e))


# --- the compiled expression --------------------------------------------------


class Expression:
    """A compiled expression. Immutable and stateless: safe to share between
    rules and threads. Equal when the source is equal (compilation is
    deterministic), so a reload can tell unchanged rules apart."""

    __slots__ = (
        "_fn",
        "functions",
        "it_series",
        "names",
        "series",
        "source",
        "windows",
    )

    def __init__(
        self,
        source: str,
        fn: Fn,
        *,
        names: frozenset[str],
        functions: frozenset[str],
        windows: tuple[float, ...],
        series: tuple[str, ...],
        it_series: tuple[str, ...],
    ) -> None:
        self.source = source
        self._fn = fn
        self.names = names
        self.functions = functions
        self.windows = windows
        self.series = series
        self.it_series = it_series

    def evaluate(self, scope: EvalScope) -> Any:
        """The expression's value. Raises MissingData when a value it reads is
        missing and ExprError for every other failure."""
        try:
            return self._fn(scope)
        except _ERRORS as e:
            raise _failure(e) from None

    def evaluate_bool(self, scope: EvalScope) -> bool:
        """Like evaluate, for rule conditions: a result that is not exactly
        True or False is an ExprError (1 is not True, [] is not False)."""
        try:
            r = self._fn(scope)
        except _ERRORS as e:
            raise _failure(e) from None
        if r is True or r is False:
            return r
        raise ExprError(f"expression yielded {type(r).__name__} {_show(r)}, not a boolean")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Expression) and other.source == self.source

    def __hash__(self) -> int:
        return hash(self.source)

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


def compile_expr(source: str, *, names: Collection[str]) -> Expression:
    """Check and compile `source`; `names` are the top-level names it may read
    (collector names, plus `it` for a rule with `each`). Raises ExprError with
    `col`, the 0-based character offset of the problem in `source`."""
    if not isinstance(source, str):
        raise ExprError(f"an expression must be a string, not {type(source).__name__}", 0)
    if len(source) > MAX_LENGTH:
        raise ExprError(
            f"expression is {len(source)} characters long; the limit is {MAX_LENGTH}", MAX_LENGTH
        )
    return _compile_cached(source, frozenset(names))


@lru_cache(maxsize=8192)
def _compile_cached(source: str, names: frozenset[str]) -> Expression:
    # Rule files repeat expressions and reloads recompile everything; an
    # Expression is immutable, so sharing one is safe. Errors are not cached.
    return _Compiler(source, names).run()


# --- compiler ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Path:
    """A name followed by constant steps: `system.disks[0].percent`."""

    root: str
    steps: tuple[tuple[str | int, bool], ...] = ()  # (key, written as .attr)

    def child(self, key: str | int, attr: bool) -> _Path:
        return _Path(self.root, (*self.steps, (key, attr)))

    @property
    def suffix(self) -> str:
        return "".join(key_part(k) for k, _ in self.steps)

    @property
    def text(self) -> str:
        return self.root + self.suffix


_CONST, _PATH, _DYN = 0, 1, 2


class _C:
    """A compiled node: a constant, a path (materialised lazily, so only the
    outermost step of `a.b.c` becomes a closure) or a closure."""

    __slots__ = ("col", "fn", "kind", "path", "value")

    def __init__(
        self,
        kind: int,
        col: int,
        *,
        value: Any = None,
        fn: Fn | None = None,
        path: _Path | None = None,
    ) -> None:
        self.kind = kind
        self.col = col
        self.value = value
        self.fn = fn
        self.path = path


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


def _needs_copy(v: Any) -> bool:
    t = type(v)
    if t is list or t is dict or t is set:
        return True
    if t is tuple or t is frozenset:
        return any(_needs_copy(x) for x in v)
    return False


def _singleton(node: ast.AST) -> bool:
    # By identity: `1 in (None, True, False)` is True.
    return isinstance(node, ast.Constant) and any(node.value is v for v in (None, True, False))


class _Compiler:
    def __init__(self, source: str, names: frozenset[str]) -> None:
        self.source = source
        self.text = source.lstrip()
        self.offset = len(source) - len(self.text)  # the parser refuses leading blanks
        self.names = names
        # Split where the tokenizer does; str.splitlines also splits on \x0c, \u2028 ...
        self.lines = _LINE.findall(self.text) or [""]
        self.simple = len(self.lines) == 1 and self.text.isascii()  # bytes == chars
        self.starts: list[int] = []
        n = 0
        for line in self.lines:
            self.starts.append(n)
            n += len(line)
        self.used: set[str] = set()
        self.funcs: set[str] = set()
        self.windows: list[float] = []
        self.series: list[str] = []
        self.it_series: list[str] = []
        # elements and characters built by folding constants (see fold)
        self.cells = 0

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

    # entry

    def run(self) -> Expression:
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
            raise ExprError(f"cannot parse: {_describe(e)}", 0) from None
        self.check(tree)
        root = self.node(tree.body)
        fn = self.fn(root)
        return Expression(
            source,
            fn,
            names=frozenset(self.used),
            functions=frozenset(self.funcs),
            windows=tuple(dict.fromkeys(self.windows)),
            series=tuple(dict.fromkeys(self.series)),
            it_series=tuple(dict.fromkeys(self.it_series)),
        )

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
                if type(node.op) not in _BINOPS:
                    op = _OP_TEXT.get(type(node.op), type(node.op).__name__)
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

    # materialise a node as a closure

    def fn(self, c: _C) -> Fn:
        if c.kind == _DYN:
            assert c.fn is not None
            return c.fn
        if c.kind == _PATH:
            assert c.path is not None
            return _path_getter(c.path, c.col)
        v = c.value
        if _needs_copy(v):
            # A constant list must not be shared with whoever keeps the result.
            return lambda s: copy.deepcopy(v)
        return lambda s: v

    def fold(self, node: ast.AST, f: Callable[..., Any], *args: Any) -> _C:
        """Evaluate a literal-only subtree now, under the runtime limits and
        the expression's budget for constants, both checked before it runs."""
        grow = fold_growth(f, args)
        # Beyond MAX_STRING_LENGTH the operation refuses itself, with its own message.
        if grow <= MAX_STRING_LENGTH and self.cells + grow > MAX_CONST_CELLS:
            raise self.over_budget(node)
        try:
            value = f(*args)
        except ExprError as e:
            raise ExprError(e.message, self.col(node)) from None
        except _ERRORS as e:
            raise ExprError(_describe(e), self.col(node)) from None
        self.cells += max(grow, built_size(value))
        if self.cells > MAX_CONST_CELLS:
            raise self.over_budget(node)
        return _C(_CONST, self.col(node), value=value)

    def over_budget(self, node: ast.AST) -> ExprError:
        return ExprError(
            f"refused: the constants of this expression would hold more than "
            f"{MAX_CONST_CELLS} elements and characters",
            self.col(node),
        )

    def node(self, node: ast.expr) -> _C:
        method: Callable[[Any], _C] = getattr(self, "n_" + type(node).__name__)
        return method(node)

    def use_name(self, name: str, node: ast.AST) -> None:
        if name in self.names:
            self.used.add(name)
            return
        col = self.col(node)
        if name == IT:
            raise ExprError("`it` exists only in rules with `each`", col)
        if name in FUNCTIONS:
            raise ExprError(f"{name} is a function: call it, e.g. {name}(...)", col)
        raise ExprError(f"unknown name {name!r}: no collector provides it", col)

    # node kinds

    def n_Constant(self, node: ast.Constant) -> _C:
        return _C(_CONST, self.col(node), value=node.value)

    def n_Name(self, node: ast.Name) -> _C:
        self.use_name(node.id, node)
        return _C(_PATH, self.col(node), path=_Path(node.id))

    def n_Attribute(self, node: ast.Attribute) -> _C:
        base = self.node(node.value)
        col = self.attr_col(node)
        if base.kind == _PATH:  # a path's errors point at its start
            assert base.path is not None
            return _C(_PATH, base.col, path=base.path.child(node.attr, True))
        if base.kind == _CONST:
            return self.fold(node, _read_attr, base.value, node.attr)
        return _C(_DYN, col, fn=_attr_fn(self.fn(base), node.attr, col))

    def n_Subscript(self, node: ast.Subscript) -> _C:
        base = self.node(node.value)
        key = self.node(node.slice)
        col = self.col(node)
        if base.kind == _PATH and key.kind == _CONST and type(key.value) in (str, int):
            assert base.path is not None
            return _C(_PATH, base.col, path=base.path.child(key.value, False))
        if base.kind == _CONST and key.kind == _CONST:
            return self.fold(node, _index, base.value, key.value)
        bf = self.fn(base)
        if key.kind == _CONST:
            k = key.value
            return _C(_DYN, col, fn=lambda s: _index(bf(s), k, col))
        kf = self.fn(key)
        return _C(_DYN, col, fn=lambda s: _index(bf(s), kf(s), col))

    def n_Slice(self, node: ast.Slice) -> _C:
        parts = [None if p is None else self.node(p) for p in (node.lower, node.upper, node.step)]
        if all(p is None or p.kind == _CONST for p in parts):
            return self.fold(node, slice, *(None if p is None else p.value for p in parts))
        lo, hi, st = (None if p is None else self.fn(p) for p in parts)
        return _C(
            _DYN,
            self.col(node),
            fn=lambda s: slice(
                None if lo is None else lo(s),
                None if hi is None else hi(s),
                None if st is None else st(s),
            ),
        )

    def n_UnaryOp(self, node: ast.UnaryOp) -> _C:
        opf = _UNARY[type(node.op)]
        x = self.node(node.operand)
        if x.kind == _CONST:
            return self.fold(node, opf, x.value)
        f = self.fn(x)
        t = type(node.op)
        if t is ast.Not:
            g: Fn = lambda s: not f(s)  # noqa: E731
        elif t is ast.USub:
            g = lambda s: -f(s)  # noqa: E731
        else:
            g = lambda s: opf(f(s))  # noqa: E731
        return _C(_DYN, self.col(node), fn=g)

    def n_BinOp(self, node: ast.BinOp) -> _C:
        t = type(node.op)
        opf = _BINOPS[t]
        left, right = self.node(node.left), self.node(node.right)
        if left.kind == _CONST and right.kind == _CONST:
            return self.fold(node, opf, left.value, right.value)
        col = self.col(node)
        if t is ast.Mod and left.kind == _CONST and isinstance(left.value, str):
            raise ExprError("% formatting of strings is not allowed", col)
        plain = _PLAIN_WITH_NUMBER.get(t)
        if plain is not None or (t is ast.Mult):
            if right.kind == _CONST and _is_number(right.value, t):
                k = right.value
                lf = self.fn(left)
                if plain is not None:
                    return _C(_DYN, col, fn=plain[0](lf, k))
                return _C(_DYN, col, fn=lambda s: lf(s) * k)
            if left.kind == _CONST and _is_number(left.value, t):
                k = left.value
                rf = self.fn(right)
                if plain is not None:
                    return _C(_DYN, col, fn=plain[1](k, rf))
                return _C(_DYN, col, fn=lambda s: k * rf(s))
        lf, rf = self.fn(left), self.fn(right)
        return _C(_DYN, col, fn=lambda s: opf(lf(s), rf(s)))

    def n_BoolOp(self, node: ast.BoolOp) -> _C:
        is_and = isinstance(node.op, ast.And)
        parts = [self.node(v) for v in node.values]
        # Leading constants decide or drop out: `True and x` is x, `0 and x` is 0.
        while len(parts) > 1 and parts[0].kind == _CONST:
            if bool(parts[0].value) != is_and:
                return parts[0]
            parts.pop(0)
        if len(parts) == 1:
            return parts[0]
        fns = [self.fn(p) for p in parts]
        col = self.col(node)
        if len(fns) == 2:
            a, b = fns
            g: Fn = (lambda s: a(s) and b(s)) if is_and else (lambda s: a(s) or b(s))
        elif len(fns) == 3:
            a, b, c = fns
            g = (lambda s: a(s) and b(s) and c(s)) if is_and else (lambda s: a(s) or b(s) or c(s))
        else:
            g = _all_fn(tuple(fns)) if is_and else _any_fn(tuple(fns))
        return _C(_DYN, col, fn=g)

    def n_IfExp(self, node: ast.IfExp) -> _C:
        test, body, orelse = self.node(node.test), self.node(node.body), self.node(node.orelse)
        if test.kind == _CONST:
            return body if test.value else orelse
        tf, bf, of = self.fn(test), self.fn(body), self.fn(orelse)
        return _C(_DYN, self.col(node), fn=lambda s: bf(s) if tf(s) else of(s))

    def n_Compare(self, node: ast.Compare) -> _C:
        operands = [node.left, *node.comparators]
        ops = [type(o) for o in node.ops]
        for i, op in enumerate(ops):
            if op in (ast.Is, ast.IsNot) and not (
                _singleton(operands[i]) or _singleton(operands[i + 1])
            ):
                raise ExprError(
                    f"'{_OP_TEXT[op]}' compares only with None, True or False; use == or !=",
                    self.col(operands[i + 1]),
                )
        cs = [self.node(n) for n in operands]
        col = self.col(node)
        opfs = [_CMP[op] for op in ops]
        if all(c.kind == _CONST for c in cs):
            return self.fold(node, _compare_chain, opfs, [c.value for c in cs])
        if len(ops) > 1:
            fns = tuple(self.fn(c) for c in cs)
            return _C(_DYN, col, fn=_chain_fn(tuple(opfs), fns))
        op, left, right = ops[0], cs[0], cs[1]
        if right.kind == _CONST:
            k = right.value  # comparisons never leak a constant: no copy needed
            if op in (ast.In, ast.NotIn):
                return _C(_DYN, col, fn=_member_fn(self.fn(left), k, op is ast.NotIn))
            if op in _CMP_DC:
                if left.kind == _PATH:
                    assert left.path is not None
                    fused = _fused_cmp(op, left.path, k, left.col)
                    if fused is not None:
                        return _C(_DYN, col, fn=fused)
                return _C(_DYN, col, fn=_CMP_DC[op](self.fn(left), k))
        if left.kind == _CONST and op in _CMP_CD:
            return _C(_DYN, col, fn=_CMP_CD[op](left.value, self.fn(right)))
        lf, rf = self.fn(left), self.fn(right)
        if op in _CMP_DD:
            return _C(_DYN, col, fn=_CMP_DD[op](lf, rf))
        opf = opfs[0]
        return _C(_DYN, col, fn=lambda s: opf(lf(s), rf(s)))

    def n_List(self, node: ast.List) -> _C:
        return self.container(node, node.elts, list)

    def n_Tuple(self, node: ast.Tuple) -> _C:
        return self.container(node, node.elts, tuple)

    def n_Set(self, node: ast.Set) -> _C:
        return self.container(node, node.elts, set)

    def container(self, node: ast.AST, elts: list[ast.expr], kind: type) -> _C:
        cs = [self.node(e) for e in elts]
        if all(c.kind == _CONST for c in cs):
            return self.fold(node, kind, [c.value for c in cs])
        fns = tuple(self.fn(c) for c in cs)
        return _C(_DYN, self.col(node), fn=lambda s: kind([f(s) for f in fns]))

    def n_Dict(self, node: ast.Dict) -> _C:
        keys = [self.node(k) for k in node.keys if k is not None]
        vals = [self.node(v) for v in node.values]
        if all(c.kind == _CONST for c in (*keys, *vals)):
            pairs = [(k.value, v.value) for k, v in zip(keys, vals, strict=True)]
            return self.fold(node, dict, pairs)
        kfs = tuple(self.fn(k) for k in keys)
        vfs = tuple(self.fn(v) for v in vals)
        pairs_fn = tuple(zip(kfs, vfs, strict=True))
        return _C(_DYN, self.col(node), fn=lambda s: {k(s): v(s) for k, v in pairs_fn})

    def n_Call(self, node: ast.Call) -> _C:
        assert isinstance(node.func, ast.Name)  # check() refused every other callee
        name = node.func.id
        col = self.col(node)
        if name not in FUNCTIONS:
            if name in self.names:
                raise ExprError(f"{name!r} is a collector, not a function", col)
            raise ExprError(f"unknown function {name!r}", col)
        self.funcs.add(name)
        if name in WINDOW_FUNCTIONS:
            return self.window_call(node, name)
        nargs = len(node.args)
        if name in ("hour", "weekday", "now"):
            if nargs:
                raise ExprError(f"{name}() takes no arguments", col)
            return _C(_DYN, col, fn=_TIME_FNS[name])
        if name == "absent":
            if nargs != 1:
                raise ExprError("absent() takes one argument, e.g. absent(app.queue_depth)", col)
            arg = self.node(node.args[0])
            if arg.kind == _CONST:
                return _C(_CONST, col, value=False)
            return _C(_DYN, col, fn=_absent_fn(self.fn(arg)))
        impl, lo, hi = _PURE[name]
        if nargs < lo or (hi is not None and nargs > hi):
            want = f"{lo}" if lo == hi else f"{lo} or {hi}" if hi else f"at least {lo}"
            plural = "" if (lo == hi == 1) else "s"
            raise ExprError(f"{name}() takes {want} argument{plural}, not {nargs}", col)
        args = [self.node(a) for a in node.args]
        if all(a.kind == _CONST for a in args):
            return self.fold(node, impl, *(a.value for a in args))
        fns = tuple(self.fn(a) for a in args)
        if len(fns) == 1:
            (f,) = fns
            return _C(_DYN, col, fn=lambda s: impl(f(s)))
        if len(fns) == 2:
            f, g = fns
            return _C(_DYN, col, fn=lambda s: impl(f(s), g(s)))
        return _C(_DYN, col, fn=lambda s: impl(*[f(s) for f in fns]))

    def window_call(self, node: ast.Call, name: str) -> _C:
        col = self.col(node)
        usage = f'{name}(system.cpu_percent, "5m")'
        if len(node.args) != 2:
            raise ExprError(f"{name}() takes a metric and a window, e.g. {usage}", col)
        metric, window = node.args
        path = _static_path(metric)
        if path is None:
            raise ExprError(
                f"the first argument of {name}() must be a metric such as system.cpu_percent",
                self.col(metric),
            )
        self.use_name(path.root, metric)
        if not (isinstance(window, ast.Constant) and isinstance(window.value, str)):
            raise ExprError(
                f'the window of {name}() must be a string such as "5m"', self.col(window)
            )
        try:
            seconds = parse_duration(window.value)
        except ValueError as e:
            raise ExprError(str(e), self.col(window)) from None
        if seconds <= 0:
            raise ExprError(f"the window of {name}() must be longer than 0", self.col(window))
        self.windows.append(seconds)
        label = f"{name}({path.text}, {window.value!r})"
        query = _WINDOW_QUERIES[name]
        if path.root == IT:
            self.it_series.append(path.suffix)
            fn = _window_it_fn(query, path.suffix, seconds, label, col)
        else:
            self.series.append(path.text)
            fn = _window_fn(query, path.text, seconds, label, col)
        return _C(_DYN, col, fn=fn)


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


def _static_path(node: ast.AST) -> _Path | None:
    steps: list[tuple[str | int, bool]] = []
    while True:
        if isinstance(node, ast.Name):
            return _Path(node.id, tuple(reversed(steps)))
        if isinstance(node, ast.Attribute):
            steps.append((node.attr, True))
            node = node.value
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            key = node.slice.value
            if not (type(key) is str or type(key) is int):
                return None
            steps.append((key, False))
            node = node.value
        else:
            return None


def _is_number(v: Any, op: type[ast.operator]) -> bool:
    t = type(v)
    if op is ast.Mult:
        return t is float  # an int times a str repeats it: that needs safe_mult
    return t is int or t is float or t is bool


# --- runtime pieces (closure factories) ------------------------------------------


def _missing(s: EvalScope, root: str, text: str, col: int) -> MissingData:
    if root == IT:
        if s.it is None:
            return MissingData("`it` has no value: the scope has no `each` element", col)
    elif root not in s.values:
        return MissingData(f"no data from collector {root!r} (needed for {text})", col)
    return MissingData(f"{text} has no value", col)


def _a(o: Any) -> str:
    name = type(o).__name__
    return f"an {name}" if name[0] in "aeiou" else f"a {name}"


def _not_mapping(o: Any, text: str, col: int) -> ExprError:
    if o is None:  # reading through a JSON null: the value below it is missing
        return MissingData(f"{text} has no value", col)
    return ExprError(f"{text} is {_a(o)}, not a mapping: it has no attributes", col)


def _read_attr(o: Any, k: str) -> Any:
    if type(o) is not dict and not isinstance(o, Mapping):
        raise ExprError(f"{_a(o)} has no attributes (reading .{k})")
    return o[k]


def _attr_fn(f: Fn, k: str, col: int) -> Fn:
    def attr(s: EvalScope) -> Any:
        o = f(s)
        if type(o) is not dict and not isinstance(o, Mapping):
            raise _not_mapping(o, f"the value before .{k}", col)
        try:
            return o[k]
        except KeyError:
            raise MissingData(f"no key {k!r}", col) from None

    return attr


def _index(o: Any, k: Any, col: int | None = None) -> Any:
    if not isinstance(o, (*_SEQ, Mapping)):
        if o is None:
            raise MissingData(f"no element {_show(k)}: the value is None", col)
        raise ExprError(f"{_a(o)} cannot be subscripted", col)
    try:
        return o[k]
    except (KeyError, IndexError):
        raise MissingData(f"no element {_show(k)}", col) from None


def _path_getter(p: _Path, col: int) -> Fn:
    steps = p.steps
    root = p.root
    text = p.text
    if root == IT:
        if not steps:

            def it_value(s: EvalScope) -> Any:
                o = s.it
                if o is None:
                    raise _missing(s, root, text, col)
                return o

            return it_value
        if len(steps) == 1 and steps[0][1]:
            field = steps[0][0]

            def it_attr(s: EvalScope) -> Any:
                o = s.it
                if type(o) is not dict and not isinstance(o, Mapping):
                    raise _missing(s, root, text, col) if o is None else _not_mapping(o, IT, col)
                try:
                    return o[field]
                except KeyError:
                    raise MissingData(f"{text} has no value", col) from None

            return it_attr
    else:
        if not steps:

            def collector(s: EvalScope) -> Any:
                try:
                    return s.values[root]
                except KeyError:
                    raise _missing(s, root, text, col) from None

            return collector
        if len(steps) == 1:
            # The hot shape `system.cpu_percent`: values is typed Mapping of
            # Mappings, so the first step needs no type check.
            m: Any = steps[0][0]

            def metric(s: EvalScope) -> Any:
                try:
                    return s.values[root][m]
                except KeyError:
                    raise _missing(s, root, text, col) from None

            return metric
    prefixes = []
    acc = root
    for k, attr in steps:
        prefixes.append((k, attr, acc))
        acc += key_part(k)
    walk = tuple(prefixes)
    start = _path_getter(_Path(root), col)

    def path(s: EvalScope) -> Any:
        o = start(s)
        for k, attr, before in walk:
            t = type(o)
            if t is not dict and not isinstance(o, Mapping):
                if attr or o is None:
                    raise _not_mapping(o, before, col)
                if not isinstance(o, _SEQ):
                    raise ExprError(f"{before} is {_a(o)}: it cannot be subscripted", col)
            try:
                o = o[k]
            except (KeyError, IndexError):
                raise MissingData(f"{text} has no value", col) from None
        return o

    return path


def _fused_cmp(op: type[ast.cmpop], p: _Path, k: Any, col: int) -> Fn | None:
    """`collector.metric <op> constant` in one closure: the commonest rule shape.
    Calling operator.gt from here costs little; a second closure for the path
    costs a Python frame, nearly doubling the time."""
    if p.root == IT or len(p.steps) != 1:
        return None
    opf = _CMP[op]
    c, text = p.root, p.text
    m: Any = p.steps[0][0]

    def fused(s: EvalScope) -> Any:
        try:
            v = s.values[c][m]
        except KeyError:
            raise _missing(s, c, text, col) from None
        return opf(v, k)

    return fused


def _member_fn(f: Fn, k: Any, negate: bool) -> Fn:
    t = type(k)
    if t in (list, tuple, set, frozenset) and all(type(x) in _SCALARS for x in k):
        # `x in ["a", "b"]` as a set lookup; an unhashable x falls back to the
        # sequence, which gives the same answer.
        fs, seq = frozenset(k), tuple(k)

        def member(s: EvalScope) -> bool:
            v = f(s)
            try:
                found = v in fs
            except TypeError:
                found = v in seq
            return found is not negate

        return member
    if negate:
        return lambda s: f(s) not in k
    return lambda s: f(s) in k


def _compare_chain(opfs: list[Callable[[Any, Any], Any]], values: list[Any]) -> Any:
    r: Any = True
    for i, opf in enumerate(opfs):
        r = opf(values[i], values[i + 1])
        if not r:
            return r
    return r


def _chain_fn(opfs: tuple[Callable[[Any, Any], Any], ...], fns: tuple[Fn, ...]) -> Fn:
    first, rest = fns[0], tuple(zip(opfs, fns[1:], strict=True))

    def chain(s: EvalScope) -> Any:
        left = first(s)
        r: Any = True
        for opf, f in rest:
            right = f(s)
            r = opf(left, right)
            if not r:
                return r
            left = right
        return r

    return chain


def _all_fn(fns: tuple[Fn, ...]) -> Fn:
    def all_of(s: EvalScope) -> Any:
        r: Any = True
        for f in fns:
            r = f(s)
            if not r:
                return r
        return r

    return all_of


def _any_fn(fns: tuple[Fn, ...]) -> Fn:
    def any_of(s: EvalScope) -> Any:
        r: Any = False
        for f in fns:
            r = f(s)
            if r:
                return r
        return r

    return any_of


def _absent_fn(f: Fn) -> Fn:
    def absent(s: EvalScope) -> bool:
        try:
            f(s)
        except MissingData:
            return True
        return False

    return absent


_TIME_FNS: Final[dict[str, Fn]] = {
    "hour": lambda s: _clock(s).hour,
    "weekday": lambda s: _clock(s).weekday(),
    "now": lambda s: s.now,
}


def _window_fn(
    query: Callable[[History, str, float, float], Any],
    key: str,
    seconds: float,
    label: str,
    col: int,
) -> Fn:
    def window(s: EvalScope) -> Any:
        h = s.history
        if h is None:
            raise MissingData(f"{label}: no history", col)
        r = query(h, key, s.now, seconds)
        if r is None:
            raise MissingData(f"{label}: not enough samples in the window", col)
        return r

    return window


def _window_it_fn(
    query: Callable[[History, str, float, float], Any],
    suffix: str,
    seconds: float,
    label: str,
    col: int,
) -> Fn:
    def window(s: EvalScope) -> Any:
        h = s.history
        if h is None:
            raise MissingData(f"{label}: no history", col)
        if not s.it_key:
            raise ExprError(f"{label}: the scope has no it_key for the element's history", col)
        r = query(h, s.it_key + suffix, s.now, seconds)
        if r is None:
            raise MissingData(f"{label}: not enough samples in the window", col)
        return r

    return window
