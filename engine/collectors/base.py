"""The Collector protocol: how vigil reads a source of metrics.

A collector is built once per configuration from a `CollectorConfig` and then
asked, every interval, for a `Sample`: a mapping of metric name to value.

Contract for implementers
-------------------------
`from_config(config)` parses `config.settings` into typed, frozen settings and
raises `ValueError` with a message a person can act on (which setting, what was
wrong, what is expected) for bad settings. It does no I/O that can block: the
validator calls it for every collector of every file it checks.

`collect(now)` returns one Sample and must:

- never block the event loop: blocking work (psutil, file reads, os.statvfs)
  goes to a thread through `asyncio.to_thread`, network work uses async clients;
- finish within `self.timeout` seconds on its own; the caller also wraps the call
  in `asyncio.wait_for` with a little more than `timeout`, as a backstop only;
- only read: history, rates and the no-data logic live once, outside collectors;
- return plain data only: str, int, float, bool, None, and lists and dicts of
  those. A list meant for a rule's `each` holds dicts with a `labels` dict
  (string to string, the element's identity) plus the element's metrics;
- raise `CollectorError` when the source cannot be read at all; the daemon then
  raises one `collector_down` alert and the dependent rules see no data. A part
  that failed (one URL of several) is a value in the sample, not an exception.

`now` is the daemon's clock for this pass; collectors that keep time between
calls (`push`) compare it only with other values of the same clock.

`aclose()` releases what the collector owns (HTTP clients, child processes); the
collector is not used afterwards.

`restore(saved)` and `state_changes()` (optional, both or neither: `Stateful`):
a collector that must remember something across restarts (logtail's offsets)
keeps it in the journal. The daemon calls `restore` with what the journal holds
for this collector (key -> record, as handed out before) before the first
collect, and after every successful collect journals `state_changes()` (key ->
new record, None to forget the key) as `collector_state` events, durably, before
the sample is published.

`fills_for` (optional attribute, seconds): values that count over windows of
the collector's own (logtail's per-key windows) start empty, so for this long
after the collector's first read they may undercount. Meanwhile a false result of
a rule reading it does not end a pending or firing alert (engine/rules/evaluator.py,
`_hold`): "fewer than 10 failures in 10m" is not known 2 minutes after a restart.

`shares_values` and `cleaned` (optional attributes, bool): the daemon cleans every
sample at the boundary (engine/common/boundary.py) in a worker thread. A
collector that never changes a container it handed out, and hands the same one
out again while unchanged, says `shares_values`: the walk skips what it walked
before. One that cleaned its sample itself where it was made (logtail's reader
process) says `cleaned`: the daemon does not walk it again.

`metric_names(config)` (optional classmethod): the metric names the type
provides for this configuration, known without collecting, or None when only
collecting can tell. The validator uses it to reject `api.stauts` at load time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, NoReturn, Protocol, Self, cast

from engine.common.records import CollectorStateEvent
from engine.common.secret import Secret
from engine.config.model import CollectorConfig
from engine.plugins import registry

Sample = Mapping[str, Any]
"""Metric name -> value; values are plain data (see the module docstring)."""

GROUP = registry.COLLECTORS


class Collector(Protocol):
    type_name: ClassVar[str]
    name: str
    interval: float | None  # None: use the daemon's default interval
    timeout: float

    @classmethod
    def from_config(cls, config: CollectorConfig) -> Self:
        """Parse settings; raise ValueError with a clear message when they are bad."""
        ...

    async def collect(self, now: float) -> Sample:
        """One reading; raises CollectorError; respects self.timeout."""
        ...

    async def aclose(self) -> None:
        """Release clients and processes."""
        ...


class Stateful(Protocol):
    """A collector with durable state in the journal (see the module docstring)."""

    def restore(self, saved: Mapping[str, Any]) -> None: ...

    def state_changes(self) -> Mapping[str, Mapping[str, Any] | None]: ...


STATE_EVENT = "collector_state"


def state_events(name: str, collector: Collector) -> list[CollectorStateEvent]:
    """The journal events for what `collector` changed of its durable state."""
    changes = getattr(collector, "state_changes", None)
    if not callable(changes):
        return []
    return [
        {
            "event": "collector_state",
            "collector": name,
            "key": key,
            "state": None if rec is None else dict(rec),
        }
        for key, rec in cast(Stateful, collector).state_changes().items()
    ]


def restore_state(name: str, collector: Collector, state: Mapping[str, Any]) -> None:
    """Give `collector` what the journal's folded `state` holds for it."""
    if callable(getattr(collector, "restore", None)):
        saved = state.get(STATE_EVENT, {}).get(name, {})
        cast(Stateful, collector).restore(saved if isinstance(saved, Mapping) else {})


def create(config: CollectorConfig) -> Collector:
    """The collector for `config`; ValueError for an unknown type or bad settings."""
    cls = _class(config.type)
    return cast(Collector, cls.from_config(config))


def _class(type_name: str) -> Any:
    try:
        return registry.load(GROUP, type_name)
    except KeyError:
        known = ", ".join(registry.names(GROUP))
        raise ValueError(f"unknown collector type {type_name!r}; installed: {known}") from None


# --- plain data -------------------------------------------------------------------

MAX_INT = 2**64  # metrics fit in 64 bits; bigger ints make arithmetic slow for nothing


def check_plain(
    value: Any,
    where: str,
    *,
    max_items: int = 100_000,
    max_depth: int = 16,
    max_str: int = 64 * 1024,
) -> None:
    """Raise ValueError naming the path (`where.x[3]`) of the first value that is not
    plain data, or when the value is larger than the limits allow."""
    budget = [max_items]

    def walk(v: Any, path: str, depth: int) -> None:
        budget[0] -= 1
        if budget[0] < 0:
            raise ValueError(f"{where}: more than {max_items} values")
        if depth > max_depth:
            raise ValueError(f"{path}: nested deeper than {max_depth} levels")
        if v is None or isinstance(v, bool | float):
            return
        if isinstance(v, int):
            if not -MAX_INT < v < MAX_INT:
                raise ValueError(f"{path}: integer out of the 64-bit range")
            return
        if isinstance(v, str):
            if len(v) > max_str:
                raise ValueError(f"{path}: string longer than {max_str} characters")
            return
        if isinstance(v, Secret):
            raise ValueError(f"{path}: secret references cannot be metric values")
        if isinstance(v, Mapping):
            for k, item in v.items():
                if not isinstance(k, str):
                    raise ValueError(f"{path}: keys must be strings, got {type(k).__name__}")
                walk(item, f"{path}.{k}", depth + 1)
            return
        if isinstance(v, list | tuple):
            for i, item in enumerate(v):
                walk(item, f"{path}[{i}]", depth + 1)
            return
        raise ValueError(
            f"{path}: a {type(v).__name__} is not plain data; "
            "use numbers, strings, booleans, null, lists and mappings"
        )

    walk(value, where, 0)


def _frozen(*_: object, **__: object) -> NoReturn:
    raise TypeError("collector values are read-only")


class FrozenDict(dict[str, Any]):
    """A dict that refuses changes: still a dict for json.dumps and isinstance."""

    __slots__ = ()
    __setitem__ = __delitem__ = _frozen
    clear = pop = popitem = setdefault = update = _frozen
    __ior__ = _frozen

    def __copy__(self) -> FrozenDict:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenDict:
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))


class FrozenList(list[Any]):
    """A list that refuses changes: still a list for json.dumps and isinstance."""

    __slots__ = ()
    __setitem__ = __delitem__ = _frozen
    append = extend = insert = remove = pop = clear = sort = reverse = _frozen
    __iadd__ = __imul__ = _frozen

    def __copy__(self) -> FrozenList:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenList:
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenList, (list(self),))


def freeze(value: Any) -> Any:
    """A deep, read-only copy of plain data (run check_plain first)."""
    if isinstance(value, Mapping):
        return FrozenDict({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return FrozenList(freeze(v) for v in value)
    return value


def number(text: str) -> int | float:
    """An int when the text is one, else a float; ValueError otherwise."""
    s = text.strip()
    try:
        return int(s)
    except ValueError:
        return float(s)  # raises ValueError with Python's own message
