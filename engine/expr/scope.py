"""What one evaluation reads (EvalScope) and how a missing value fails
(MissingData). The leaf of the expression package: the compiler, the function
library, the path readers and the compiled Expression all build on these, so
they sit apart and import nothing of the sandbox.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any, Final

from engine.errors import ExprError
from engine.expr.history import History

IT: Final = "it"

Fn = Callable[["EvalScope"], Any]


class MissingData(ExprError):
    """A value the expression reads is missing (collector down, key or index
    absent, no samples in a window): the caller applies the rule's no_data."""


@dataclass(frozen=True, slots=True)
class EvalScope:
    """Everything one evaluation may read. Immutable; build one per evaluation
    (or per `each` element with `for_element`).

    values   collector name -> its metrics (primitives, lists, dicts), read-only
    now      wall-clock epoch seconds (UTC) for hour(), weekday(), now() and windows
    history  samples behind the window functions; None: they raise MissingData
    it       the `each` element (None outside `each`)
    it_key   prefix of the element's history keys (e.g. its fingerprint); see
             engine/expr/history.py
    tz       timezone for hour() and weekday(); None is UTC
    """

    values: Mapping[str, Mapping[str, Any]]
    now: float
    history: History | None = None
    it: Any = None
    it_key: str = ""
    tz: tzinfo | None = None

    def for_element(self, it: Any, it_key: str) -> EvalScope:
        # the constructor, not dataclasses.replace: this runs once per `each`
        # element, and replace() costs three times as much
        return EvalScope(self.values, self.now, self.history, it, it_key, self.tz)
