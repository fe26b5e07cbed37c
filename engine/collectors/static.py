"""`static`: fixed values from the configuration (tests, feature flags, thresholds).

    - {name: fixed, type: static, values: {answer: 42, ok: true}}

The values are checked to be plain data and deep-frozen once, at load; every
collect returns the same read-only mapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

from engine.collectors._util import Settings
from engine.collectors.base import Sample, check_plain, freeze
from engine.config.model import CollectorConfig


class StaticCollector:
    type_name: ClassVar[str] = "static"

    def __init__(self, config: CollectorConfig, values: Mapping[str, Any]) -> None:
        self.name = config.name
        self.interval = config.interval
        self.timeout = config.timeout
        self.values: Mapping[str, Any] = freeze(values)

    @classmethod
    def from_config(cls, config: CollectorConfig) -> Self:
        s = Settings(cls.type_name, config.settings)
        values = s.mapping("values", {})
        check_plain(values, "values")
        s.done()
        return cls(config, values)

    @classmethod
    def metric_names(cls, config: CollectorConfig) -> frozenset[str] | None:
        values = config.settings.get("values", {})
        return frozenset(values) if isinstance(values, Mapping) else None

    async def collect(self, now: float) -> Sample:
        return self.values

    async def aclose(self) -> None:
        return None
