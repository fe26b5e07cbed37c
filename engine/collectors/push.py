"""`push`: metrics that clients POST to /api/v1/metrics.

    - {name: biz, type: push, ttl: 5m}

`push(values, now)` stores each metric with its arrival time; `collect(now)`
returns the metrics younger than `ttl`. An expired metric is simply absent, so
a rule on it goes to no_data handling instead of comparing against a stale value.
Both take the daemon's clock, the same one the scheduler passes to collect.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar, Self

from engine.collectors._util import Settings
from engine.collectors.base import Sample, check_plain, freeze
from engine.config.model import CollectorConfig

MAX_METRICS = 10_000  # stored at once, across pushes
MAX_VALUES_PER_PUSH = 100_000  # every scalar and container in one push counts
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,199}")  # usable as `biz.<name>` in expressions


class PushCollector:
    type_name: ClassVar[str] = "push"

    def __init__(self, config: CollectorConfig, ttl: float) -> None:
        self.name = config.name
        self.interval = config.interval
        self.timeout = config.timeout
        self.ttl = ttl
        self._values: dict[str, tuple[Any, float]] = {}  # name -> (frozen value, arrival)

    @classmethod
    def from_config(cls, config: CollectorConfig) -> Self:
        s = Settings(cls.type_name, config.settings)
        ttl = s.duration("ttl", 300.0)
        if ttl <= 0:
            raise ValueError("ttl: must be longer than 0s")
        s.done()
        return cls(config, ttl)

    @classmethod
    def metric_names(cls, config: CollectorConfig) -> None:
        return None  # whatever clients push

    def push(self, values: Mapping[str, Any], now: float) -> None:
        """Store `values` as of `now`. ValueError (nothing stored) when a name or
        value is not acceptable or the collector would hold too many metrics."""
        if not isinstance(values, Mapping):
            raise ValueError("expected an object of metric name -> value")
        for name in values:
            if not isinstance(name, str) or not NAME.fullmatch(name):
                raise ValueError(
                    f"metric name {name!r}: use letters, digits and _ (not first), "
                    "at most 200 characters"
                )
        check_plain(values, "metrics", max_items=MAX_VALUES_PER_PUSH)
        self._expire(now)
        new = sum(1 for name in values if name not in self._values)
        if len(self._values) + new > MAX_METRICS:
            raise ValueError(f"{self.name} would hold more than {MAX_METRICS} metrics")
        for name, value in values.items():
            self._values[name] = (freeze(value), now)

    async def collect(self, now: float) -> Sample:
        self._expire(now)
        return {name: value for name, (value, _) in self._values.items()}

    async def aclose(self) -> None:
        self._values.clear()

    def _expire(self, now: float) -> None:
        cutoff = now - self.ttl
        for name in [n for n, (_, t) in self._values.items() if t <= cutoff]:
            del self._values[name]
