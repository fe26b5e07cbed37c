"""Each collector's and channel's settings, parsed by its own plugin at load time.

The schema knows the keys; only the plugin knows what a value means (a regular
expression, a JSON path, a template inside `exec` argv, a URL behind a secret).
`vigil validate`, a start and a reload all load through here, so a setting the
plugin cannot build is a `file:line:col` problem before anything runs: a reload
with one is rejected whole instead of half-applied.

A plugin says what is wrong by raising (ValueError by contract; a third-party
plugin may raise anything) with a message that starts with the setting's path,
`body_regex: ...` or `targets[2].url: ...`; the problem is placed at that setting
when the file has it, else at the entry.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from engine.common.secret import Secret
from engine.config import model as m
from engine.config.load import Document, Path
from engine.config.secrets import PLACEHOLDER
from engine.errors import Problem
from engine.plugins import registry

# `argv[1]: ...`, `headers.X-Token: ...`, `targets[0].url: ...`
_LEADING_PATH = re.compile(r"([A-Za-z_][\w-]*(?:\[\d+\]|\.[\w-]+)*): ")
_PART = re.compile(r"\[(\d+)\]|\.?([\w-]+)")
_MAX_MESSAGE = 500


def check_collector(
    doc: Document, path: Path, config: m.CollectorConfig, problems: list[Problem]
) -> None:
    _check(doc, path, "vigil.collectors", config.type, config, problems)


def check_channel(doc: Document, path: Path, config: m.Channel, problems: list[Problem]) -> None:
    _check(doc, path, "vigil.channels", config.type, config, problems)


def _check(
    doc: Document, path: Path, group: str, type_name: str, config: Any, problems: list[Problem]
) -> None:
    if type_name not in registry.names(group):
        return  # reported as an unknown type
    if any(PLACEHOLDER in v for v in _secrets(config.settings)):
        return  # `vigil test` stands in for an unset secret: its real value is unknown
    try:
        registry.load(group, type_name).from_config(config)
    except Exception as e:  # noqa: BLE001 - boundary: any plugin's error becomes a Problem
        message = _words(e, config.settings)
        if not isinstance(e, ValueError):  # not the contract's way to say "bad setting"
            kind = "collector" if group == "vigil.collectors" else "channel"
            message = f"the {type_name} {kind} plugin failed: {type(e).__name__}: {message}"
        found = _LEADING_PATH.match(message)
        if found is not None:
            sub = _parts(found.group(1))
            if sub and isinstance(sub[0], str) and sub[0] in config.settings:
                problems.append(doc.problem((*path, *sub), message[found.end() :]))
                return
        problems.append(doc.problem(path, message))


def _words(e: BaseException, settings: Mapping[str, Any]) -> str:
    """The error on one line, without any secret's value (CI logs are not private)."""
    text = " ".join(str(e).split()) or type(e).__name__
    for secret in _secrets(settings):
        if len(secret) >= 3:
            text = text.replace(secret, "***")
    return text[:_MAX_MESSAGE]


def _secrets(value: Any) -> Iterator[str]:
    if isinstance(value, Secret):
        yield value.reveal()
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _secrets(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _secrets(v)


def _parts(text: str) -> tuple[str | int, ...]:
    out: list[str | int] = []
    for index, key in _PART.findall(text):
        out.append(int(index) if index else key)
    return tuple(out)
