"""Per-series sample history behind the window functions (`avg_over`, `rate` ...).

A *series* is one metric path, keyed by the text an expression would use for it:
`system.cpu_percent`, `system.load[0]`, `app.queues['in box'].depth`. `key_part`
is the one place that spells a path step, so the recorder (`record_tree`) and
the path readers (engine/expr/paths.py) always agree on keys. A series read
through `it` inside `each` is keyed `<it_key><suffix>`, where the caller picks
`it_key` per element (e.g. the element's fingerprint) and records the element
with `record_tree(it_key, ts, element)`.

Each series keeps two parallel lists, timestamps and values, in timestamp order.
Lists rather than `deque(maxlen=...)` because every query bisects the timestamps
(a window is an index range found in O(log n)); deque indexing is O(n) in the
middle. The lists are trimmed from the front in chunks once they exceed
`max_samples_per_series` by a slack, so `record` stays amortised O(1) and memory
stays within ~1.125x the cap. `prune(now)` drops samples older than the longest
window and forgets series that stopped reporting.

Windows are left-open, right-closed: a query at `now` over `w` seconds sees the
samples with `now - w < ts <= now`, like Prometheus range selectors. Queries take
`now` explicitly (the evaluator is pure), so evaluating "as of" an earlier time
works as long as the samples are still kept.

Thread-safety: none, on purpose. The daemon records and evaluates on its one
asyncio loop, and no method awaits, so a query never sees half a record. A
collector that reads in a worker thread must hand its values back to the loop
(its coroutine result, or `loop.call_soon_threadsafe`) and record them there;
calling `record` from another thread while the loop queries is not supported.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["History", "key_part"]

# Depth and leaf caps for record_tree: collector data is not under our control.
MAX_TREE_DEPTH = 8
MAX_TREE_LEAVES = 10_000

_NUMERIC = (int, float, bool)


def key_part(step: str | int) -> str:
    """How one path step appears in a series key: `.name`, `[3]` or `['a b']`.

    `x.name` and `x["name"]` read the same dict entry, so they share a key.
    """
    if type(step) is str and step.isidentifier():
        return "." + step
    return f"[{step!r}]"


class _Series:
    __slots__ = ("ts", "vals")

    def __init__(self, ts: float, value: Any) -> None:
        self.ts: list[float] = [ts]
        self.vals: list[Any] = [value]


class History:
    """Ring-buffered samples per series; see the module docstring."""

    __slots__ = ("_series", "_slack", "max_samples", "max_window")

    def __init__(self, max_window_seconds: float, max_samples_per_series: int = 4096) -> None:
        if max_window_seconds < 0:
            raise ValueError("max_window_seconds cannot be negative")
        if max_samples_per_series < 2:
            raise ValueError("max_samples_per_series must be at least 2")
        self.max_window = float(max_window_seconds)
        self.max_samples = max_samples_per_series
        # Trim in chunks: deleting the front of a list is a memmove of the rest.
        self._slack = max(16, max_samples_per_series // 8)
        self._series: dict[str, _Series] = {}

    # --- recording -----------------------------------------------------------

    def record(self, key: str, ts: float, value: Any) -> None:
        """Append one sample. A sample at the series' last timestamp replaces
        that sample; an older one is dropped (windows need timestamp order and
        an insert in the middle would cost O(n))."""
        s = self._series.get(key)
        if s is None:
            self._series[key] = _Series(ts, value)
            return
        t = s.ts
        last = t[-1]
        if ts > last:
            t.append(ts)
            s.vals.append(value)
            if len(t) > self.max_samples + self._slack:
                cut = len(t) - self.max_samples
                del t[:cut]
                del s.vals[:cut]
        elif ts == last:
            s.vals[-1] = value

    def record_tree(self, prefix: str, ts: float, value: Any) -> int:
        """Record every numeric or boolean leaf under `value` (nested dicts and
        lists) with keys `prefix` + the path, the way expressions spell it.
        `record_tree("system", ts, {"cpu_percent": 3.5})` records
        `system.cpu_percent`. Returns the number of samples recorded."""
        n = 0
        for key, leaf in _leaves(prefix, value):
            self.record(key, ts, leaf)
            n += 1
        return n

    def prune(self, now: float) -> int:
        """Drop samples no window can reach any more (`ts <= now - max_window`)
        and forget series left empty. Returns the number of series forgotten."""
        horizon = now - self.max_window
        gone: list[str] = []
        for key, s in self._series.items():
            t = s.ts
            if t[0] > horizon:
                continue
            cut = bisect_right(t, horizon)
            if cut == len(t):
                gone.append(key)
            else:
                del t[:cut]
                del s.vals[:cut]
        for key in gone:
            del self._series[key]
        return len(gone)

    def clear(self) -> None:
        self._series.clear()

    # --- inspection ----------------------------------------------------------

    def __len__(self) -> int:
        return len(self._series)

    def __contains__(self, key: object) -> bool:
        return key in self._series

    def keys(self) -> list[str]:
        return list(self._series)

    def latest(self, key: str) -> tuple[float, Any] | None:
        s = self._series.get(key)
        return None if s is None else (s.ts[-1], s.vals[-1])

    def samples(self, key: str, now: float, window: float) -> list[tuple[float, Any]]:
        """The (ts, value) pairs in the window, oldest first (a copy)."""
        s = self._series.get(key)
        if s is None:
            return []
        lo, hi = _bounds(s.ts, now, window)
        return list(zip(s.ts[lo:hi], s.vals[lo:hi], strict=True))

    # --- queries behind the window functions ---------------------------------
    # None means "no samples to answer with"; the expression layer turns that
    # into MissingData so the rule gets no_data handling.

    def _window(self, key: str, now: float, window: float) -> list[Any] | None:
        s = self._series.get(key)
        if s is None:
            return None
        lo, hi = _bounds(s.ts, now, window)
        return s.vals[lo:hi] if hi > lo else None

    def avg(self, key: str, now: float, window: float) -> float | None:
        v = self._window(key, now, window)
        return None if v is None else math.fsum(v) / len(v)

    def sum(self, key: str, now: float, window: float) -> float | None:
        v = self._window(key, now, window)
        return None if v is None else math.fsum(v)

    def max(self, key: str, now: float, window: float) -> Any:
        v = self._window(key, now, window)
        return None if v is None else max(v)

    def min(self, key: str, now: float, window: float) -> Any:
        v = self._window(key, now, window)
        return None if v is None else min(v)

    def count(self, key: str, now: float, window: float) -> int:
        s = self._series.get(key)
        if s is None:
            return 0
        lo, hi = _bounds(s.ts, now, window)
        return hi - lo

    def delta(self, key: str, now: float, window: float) -> Any:
        """Last minus first value in the window (a gauge's change); needs 2 samples."""
        v = self._window(key, now, window)
        if v is None or len(v) < 2:
            return None
        return v[-1] - v[0]

    def rate(self, key: str, now: float, window: float) -> float | None:
        """Per-second increase of a counter over the samples in the window.

        A drop is a counter reset (process restart): the value after it counts as
        the increase since zero, as in Prometheus. Unlike Prometheus there is no
        extrapolation to the window edges: increase / time between the first and
        the last sample. Needs 2 samples at different times.
        """
        s = self._series.get(key)
        if s is None:
            return None
        lo, hi = _bounds(s.ts, now, window)
        if hi - lo < 2:
            return None
        vals = s.vals
        prev = vals[lo]
        increase = 0.0
        for i in range(lo + 1, hi):
            v = vals[i]
            increase += v if v < prev else v - prev
            prev = v
        dt = s.ts[hi - 1] - s.ts[lo]
        return increase / dt if dt > 0 else None

    def changes(self, key: str, now: float, window: float) -> int:
        """How many times the value differs from the sample before it."""
        v = self._window(key, now, window)
        if v is None:
            return 0
        n = 0
        prev = v[0]
        for x in v:
            if x != prev:
                n += 1
            prev = x
        return n


def _bounds(ts: list[float], now: float, window: float) -> tuple[int, int]:
    hi = bisect_right(ts, now)
    return bisect_right(ts, now - window, 0, hi), hi


def _leaves(prefix: str, value: Any) -> Iterator[tuple[str, Any]]:
    # Iterative, with caps: a deep or huge JSON document from a collector must
    # neither blow the stack nor flood the history.
    stack: list[tuple[str, Any, int]] = [(prefix, value, 0)]
    n = 0
    while stack:
        key, v, depth = stack.pop()
        if type(v) in _NUMERIC:
            yield key, v
            n += 1
            if n >= MAX_TREE_LEAVES:
                return
        elif depth < MAX_TREE_DEPTH:
            if isinstance(v, Mapping):
                for k, child in v.items():
                    if type(k) is str:
                        stack.append((key + key_part(k), child, depth + 1))
            elif isinstance(v, list | tuple):
                for i in range(len(v) - 1, -1, -1):
                    stack.append((f"{key}[{i}]", v[i], depth + 1))
