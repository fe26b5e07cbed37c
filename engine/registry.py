"""Collector and channel types, found through entry points.

Built-ins are registered in pyproject.toml under `vigil.collectors` and
`vigil.channels`, exactly as a third-party package registers its own, so there is
one way in. Loading is lazy: a type's module is imported when first asked for.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

GROUPS = ("vigil.collectors", "vigil.channels")


@cache
def _points(group: str) -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=group)}


def names(group: str) -> list[str]:
    return sorted(_points(group))


def load(group: str, name: str) -> Any:
    """The class registered as `name` in `group`; KeyError if there is none."""
    return _load(group, name)


@cache
def _load(group: str, name: str) -> Any:
    ep = _points(group)[name]
    cls = ep.load()
    if getattr(cls, "type_name", name) != name:
        raise TypeError(f"{ep.value} registers as {name!r} but says type_name={cls.type_name!r}")
    return cls


def collector_types() -> list[str]:
    return names("vigil.collectors")


def channel_types() -> list[str]:
    return names("vigil.channels")
