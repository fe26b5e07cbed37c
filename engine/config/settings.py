"""Typed reads from a plugin's settings mapping, with messages that name the key.

Collectors and channels parse their own settings (already schema-checked) in
`from_config` through this one reader: every read records the key, and `done()`
rejects keys nobody read, so a typo is an error rather than a silently ignored
setting. Values that may be secrets come back as `str | Secret`; messages never
show a secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.common.durations import parse_duration
from engine.common.secret import Secret
from engine.config.secrets import reveal

MISSING: Any = object()


class SettingsReader:
    """`what` names the owner in messages: "type http", "a slack channel"."""

    def __init__(self, what: str, raw: Mapping[str, Any], common: frozenset[str]) -> None:
        self.what = what
        self.raw = raw
        self.common = common  # keys the loader handles, tolerated here
        self._seen: set[str] = set()

    def done(self) -> None:
        unknown = sorted(set(self.raw) - self._seen - self.common)
        if unknown:
            known = ", ".join(sorted(self._seen)) or "none"
            raise ValueError(f"unknown setting {unknown[0]!r} for {self.what}; known: {known}")

    def has(self, key: str) -> bool:
        self._seen.add(key)
        return key in self.raw

    def get(self, key: str, default: Any = MISSING) -> Any:
        self._seen.add(key)
        if key in self.raw:
            return self.raw[key]
        if default is MISSING:
            raise ValueError(f"{key}: required for {self.what}")
        return default

    def text(self, key: str, default: Any = MISSING) -> str | Secret:
        """A string that may be a Secret (revealed only where it is used)."""
        v = self.get(key, default)
        if not isinstance(v, str | Secret):
            raise ValueError(f"{key}: expected a string, got {kind(v)}")
        return v

    def string(self, key: str, default: Any = MISSING) -> str:
        v = self.text(key, default)
        if isinstance(v, Secret):
            raise ValueError(f"{key}: cannot be a secret reference")
        return v

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        v = self.string(key, default)
        if v not in choices:
            raise ValueError(f"{key}: expected one of {', '.join(choices)}; got {v!r}")
        return v

    def flag(self, key: str, default: bool) -> bool:
        v = self.get(key, default)
        if not isinstance(v, bool):
            raise ValueError(f"{key}: expected true or false, got {kind(v)}")
        return v

    def duration(self, key: str, default: float) -> float:
        v = self.get(key, default)
        try:
            return parse_duration(v)
        except (ValueError, TypeError, AttributeError):
            shown = "a secret" if isinstance(v, Secret) else repr(v)
            raise ValueError(
                f"{key}: expected a duration such as 30s, 5m, 1h; got {shown}"
            ) from None


def kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, Secret):
        return "a secret"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string"}.get(
        type(v), "a list" if isinstance(v, list | tuple) else "a mapping"
    )


def nonempty(v: str | Secret) -> bool:
    return bool(reveal(v))
