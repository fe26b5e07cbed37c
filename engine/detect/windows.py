"""Per-key counters and windows, in bounded memory, on the caller's clock.

A `KeyTable` holds one `KeyState` per key (an ip, a user): at most `max_keys`, the
least recently seen dropped first (counted in `dropped`), and keys idle for
`idle` seconds removed by `expire(now)` (counted in `expired`). Time is always an
argument: nothing here reads a clock, so tests are exact.

Window kinds (`windows:` in the settings), read per key:

- `count`: events in the last `window` seconds. Kept as `SLOTS` slots of
  window/SLOTS seconds each (the current one included), so memory per key is
  bounded under a flood; an event leaves with its slot, up to one slot's width
  (5 % of the window) before it is `window` seconds old.
- `rate`: the same count divided by the window's seconds (events per second).
- `distinct`: how many different values of `field` in the last `window` seconds
  (paths per ip, users per ip); at most `max_distinct` values are kept per key,
  the oldest forgotten first, so the count saturates there: keep thresholds
  below it. Memory is about max_keys x max_distinct x 100 bytes per window.
- `bucket`: a leaky bucket: every event adds 1, the level drains by `leak` per
  second, never below 0; `<name>_full` is true while the level is at `capacity` or
  more (CrowdSec's overflow), so a rule resolves once the key slows down.

Every window may be narrowed with `lines` (`all` lines, lines with a pattern `hit`,
or a list of pattern or pack names) and `where: {field: [values]}` (all must hold).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass

SLOTS = 20
KINDS = ("count", "rate", "distinct", "bucket")
INF = float("inf")
# seconds before the computed moment a window's value is no longer taken as
# steady: the clock's floating-point rounding must never make it late
STEADY_MARGIN = 1e-3


@dataclass(frozen=True)
class WindowSpec:
    name: str
    kind: str
    window: float = 300.0  # seconds; count, rate, distinct
    field: str = ""  # distinct
    capacity: float = 0.0  # bucket
    leak: float = 0.0  # bucket: per second
    # which lines it counts: all | hit | names of patterns or packs (not `on`:
    # YAML 1.1 tools read that key as the boolean true)
    lines: str | tuple[str, ...] = "all"
    where: tuple[tuple[str, frozenset[str]], ...] = ()

    @property
    def filtered(self) -> bool:
        return self.lines != "all" or bool(self.where)


def slot_of(window: float, now: float) -> int:
    """The slot `now` falls in, for a count over `window` seconds (see Slotted)."""
    return int(now // (window / SLOTS))


def slot(spec: WindowSpec, now: float) -> int:
    return slot_of(spec.window, now)


class Slotted:
    """A count over a sliding window, in at most SLOTS (slot, n) pairs."""

    __slots__ = ("last", "slots", "total", "width")

    def __init__(self, window: float) -> None:
        self.width = window / SLOTS
        self.slots: deque[list[int]] = deque()
        self.last: list[int] | None = None  # slots[-1], kept to skip an index per add
        self.total = 0

    def add(self, at: float, value: str = "") -> None:
        """Count one event; `at` is its slot, slot_of(window, now), computed once per
        batch (every window's add takes the same arguments)."""
        self.total += 1
        last = self.last
        slot = int(at)
        if last is not None and last[0] == slot:
            last[1] += 1
            return
        self.last = last = [slot, 1]
        self.slots.append(last)
        if len(self.slots) > SLOTS:
            self._trim(slot)

    def read(self, now: float) -> int:
        slots = self.slots
        if slots and slots[0][0] <= int(now // self.width) - SLOTS:
            self._trim(int(now // self.width))
        return self.total

    def steady_until(self) -> float:
        """After a read: until when the count stays what it read, with no new event
        (its oldest slot leaves the window then)."""
        slots = self.slots
        return (slots[0][0] + SLOTS) * self.width - STEADY_MARGIN if slots else INF

    def _trim(self, slot: int) -> None:
        slots = self.slots
        oldest = slot - SLOTS
        while slots and slots[0][0] <= oldest:
            self.total -= slots.popleft()[1]
        if not slots:
            self.last = None


class Distinct:
    """Values seen in a sliding window: hash of the value -> last seen, oldest first.

    The hash, not the text: a distinct count needs no value back, and a small int
    instead of a path string keeps the memory of max_keys x max_distinct entries
    (and the cache misses of reading it) several times smaller. Two values of one
    key with the same 64-bit hash count once: rare enough to ignore for a count."""

    __slots__ = ("cap", "seen", "window")

    def __init__(self, window: float, cap: int) -> None:
        self.window = window
        self.cap = cap
        self.seen: dict[int, float] = {}

    def add(self, at: float, value: str = "") -> None:
        seen = self.seen
        h = hash(value)
        if h in seen:
            del seen[h]  # re-insert: the dict stays ordered by last seen
        elif len(seen) >= self.cap:
            del seen[next(iter(seen))]
        seen[h] = at

    def read(self, now: float) -> int:
        seen = self.seen
        edge = now - self.window
        while seen:
            first = next(iter(seen))
            if seen[first] > edge:
                break
            del seen[first]
        return len(seen)

    def steady_until(self) -> float:
        """After a read: until when the count stays, with no new value (the oldest
        value leaves the window then)."""
        seen = self.seen
        return seen[next(iter(seen))] + self.window - STEADY_MARGIN if seen else INF


class Bucket:
    __slots__ = ("last", "leak", "level")

    def __init__(self, leak: float) -> None:
        self.leak = leak
        self.level = 0.0
        self.last = 0.0

    def add(self, at: float, value: str = "") -> None:
        self.level = self.read(at) + 1.0
        self.last = at

    def read(self, now: float) -> float:
        return max(0.0, self.level - max(0.0, now - self.last) * self.leak)

    def steady_until(self, now: float) -> float:
        """A bucket that is not empty drains all the time: `now` (only until now)."""
        return INF if self.leak == 0 or self.read(now) == 0.0 else now


Window = Slotted | Distinct | Bucket


class KeyState:
    """What one key has done: its windows (in spec order), hits, last lines."""

    __slots__ = ("evidence", "hits", "last", "windows")

    def __init__(self, specs: tuple[WindowSpec, ...], max_distinct: int, evidence: int) -> None:
        self.windows: list[Window] = [_new(s, max_distinct) for s in specs]
        self.hits: dict[str, Slotted] = {}  # pattern name -> hits in the hit window
        self.evidence: deque[dict[str, object]] = deque(maxlen=evidence)
        self.last = 0.0


def _new(spec: WindowSpec, max_distinct: int) -> Window:
    if spec.kind == "distinct":
        return Distinct(spec.window, max_distinct)
    if spec.kind == "bucket":
        return Bucket(spec.leak)
    return Slotted(spec.window)


def value(spec: WindowSpec, w: Window, now: float) -> float:
    """A window's value for its key now: a count, a rate, or a bucket's level."""
    kind = spec.kind
    if kind == "bucket":
        return round(w.read(now), 3)
    n = w.read(now)
    return n / spec.window if kind == "rate" else n


def steady_until(w: Window, now: float) -> float:
    """After `value(..., w, now)`: until when that value holds with no new event."""
    return w.steady_until(now) if isinstance(w, Bucket) else w.steady_until()


def read(spec: WindowSpec, w: Window, now: float) -> dict[str, float | bool]:
    """The metrics a window gives its key, by name (a bucket adds `<name>_full`)."""
    v = value(spec, w, now)
    if spec.kind == "bucket":
        return {spec.name: v, f"{spec.name}_full": v >= spec.capacity}
    return {spec.name: v}


class KeyTable:
    """At most `max_keys` KeyStates, least recently seen first out."""

    def __init__(
        self,
        specs: tuple[WindowSpec, ...],
        *,
        max_keys: int,
        idle: float,
        max_distinct: int = 256,
        evidence: int = 5,
    ) -> None:
        self.specs = specs
        self.max_keys = max_keys
        self.idle = idle
        self.max_distinct = max_distinct
        self.evidence = evidence
        self.keys: OrderedDict[str, KeyState] = OrderedDict()
        self.dropped = 0  # pushed out by max_keys
        self.expired = 0  # idle for `idle` seconds

    def touch(self, key: str, now: float) -> KeyState:
        keys = self.keys
        st = keys.get(key)
        if st is None:
            st = keys[key] = KeyState(self.specs, self.max_distinct, self.evidence)
            if len(keys) > self.max_keys:
                keys.popitem(last=False)
                self.dropped += 1
        else:
            keys.move_to_end(key)
        st.last = now
        return st

    def expire(self, now: float) -> None:
        keys = self.keys
        edge = now - self.idle
        while keys:
            first = next(iter(keys))
            if keys[first].last > edge:
                break
            del keys[first]
            self.expired += 1

    def __iter__(self) -> Iterator[tuple[str, KeyState]]:
        return iter(self.keys.items())

    def __len__(self) -> int:
        return len(self.keys)
