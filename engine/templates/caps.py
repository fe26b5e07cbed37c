"""The caps on what one template operation may build: `*`, `**`, `+`, `%`,
string method calls, str.format fields, range(), lipsum(), `~` and the filters
that can multiply their input are checked BEFORE they build a result larger
than the cap (size estimates: guards.py; running totals: budget.py).

Separate from the environment (sandbox.py), which only routes Jinja's hooks
here: these are the per-operation rules, one per way a template can amplify.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEscapeFormatter, SandboxedFormatter
from jinja2.utils import generate_lorem_ipsum

from engine.templates.budget import (
    MAX_OUTPUT,
    MAX_RANGE,
    charge,
    check_deadline,
    check_size,
    guard_iter,
    text_size,
    tick,
    too_big,
)
from engine.templates.guards import lipsum_size, percent_size, size_of, spec_size

_MAX_POW_BITS = 4096
_FILTER_INPUT = 16 * 1024  # text the slow filters (wordwrap, urlize) take


def check_repeat(left: Any, right: Any) -> None:
    if isinstance(left, int) and isinstance(right, int):
        # squaring in a loop: 30 rounds of 10**1000 took 5 s in one multiplication
        if left.bit_length() + right.bit_length() > _MAX_POW_BITS:
            raise SecurityError(f"the product would have more than {_MAX_POW_BITS} bits")
        return
    for seq, n in ((left, right), (right, left)):
        if isinstance(seq, str | bytes | list | tuple) and isinstance(n, int):
            # A list's size counts what it holds: ['x' * 60000] * 60000 joins to 3.6 GB.
            charge(text_size(seq) * max(n, 0))


def check_pow(left: Any, right: Any) -> None:
    if (
        isinstance(left, int)
        and isinstance(right, int)
        and abs(left) > 1
        and right > 0
        and right * math.log2(abs(left)) > _MAX_POW_BITS
    ):
        raise SecurityError("exponent is too large")


def _check_replace(s: Any, old: Any, new: Any) -> None:
    if (isinstance(s, str) and isinstance(old, str) and isinstance(new, str)) or (
        isinstance(s, bytes) and isinstance(old, bytes) and isinstance(new, bytes)
    ):
        count: int = s.count(old) if old else len(s) + 1  # type: ignore[arg-type]
        too_big(len(s) + count * max(0, len(new) - len(old)))


_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})


def check_call(obj: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[Any, ...]:
    """Refuse a string method call that would build too much; the arguments to
    call it with (str.join's iterable read into a list, so its size is known)."""
    target = getattr(obj, "__wrapped__", obj)  # the sandbox wraps str.format
    owner = getattr(target, "__self__", None)
    if not isinstance(owner, str | bytes):
        return args
    name = getattr(target, "__name__", "")
    if name == "join" and len(args) == 1 and not isinstance(args[0], list | tuple):
        # a string, a generator, a range: one step per item, then sized as a list
        args = (list(guard_iter(args[0])),)
    if name in _WIDTH_METHODS:
        for a in (*args, *kwargs.values()):
            if isinstance(a, int):
                too_big(a * (len(owner) if name == "expandtabs" else 1))
    elif name == "replace" and len(args) >= 2:
        _check_replace(owner, args[0], args[1])
    elif name == "join" and args and isinstance(args[0], list | tuple):
        charge(sum(text_size(x) + len(owner) for x in args[0]))
    elif name == "translate" and args and isinstance(args[0], Mapping):
        # a table may map one character to a long string
        longest = max((len(v) for v in args[0].values() if isinstance(v, str)), default=1)
        charge(len(owner) * max(longest, 1))
    return args


def capped_range(*args: int) -> range:
    rng = range(*args)
    if len(rng) > MAX_RANGE:
        raise SecurityError(f"range() is capped at {MAX_RANGE} items")
    return rng


def capped_lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    # lipsum(300000) took 16 s: its size is known from its arguments
    charge(lipsum_size(n, html, min, max))
    return generate_lorem_ipsum(n, html, min, max)


def concat_guard(*values: Any) -> str:
    """`a ~ b ~ c` (Jinja joins str() of each): refused before the join when too long."""
    tick()
    charge(sum(text_size(v) for v in values))  # before any str() is built
    return "".join(v if isinstance(v, str) else str(v) for v in values)


class CappedFormatter(SandboxedFormatter):
    """str.format / format_map: each field's resolved spec (`{:>{}}` takes its
    width from an argument) is checked before the field is formatted."""

    _total = 0

    def vformat(self, format_string: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> str:
        self._total = len(format_string)
        return super().vformat(format_string, args, kwargs)

    def format_field(self, value: Any, format_spec: str) -> Any:
        tick()
        n = spec_size(value, format_spec, MAX_OUTPUT)
        self._total += n
        too_big(self._total)
        charge(n)
        return super().format_field(value, format_spec)


class CappedEscapeFormatter(CappedFormatter, SandboxedEscapeFormatter):
    pass


# Filters that turn their input into text first (soft_str): given a list, that
# text can be far larger than the list looks.
_STRINGIFYING = frozenset(
    {
        "capitalize", "center", "e", "escape", "forceescape", "indent", "lower",
        "replace", "string", "striptags", "title", "trim", "truncate", "upper",
        "urlize", "wordcount", "wordwrap",
    }
)  # fmt: skip
# Filters that make text of a structure their own way: measured first, as it is.
_MEASURED = frozenset({"pprint", "tojson", "urlencode", "xmlattr"})
# Where the filters that take an `attribute` (a dotted path read from every item)
# and a `default` have them.
_ATTRIBUTE_ARG = {"sort": 3, "groupby": 1, "unique": 2, "min": 2, "max": 2, "sum": 1, "join": 2}
_MAX_ATTRIBUTE = 256


def _pre_filter(name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Argument checks for the filters that can multiply their input."""

    def arg(i: int, key: str) -> Any:
        return args[i] if len(args) > i else kwargs.get(key)

    attribute = arg(_ATTRIBUTE_ARG[name], "attribute") if name in _ATTRIBUTE_ARG else None
    if isinstance(attribute, str) and len(attribute) > _MAX_ATTRIBUTE:
        raise SecurityError(f"{name} attribute is longer than {_MAX_ATTRIBUTE} characters")
    if name == "groupby":
        # the default stands in for every item without the attribute, lowercased
        # once per item when case-insensitive: 60,000 copies of a long one
        default = arg(2, "default")
        if isinstance(default, str) and len(default) > _MAX_ATTRIBUTE:
            raise SecurityError(f"groupby default is longer than {_MAX_ATTRIBUTE} characters")

    if name == "replace":
        _check_replace(arg(0, "s"), arg(1, "old"), arg(2, "new"))
    elif name in ("center", "truncate", "wordwrap"):
        w = arg(1, "width")
        if isinstance(w, int):
            too_big(w)
        if name == "wordwrap":
            # textwrap is slow on long text (width 1 on 64 KB: 0.4 s), and each line
            # gets the wrapstring: a long one multiplies the text
            text, wrap = arg(0, "s"), arg(3, "wrapstring")
            n = len(text) if isinstance(text, str) else 0
            if n > _FILTER_INPUT:
                raise SecurityError(f"wordwrap takes at most {_FILTER_INPUT} characters")
            width = w if isinstance(w, int) and w > 0 else 1
            charge(n + (n // width + 1) * (len(wrap) if isinstance(wrap, str) else 1))
    elif name == "urlize":
        # each link repeats its URL and gets the target and rel attributes
        text = arg(0, "value")
        if isinstance(text, str) and len(text) > _FILTER_INPUT:
            raise SecurityError(f"urlize takes at most {_FILTER_INPUT} characters")
        for i, key in ((3, "target"), (4, "rel")):
            v = arg(i, key)
            if isinstance(v, str) and len(v) > 256:
                raise SecurityError(f"urlize {key} is longer than 256 characters")
    elif name == "sum":
        # sum() of lists or strings copies the running total at every item: quadratic
        start = arg(2, "start")
        if start is not None and not isinstance(start, int | float):
            raise SecurityError("sum adds numbers only; use join for text")
    elif name == "indent":
        s, w = arg(0, "s"), arg(1, "width")
        lines = str(s).count("\n") + 1
        if isinstance(w, int | str):
            too_big(lines * (w if isinstance(w, int) else len(w)))
    elif name == "format":
        fmt = arg(0, "value")
        if isinstance(fmt, str):
            charge(percent_size(fmt, dict(kwargs) or tuple(args[1:]), MAX_OUTPUT))
    elif name == "join":
        items, sep = arg(0, "value"), arg(1, "d")
        if isinstance(items, list | tuple):
            n = len(sep) if isinstance(sep, str) else 0
            charge(sum(text_size(x) + n for x in items))
    elif name == "tojson":
        ind = arg(1, "indent")  # repeated on every line: a number of spaces or a string
        if (isinstance(ind, int) and ind > 16) or (isinstance(ind, str) and len(ind) > 16):
            raise SecurityError("tojson indent is too large")
    elif name in ("slice", "batch"):
        n = arg(1, "slices" if name == "slice" else "linecount")
        if isinstance(n, int) and n > MAX_RANGE:
            raise SecurityError(f"{name} count is capped at {MAX_RANGE}")


@functools.cache  # one wrapper per filter for all environments: they keep no state
def capped_filter(name: str, f: Callable[..., Any]) -> Callable[..., Any]:
    # Jinja passes context/environment first to filters marked pass_*; the checks
    # want the filter's own arguments, so skip those.
    skip = 1 if getattr(f, "jinja_pass_arg", None) is not None else 0

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        tick()
        if name == "join" and len(args) > skip and not isinstance(args[skip], list | tuple):
            # a generator or range is read here, item by item (each one a step), so
            # the size of the joined text is known before it is built
            args = (*args[:skip], list(guard_iter(args[skip])), *args[skip + 1 :])
        if name in _STRINGIFYING and len(args) > skip and not isinstance(args[skip], str):
            # the filter would make text of its input: that text is measured (before
            # it exists) and handed over, so the filter's own checks see a string
            too_big(size_of(args[skip], MAX_OUTPUT))
            args = (*args[:skip], str(args[skip]), *args[skip + 1 :])
        elif name in _MEASURED and len(args) > skip:
            too_big(size_of(args[skip], MAX_OUTPUT))
        _pre_filter(name, args[skip:], kwargs)
        rv = f(*args, **kwargs)
        # One filter can run long on its own (urlize on 64 KB: 0.3 s): the render
        # stops right after it, not 16 steps later.
        check_deadline()
        check_size(rv)
        return rv

    return wrapper
