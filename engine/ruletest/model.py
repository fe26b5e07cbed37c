"""The parsed rule test file: cases, their series and their expectations.

Plain dataclasses the parser fills and the simulation and checks read; separate
so that neither of those depends on how the YAML is parsed."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from engine.config.model import Config

SUFFIXES = (".yaml", ".yml")  # what a rule, channel or test file is named
ALERT_FIELDS = (
    "rule",
    "state",
    "labels",
    "annotations",
    "annotations_regex",
    "value",
    "severity",
    "no_data",
    "error",
    "flapping",
)
NOTE_FIELDS = (
    "channel",
    "status",
    "alerts",
    "kind",
    "level",
    "sent_at",
    "title",
    "title_regex",
    "body",
    "body_regex",
)


@dataclass
class AlertExpect:
    line: int
    raw: dict[str, Any]  # as written, for the diff
    rule: str
    state: str
    labels: dict[str, str] | None
    annotations: dict[str, str] | None
    annotations_regex: dict[str, re.Pattern[str]] | None
    has_value: bool
    value: Any
    severity: str | None
    flags: dict[str, bool]  # no_data / error / flapping when given


@dataclass
class AlertCheck:
    at: float
    line: int
    rules: frozenset[str] | None
    expect: list[AlertExpect]


@dataclass
class NoteExpect:
    line: int
    raw: dict[str, Any]
    channel: str
    status: str | None
    alerts: list[str] | None
    title: str | None
    title_regex: re.Pattern[str] | None
    body: str | None
    body_regex: re.Pattern[str] | None
    kind: str | None
    level: int | None
    sent_at: float | None


@dataclass
class NoteCheck:
    at: float
    line: int
    expect: list[NoteExpect]


@dataclass
class Element:
    labels: dict[str, str]
    fields: dict[str, list[Any]]


@dataclass
class Case:
    name: str
    line: int
    start: float
    constants: dict[str, dict[str, Any]]
    flat: dict[tuple[str, ...], list[Any]]  # (collector, metric, ...) -> values
    lists: dict[tuple[str, ...], list[Element]]
    alerts: list[AlertCheck]
    notifications: list[NoteCheck]

    @property
    def end(self) -> float:
        times = [c.at for c in self.alerts] + [c.at for c in self.notifications]
        return max(times, default=0.0)


@dataclass
class TestFile:
    path: str
    interval: float
    config: Config
    cases: list[Case]
    channel_types: dict[str, str] = field(default_factory=dict)
