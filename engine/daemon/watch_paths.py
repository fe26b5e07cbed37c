"""What the configured paths mean right now, and which names could change that.

Deploys rarely edit a file in place: they swap a symlink (`current ->
releases/v2`, by `ln -s ... tmp && mv -T tmp current`), rename a new folder
over the old one (`mv rules.new rules`), or delete a folder and create it again.
inotify watches inodes, not names: a watch on the old folder hears none of
that, nor any later edit. So each configured path is resolved here by hand,
one component at a time, noting every name it passes through (each folder on
the way, each symlink and the names its target passes through). A change to
any of those names may change what the path means: the watcher watches the
folders holding them and makes a new plan when one of them changes.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

_MAX_LINKS = 40  # as the kernel's ELOOP limit


@dataclass(frozen=True)
class Plan:
    """What to watch for a set of configured paths, as they resolve now."""

    # (real folder, recursive) -> (st_dev, st_ino): the same name holding another
    # folder (renamed over, recreated) needs a new watch
    watches: Mapping[tuple[str, bool], tuple[int, int]] = field(default_factory=dict)
    names: frozenset[str] = frozenset()  # real names a resolution passed through
    roots: tuple[str, ...] = ()  # configured folders (real), watched recursively


def resolve(path: str, names: set[str]) -> str:
    """The real path of `path` (as os.path.realpath), adding to `names` every
    name the resolution looked up, under its real folder."""
    budget = [_MAX_LINKS]
    return _walk(os.getcwd(), path, names, budget)


def _walk(base: str, path: str, names: set[str], budget: list[int]) -> str:
    cur = os.sep if os.path.isabs(path) else base
    for part in path.split(os.sep):
        if part in ("", "."):
            continue
        if part == "..":  # physically, as the kernel does: the folder's real parent
            cur = os.path.dirname(cur)
            continue
        name = os.path.join(cur, part)
        names.add(name)
        try:
            target = os.readlink(name)
        except OSError:  # not a symlink, or not there (yet)
            cur = name
            continue
        if budget[0] <= 0:
            cur = name
            continue
        budget[0] -= 1
        cur = _walk(cur, target, names, budget)
    return cur


def _ident(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None


def _inside(path: str, roots: Iterable[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def make_plan(paths: Iterable[str]) -> Plan:
    """Configured folders are watched recursively; every folder holding a name
    on the way to a configured path (a configured file's folder among them) is
    watched at its own level only: vigil.yaml often sits above data_dir, whose
    journal writes are noise."""
    names: set[str] = set()
    watches: dict[tuple[str, bool], tuple[int, int]] = {}
    roots: list[str] = []
    for p in paths:
        real = resolve(p, names)
        ident = _ident(real)
        if ident is not None:
            watches[(real, True)] = ident
            roots.append(real)
    for name in names:
        folder = os.path.dirname(name)
        if _inside(folder, roots):
            continue  # a recursive watch already hears it
        ident = _ident(folder)
        if ident is not None:
            watches[(folder, False)] = ident
    return Plan(watches, frozenset(names), tuple(sorted(set(roots))))


def is_under(path: str, plan: Plan) -> bool:
    """`path` lies in a configured folder."""
    return _inside(path, plan.roots)
