"""Helpers every section of the configuration shares: durations read at a place
in a file, settings trees with their secrets resolved, plugin types looked up,
and the "unknown name; did you mean" message.

Separate because vigil.yaml (top), rule files (rules) and channel files
(notify) all use them, and none of those should import another for them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from engine.common.address_policy import url_refusal
from engine.common.durations import parse_duration
from engine.common.secret import Secret
from engine.config import model as m
from engine.config.load import Document, Path
from engine.config.secrets import has_ref, resolve
from engine.errors import Problem


def duration_at(doc: Document, path: Path, value: Any, problems: list[Problem]) -> float:
    try:
        return parse_duration(value)
    except ValueError as e:
        problems.append(doc.problem(path, str(e)))
        return 0.0


def check_plugin_type(
    doc: Document, path: Path, group: str, type_name: str, name: str, problems: list[Problem]
) -> None:
    from engine.plugins import registry

    if type_name not in registry.names(group):
        kind = "collector" if group.endswith("collectors") else "channel"
        problems.append(
            doc.problem(
                (*path, "type"),
                f"unknown {kind} type {type_name!r} for {name!r}; installed: {', '.join(registry.names(group))}",
            )
        )


# settings holding a file or folder; relative ones are relative to the YAML file
# that names them, like every other path in the configuration
_PATH_KEYS = frozenset({"path", "ca_file", "cwd"})


def resolve_settings(
    doc: Document,
    path: Path,
    value: Any,
    problems: list[Problem],
    env: Mapping[str, str] | None,
    *,
    urls: bool = True,
    top: bool = True,
) -> Any:
    """Resolve ${env:..}/${file:..} inside a settings tree; strings with one become Secrets.
    With `urls` (settings vigil itself connects with, not a command's arguments), an
    http(s) URL to a metadata / link-local address is a problem. Only a plugin's own
    (`top`) settings named path/ca_file/cwd are files: a `path` deeper down is data
    (a logtail allowlist's `allow: {path: "^/health"}` is a regex, not a file)."""
    if isinstance(value, str):
        if not has_ref(value):
            if top and path and path[-1] in _PATH_KEYS and not os.path.isabs(value):
                return os.path.normpath(os.path.join(os.path.dirname(doc.file) or ".", value))
            refusal = url_refusal(value) if urls else None
            if refusal is not None:
                problems.append(doc.problem(path, refusal))
            return value
        try:
            return resolve(value, dict(env) if env is not None else None)
        except ValueError as e:
            problems.append(doc.problem(path, str(e)))
            return Secret("")
    if isinstance(value, dict):
        return m.frozen_map(
            {
                k: resolve_settings(doc, (*path, k), v, problems, env, urls=urls, top=False)
                for k, v in value.items()
            }
        )
    if isinstance(value, list):
        return tuple(
            resolve_settings(doc, (*path, i), v, problems, env, urls=urls, top=False)
            for i, v in enumerate(value)
        )
    return value


def unknown_name(kind: str, name: str, known: Iterable[str]) -> str:
    import difflib

    known_l = sorted(known)
    hint = difflib.get_close_matches(name, known_l, n=1)
    tail = (
        f"; did you mean {hint[0]!r}?"
        if hint
        else (f"; defined: {', '.join(known_l)}" if known_l else "; none are defined")
    )
    return f"unknown {kind} {name!r}{tail}"
