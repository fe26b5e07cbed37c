"""The template sandbox: an immutable Jinja environment whose every render is
bounded in CPU, memory and output (engine/templates/renderer.py renders with it).

The sandbox stops attribute escapes (`''.__class__` raises SecurityError rather
than rendering empty), is immutable (`labels.update(...)` in one annotation
cannot change what the next one sees: no method that modifies a list, dict or
set can be called) and caps the work a template may do, so a bad template
cannot stall the daemon: every render has a budget of steps (calls, operators,
filters, loop iterations, output pieces), a deadline (RENDER_SECONDS), an
output cap (MAX_OUTPUT) and a cap on all it builds along the way (_MAX_BUILT).
The deadline counts the rendering thread's CPU time, so a busy machine does not
turn a good template into a refused one; compiling is outside the budget.
`range()` and `lipsum()` are capped, and `*`, `**`, `+`, `~`, `%`, str.format,
the amplifying filters and string methods are refused BEFORE they would build
something larger than the cap (estimates: guards.py); text made of a
structure is measured before str() builds it.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import math
import threading
import time
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import (
    ImmutableSandboxedEnvironment,
    SandboxedEnvironment,
    SandboxedEscapeFormatter,
    SandboxedFormatter,
)
from jinja2.utils import generate_lorem_ipsum
from jinja2.visitor import NodeTransformer
from markupsafe import Markup

from engine.templates.guards import lipsum_size, percent_size, size_of, spec_size

MAX_OUTPUT = 64 * 1024  # characters of one rendered text
MAX_RANGE = 10_000  # items of one range()
MAX_STEPS = 50_000  # calls, operators, filters, loop iterations and outputs per render
RENDER_SECONDS = 0.1
_MAX_PRODUCED = 4 * MAX_OUTPUT  # all `{{ }}` output, also what macros and blocks buffer
_MAX_POW_BITS = 4096
_MAX_BUILT = 16 * MAX_OUTPUT  # characters and elements one render may build in all
_FILTER_INPUT = 16 * 1024  # text the slow filters (wordwrap, urlize) take

# Errors a template can raise while rendering: Jinja's own and what the built-in
# filters raise on bad input. This is the boundary where operator-written code runs.
RENDER_ERRORS: tuple[type[BaseException], ...] = (
    jinja2.TemplateError,
    TypeError,
    ValueError,
    ArithmeticError,
    LookupError,
    AttributeError,
    RecursionError,
    MemoryError,  # not expected under the caps; if it happens, the fallback is sent
)


# -- the budget of one render -----------------------------------------------------------


@dataclass(slots=True)
class _Budget:
    deadline: float
    steps: int = 0
    produced: int = 0
    built: int = 0


_BUDGET: ContextVar[_Budget | None] = ContextVar("vigil_template_budget", default=None)
_clock = time.thread_time  # CPU time: ~0.5 µs a read, so read every 16th step


class _GcTime(threading.local):
    """This thread's CPU time in full garbage collections. One that happens to
    start during a render walks the whole heap (100 ms on a big one): not the
    template's work, so not counted against its deadline. Young collections are
    proportional to what was just allocated, the template's own doing: counted."""

    spent = 0.0
    began = 0.0


_gc_time = _GcTime()


def _on_gc(phase: str, info: dict[str, int]) -> None:
    if info["generation"] != 2:
        return
    if phase == "start":
        _gc_time.began = _clock()
    else:
        _gc_time.spent += _clock() - _gc_time.began


gc.callbacks.append(_on_gc)


def _work_clock() -> float:
    """This thread's CPU time, less what full garbage collections took."""
    return _clock() - _gc_time.spent


def _new_budget() -> _Budget:
    return _Budget(_work_clock() + RENDER_SECONDS)


def _tick() -> None:
    b = _BUDGET.get()
    if b is None:  # compiling or checking, not rendering
        return
    b.steps += 1
    if b.steps > MAX_STEPS:
        raise SecurityError(f"template does too much work (more than {MAX_STEPS} steps)")
    if not b.steps & 15:
        _check_deadline(b)


def _check_deadline(b: _Budget | None) -> None:
    if b is not None and _work_clock() > b.deadline:
        raise SecurityError(f"template took longer than {RENDER_SECONDS * 1000:.0f} ms of CPU")


def _too_big(n: float) -> None:
    if n > MAX_OUTPUT:
        raise SecurityError(f"template would build a value larger than {MAX_OUTPUT} characters")


def _charge(n: int) -> None:
    """`n` characters or elements are about to be built: refuse beyond the caps."""
    _too_big(n)
    b = _BUDGET.get()
    if b is not None:
        b.built += n
        if b.built > _MAX_BUILT:
            raise SecurityError(f"template builds more than {_MAX_BUILT} characters in all")


def _check_size(value: Any) -> None:
    if isinstance(value, str | bytes | list | tuple | dict):
        _charge(len(value))


def _text_size(value: Any) -> int:
    """Characters in a string, a bound on what str() of anything else makes."""
    return len(value) if isinstance(value, str) else size_of(value, MAX_OUTPUT)


def _check_repeat(left: Any, right: Any) -> None:
    if isinstance(left, int) and isinstance(right, int):
        # squaring in a loop: 30 rounds of 10**1000 took 5 s in one multiplication
        if left.bit_length() + right.bit_length() > _MAX_POW_BITS:
            raise SecurityError(f"the product would have more than {_MAX_POW_BITS} bits")
        return
    for seq, n in ((left, right), (right, left)):
        if isinstance(seq, str | bytes | list | tuple) and isinstance(n, int):
            # A list's size counts what it holds: ['x' * 60000] * 60000 joins to 3.6 GB.
            _charge(_text_size(seq) * max(n, 0))


def _check_pow(left: Any, right: Any) -> None:
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
        _too_big(len(s) + count * max(0, len(new) - len(old)))


_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})


def _check_call(obj: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[Any, ...]:
    """Refuse a string method call that would build too much; the arguments to
    call it with (str.join's iterable read into a list, so its size is known)."""
    target = getattr(obj, "__wrapped__", obj)  # the sandbox wraps str.format
    owner = getattr(target, "__self__", None)
    if not isinstance(owner, str | bytes):
        return args
    name = getattr(target, "__name__", "")
    if name == "join" and len(args) == 1 and not isinstance(args[0], list | tuple):
        # a string, a generator, a range: one step per item, then sized as a list
        args = (list(_guard_iter(args[0])),)
    if name in _WIDTH_METHODS:
        for a in (*args, *kwargs.values()):
            if isinstance(a, int):
                _too_big(a * (len(owner) if name == "expandtabs" else 1))
    elif name == "replace" and len(args) >= 2:
        _check_replace(owner, args[0], args[1])
    elif name == "join" and args and isinstance(args[0], list | tuple):
        _charge(sum(_text_size(x) + len(owner) for x in args[0]))
    elif name == "translate" and args and isinstance(args[0], Mapping):
        # a table may map one character to a long string
        longest = max((len(v) for v in args[0].values() if isinstance(v, str)), default=1)
        _charge(len(owner) * max(longest, 1))
    return args


def _guard_iter(iterable: Any) -> Iterator[Any]:
    """Wrapped around every for loop's iterable: each iteration is a step."""
    for item in iterable:
        _tick()
        yield item


def _capped_range(*args: int) -> range:
    rng = range(*args)
    if len(rng) > MAX_RANGE:
        raise SecurityError(f"range() is capped at {MAX_RANGE} items")
    return rng


def _capped_lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    # lipsum(300000) took 16 s: its size is known from its arguments
    _charge(lipsum_size(n, html, min, max))
    return generate_lorem_ipsum(n, html, min, max)


def _concat_guard(*values: Any) -> str:
    """`a ~ b ~ c` (Jinja joins str() of each): refused before the join when too long."""
    _tick()
    _charge(sum(_text_size(v) for v in values))  # before any str() is built
    return "".join(v if isinstance(v, str) else str(v) for v in values)


class _CappedFormatter(SandboxedFormatter):
    """str.format / format_map: each field's resolved spec (`{:>{}}` takes its
    width from an argument) is checked before the field is formatted."""

    _total = 0

    def vformat(self, format_string: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> str:
        self._total = len(format_string)
        return super().vformat(format_string, args, kwargs)

    def format_field(self, value: Any, format_spec: str) -> Any:
        _tick()
        n = spec_size(value, format_spec, MAX_OUTPUT)
        self._total += n
        _too_big(self._total)
        _charge(n)
        return super().format_field(value, format_spec)


class _CappedEscapeFormatter(_CappedFormatter, SandboxedEscapeFormatter):
    pass


def _finalize(value: Any) -> Any:
    b = _BUDGET.get()
    if b is not None:
        # measured before str() builds it: a list may hold one long string many times
        b.produced += len(value) if isinstance(value, str) else size_of(value, _MAX_PRODUCED)
        if b.produced > _MAX_PRODUCED:
            raise SecurityError(f"template output is larger than {_MAX_PRODUCED} characters")
        _tick()
    return value


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
            _too_big(w)
        if name == "wordwrap":
            # textwrap is slow on long text (width 1 on 64 KB: 0.4 s), and each line
            # gets the wrapstring: a long one multiplies the text
            text, wrap = arg(0, "s"), arg(3, "wrapstring")
            n = len(text) if isinstance(text, str) else 0
            if n > _FILTER_INPUT:
                raise SecurityError(f"wordwrap takes at most {_FILTER_INPUT} characters")
            width = w if isinstance(w, int) and w > 0 else 1
            _charge(n + (n // width + 1) * (len(wrap) if isinstance(wrap, str) else 1))
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
            _too_big(lines * (w if isinstance(w, int) else len(w)))
    elif name == "format":
        fmt = arg(0, "value")
        if isinstance(fmt, str):
            _charge(percent_size(fmt, dict(kwargs) or tuple(args[1:]), MAX_OUTPUT))
    elif name == "join":
        items, sep = arg(0, "value"), arg(1, "d")
        if isinstance(items, list | tuple):
            n = len(sep) if isinstance(sep, str) else 0
            _charge(sum(_text_size(x) + n for x in items))
    elif name == "tojson":
        ind = arg(1, "indent")  # repeated on every line: a number of spaces or a string
        if (isinstance(ind, int) and ind > 16) or (isinstance(ind, str) and len(ind) > 16):
            raise SecurityError("tojson indent is too large")
    elif name in ("slice", "batch"):
        n = arg(1, "slices" if name == "slice" else "linecount")
        if isinstance(n, int) and n > MAX_RANGE:
            raise SecurityError(f"{name} count is capped at {MAX_RANGE}")


@functools.cache  # one wrapper per filter for all environments: they keep no state
def _capped_filter(name: str, f: Callable[..., Any]) -> Callable[..., Any]:
    # Jinja passes context/environment first to filters marked pass_*; the checks
    # want the filter's own arguments, so skip those.
    skip = 1 if getattr(f, "jinja_pass_arg", None) is not None else 0

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _tick()
        if name == "join" and len(args) > skip and not isinstance(args[skip], list | tuple):
            # a generator or range is read here, item by item (each one a step), so
            # the size of the joined text is known before it is built
            args = (*args[:skip], list(_guard_iter(args[skip])), *args[skip + 1 :])
        if name in _STRINGIFYING and len(args) > skip and not isinstance(args[skip], str):
            # the filter would make text of its input: that text is measured (before
            # it exists) and handed over, so the filter's own checks see a string
            _too_big(size_of(args[skip], MAX_OUTPUT))
            args = (*args[:skip], str(args[skip]), *args[skip + 1 :])
        elif name in _MEASURED and len(args) > skip:
            _too_big(size_of(args[skip], MAX_OUTPUT))
        _pre_filter(name, args[skip:], kwargs)
        rv = f(*args, **kwargs)
        # One filter can run long on its own (urlize on 64 KB: 0.3 s): the render
        # stops right after it, not 16 steps later.
        _check_deadline(_BUDGET.get())
        _check_size(rv)
        return rv

    return wrapper


# -- extra filters people expect from Prometheus templates ------------------------------


def _humanize(v: Any) -> str:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return str(v)
    for unit in ("", "k", "M", "G", "T", "P"):
        if abs(x) < 1000:
            return f"{x:.4g}{unit}"
        x /= 1000
    return f"{x:.4g}E"


def _humanize_duration(v: Any) -> str:
    try:
        s = float(v)
    except (TypeError, ValueError):
        return str(v)
    if abs(s) < 60:
        return f"{s:.4g}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, s = divmod(s, size)
        if n:
            parts.append(f"{int(n)}{unit}")
    return "".join(parts)


def _humanize_percentage(v: Any) -> str:
    try:
        return f"{float(v) * 100:.4g}%"
    except (TypeError, ValueError):
        return str(v)


def _iso(v: Any) -> str:
    from engine.common.timefmt import iso

    try:
        return iso(float(v)) or ""
    except (TypeError, ValueError, OverflowError, OSError):
        return str(v)


EXTRA_FILTERS: dict[str, Callable[..., Any]] = {
    "humanize": _humanize,
    "humanize_duration": _humanize_duration,
    "humanize_percentage": _humanize_percentage,
    "iso": _iso,
}


# -- the environment --------------------------------------------------------------------


class _Guards(NodeTransformer):
    """Rewrites a parsed template so that what Jinja offers no hook for is
    checked: every for loop iterates through _loop_guard (a step each), every
    `~` concatenation goes through _concat_guard (its size, before joining)."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = nodes.Call(
            nodes.Name("_loop_guard", "load", lineno=node.lineno),
            [node.iter],
            [],
            None,
            None,
            lineno=node.lineno,
        )
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Call(
            nodes.Name("_concat_guard", "load", lineno=node.lineno),
            list(node.nodes),
            [],
            None,
            None,
            lineno=node.lineno,
        )


class CappedEnvironment(ImmutableSandboxedEnvironment):
    """An immutable sandbox that refuses unsafe access loudly and caps work."""

    intercepted_binops = frozenset({"*", "**", "+", "%", "//"})

    def __init__(self, **options: Any) -> None:
        super().__init__(finalize=_finalize, **options)
        self.globals["range"] = _capped_range
        self.globals["lipsum"] = _capped_lipsum
        self.globals["_loop_guard"] = _guard_iter
        self.globals["_concat_guard"] = _concat_guard
        self.filters.update(EXTRA_FILTERS)
        self.filters = {k: _capped_filter(k, f) for k, f in self.filters.items()}

    def unsafe_undefined(self, obj: Any, attribute: str) -> jinja2.Undefined:
        # The stock sandbox returns an Undefined that ChainableUndefined renders
        # as "": an escape attempt would pass unnoticed. Refuse it instead.
        raise SecurityError(
            f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe"
        )

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _tick()
        if operator == "*":
            _check_repeat(left, right)
        elif operator == "**":
            _check_pow(left, right)
        elif operator == "+":
            if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
                _charge(_text_size(left) + _text_size(right))
        elif operator == "%" and isinstance(left, str):
            _charge(percent_size(left, right, MAX_OUTPUT))
        rv = super().call_binop(context, operator, left, right)
        _check_size(rv)
        return rv

    def call(
        __self,  # Jinja's signature: `__` names keep kwargs free for the callee
        __context: Context,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        _tick()
        args = _check_call(__obj, args, kwargs)
        rv = super().call(__context, __obj, *args, **kwargs)
        _check_deadline(_BUDGET.get())
        _check_size(rv)
        return rv

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        # Jinja's own wrapper, with a formatter that checks each field's spec.
        if not isinstance(value, types.MethodType | types.BuiltinMethodType) or (
            value.__name__ not in ("format", "format_map")
        ):
            return None
        f_self = value.__self__
        if not isinstance(f_self, str):
            return None
        str_type = type(f_self)
        is_map = value.__name__ == "format_map"
        formatter: _CappedFormatter
        if isinstance(f_self, Markup):
            formatter = _CappedEscapeFormatter(self, escape=f_self.escape)
        else:
            formatter = _CappedFormatter(self)

        def wrapper(*args: Any, **kwargs: Any) -> str:
            if is_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                kwargs, args = args[0], ()
            return str_type(formatter.vformat(f_self, args, kwargs))

        return functools.update_wrapper(wrapper, value)

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        guarded: nodes.Template = _Guards().visit(tree)
        return guarded


def make_env(named: Mapping[str, str] | None = None) -> SandboxedEnvironment:
    return CappedEnvironment(
        loader=jinja2.DictLoader(dict(named or {})),
        autoescape=False,
        undefined=jinja2.ChainableUndefined,
        keep_trailing_newline=False,
    )


# -- rendering ---------------------------------------------------------------------------


def render(template: jinja2.Template, context: Mapping[str, Any]) -> str:
    """Render under the caps; raises one of RENDER_ERRORS (SecurityError when refused).

    A render nested in another shares the outer budget."""
    outer = _BUDGET.get()
    token = None
    if outer is None:
        token = _BUDGET.set(_new_budget())
    try:
        out: list[str] = []
        size = 0
        for chunk in template.generate(dict(context)):
            size += len(chunk)
            _too_big(size)
            _tick()
            out.append(chunk)
        return "".join(out)
    finally:
        if token is not None:
            _BUDGET.reset(token)


@contextlib.contextmanager
def one_budget() -> Iterator[None]:
    """Renders inside share one budget (a notification's title, body and html)."""
    token = _BUDGET.set(_new_budget())
    try:
        yield
    finally:
        _BUDGET.reset(token)
