"""Reading values by path: `system.disks[0].percent` as a name and constant
steps (MetricPath), and the closures that walk one through the scope's values
or an `each` element, raising MissingData for what is absent. Separate because
paths are also the keys of the window functions' history.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import ExprError
from engine.expr.failures import article as _a
from engine.expr.history import key_part
from engine.expr.limits import SEQ as _SEQ
from engine.expr.limits import show as _show
from engine.expr.operators import CMP
from engine.expr.scope import IT, EvalScope, Fn, MissingData


@dataclass(frozen=True, slots=True)
class MetricPath:
    """A name followed by constant steps: `system.disks[0].percent`."""

    root: str
    steps: tuple[tuple[str | int, bool], ...] = ()  # (key, written as .attr)

    def child(self, key: str | int, attr: bool) -> MetricPath:
        return MetricPath(self.root, (*self.steps, (key, attr)))

    @property
    def suffix(self) -> str:
        return "".join(key_part(k) for k, _ in self.steps)

    @property
    def text(self) -> str:
        return self.root + self.suffix


def static_path(node: ast.AST) -> MetricPath | None:
    steps: list[tuple[str | int, bool]] = []
    while True:
        if isinstance(node, ast.Name):
            return MetricPath(node.id, tuple(reversed(steps)))
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


def _missing(s: EvalScope, root: str, text: str, col: int) -> MissingData:
    if root == IT:
        if s.it is None:
            return MissingData("`it` has no value: the scope has no `each` element", col)
    elif root not in s.values:
        return MissingData(f"no data from collector {root!r} (needed for {text})", col)
    return MissingData(f"{text} has no value", col)


def _not_mapping(o: Any, text: str, col: int) -> ExprError:
    if o is None:  # reading through a JSON null: the value below it is missing
        return MissingData(f"{text} has no value", col)
    return ExprError(f"{text} is {_a(o)}, not a mapping: it has no attributes", col)


def read_attr(o: Any, k: str) -> Any:
    if type(o) is not dict and not isinstance(o, Mapping):
        raise ExprError(f"{_a(o)} has no attributes (reading .{k})")
    return o[k]


def attr_fn(f: Fn, k: str, col: int) -> Fn:
    def attr(s: EvalScope) -> Any:
        o = f(s)
        if type(o) is not dict and not isinstance(o, Mapping):
            raise _not_mapping(o, f"the value before .{k}", col)
        try:
            return o[k]
        except KeyError:
            raise MissingData(f"no key {k!r}", col) from None

    return attr


def index(o: Any, k: Any, col: int | None = None) -> Any:
    if not isinstance(o, (*_SEQ, Mapping)):
        if o is None:
            raise MissingData(f"no element {_show(k)}: the value is None", col)
        raise ExprError(f"{_a(o)} cannot be subscripted", col)
    try:
        return o[k]
    except (KeyError, IndexError):
        raise MissingData(f"no element {_show(k)}", col) from None


def path_getter(p: MetricPath, col: int) -> Fn:
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
    start = path_getter(MetricPath(root), col)

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


def fused_cmp(op: type[ast.cmpop], p: MetricPath, k: Any, col: int) -> Fn | None:
    """`collector.metric <op> constant` in one closure: the commonest rule shape.
    Calling operator.gt from here costs little; a second closure for the path
    costs a Python frame, nearly doubling the time."""
    if p.root == IT or len(p.steps) != 1:
        return None
    opf = CMP[op]
    c, text = p.root, p.text
    m: Any = p.steps[0][0]

    def fused(s: EvalScope) -> Any:
        try:
            v = s.values[c][m]
        except KeyError:
            raise _missing(s, c, text, col) from None
        return opf(v, k)

    return fused
