"""The operators as the sandbox runs them: the binary, unary and comparison
tables (amplifying ones through the checked versions in engine/expr/limits.py)
and the closure factories for comparisons, chains and `and`/`or`. Separate from
the compiler, which only picks among them.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from typing import Any, Final

from engine.expr.limits import SCALARS as _SCALARS
from engine.expr.limits import (
    safe_add,
    safe_lshift,
    safe_mod,
    safe_mult,
    safe_pow,
    safe_rshift,
)
from engine.expr.scope import EvalScope, Fn

BINOPS: Final[dict[type[ast.operator], Callable[[Any, Any], Any]]] = {
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
PLAIN_WITH_NUMBER: Final[
    dict[type[ast.operator], tuple[Callable[[Fn, Any], Fn], Callable[[Any, Fn], Fn]]]
] = {
    ast.Add: (lambda f, k: lambda s: f(s) + k, lambda k, f: lambda s: k + f(s)),
    ast.Sub: (lambda f, k: lambda s: f(s) - k, lambda k, f: lambda s: k - f(s)),
    ast.Div: (lambda f, k: lambda s: f(s) / k, lambda k, f: lambda s: k / f(s)),
    ast.FloorDiv: (lambda f, k: lambda s: f(s) // k, lambda k, f: lambda s: k // f(s)),
}
UNARY: Final[dict[type[ast.unaryop], Callable[[Any], Any]]] = {
    ast.Not: operator.not_,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
    ast.Invert: operator.invert,
}


def _in(a: Any, b: Any) -> bool:
    return a in b


def _not_in(a: Any, b: Any) -> bool:
    return a not in b


CMP: Final[dict[type[ast.cmpop], Callable[[Any, Any], Any]]] = {
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
CMP_DC: Final[dict[type[ast.cmpop], Callable[[Fn, Any], Fn]]] = {
    ast.Eq: lambda f, k: lambda s: f(s) == k,
    ast.NotEq: lambda f, k: lambda s: f(s) != k,
    ast.Lt: lambda f, k: lambda s: f(s) < k,
    ast.LtE: lambda f, k: lambda s: f(s) <= k,
    ast.Gt: lambda f, k: lambda s: f(s) > k,
    ast.GtE: lambda f, k: lambda s: f(s) >= k,
}
CMP_CD: Final[dict[type[ast.cmpop], Callable[[Any, Fn], Fn]]] = {
    ast.Eq: lambda k, f: lambda s: k == f(s),
    ast.NotEq: lambda k, f: lambda s: k != f(s),
    ast.Lt: lambda k, f: lambda s: k < f(s),
    ast.LtE: lambda k, f: lambda s: k <= f(s),
    ast.Gt: lambda k, f: lambda s: k > f(s),
    ast.GtE: lambda k, f: lambda s: k >= f(s),
}
CMP_DD: Final[dict[type[ast.cmpop], Callable[[Fn, Fn], Fn]]] = {
    ast.Eq: lambda f, g: lambda s: f(s) == g(s),
    ast.NotEq: lambda f, g: lambda s: f(s) != g(s),
    ast.Lt: lambda f, g: lambda s: f(s) < g(s),
    ast.LtE: lambda f, g: lambda s: f(s) <= g(s),
    ast.Gt: lambda f, g: lambda s: f(s) > g(s),
    ast.GtE: lambda f, g: lambda s: f(s) >= g(s),
}
OP_TEXT: Final[dict[type[ast.AST], str]] = {
    ast.MatMult: "@",
    ast.Is: "is",
    ast.IsNot: "is not",
}


def is_number(v: Any, op: type[ast.operator]) -> bool:
    t = type(v)
    if op is ast.Mult:
        return t is float  # an int times a str repeats it: that needs safe_mult
    return t is int or t is float or t is bool


def member_fn(f: Fn, k: Any, negate: bool) -> Fn:
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


def compare_chain(opfs: list[Callable[[Any, Any], Any]], values: list[Any]) -> Any:
    r: Any = True
    for i, opf in enumerate(opfs):
        r = opf(values[i], values[i + 1])
        if not r:
            return r
    return r


def chain_fn(opfs: tuple[Callable[[Any, Any], Any], ...], fns: tuple[Fn, ...]) -> Fn:
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


def all_fn(fns: tuple[Fn, ...]) -> Fn:
    def all_of(s: EvalScope) -> Any:
        r: Any = True
        for f in fns:
            r = f(s)
            if not r:
                return r
        return r

    return all_of


def any_fn(fns: tuple[Fn, ...]) -> Fn:
    def any_of(s: EvalScope) -> Any:
        r: Any = False
        for f in fns:
            r = f(s)
            if r:
                return r
        return r

    return any_of
