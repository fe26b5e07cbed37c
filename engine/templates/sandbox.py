"""The template sandbox: an immutable Jinja environment whose every render is
bounded in CPU, memory and output (engine/templates/renderer.py renders with it).

The sandbox stops attribute escapes (`''.__class__` raises SecurityError rather
than rendering empty), is immutable (`labels.update(...)` in one annotation
cannot change what the next one sees: no method that modifies a list, dict or
set can be called) and routes every operator, call, filter, for loop and `~`
through the caps (caps.py) and the render's budget (budget.py), so a bad
template cannot stall the daemon. Compiling is outside the budget. The
rewriting of the parsed template and the environment's options live here
(renderer.py keys its code cache on this file).
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Mapping
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment
from jinja2.visitor import NodeTransformer
from markupsafe import Markup

from engine.templates.budget import (
    MAX_OUTPUT,
    charge,
    check_deadline,
    check_size,
    finalize,
    guard_iter,
    text_size,
    tick,
)
from engine.templates.caps import (
    CappedEscapeFormatter,
    CappedFormatter,
    capped_filter,
    capped_lipsum,
    capped_range,
    check_call,
    check_pow,
    check_repeat,
    concat_guard,
)
from engine.templates.guards import percent_size
from engine.templates.prometheus_filters import EXTRA_FILTERS


class _Guards(NodeTransformer):
    """Rewrites a parsed template so that what Jinja offers no hook for is
    checked: every for loop iterates through the global `_loop_guard`
    (budget.guard_iter: a step each), every `~` concatenation goes through
    `_concat_guard` (caps.concat_guard: its size, before joining)."""

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
        super().__init__(finalize=finalize, **options)
        self.globals["range"] = capped_range
        self.globals["lipsum"] = capped_lipsum
        self.globals["_loop_guard"] = guard_iter
        self.globals["_concat_guard"] = concat_guard
        self.filters.update(EXTRA_FILTERS)
        self.filters = {k: capped_filter(k, f) for k, f in self.filters.items()}

    def unsafe_undefined(self, obj: Any, attribute: str) -> jinja2.Undefined:
        # The stock sandbox returns an Undefined that ChainableUndefined renders
        # as "": an escape attempt would pass unnoticed. Refuse it instead.
        raise SecurityError(
            f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe"
        )

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        tick()
        if operator == "*":
            check_repeat(left, right)
        elif operator == "**":
            check_pow(left, right)
        elif operator == "+":
            if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
                charge(text_size(left) + text_size(right))
        elif operator == "%" and isinstance(left, str):
            charge(percent_size(left, right, MAX_OUTPUT))
        rv = super().call_binop(context, operator, left, right)
        check_size(rv)
        return rv

    def call(
        __self,  # Jinja's signature: `__` names keep kwargs free for the callee
        __context: Context,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        tick()
        args = check_call(__obj, args, kwargs)
        rv = super().call(__context, __obj, *args, **kwargs)
        check_deadline()
        check_size(rv)
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
        formatter: CappedFormatter
        if isinstance(f_self, Markup):
            formatter = CappedEscapeFormatter(self, escape=f_self.escape)
        else:
            formatter = CappedFormatter(self)

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
