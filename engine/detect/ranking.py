"""The keys a snapshot lists: the top `max_reported` by score, in O(changed keys).

A key's score (its hits in the hit window, then its windows' values in their
order, compared as a tuple) only falls while the key sees no line: slots leave
the counts, distinct values age out, buckets leak. So the score a key had when it
was last scored is an upper bound of its score now, unless a line touched it
since (the sink marks it `dirty`). The ranking keeps every key's last score in a
max-heap; a snapshot re-scores the dirty keys, then pops the best bounds,
re-scoring each once, until `k` keys are exact and above every remaining bound.
The result is the one a full re-score sorted by (score descending, key) gives,
at the cost of the dirty keys, the listed ones and those whose bound fell past
them, instead of every key (~33 ms for 9,000 keys, on each pass).

Scoring also says until when the score holds if no line touches the key (its
oldest slot or value leaves a window then; a bucket that is not empty drains all
the time): a key popped before then is exact without re-scoring. Between two
passes most listed keys saw no line and lost nothing, so a snapshot re-scores
little more than the dirty keys.

If the clock goes back (a bucket's level read earlier is higher), every key is
re-scored: the bounds only hold forward in time.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Collection, Container
from typing import Generic, TypeVar

Score = tuple[float, ...]
T = TypeVar("T")  # what scoring a key gives besides its score (the sink: its hits)


def _neg(score: Score) -> Score:
    return tuple(-x for x in score)


class Ranking(Generic[T]):
    def __init__(self) -> None:
        self.dirty: set[str] = set()  # touched since their last score: the sink adds them
        self._bound: dict[str, Score] = {}  # key -> its negated last score
        # key -> (its last score, what came with it, until when it holds untouched)
        self._scored: dict[str, tuple[Score, T, float]] = {}
        self._heap: list[tuple[Score, str]] = []  # (negated score, key); stale entries skipped
        self._now = float("-inf")

    def top(
        self,
        k: int,
        now: float,
        keys: Collection[str],
        score: Callable[[str], tuple[Score, T, float]],
    ) -> list[tuple[str, Score, T]]:
        """The best `k` of `keys` (the live ones) at `now`, best first, ties by key;
        `score(key)` scores one key at `now`, and says until when that holds."""
        if now < self._now:
            self.dirty.update(keys)
        self._now = now
        bound, heap, push, scored = self._bound, self._heap, heapq.heappush, self._scored
        exact: dict[str, tuple[Score, T]] = {}

        def rescore(key: str) -> None:
            got = scored[key] = score(key)
            exact[key] = got[0], got[1]
            neg = bound[key] = _neg(got[0])
            push(heap, (neg, key))

        for key in self.dirty:
            if key in keys:
                rescore(key)
        self.dirty.clear()
        out: list[tuple[str, Score, T]] = []
        popped: list[tuple[Score, str]] = []
        pop = heapq.heappop
        while heap and len(out) < k:
            neg, key = heap[0]
            if bound.get(key) is not neg or key not in keys:
                pop(heap)  # stale: re-scored since, or gone (expired, dropped)
                continue
            if key in exact:  # exact, and no other key can score more
                popped.append(pop(heap))
                s, extra = exact[key]
                out.append((key, s, extra))
            elif (last := scored.get(key)) is not None and now < last[2]:
                exact[key] = last[0], last[1]  # untouched and steady: its bound is exact
            else:
                pop(heap)
                rescore(key)
        for entry in popped:
            push(heap, entry)
        if len(heap) > 2 * len(bound) + 64 or len(bound) > 2 * len(keys) + 64:
            self._compact(keys)
        return out

    def _compact(self, keys: Container[str]) -> None:
        """Drop the stale heap entries and the bounds of keys gone from the table."""
        self._bound = {k: n for k, n in self._bound.items() if k in keys}
        self._scored = {k: got for k, got in self._scored.items() if k in keys}
        self._heap = [(n, k) for k, n in self._bound.items()]
        heapq.heapify(self._heap)
