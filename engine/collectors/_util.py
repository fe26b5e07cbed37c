"""Small helpers the built-in collectors share: reading settings, blocking work."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from engine.config.secrets import Secret
from engine.durations import parse_duration, parse_size
from engine.errors import CollectorError

T = TypeVar("T")

# keys the loader keeps for itself; tolerated if a caller leaves them in settings
_COMMON = frozenset({"name", "type", "interval", "timeout", "enabled"})
_MISSING: Any = object()


class Settings:
    """Typed reads from one collector's settings, with messages that name the key.

    Every read records the key; `done()` rejects keys nobody read, so a typo such as
    `expect_staus` is an error rather than a silently ignored setting.
    """

    def __init__(self, type_name: str, settings: Mapping[str, Any]) -> None:
        self.type_name = type_name
        self.raw = settings
        self._seen: set[str] = set()

    def done(self) -> None:
        unknown = sorted(set(self.raw) - self._seen - _COMMON)
        if unknown:
            known = ", ".join(sorted(self._seen)) or "none"
            raise ValueError(
                f"unknown setting {unknown[0]!r} for type {self.type_name}; known: {known}"
            )

    def has(self, key: str) -> bool:
        self._seen.add(key)
        return key in self.raw

    def get(self, key: str, default: Any = _MISSING) -> Any:
        self._seen.add(key)
        if key in self.raw:
            return self.raw[key]
        if default is _MISSING:
            raise ValueError(f"{key}: required for type {self.type_name}")
        return default

    def string(self, key: str, default: Any = _MISSING) -> str:
        v = self.get(key, default)
        if isinstance(v, Secret):
            raise ValueError(f"{key}: cannot be a secret reference")
        if not isinstance(v, str):
            raise ValueError(f"{key}: expected a string, got {_kind(v)}")
        return v

    def text(self, key: str, default: Any = _MISSING) -> str | Secret:
        """A string that may be a Secret (revealed only where it is used)."""
        v = self.get(key, default)
        if not isinstance(v, str | Secret):
            raise ValueError(f"{key}: expected a string, got {_kind(v)}")
        return v

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        v = self.string(key, default)
        if v not in choices:
            raise ValueError(f"{key}: expected one of {', '.join(choices)}; got {v!r}")
        return v

    def flag(self, key: str, default: bool) -> bool:
        v = self.get(key, default)
        if not isinstance(v, bool):
            raise ValueError(f"{key}: expected true or false, got {_kind(v)}")
        return v

    def duration(self, key: str, default: float) -> float:
        v = self.get(key, default)
        try:
            return parse_duration(v)
        except (ValueError, TypeError, AttributeError):
            raise ValueError(
                f"{key}: expected a duration such as 30s, 5m, 1h; got {_show(v)}"
            ) from None

    def size(self, key: str, default: int) -> int:
        v = self.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int | str):
            raise ValueError(f"{key}: expected a size such as 1MiB; got {_show(v)}")
        try:
            n = parse_size(v)
        except ValueError as e:
            raise ValueError(f"{key}: {e}") from None
        if n <= 0:
            raise ValueError(f"{key}: must be more than 0 bytes")
        return n

    def str_list(
        self, key: str, default: Any = _MISSING, *, nonempty: bool = False
    ) -> tuple[str, ...]:
        v = self.get(key, default)
        if not isinstance(v, list | tuple):
            raise ValueError(f"{key}: expected a list of strings, got {_kind(v)}")
        for i, item in enumerate(v):
            if isinstance(item, Secret) or not isinstance(item, str):
                raise ValueError(f"{key}[{i}]: expected a string, got {_kind(item)}")
        if nonempty and not v:
            raise ValueError(f"{key}: must not be empty")
        return tuple(v)

    def mapping(self, key: str, default: Any = _MISSING) -> Mapping[str, Any]:
        v = self.get(key, default)
        if not isinstance(v, Mapping):
            raise ValueError(f"{key}: expected a mapping, got {_kind(v)}")
        return v


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, Secret):
        return "a secret"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string"}.get(
        type(v), "a list" if isinstance(v, list | tuple) else "a mapping"
    )


def _show(v: Any) -> str:
    return "a secret" if isinstance(v, Secret) else repr(v)


def seconds(t: float) -> str:
    """`5s`, `0.5s`: how messages show a timeout."""
    return f"{t:g}s"


class OneThread:
    """Runs a collector's blocking reads in a worker thread, one at a time.

    A thread cannot be cancelled: a read stuck on a dead NFS mount would outlive its
    timeout, and starting another one every interval would pile up threads until the
    default executor is exhausted. So while one is still running, the next collect
    fails at once instead of starting a second.
    """

    def __init__(self) -> None:
        self._running: asyncio.Future[Any] | None = None

    async def run(self, fn: Callable[[], T], timeout: float) -> T:
        if self._running is not None and not self._running.done():
            raise CollectorError("the previous read is still running")
        fut: asyncio.Future[T] = asyncio.ensure_future(asyncio.to_thread(fn))
        self._running = fut
        fut.add_done_callback(_retrieve)
        try:
            async with asyncio.timeout(timeout):
                # shield: a timeout or cancel abandons the wait, not the thread's future,
                # so `_running` tells the next collect the thread is still busy
                return await asyncio.shield(fut)
        except TimeoutError:
            raise CollectorError(f"timed out after {seconds(timeout)}") from None


def _retrieve(fut: asyncio.Future[Any]) -> None:
    # an abandoned read's exception is expected; fetch it so asyncio does not log it
    if not fut.cancelled():
        fut.exception()
