"""Values and text made safe where they enter vigil: collector samples, API
bodies, and journal lines written before this existed.

Inside, code trusts what it gets: every string is valid Unicode that encodes to
UTF-8 (a lone surrogate such as "\\ud800", which JSON allows and UTF-8 does not,
becomes U+FFFD), and every value is bounded in depth, string length and item
count. What goes past a bound is cut, not refused, so one bad metric does not
take its collector's other metrics down with it:

    a string longer than max_str      its first max_str characters + a marker
    a value nested deeper than depth  None (a rule reading it sees no data)
    items past max_items in all       left out
    a key that is not a string        its str()
    an int outside 64 bits, or a      None
    type that is not plain data

`clean()` returns the same object when nothing needed a change (the common
case costs one walk and no copies) and says what it cut, for one log line.
With a `Memo` (one per source), a container that passed the previous walk
unchanged at the same depth is not walked again: for sources that never change a
container once handed out and rebuild only what changed (logtail's per-key
elements: of 500 listed keys, most are the same objects from one pass to the next).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MAX_DEPTH = 16
MAX_STR = 64 * 1024
MAX_ITEMS = 100_000
MAX_INT = 2**64

MEMO_MIN = 16  # items under a container worth remembering it for the next walk

_SURROGATE = re.compile("[\ud800-\udfff]")
_SHOWN_CUTS = 3  # paths named in a report of what was cut


def clean_text(text: str, max_len: int = MAX_STR) -> str:
    """`text` as valid UTF-8-encodable text of at most `max_len` characters (+ marker)."""
    if not text.isascii():
        text = _SURROGATE.sub("\ufffd", text)
    if len(text) > max_len:
        text = f"{text[:max_len]}…[{len(text) - max_len} characters cut]"
    return text


# id -> (the container, its depth, the items walked under it); the container is
# held, so its id cannot be reused while it is remembered
Passed = dict[int, tuple[Any, int, int]]


class Memo:
    """The containers of one source's last walk that passed unchanged. Only for a
    source that never changes a container it has handed out: one that comes again
    is then known to be clean. Holds the last walk's containers, no more."""

    __slots__ = ("passed",)

    def __init__(self) -> None:
        self.passed: Passed = {}


class _Walk:
    """One walk over a value. Paths are built only for containers and cuts: most
    nodes are scalars that pass as they are, and the walk runs on every sample."""

    __slots__ = ("budget", "cuts", "max_depth", "max_str", "memo", "passed")

    def __init__(self, max_depth: int, max_str: int, max_items: int, memo: Memo | None) -> None:
        self.max_depth, self.max_str, self.budget = max_depth, max_str, max_items
        self.cuts: list[str] = []
        self.memo = memo.passed if memo is not None else None
        self.passed: Passed = {}  # this walk's, for the memo

    def cut(self, path: str, why: str) -> None:
        self.cuts.append(f"{path or 'value'}: {why}")

    def value(self, v: Any, path: str, depth: int) -> Any:
        self.budget -= 1
        t = type(v)
        if v is None or t is bool or t is float:
            return v
        if t is str:
            if v.isascii() and len(v) <= self.max_str:
                return v
            out = clean_text(v, self.max_str)
            if len(v) > self.max_str:
                self.cut(path, f"string of {len(v)} characters cut to {self.max_str}")
            return v if out == v else out
        if t is int:
            if -MAX_INT < v < MAX_INT:
                return v
            self.cut(path, "integer outside the 64-bit range")
            return None
        if isinstance(v, Mapping | list | tuple):
            if depth >= self.max_depth:
                self.cut(path, f"nested deeper than {self.max_depth} levels")
                return None
            if self.memo is None:
                return (
                    self.mapping(v, path, depth)
                    if isinstance(v, Mapping)
                    else (self.sequence(v, path, depth))
                )
            return self.remembered(v, path, depth)
        if isinstance(v, int):  # subclasses (IntEnum, numpy-like): their plain value
            return self.value(int(v), path, depth)
        if isinstance(v, float):
            return self.value(float(v), path, depth)
        if isinstance(v, str):
            return self.value(str.__str__(v), path, depth)
        self.cut(path, f"a {t.__name__} is not plain data")
        return None

    def remembered(self, v: Any, path: str, depth: int) -> Any:
        """A container walked with a memo: skipped when it passed the last walk."""
        assert self.memo is not None
        got = self.memo.get(id(v))
        if got is not None and got[0] is v and got[1] == depth and got[2] < self.budget:
            self.budget -= got[2]
            self.passed[id(v)] = got
            return v
        budget, cuts = self.budget, len(self.cuts)
        out = (
            self.mapping(v, path, depth)
            if isinstance(v, Mapping)
            else (self.sequence(v, path, depth))
        )
        if out is v and len(self.cuts) == cuts and budget - self.budget >= MEMO_MIN:
            self.passed[id(v)] = (v, depth, budget - self.budget)
        return out

    def _plain(self, item: Any) -> bool:
        """Whether `item` passes as it is without a closer look (the common case)."""
        t = type(item)
        if t is str:
            return item.isascii() and len(item) <= self.max_str
        if t is int:
            return -MAX_INT < item < MAX_INT  # type: ignore[no-any-return]
        return item is None or t is float or t is bool

    def mapping(self, v: Mapping[Any, Any], path: str, depth: int) -> Any:
        changed = False
        out: dict[str, Any] = {}
        plain = self._plain
        for k, item in v.items():
            if self.budget <= 0:
                self.cut(path, f"items past {MAX_ITEMS} left out")
                return out
            key = k if type(k) is str and k.isascii() else clean_text(str(k), 1024)
            if plain(item):
                self.budget -= 1
                new = item
            else:
                new = self.value(item, f"{path}.{key}" if path else key, depth + 1)
            if new is not item or key is not k:
                changed = True
            out[key] = new
        return out if changed else v

    def sequence(self, v: list[Any] | tuple[Any, ...], path: str, depth: int) -> Any:
        changed = False
        out: list[Any] = []
        plain = self._plain
        for i, item in enumerate(v):
            if self.budget <= 0:
                self.cut(path, f"items past {MAX_ITEMS} left out")
                return out
            if plain(item):
                self.budget -= 1
                new = item
            else:
                new = self.value(item, f"{path}[{i}]", depth + 1)
                if new is not item:
                    changed = True
            out.append(new)
        return out if changed else v


def valid_text(value: Any) -> Any:
    """`value` with every lone surrogate replaced and no size bound but a sane depth:
    for what vigil wrote itself before the boundary existed (old journal lines)."""
    out, _cut = clean(value, max_depth=64, max_str=1 << 40, max_items=1 << 62)
    return out


def clean(
    value: Any,
    *,
    max_depth: int = MAX_DEPTH,
    max_str: int = MAX_STR,
    max_items: int = MAX_ITEMS,
    memo: Memo | None = None,
) -> tuple[Any, str | None]:
    """(`value` made safe, what was cut as one short text or None). The same
    object comes back when nothing had to change. `memo`: the source's (see Memo),
    updated to this walk."""
    w = _Walk(max_depth, max_str, max_items, memo)
    out = w.value(value, "", 0)
    if memo is not None:
        memo.passed = w.passed
    if not w.cuts:
        return out, None
    more = f" (and {len(w.cuts) - _SHOWN_CUTS} more)" if len(w.cuts) > _SHOWN_CUTS else ""
    return out, "; ".join(w.cuts[:_SHOWN_CUTS]) + more
