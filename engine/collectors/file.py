"""`file`: re-read a file every interval; JSON object keys or Prometheus text.

format: json        the top-level object's keys are the metric names
        prometheus  the text exposition format (what node_exporter's textfile
                    collector reads): `name value` becomes {name: value};
                    `name{l="v"} value` lines become {name: [{labels, value}, ...]}
                    so that `each: app.http_requests_total` gives one alert per
                    label set. Sample names are kept as written (a counter's
                    `_total`, a histogram's `_bucket`/`_sum`/`_count`);
                    timestamps are ignored.

The format defaults to prometheus for `*.prom` files and json otherwise.
`max_age` (optional) turns a file nobody has rewritten for that long into a
collector failure: a dead cron job should not look like a healthy system.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from prometheus_client.parser import text_string_to_metric_families

from engine.collectors._util import OneThread, Settings
from engine.collectors.base import Sample
from engine.common import json_bounded
from engine.common.durations import format_duration
from engine.common.secret import Secret
from engine.config.catalog import check_declared
from engine.config.model import CollectorConfig
from engine.config.secrets import reveal
from engine.errors import CollectorError

MAX_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class FileSettings:
    path: str | Secret
    format: str  # json | prometheus
    max_age: float | None = None


class FileCollector:
    type_name: ClassVar[str] = "file"

    def __init__(self, config: CollectorConfig, settings: FileSettings) -> None:
        self.name = config.name
        self.interval = config.interval
        self.timeout = config.timeout
        self.settings = settings
        self._thread = OneThread()
        # messages show the path, unless it came from a secret reference
        self._shown = "***" if isinstance(settings.path, Secret) else settings.path

    @classmethod
    def from_config(cls, config: CollectorConfig) -> Self:
        s = Settings(cls.type_name, config.settings)
        path = s.text("path")
        if not reveal(path):
            raise ValueError("path: must not be empty")
        guess = "prometheus" if reveal(path).endswith(".prom") else "json"
        settings = FileSettings(
            path=path,
            format=s.choice("format", ("json", "prometheus"), guess),
            max_age=s.duration("max_age", 0) if s.has("max_age") else None,
        )
        check_declared(s.get("metrics", []))  # names (and kinds) for the validator
        s.done()
        return cls(config, settings)

    @classmethod
    def metric_names(cls, config: CollectorConfig) -> frozenset[str] | None:
        declared = config.settings.get("metrics")  # else whatever the file holds
        return frozenset(declared) if isinstance(declared, list | tuple | Mapping) else None

    async def collect(self, now: float) -> Sample:
        return await self._thread.run(self._read, self.timeout)

    async def aclose(self) -> None:
        return None

    def _read(self) -> dict[str, Any]:
        data = self._load()
        if self.settings.format == "json":
            return _parse_json(data, self._shown)
        return _parse_prometheus(data, self._shown)

    def _load(self) -> bytes:
        shown = self._shown
        try:
            with open(reveal(self.settings.path), "rb") as f:
                st = os.fstat(f.fileno())
                if self.settings.max_age is not None:
                    age = time.time() - st.st_mtime
                    if age > self.settings.max_age:
                        raise CollectorError(
                            f"{shown} is stale: last written {format_duration(round(age))} "
                            f"ago (max_age {format_duration(self.settings.max_age)})"
                        )
                data = f.read(MAX_BYTES + 1)
        except FileNotFoundError:
            raise CollectorError(f"{shown} not found") from None
        except OSError as e:
            raise CollectorError(f"cannot read {shown}: {e.strerror or e}") from None
        if len(data) > MAX_BYTES:
            raise CollectorError(f"{shown} is larger than {MAX_BYTES // (1024 * 1024)} MiB")
        return data


def _parse_json(data: bytes, shown: str) -> dict[str, Any]:
    try:
        # a value nested past the boundary's depth becomes null (cut there), not an error
        value = json_bounded.loads(data)
    except ValueError as e:  # JSONDecodeError, bad UTF-8
        raise CollectorError(f"{shown}: not valid JSON: {e}") from None
    if not isinstance(value, dict):
        kind = type(value).__name__.replace("NoneType", "null")
        raise CollectorError(f"{shown}: the top level is a {kind}, expected a JSON object")
    return value


def _parse_prometheus(data: bytes, shown: str) -> dict[str, Any]:
    text = data.decode("utf-8", "replace")
    grouped: dict[str, list[tuple[dict[str, str], float]]] = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                grouped.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    # the parser reports malformed input as whichever error the bad token causes
    except (ValueError, IndexError, KeyError, TypeError) as e:
        raise CollectorError(f"{shown}: not valid Prometheus text format: {e}") from None
    out: dict[str, Any] = {}
    for name, samples in grouped.items():
        if len(samples) == 1 and not samples[0][0]:
            out[name] = samples[0][1]
        else:
            out[name] = [{"labels": labels, "value": value} for labels, value in samples]
    return out
