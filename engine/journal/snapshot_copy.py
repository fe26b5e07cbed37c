"""A consistent copy of the durable state, taken without stopping the event loop.

Serialising 10,000 alerts at once takes a few hundred milliseconds (a deep copy
twice that), with every evaluation tick waiting. So a snapshot at seq S is
copied copy-on-write, in steps: the alert keys are listed at S, then encoded a
slice at a time; any event folded meanwhile first has the entries it touches
encoded as they were (still at S). Entries created after S are not in the list,
so the copy is exactly the fold up to S and replay from S+1 repeats nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from engine.journal.lines import encode_json

STEP = 256  # alerts encoded per step


class StateCopy:
    """The state at one seq, being copied. `before_fold(ev)` must be called
    before each event is folded into the live state until `done`."""

    def __init__(self, state: Mapping[str, Any], seq: int) -> None:
        self.seq = seq
        self._alerts: Mapping[str, Any] = state["alerts"]
        self._keys = list(self._alerts)
        self._todo = set(self._keys)
        self._parts: dict[str, bytes] = {}
        # the rest of the state is small: encoded now, with a marker for the alerts
        marker = f"\x00alerts-{id(self)}\x00"  # NUL: escaped in JSON, no user text has it
        self._marker = json.dumps(marker).encode()
        self._head = encode_json({**state, "alerts": marker})

    def before_fold(self, ev: Mapping[str, Any]) -> None:
        fp = ev.get("alert")
        if isinstance(fp, str) and fp in self._todo:
            self._take(fp)
        many = ev.get("alerts")
        if isinstance(many, list):
            for afp in many:
                if isinstance(afp, str) and afp in self._todo:
                    self._take(afp)

    def _take(self, fp: str) -> None:
        self._todo.discard(fp)
        a = self._alerts.get(fp)
        if a is not None:
            self._parts[fp] = encode_json(a)

    def steps(self) -> Iterator[None]:
        """Encode what is left, yielding every STEP alerts."""
        for i, fp in enumerate(self._keys, 1):
            if fp in self._todo:
                self._take(fp)
            if i % STEP == 0:
                yield

    def encoded(self) -> bytes:
        """The state as JSON (after `steps` ran to the end)."""
        alerts = b",".join(
            b"%s:%s" % (json.dumps(fp).encode(), self._parts[fp])
            for fp in self._keys
            if fp in self._parts
        )
        return self._head.replace(self._marker, b"{%s}" % alerts, 1)
