"""The compiled Expression: a closure tree with what it reads (names,
functions, windows, series), evaluated with failures turned into ExprError or
MissingData. Separate from the compiler: rules, config and explain hold and
evaluate Expressions without needing how they were built.
"""

from __future__ import annotations

from typing import Any

from engine.errors import ExprError
from engine.expr.failures import EVAL_ERRORS, failure
from engine.expr.limits import show as _show
from engine.expr.scope import EvalScope, Fn


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
        except EVAL_ERRORS as e:
            raise failure(e) from None

    def evaluate_bool(self, scope: EvalScope) -> bool:
        """Like evaluate, for rule conditions: a result that is not exactly
        True or False is an ExprError (1 is not True, [] is not False)."""
        try:
            r = self._fn(scope)
        except EVAL_ERRORS as e:
            raise failure(e) from None
        if r is True or r is False:
            return r
        raise ExprError(f"expression yielded {type(r).__name__} {_show(r)}, not a boolean")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Expression) and other.source == self.source

    def __hash__(self) -> int:
        return hash(self.source)

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"
