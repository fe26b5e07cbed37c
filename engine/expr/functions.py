"""The function library: the pure built-ins (abs, len, round, min, max, int,
float, str) with their limits, the clock functions, absent(), and the window
functions over history. Separate from the compiler, which checks calls against
FUNCTIONS and wires these in.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

from simpleeval import MAX_COMPREHENSION_LENGTH

from engine.errors import ExprError
from engine.expr.failures import article as _a
from engine.expr.failures import describe
from engine.expr.history import History
from engine.expr.limits import CONTAINERS as _CONTAINERS
from engine.expr.limits import MAX_ROUND_DIGITS, MAX_STR_INT_DIGITS
from engine.expr.limits import MAX_STR_INT_BITS as _MAX_STR_INT_BITS
from engine.expr.limits import SCALARS as _SCALARS
from engine.expr.limits import too_big as _too_big
from engine.expr.scope import EvalScope, Fn, MissingData

WINDOW_FUNCTIONS: Final = frozenset(
    {"avg_over", "max_over", "min_over", "sum_over", "count_over", "rate", "delta", "changes"}
)
FUNCTIONS: Final = WINDOW_FUNCTIONS | frozenset(
    {"absent", "abs", "min", "max", "round", "len", "hour", "weekday", "now", "int", "float", "str"}
)


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
PURE: Final[dict[str, tuple[Callable[..., Any], int, int | None]]] = {
    "abs": (abs, 1, 1),
    "len": (len, 1, 1),
    "round": (_round, 1, 2),
    "min": (_min, 1, None),
    "max": (_max, 1, None),
    "int": (_int, 1, 1),
    "float": (_float, 1, 1),
    "str": (_str, 1, 1),
}
WINDOW_QUERIES: Final[dict[str, Callable[[History, str, float, float], Any]]] = {
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
        raise ExprError(f"now is not a usable time: {describe(e)}") from None


def absent_fn(f: Fn) -> Fn:
    def absent(s: EvalScope) -> bool:
        try:
            f(s)
        except MissingData:
            return True
        return False

    return absent


TIME_FNS: Final[dict[str, Fn]] = {
    "hour": lambda s: _clock(s).hour,
    "weekday": lambda s: _clock(s).weekday(),
    "now": lambda s: s.now,
}


def window_fn(
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


def window_it_fn(
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
