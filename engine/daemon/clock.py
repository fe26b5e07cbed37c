"""The daemon's two clocks, handed to each part that reads time (tests drive both)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Clock:
    """`wall` stamps events and feeds rules; `mono` times intervals and timeouts."""

    wall: Callable[[], float] = time.time
    mono: Callable[[], float] = time.monotonic
