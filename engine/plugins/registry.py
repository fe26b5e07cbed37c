"""Collector and channel types, found through entry points.

Built-ins are registered in pyproject.toml under `vigil.collectors` and
`vigil.channels`, exactly as a third-party package registers its own, so there is
one way in. Loading is lazy: a type's module is imported when first asked for.

The names alone (what `vigil validate` checks types against) come from the disk
cache when it can tell that nothing changed: importlib.metadata costs ~40 ms to
import and reads every installed distribution, a large part of a validate run.
The cache key is the set of files that reading would find — every distribution's
entry_points.txt on sys.path, by name, size and modification time — so
installing, upgrading or removing a package is seen at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from functools import cache
from typing import TYPE_CHECKING, Any

from engine.common import disk_cache

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

COLLECTORS = "vigil.collectors"
CHANNELS = "vigil.channels"
GROUPS = (COLLECTORS, CHANNELS)


@cache
def _points(group: str) -> dict[str, EntryPoint]:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=group)}


def names(group: str) -> list[str]:
    if group in GROUPS:
        return list(_names()[group])
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


@cache
def _names() -> dict[str, tuple[str, ...]]:
    """group -> sorted names, for GROUPS: from the disk cache, else entry points."""
    key = _installed_key()
    entry = "entry-points-" + hashlib.sha256(sys.prefix.encode(errors="replace")).hexdigest()[:16]
    if key is not None:
        payload = disk_cache.read(entry, key)
        if payload is not None:
            try:
                found = json.loads(payload)
            except ValueError:
                found = None
            if isinstance(found, dict) and all(
                isinstance(found.get(g), list) and all(isinstance(n, str) for n in found[g])
                for g in GROUPS
            ):
                return {g: tuple(found[g]) for g in GROUPS}
    out = {g: tuple(sorted(_points(g))) for g in GROUPS}
    if key is not None:
        disk_cache.write(entry, key, json.dumps(out).encode())
    return out


def _installed_key() -> str | None:
    """A digest of the files importlib.metadata would read entry points from (it
    looks the same way: *.dist-info and *.egg-info folders in each sys.path
    entry), or None when a finder of its own may list distributions too."""
    from importlib.machinery import PathFinder

    if any(
        hasattr(f, "find_distributions") and f is not PathFinder for f in sys.meta_path
    ):  # pragma: no cover
        return None
    # Entries without distributions (the script's folder, the current one) add
    # nothing, so `vigil` and `python -m engine.cli.main` share one cache entry.
    h = hashlib.sha256(b"entry points\0")
    for entry in sys.path:
        root = entry or "."
        try:
            with os.scandir(root) as it:
                children = sorted(e.name for e in it)
        except NotADirectoryError:  # a zip file: its stamp stands for what is in it
            try:
                st = os.stat(root)
            except OSError:
                continue
            h.update(f"\0{entry}\n{st.st_mtime_ns}:{st.st_size}\n".encode(errors="replace"))
            continue
        except OSError:
            continue
        egg = root.lower().endswith(".egg")
        stamps = []
        for name in children:
            low = name.lower()
            if not (low.endswith((".dist-info", ".egg-info")) or (egg and low == "egg-info")):
                continue
            try:
                st = os.stat(os.path.join(root, name, "entry_points.txt"))
                stamps.append(f"{name}:{st.st_mtime_ns}:{st.st_size}\n")
            except OSError:
                stamps.append(f"{name}:-\n")
        if stamps:
            h.update("".join([f"\0{os.path.abspath(root)}\n", *stamps]).encode(errors="replace"))
    return h.hexdigest()
