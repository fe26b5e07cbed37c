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

This module is the compiler proper (constant folding and the closure tree);
its parts live beside it, one concept each: syntax.py (source limits, parsing,
the node check), scope.py (EvalScope, MissingData), expression.py (the compiled
Expression), operators.py, paths.py (reading values by path), functions.py (the
function library and window functions) and failures.py (error messages).

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
from collections.abc import Callable, Collection
from functools import lru_cache
from typing import Any

from simpleeval import MAX_STRING_LENGTH

from engine.common.durations import parse_duration
from engine.errors import ExprError
from engine.expr.expression import Expression
from engine.expr.failures import EVAL_ERRORS, describe
from engine.expr.functions import (
    FUNCTIONS,
    PURE,
    TIME_FNS,
    WINDOW_FUNCTIONS,
    WINDOW_QUERIES,
    absent_fn,
    window_fn,
    window_it_fn,
)
from engine.expr.limits import MAX_CONST_CELLS, built_size, fold_growth
from engine.expr.operators import (
    BINOPS,
    CMP,
    CMP_CD,
    CMP_DC,
    CMP_DD,
    OP_TEXT,
    PLAIN_WITH_NUMBER,
    UNARY,
    all_fn,
    any_fn,
    chain_fn,
    compare_chain,
    is_number,
    member_fn,
)
from engine.expr.paths import (
    MetricPath,
    attr_fn,
    fused_cmp,
    index,
    path_getter,
    read_attr,
    static_path,
)
from engine.expr.scope import IT, Fn
from engine.expr.syntax import MAX_LENGTH, Source

__all__ = ["compile_expr"]


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
        path: MetricPath | None = None,
    ) -> None:
        self.kind = kind
        self.col = col
        self.value = value
        self.fn = fn
        self.path = path


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
        self.src = Source(source)
        self.names = names
        self.used: set[str] = set()
        self.funcs: set[str] = set()
        self.windows: list[float] = []
        self.series: list[str] = []
        self.it_series: list[str] = []
        # elements and characters built by folding constants (see fold)
        self.cells = 0

    def run(self) -> Expression:
        source, tree = self.src.source, self.src.parse()
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

    # materialise a node as a closure

    def fn(self, c: _C) -> Fn:
        if c.kind == _DYN:
            assert c.fn is not None
            return c.fn
        if c.kind == _PATH:
            assert c.path is not None
            return path_getter(c.path, c.col)
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
            raise ExprError(e.message, self.src.col(node)) from None
        except EVAL_ERRORS as e:
            raise ExprError(describe(e), self.src.col(node)) from None
        self.cells += max(grow, built_size(value))
        if self.cells > MAX_CONST_CELLS:
            raise self.over_budget(node)
        return _C(_CONST, self.src.col(node), value=value)

    def over_budget(self, node: ast.AST) -> ExprError:
        return ExprError(
            f"refused: the constants of this expression would hold more than "
            f"{MAX_CONST_CELLS} elements and characters",
            self.src.col(node),
        )

    def node(self, node: ast.expr) -> _C:
        method: Callable[[Any], _C] = getattr(self, "n_" + type(node).__name__)
        return method(node)

    def use_name(self, name: str, node: ast.AST) -> None:
        if name in self.names:
            self.used.add(name)
            return
        col = self.src.col(node)
        if name == IT:
            raise ExprError("`it` exists only in rules with `each`", col)
        if name in FUNCTIONS:
            raise ExprError(f"{name} is a function: call it, e.g. {name}(...)", col)
        raise ExprError(f"unknown name {name!r}: no collector provides it", col)

    # node kinds

    def n_Constant(self, node: ast.Constant) -> _C:
        return _C(_CONST, self.src.col(node), value=node.value)

    def n_Name(self, node: ast.Name) -> _C:
        self.use_name(node.id, node)
        return _C(_PATH, self.src.col(node), path=MetricPath(node.id))

    def n_Attribute(self, node: ast.Attribute) -> _C:
        base = self.node(node.value)
        col = self.src.attr_col(node)
        if base.kind == _PATH:  # a path's errors point at its start
            assert base.path is not None
            return _C(_PATH, base.col, path=base.path.child(node.attr, True))
        if base.kind == _CONST:
            return self.fold(node, read_attr, base.value, node.attr)
        return _C(_DYN, col, fn=attr_fn(self.fn(base), node.attr, col))

    def n_Subscript(self, node: ast.Subscript) -> _C:
        base = self.node(node.value)
        key = self.node(node.slice)
        col = self.src.col(node)
        if base.kind == _PATH and key.kind == _CONST and type(key.value) in (str, int):
            assert base.path is not None
            return _C(_PATH, base.col, path=base.path.child(key.value, False))
        if base.kind == _CONST and key.kind == _CONST:
            return self.fold(node, index, base.value, key.value)
        bf = self.fn(base)
        if key.kind == _CONST:
            k = key.value
            return _C(_DYN, col, fn=lambda s: index(bf(s), k, col))
        kf = self.fn(key)
        return _C(_DYN, col, fn=lambda s: index(bf(s), kf(s), col))

    def n_Slice(self, node: ast.Slice) -> _C:
        parts = [None if p is None else self.node(p) for p in (node.lower, node.upper, node.step)]
        if all(p is None or p.kind == _CONST for p in parts):
            return self.fold(node, slice, *(None if p is None else p.value for p in parts))
        lo, hi, st = (None if p is None else self.fn(p) for p in parts)
        return _C(
            _DYN,
            self.src.col(node),
            fn=lambda s: slice(
                None if lo is None else lo(s),
                None if hi is None else hi(s),
                None if st is None else st(s),
            ),
        )

    def n_UnaryOp(self, node: ast.UnaryOp) -> _C:
        opf = UNARY[type(node.op)]
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
        return _C(_DYN, self.src.col(node), fn=g)

    def n_BinOp(self, node: ast.BinOp) -> _C:
        t = type(node.op)
        opf = BINOPS[t]
        left, right = self.node(node.left), self.node(node.right)
        if left.kind == _CONST and right.kind == _CONST:
            return self.fold(node, opf, left.value, right.value)
        col = self.src.col(node)
        if t is ast.Mod and left.kind == _CONST and isinstance(left.value, str):
            raise ExprError("% formatting of strings is not allowed", col)
        plain = PLAIN_WITH_NUMBER.get(t)
        if plain is not None or (t is ast.Mult):
            if right.kind == _CONST and is_number(right.value, t):
                k = right.value
                lf = self.fn(left)
                if plain is not None:
                    return _C(_DYN, col, fn=plain[0](lf, k))
                return _C(_DYN, col, fn=lambda s: lf(s) * k)
            if left.kind == _CONST and is_number(left.value, t):
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
        col = self.src.col(node)
        if len(fns) == 2:
            a, b = fns
            g: Fn = (lambda s: a(s) and b(s)) if is_and else (lambda s: a(s) or b(s))
        elif len(fns) == 3:
            a, b, c = fns
            g = (lambda s: a(s) and b(s) and c(s)) if is_and else (lambda s: a(s) or b(s) or c(s))
        else:
            g = all_fn(tuple(fns)) if is_and else any_fn(tuple(fns))
        return _C(_DYN, col, fn=g)

    def n_IfExp(self, node: ast.IfExp) -> _C:
        test, body, orelse = self.node(node.test), self.node(node.body), self.node(node.orelse)
        if test.kind == _CONST:
            return body if test.value else orelse
        tf, bf, of = self.fn(test), self.fn(body), self.fn(orelse)
        return _C(_DYN, self.src.col(node), fn=lambda s: bf(s) if tf(s) else of(s))

    def n_Compare(self, node: ast.Compare) -> _C:
        operands = [node.left, *node.comparators]
        ops = [type(o) for o in node.ops]
        for i, op in enumerate(ops):
            if op in (ast.Is, ast.IsNot) and not (
                _singleton(operands[i]) or _singleton(operands[i + 1])
            ):
                raise ExprError(
                    f"'{OP_TEXT[op]}' compares only with None, True or False; use == or !=",
                    self.src.col(operands[i + 1]),
                )
        cs = [self.node(n) for n in operands]
        col = self.src.col(node)
        opfs = [CMP[op] for op in ops]
        if all(c.kind == _CONST for c in cs):
            return self.fold(node, compare_chain, opfs, [c.value for c in cs])
        if len(ops) > 1:
            fns = tuple(self.fn(c) for c in cs)
            return _C(_DYN, col, fn=chain_fn(tuple(opfs), fns))
        op, left, right = ops[0], cs[0], cs[1]
        if right.kind == _CONST:
            k = right.value  # comparisons never leak a constant: no copy needed
            if op in (ast.In, ast.NotIn):
                return _C(_DYN, col, fn=member_fn(self.fn(left), k, op is ast.NotIn))
            if op in CMP_DC:
                if left.kind == _PATH:
                    assert left.path is not None
                    fused = fused_cmp(op, left.path, k, left.col)
                    if fused is not None:
                        return _C(_DYN, col, fn=fused)
                return _C(_DYN, col, fn=CMP_DC[op](self.fn(left), k))
        if left.kind == _CONST and op in CMP_CD:
            return _C(_DYN, col, fn=CMP_CD[op](left.value, self.fn(right)))
        lf, rf = self.fn(left), self.fn(right)
        if op in CMP_DD:
            return _C(_DYN, col, fn=CMP_DD[op](lf, rf))
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
        return _C(_DYN, self.src.col(node), fn=lambda s: kind([f(s) for f in fns]))

    def n_Dict(self, node: ast.Dict) -> _C:
        keys = [self.node(k) for k in node.keys if k is not None]
        vals = [self.node(v) for v in node.values]
        if all(c.kind == _CONST for c in (*keys, *vals)):
            pairs = [(k.value, v.value) for k, v in zip(keys, vals, strict=True)]
            return self.fold(node, dict, pairs)
        kfs = tuple(self.fn(k) for k in keys)
        vfs = tuple(self.fn(v) for v in vals)
        pairs_fn = tuple(zip(kfs, vfs, strict=True))
        return _C(_DYN, self.src.col(node), fn=lambda s: {k(s): v(s) for k, v in pairs_fn})

    def n_Call(self, node: ast.Call) -> _C:
        assert isinstance(node.func, ast.Name)  # check() refused every other callee
        name = node.func.id
        col = self.src.col(node)
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
            return _C(_DYN, col, fn=TIME_FNS[name])
        if name == "absent":
            if nargs != 1:
                raise ExprError("absent() takes one argument, e.g. absent(app.queue_depth)", col)
            arg = self.node(node.args[0])
            if arg.kind == _CONST:
                return _C(_CONST, col, value=False)
            return _C(_DYN, col, fn=absent_fn(self.fn(arg)))
        impl, lo, hi = PURE[name]
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
        col = self.src.col(node)
        usage = f'{name}(system.cpu_percent, "5m")'
        if len(node.args) != 2:
            raise ExprError(f"{name}() takes a metric and a window, e.g. {usage}", col)
        metric, window = node.args
        path = static_path(metric)
        if path is None:
            raise ExprError(
                f"the first argument of {name}() must be a metric such as system.cpu_percent",
                self.src.col(metric),
            )
        self.use_name(path.root, metric)
        if not (isinstance(window, ast.Constant) and isinstance(window.value, str)):
            raise ExprError(
                f'the window of {name}() must be a string such as "5m"', self.src.col(window)
            )
        try:
            seconds = parse_duration(window.value)
        except ValueError as e:
            raise ExprError(str(e), self.src.col(window)) from None
        if seconds <= 0:
            raise ExprError(f"the window of {name}() must be longer than 0", self.src.col(window))
        self.windows.append(seconds)
        label = f"{name}({path.text}, {window.value!r})"
        query = WINDOW_QUERIES[name]
        if path.root == IT:
            self.it_series.append(path.suffix)
            fn = window_it_fn(query, path.suffix, seconds, label, col)
        else:
            self.series.append(path.text)
            fn = window_fn(query, path.text, seconds, label, col)
        return _C(_DYN, col, fn=fn)
