"""The budget of one template render: its steps, CPU deadline and the characters
it builds and outputs, counted as the render goes (render, one_budget).

Separate from the sandbox environment (sandbox.py) and from the checks of each
operation's size (caps.py): those decide WHAT an operation would cost; this
module keeps the running totals and the clock, and refuses when one is spent.
The deadline counts the rendering thread's CPU time, less full garbage
collections, so a busy machine does not turn a good template into a refused one.
"""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError

from engine.templates.guards import size_of

MAX_OUTPUT = 64 * 1024  # characters of one rendered text
MAX_RANGE = 10_000  # items of one range()
MAX_STEPS = 50_000  # calls, operators, filters, loop iterations and outputs per render
RENDER_SECONDS = 0.1
_MAX_PRODUCED = 4 * MAX_OUTPUT  # all `{{ }}` output, also what macros and blocks buffer
_MAX_BUILT = 16 * MAX_OUTPUT  # characters and elements one render may build in all


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


def tick() -> None:
    b = _BUDGET.get()
    if b is None:  # compiling or checking, not rendering
        return
    b.steps += 1
    if b.steps > MAX_STEPS:
        raise SecurityError(f"template does too much work (more than {MAX_STEPS} steps)")
    if not b.steps & 15:
        _past_deadline(b)


def _past_deadline(b: _Budget | None) -> None:
    if b is not None and _work_clock() > b.deadline:
        raise SecurityError(f"template took longer than {RENDER_SECONDS * 1000:.0f} ms of CPU")


def check_deadline() -> None:
    """Refuse when the current render's CPU time is spent (right after a long call)."""
    _past_deadline(_BUDGET.get())


def too_big(n: float) -> None:
    if n > MAX_OUTPUT:
        raise SecurityError(f"template would build a value larger than {MAX_OUTPUT} characters")


def charge(n: int) -> None:
    """`n` characters or elements are about to be built: refuse beyond the caps."""
    too_big(n)
    b = _BUDGET.get()
    if b is not None:
        b.built += n
        if b.built > _MAX_BUILT:
            raise SecurityError(f"template builds more than {_MAX_BUILT} characters in all")


def check_size(value: Any) -> None:
    if isinstance(value, str | bytes | list | tuple | dict):
        charge(len(value))


def text_size(value: Any) -> int:
    """Characters in a string, a bound on what str() of anything else makes."""
    return len(value) if isinstance(value, str) else size_of(value, MAX_OUTPUT)


def guard_iter(iterable: Any) -> Iterator[Any]:
    """Wrapped around every for loop's iterable: each iteration is a step."""
    for item in iterable:
        tick()
        yield item


def finalize(value: Any) -> Any:
    b = _BUDGET.get()
    if b is not None:
        # measured before str() builds it: a list may hold one long string many times
        b.produced += len(value) if isinstance(value, str) else size_of(value, _MAX_PRODUCED)
        if b.produced > _MAX_PRODUCED:
            raise SecurityError(f"template output is larger than {_MAX_PRODUCED} characters")
        tick()
    return value


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
            too_big(size)
            tick()
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
