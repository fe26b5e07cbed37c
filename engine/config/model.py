"""The typed, frozen configuration the daemon runs on.

The loader turns validated YAML into these objects once; nothing on the hot path
reads a settings dict. Durations are float seconds. Secrets stay `Secret`s.
Plugin settings (a collector's or channel's own keys) stay a read-only mapping
here: each plugin's `from_config` parses them into its own typed object.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from engine.common.matchers import Matcher as Matcher  # re-exported: the config's matchers
from engine.common.matchers import matches_all as matches_all

if TYPE_CHECKING:
    from engine.expr.expression import Expression

Severity = Literal["info", "warning", "critical", "emergency"]
SEVERITIES: tuple[str, ...] = ("info", "warning", "critical", "emergency")
NoData = Literal["ok", "keep", "alert"]
OnError = Literal["error", "keep", "alert"]
FsyncPolicy = Literal["always", "transitions", "interval", "never"]
Role = Literal["viewer", "operator", "admin"]
ROLES: tuple[str, ...] = ("viewer", "operator", "admin")

EMPTY: Mapping[str, Any] = MappingProxyType({})


def frozen_map(d: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(d)) if d else EMPTY


@dataclass(frozen=True, slots=True)
class Source:
    """Where an object was defined, for messages that point back at YAML."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


NOWHERE = Source("<default>", 0, 0)


@dataclass(frozen=True, slots=True)
class CollectorConfig:
    name: str
    type: str
    interval: float | None  # None: the default interval
    timeout: float
    settings: Mapping[str, Any] = field(
        default_factory=lambda: EMPTY
    )  # the type's own keys, validated by its schema
    source: Source = NOWHERE


@dataclass(frozen=True, slots=True)
class ApiToken:
    name: str
    sha256: str  # hex digest of the bearer token
    role: Role


@dataclass(frozen=True, slots=True)
class ApiConfig:
    host: str = "127.0.0.1"
    port: int = 9595
    tokens: tuple[ApiToken, ...] = ()
    max_body_bytes: int = 1024 * 1024


@dataclass(frozen=True, slots=True)
class LogConfig:
    fsync: FsyncPolicy = "transitions"
    fsync_interval: float = 1.0
    segment_bytes: int = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Flapping:
    """An alert that changes state `max_changes` times within `window` is flapping."""

    max_changes: int = 6
    window: float = 600.0


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    group: str
    expr: str
    compiled: Expression
    severity: Severity = "warning"
    for_: float = 0.0
    consecutive: int = 0  # 0: use `for_`
    keep_firing_for: float = 0.0
    resolve_expr: str | None = None
    compiled_resolve: Expression | None = None
    each: str | None = None
    compiled_each: Expression | None = None
    compiled_value: Expression | None = None  # the observed value: the compared operand
    labels: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    annotations: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    no_data: NoData = "ok"
    on_error: OnError = "error"
    channels: tuple[str, ...] | None = None  # bypass routing when set
    enabled: bool = True
    flapping: Flapping = Flapping()
    source: Source = NOWHERE
    max_alerts: int | None = None  # `each` instances kept; None: vigil.yaml's default


@dataclass(frozen=True, slots=True)
class RuleGroup:
    name: str
    interval: float
    rules: tuple[Rule, ...]
    source: Source = NOWHERE
    file_sha256: str = ""


@dataclass(frozen=True, slots=True)
class RateLimit:
    max: int
    per: float


@dataclass(frozen=True, slots=True)
class Channel:
    name: str
    type: str
    settings: Mapping[str, Any] = field(
        default_factory=lambda: EMPTY
    )  # the type's own keys; secrets are Secret objects
    rate_limit: RateLimit | None = None
    templates: Mapping[str, str] = field(
        default_factory=lambda: EMPTY
    )  # title/body overrides for this channel
    source: Source = NOWHERE


@dataclass(frozen=True, slots=True)
class Escalation:
    after: float
    channels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Route:
    matchers: tuple[Matcher, ...]
    channels: tuple[str, ...]
    continue_: bool = False
    group_by: tuple[str, ...] = ("rule",)
    group_wait: float = 0.0
    group_interval: float = 300.0
    repeat_interval: float = 4 * 3600.0
    active_time: tuple[str, ...] = ()
    mute_time: tuple[str, ...] = ()
    escalate: tuple[Escalation, ...] = ()
    templates: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    # nested routes: Config.routes holds every route in pre-order; `children` are
    # indices into it, `depth` 0 is a top-level route
    children: tuple[int, ...] = ()
    depth: int = 0
    source: Source = NOWHERE


@dataclass(frozen=True, slots=True)
class Inhibit:
    source_matchers: tuple[Matcher, ...]
    target_matchers: tuple[Matcher, ...]
    equal: tuple[str, ...] = ()
    source: Source = NOWHERE


@dataclass(frozen=True, slots=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    until: float  # epoch seconds
    reason: str
    starts: float | None = None  # epoch seconds; None: already active
    created_by: str = "config"
    source: Source = NOWHERE


@dataclass(frozen=True, slots=True)
class TimeRange:
    start_minute: int  # minutes since midnight, inclusive
    end_minute: int  # exclusive; 1440 is midnight at the end of the day


@dataclass(frozen=True, slots=True)
class TimeInterval:
    name: str
    weekdays: frozenset[int] = frozenset()  # 0 = Monday; empty: every day
    times: tuple[TimeRange, ...] = ()  # empty: the whole day
    days_of_month: frozenset[int] = frozenset()
    months: frozenset[int] = frozenset()  # 1..12
    timezone: str = "UTC"
    source: Source = NOWHERE


@dataclass(frozen=True, slots=True)
class ReportSchedule:
    """A scheduled report (`reports:` in vigil.yaml): built over the `period` seconds
    ending at each due time and sent to `channels`. `calendar`: due each day (or each
    `weekday`, 0 = Monday) at `at` minutes past local midnight in `timezone`; else
    due every `period` seconds of the epoch (the test-only `every: 2s`). `during`: a
    due time outside that time interval is sent at the interval's next start."""

    name: str
    period: float
    channels: tuple[str, ...]
    calendar: bool = True
    at: int = 0
    weekday: int | None = None
    timezone: str = "UTC"
    during: str | None = None
    top: int = 5
    source: Source = NOWHERE


@dataclass(frozen=True, slots=True)
class Config:
    rules_paths: tuple[str, ...] = ("rules",)
    channels_paths: tuple[str, ...] = ("channels",)
    data_dir: str = "data"
    default_interval: float = 15.0
    no_data: NoData = "ok"  # rules without their own `no_data`
    # caps on alert instances from `each` (one rule's, and all rules' together)
    max_alerts_per_rule: int = 10_000
    max_alerts_total: int = 50_000
    collectors: tuple[CollectorConfig, ...] = ()
    api: ApiConfig = ApiConfig()
    log: LogConfig = LogConfig()
    groups: tuple[RuleGroup, ...] = ()
    channels: tuple[Channel, ...] = ()
    routes: tuple[Route, ...] = ()
    inhibits: tuple[Inhibit, ...] = ()
    silences: tuple[Silence, ...] = ()
    time_intervals: tuple[TimeInterval, ...] = ()
    reports: tuple[ReportSchedule, ...] = ()
    templates: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    config_file: str | None = None
    config_hash: str = ""  # hash of every file's content, for /status
    file_hashes: Mapping[str, str] = field(default_factory=lambda: EMPTY)

    def rules(self) -> list[Rule]:
        return [r for g in self.groups for r in g.rules]

    def channel(self, name: str) -> Channel | None:
        for c in self.channels:
            if c.name == name:
                return c
        return None
