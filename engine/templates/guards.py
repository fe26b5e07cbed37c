"""Size estimates the template sandbox checks BEFORE an operation builds its result.

Checking a result's size after it exists is too late: `'{:>{}}'.format('x', 3e8)`
or `'%*s' % (3e8, 'x')` allocate 300 MB before anything can look at them. These
functions say, from the operands alone, how many characters an operation can
produce, and refuse (SecurityError) a width or precision beyond the cap. They
keep no state; engine/templates/caps.py charges the estimates to the render's
budget (budget.py).
"""

from __future__ import annotations

import re
from collections.abc import ItemsView, KeysView, Mapping, ValuesView
from typing import Any

from jinja2.exceptions import SecurityError

# One % conversion: %[(key)][flags][width][.precision][length]type
_PERCENT = re.compile(
    r"%(?:\((?P<key>[^)]*)\))?(?P<flags>[#0\- +]*)(?P<width>\*|\d+)?"
    r"(?:\.(?P<prec>\*|\d*))?[hlL]?(?P<type>[diouxXeEfFgGcrsa%])"
)
# A number in a str.format spec: width or precision (fill is one character).
_SPEC_NUMBER = re.compile(r"\d+")
_NUMBER_TEXT = 330  # characters of any float or 64-bit int in any % or {} conversion


def size_of(value: Any, cap: int) -> int:
    """An upper bound on len(str(value)), walking at most until it passes `cap`
    (so a huge value costs no more than the cap to measure)."""
    total = 0
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str | bytes):
            total += len(v) + 2  # repr in a container adds quotes
        elif isinstance(v, bool) or v is None:
            total += 5
        elif isinstance(v, int):
            total += v.bit_length() // 3 + 2  # decimal digits < bits / 3.3
        elif isinstance(v, float):
            total += 24
        elif isinstance(v, Mapping):
            total += 2 + 4 * len(v)
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list | tuple | set | frozenset | KeysView | ValuesView | ItemsView):
            total += 2 + 2 * len(v)
            stack.extend(v)
        else:
            # Undefined, a cycler, a function: a short str; a namespace shows the
            # attributes it holds (in its __dict__)
            total += 64
            attrs = getattr(v, "__dict__", None)
            if isinstance(attrs, dict):
                stack.extend(attrs.values())
        if total > cap:
            return total
    return total


def _number(text: str | None, star: Any, cap: int, what: str) -> int:
    if text is None or text == "":
        return 0
    if text == "*":
        if not isinstance(star, int) or isinstance(star, bool):
            raise TypeError("* wants int")
        n = abs(star)
    else:
        if len(text) > 7:
            raise SecurityError(f"format {what} is too large")
        n = int(text)
    if n > cap:
        raise SecurityError(f"format {what} {n} is larger than {cap}")
    return n


def percent_size(fmt: str, args: Any, cap: int) -> int:
    """An upper bound on len(fmt % args), from each conversion's width,
    precision (`*` read from args, as Python does) and argument."""
    positional: tuple[Any, ...] = args if isinstance(args, tuple) else (args,)
    mapping = args if isinstance(args, Mapping) else None
    total = 0
    i = 0
    pos = 0
    while True:
        j = fmt.find("%", pos)
        if j < 0:
            return total + len(fmt) - pos
        total += j - pos
        m = _PERCENT.match(fmt, j)
        if m is None:
            raise SecurityError("unsupported % conversion in a format string")
        pos = m.end()
        if m["type"] == "%":
            total += 1
            continue

        def take() -> Any:
            nonlocal i
            if i >= len(positional):
                raise TypeError("not enough arguments for format string")
            i += 1
            return positional[i - 1]

        width = _number(m["width"], take() if m["width"] == "*" else None, cap, "width")
        prec = _number(m["prec"], take() if m["prec"] == "*" else None, cap, "precision")
        if m["key"] is not None:
            if mapping is None:
                raise TypeError("format requires a mapping")
            arg = mapping.get(m["key"])
        else:
            arg = take()
        kind = m["type"]
        if kind in "sra":
            n = size_of(arg, cap) * (1 if kind == "s" else 4)
            if m["prec"] is not None:
                n = min(n, prec)
        elif kind == "c":
            n = 1
        else:
            n = _NUMBER_TEXT + prec
        total += max(width, n)
        if total > cap:
            return total


def spec_size(value: Any, spec: str, cap: int) -> int:
    """An upper bound on len(format(value, spec)) for a resolved str.format spec."""
    numbers = [int(t) if len(t) <= 7 else cap + 1 for t in _SPEC_NUMBER.findall(spec)]
    if any(n > cap for n in numbers):
        raise SecurityError(f"format width or precision is larger than {cap}")
    if spec and not isinstance(value, str | int | float):
        # datetime and friends expand % codes in the spec: 2 characters -> ~24
        return 16 * len(spec) + size_of(value, cap)
    base = size_of(value, cap) if isinstance(value, str) else _NUMBER_TEXT
    return max([base, *numbers]) * 4 // 3 + sum(numbers)  # grouping adds a third


def lipsum_size(n: Any, html: Any, lo: Any, hi: Any) -> int:
    """An upper bound on len(lipsum(n, html, min, max)): n paragraphs of at most
    `max` words (each at most 12 characters, 14 with its separator)."""
    if not all(isinstance(x, int) for x in (n, lo, hi)):
        raise TypeError("lipsum() wants integers")
    per_paragraph = int(max(hi, lo, 0)) * 16 + (12 if html else 4)
    return int(max(n, 0)) * per_paragraph
