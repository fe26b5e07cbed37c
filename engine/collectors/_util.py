"""Small helpers the built-in collectors share: reading settings, blocking work."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from engine.common.durations import parse_size
from engine.common.secret import Secret
from engine.config.settings import MISSING as _MISSING
from engine.config.settings import SettingsReader, kind
from engine.errors import CollectorError

T = TypeVar("T")

# keys the loader keeps for itself; tolerated if a caller leaves them in settings
_COMMON = frozenset({"name", "type", "interval", "timeout", "enabled"})


class Settings(SettingsReader):
    """A collector's settings (see engine/config/settings.py), plus sizes, lists, mappings."""

    def __init__(self, type_name: str, settings: Mapping[str, Any]) -> None:
        super().__init__(f"type {type_name}", settings, _COMMON)
        self.type_name = type_name

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
            raise ValueError(f"{key}: expected a list of strings, got {kind(v)}")
        for i, item in enumerate(v):
            if isinstance(item, Secret) or not isinstance(item, str):
                raise ValueError(f"{key}[{i}]: expected a string, got {kind(item)}")
        if nonempty and not v:
            raise ValueError(f"{key}: must not be empty")
        return tuple(v)

    def mapping(self, key: str, default: Any = _MISSING) -> Mapping[str, Any]:
        v = self.get(key, default)
        if not isinstance(v, Mapping):
            raise ValueError(f"{key}: expected a mapping, got {kind(v)}")
        return v


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

    def idle(self) -> bool:
        """No read is running (an abandoned one may still be)."""
        return self._running is None or self._running.done()

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
