"""The compact series notation of rule tests (`vigil test`), as in `promtool`.

A series is one value per evaluation step, written as space-separated terms:

    50 95x10 40x5        50, then 95 eleven times, then 40 six times
    1+2x3                1 3 5 7          (a+bxn: a, then n more steps adding b)
    10-1x2               10 9 8
    _ _x3                one missing sample, then three more (`_xn` is n of them)
    true falsex2         true false false false

`axn` is `a+0xn`: n + 1 values. `_xn` is n missing samples (promtool's reading;
`_` alone is one). Numbers are ints when written without a point or exponent,
floats otherwise; arithmetic is decimal, so `0.1+0.1x2` is 0.1 0.2 0.3 exactly.

A YAML list is the same series spelled out: numbers, booleans, null (missing) and
strings in the notation above (`[50, "95x10", null, true]`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from engine.errors import InputError

__all__ = ["MAX_STEPS", "MISSING", "SeriesError", "parse_series"]


class _Missing:
    """A step without a sample: the metric is absent from the snapshot."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "_"


MISSING: Final = _Missing()
MAX_STEPS = 100_000  # steps one series may expand to: a typo must not eat the memory

_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_TERM = re.compile(
    rf"(?P<missing>_)(?:x(?P<mn>\d+))?"
    rf"|(?P<bool>true|false)(?:x(?P<bn>\d+))?"
    rf"|(?P<a>{_NUM})(?:(?P<op>[-+])(?P<b>{_NUM}))?(?:x(?P<n>\d+))?"
)


class SeriesError(InputError, ValueError):
    """A series that cannot be read; `offset` is the 0-based character offset of
    the bad term in the notation string (None for a list item)."""

    def __init__(self, message: str, offset: int | None = None, index: int | None = None) -> None:
        self.message = message
        self.offset = offset
        self.index = index  # the list item, for the YAML list form
        super().__init__(message)


def _number(text: str) -> int | Decimal:
    if re.fullmatch(r"[-+]?\d+", text):
        return int(text)
    return Decimal(text)


def _plain(v: int | Decimal) -> int | float:
    return v if isinstance(v, int) else float(v)


def _expand_term(text: str, offset: int, out: list[Any]) -> None:
    m = _TERM.fullmatch(text)
    if m is None:
        hint = ""
        if "x" in text and not re.search(r"x\d+$", text):
            hint = "; a repeat needs a count, as in 95x10"
        elif re.fullmatch(rf"{_NUM}[-+]{_NUM}", text):
            hint = f"; a step needs a count, as in {text}x5"
        raise SeriesError(
            f"bad series term {text!r}: expected a number, true, false, _ , "
            f"axN, a+bxN, a-bxN or _xN{hint}",
            offset,
        )
    count_text = m.group("mn") or m.group("bn") or m.group("n")
    count = int(count_text) if count_text is not None else None
    if count is not None and count > MAX_STEPS:
        raise SeriesError(f"series term {text!r} repeats more than {MAX_STEPS} times", offset)
    if m.group("missing"):
        out.extend([MISSING] * (1 if count is None else count))
    elif m.group("bool"):
        out.extend([m.group("bool") == "true"] * (1 if count is None else count + 1))
    else:
        try:
            a = _number(m.group("a"))
            b = _number(m.group("b")) if m.group("b") is not None else 0
        except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
            raise SeriesError(f"bad number in {text!r}", offset) from None
        if m.group("op") is not None and count is None:
            raise SeriesError(
                f"bad series term {text!r}: a step needs a count, as in {text}x5", offset
            )
        if m.group("op") == "-":
            b = -b
        n = 0 if count is None else count
        if isinstance(a, int) and isinstance(b, int):
            out.extend(a + i * b for i in range(n + 1))
        else:
            da, db = Decimal(a), Decimal(b)
            out.extend(float(da + i * db) for i in range(n + 1))
    if len(out) > MAX_STEPS:
        raise SeriesError(f"the series is longer than {MAX_STEPS} steps", offset)


def _expand_text(text: str, out: list[Any], base: int = 0) -> None:
    for m in re.finditer(r"\S+", text):
        _expand_term(m.group(), base + m.start(), out)


def parse_series(value: str | int | float | bool | Sequence[Any] | None) -> list[Any]:
    """The values of a series, one per step; `MISSING` where there is no sample.
    Raises SeriesError for anything that is not the notation."""
    out: list[Any] = []
    if isinstance(value, bool | int | float):
        out.append(value)
    elif value is None:
        out.append(MISSING)
    elif isinstance(value, str):
        if not value.strip():
            raise SeriesError("the series is empty", 0)
        _expand_text(value, out)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            if isinstance(item, bool | int | float):
                out.append(item)
            elif item is None:
                out.append(MISSING)
            elif isinstance(item, str):
                try:
                    _expand_text(item, out)
                except SeriesError as e:
                    raise SeriesError(e.message, e.offset, i) from None
            else:
                raise SeriesError(
                    f"expected a number, true, false, null or a notation string; "
                    f"got a {type(item).__name__}",
                    None,
                    i,
                )
            if len(out) > MAX_STEPS:
                raise SeriesError(f"the series is longer than {MAX_STEPS} steps", None, i)
    else:
        raise SeriesError(f"expected a series; got a {type(value).__name__}")
    return [_plain(v) if isinstance(v, Decimal) else v for v in out]
