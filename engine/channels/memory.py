"""`memory`: a fake channel that keeps what it is sent, for tests and `vigil test`.

Instances register by channel name in a class-level registry, so a test can reach
the channel the pipeline built from config:

    MemoryChannel.sent("ops")                 # delivered Notifications, oldest first
    MemoryChannel.attempts("ops")             # every send() call, failed ones too
    MemoryChannel.get("ops").fail_next(2)     # the next 2 sends raise DeliveryError
    MemoryChannel.get("ops").hang(5)          # every send first sleeps 5 s (0: stop)
    MemoryChannel.reset()                     # forget everything (test teardown)

State lives per name, not per instance: after a reload builds a new instance of
the same channel, its history and pending failures carry on.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from typing import ClassVar, Self

from engine.channels import preview as wire
from engine.channels.file_channel import strict_json
from engine.config.model import Channel as ChannelConfig
from engine.errors import DeliveryError
from engine.notify.base import Notification

# a daemon left running with a memory channel must not grow without bound
MAX_KEPT = 10_000
_COMMON = frozenset({"timeout"})


@dataclass(slots=True)
class _State:
    sent: list[Notification] = field(default_factory=list)
    attempts: list[Notification] = field(default_factory=list)
    fail: int = 0
    retryable: bool = True
    retry_after: float | None = None
    hang: float = 0.0


def _keep(items: list[Notification], n: Notification) -> None:
    items.append(n)
    if len(items) > MAX_KEPT:
        del items[0]


class MemoryChannel:
    type_name: ClassVar[str] = "memory"
    _states: ClassVar[dict[str, _State]] = {}
    _instances: ClassVar[dict[str, MemoryChannel]] = {}

    def __init__(self, name: str) -> None:
        self.name = name
        self.closed = False
        self._state = MemoryChannel._states.setdefault(name, _State())
        MemoryChannel._instances[name] = self

    @classmethod
    def from_config(cls, config: ChannelConfig) -> Self:
        unknown = sorted(set(config.settings) - _COMMON)
        if unknown:
            raise ValueError(f"unknown setting {unknown[0]!r} for a memory channel")
        return cls(config.name)

    # -- what tests read and steer ------------------------------------------------

    @classmethod
    def get(cls, name: str) -> MemoryChannel:
        """The latest instance built for `name`; KeyError if there is none."""
        return cls._instances[name]

    @classmethod
    def sent(cls, name: str) -> list[Notification]:
        """Notifications delivered to `name` (a copy; empty if it never existed)."""
        state = cls._states.get(name)
        return list(state.sent) if state else []

    @classmethod
    def attempts(cls, name: str) -> list[Notification]:
        """Every send() to `name`, failed and hung ones included."""
        state = cls._states.get(name)
        return list(state.attempts) if state else []

    @classmethod
    def reset(cls) -> None:
        cls._states.clear()
        cls._instances.clear()

    def fail_next(
        self, n: int = 1, *, retryable: bool = True, retry_after: float | None = None
    ) -> None:
        """The next `n` sends raise DeliveryError(retryable, retry_after)."""
        if n < 0:
            raise ValueError("n must be >= 0")
        self._state.fail = n
        self._state.retryable = retryable
        self._state.retry_after = retry_after

    def hang(self, seconds: float) -> None:
        """Every send sleeps `seconds` first (math.inf: until cancelled; 0: stop)."""
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        self._state.hang = seconds

    # -- the Channel contract -----------------------------------------------------

    def preview(self, n: Notification) -> list[wire.Wire]:
        """What a test reading MemoryChannel.sent() gets: the notification itself."""
        return [wire.Wire("memory", self.name, body=strict_json(n.as_dict()))]

    async def send(self, n: Notification) -> None:
        state = self._state
        _keep(state.attempts, n)
        if state.hang > 0:
            if math.isinf(state.hang):
                # sleep(inf) overflows the loop's timer; a future nobody sets waits forever
                await asyncio.get_running_loop().create_future()
            else:
                await asyncio.sleep(state.hang)
        if state.fail > 0:
            state.fail -= 1
            raise DeliveryError(
                f"{self.name}: failure injected by fail_next",
                retryable=state.retryable,
                retry_after=state.retry_after,
            )
        _keep(state.sent, n)

    async def aclose(self) -> None:
        self.closed = True
