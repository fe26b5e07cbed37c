"""Python exceptions turned into ExprError/MissingData, with messages that never
format a huge value. Separate because both the compiler (folding constants) and
the compiled Expression (evaluating) translate failures the same way.
"""

from __future__ import annotations

from typing import Any, Final

from engine.errors import ExprError
from engine.expr.scope import MissingData


def describe(e: BaseException) -> str:
    # Only a string argument is shown: str(KeyError(10**5000)) would format the int.
    arg = e.args[0] if e.args else None
    text = arg if isinstance(arg, str) else ""
    if len(text) > 200:
        text = text[:200] + "..."
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


EVAL_ERRORS: Final = (
    ArithmeticError,
    LookupError,
    TypeError,
    ValueError,
    AttributeError,
    MemoryError,
    RecursionError,
)


def failure(e: BaseException) -> ExprError:
    # Collectors report a metric they cannot read here as None (inodes on btrfs,
    # latency of a target that is down). Comparing or computing with it means
    # "no data", which the rule's no_data policy handles, not an expression bug.
    if isinstance(e, TypeError) and "'NoneType'" in str(e.args[0] if e.args else ""):
        return MissingData("a value it needs is null (not available)")
    return ExprError(describe(e))


def article(o: Any) -> str:
    name = type(o).__name__
    return f"an {name}" if name[0] in "aeiou" else f"a {name}"
