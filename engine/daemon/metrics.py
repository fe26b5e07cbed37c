"""The daemon's Prometheus metrics, in a registry of their own.

`Metrics` owns a CollectorRegistry (not prometheus_client's global one, so two
daemons in one test process do not collide) and every metric of /metrics. The
app either calls the small methods below or uses the public metric attributes
directly. Label values are config names (group, channel, collector), states and
severities, never a value that could carry a secret.

    evaluation_duration     vigil_evaluation_duration_seconds{group}       histogram
    evaluation_overruns     vigil_evaluation_overruns_total{group}         counter
    rules                   vigil_rules{state}                             gauge
    alerts                  vigil_alerts{state,severity}                   gauge
    notifications           vigil_notifications_total{channel,outcome}     counter (sent|failed)
    queue_depth             vigil_notification_queue_depth{channel}        gauge
    breaker_open            vigil_channel_breaker_open{channel}            gauge (1 open)
    reloads                 vigil_reloads_total{result}                    counter (success|failure)
    last_reload_successful  vigil_config_last_reload_successful            gauge
    last_reload_timestamp   vigil_config_last_reload_timestamp_seconds     gauge
    journal_fsync           vigil_journal_fsync_seconds                    histogram
    rule_failures           vigil_rule_evaluation_failures_total{rule}     counter
    journal_degraded_gauge  vigil_journal_degraded                         gauge (1: held in memory)
    collector_up            vigil_collector_up{collector}                  gauge
    collector_duration      vigil_collector_duration_seconds{collector}    gauge
    build_info              vigil_build_info{version,python}               gauge (1)
"""

from __future__ import annotations

import contextlib
import platform
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from engine import __version__
from engine.config.model import SEVERITIES

ALERT_STATES = ("pending", "firing")

# evaluations take microseconds to a few seconds; fsyncs take 0.1 ms (SSD) to seconds
EVAL_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
FSYNC_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)


class Metrics:
    def __init__(self, version: str = __version__) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.evaluation_duration = Histogram(
            "vigil_evaluation_duration_seconds",
            "Time to evaluate one rule group against one snapshot.",
            ["group"],
            buckets=EVAL_BUCKETS,
            registry=r,
        )
        self.evaluation_overruns = Counter(
            "vigil_evaluation_overruns",
            "Group evaluations skipped because the previous one was still running.",
            ["group"],
            registry=r,
        )
        self.rules = Gauge("vigil_rules", "Rules by state.", ["state"], registry=r)
        self.rule_failures = Counter(
            "vigil_rule_evaluation_failures",
            "Evaluations of a rule that failed (its expression raised).",
            ["rule"],
            registry=r,
        )
        self.alerts = Gauge(
            "vigil_alerts",
            "Active alerts by state and severity.",
            ["state", "severity"],
            registry=r,
        )
        self.notifications = Counter(
            "vigil_notifications",
            "Notification deliveries per channel by outcome (sent|failed).",
            ["channel", "outcome"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "vigil_notification_queue_depth",
            "Notifications waiting in a channel's queue.",
            ["channel"],
            registry=r,
        )
        self.breaker_open = Gauge(
            "vigil_channel_breaker_open",
            "1 while a channel's circuit breaker is open (deliveries fail fast).",
            ["channel"],
            registry=r,
        )
        self.reloads = Counter(
            "vigil_reloads",
            "Configuration reloads by result (success|failure).",
            ["result"],
            registry=r,
        )
        self.last_reload_successful = Gauge(
            "vigil_config_last_reload_successful",
            "1 if the last configuration load or reload succeeded.",
            registry=r,
        )
        self.last_reload_timestamp = Gauge(
            "vigil_config_last_reload_timestamp_seconds",
            "Time of the last configuration load or reload attempt.",
            registry=r,
        )
        self.journal_fsync = Histogram(
            "vigil_journal_fsync_seconds",
            "Time of one fsync of the JSONL log.",
            buckets=FSYNC_BUCKETS,
            registry=r,
        )
        self.journal_degraded_gauge = Gauge(
            "vigil_journal_degraded",
            "1 while the disk refuses journal writes and events are held in memory.",
            registry=r,
        )
        self.collector_up = Gauge(
            "vigil_collector_up",
            "1 if the collector's last read worked.",
            ["collector"],
            registry=r,
        )
        self.collector_duration = Gauge(
            "vigil_collector_duration_seconds",
            "Duration of the collector's last successful read.",
            ["collector"],
            registry=r,
        )
        self.build_info = Gauge(
            "vigil_build_info",
            "Always 1; the labels say what runs.",
            ["version", "python"],
            registry=r,
        )
        self.build_info.labels(version, platform.python_version()).set(1)
        for state in ALERT_STATES:  # stable series: 0 rather than absent when nothing fires
            for sev in SEVERITIES:
                self.alerts.labels(state, sev).set(0)
        for outcome in ("success", "failure"):
            self.reloads.labels(outcome)
        self._alert_keys: set[tuple[str, str]] = {(s, v) for s in ALERT_STATES for v in SEVERITIES}
        self._rule_states: set[str] = set()
        self._channels: set[str] = set()
        self._collectors: set[str] = set()

    # -- evaluation ----------------------------------------------------------------------

    def observe_evaluation(self, group: str, seconds: float) -> None:
        self.evaluation_duration.labels(group).observe(seconds)

    def evaluation_overrun(self, group: str) -> None:
        self.evaluation_overruns.labels(group).inc()

    def rule_failure(self, rule: str) -> None:
        self.rule_failures.labels(rule).inc()

    def set_rules(self, counts: Mapping[str, int]) -> None:
        """Rules per state, e.g. {"enabled": 40, "disabled": 2}; states left out go to 0."""
        for state in self._rule_states - set(counts):
            self.rules.labels(state).set(0)
        for state, n in counts.items():
            self.rules.labels(state).set(n)
        self._rule_states |= set(counts)

    def set_alert_counts(self, counts: Mapping[tuple[str, str], int]) -> None:
        """Active alerts per (state, severity) (engine/rules/alert_tally.py counts them);
        combinations no longer present go to 0."""
        for key in self._alert_keys - set(counts):
            self.alerts.labels(*key).set(0)
        for key, n in counts.items():
            self.alerts.labels(*key).set(n)
        self._alert_keys |= set(counts)

    # -- notifications -------------------------------------------------------------------

    def notification(self, channel: str, *, ok: bool) -> None:
        """Count one delivery (a journaled `notified` or `notify_failed`): the one
        place vigil_notifications_total is counted."""
        self.notifications.labels(channel, "sent" if ok else "failed").inc()

    def sync_channels(self, status: Mapping[str, Mapping[str, Any]]) -> None:
        """Take Dispatcher.status() ({channel: {"queued", "breaker", ...}}) as it is:
        the gauges are set and channels that are gone are removed. The senders'
        own sent/failed counts are not added: `notification` counts each delivery
        once, from the journal (adding both counted every delivery twice)."""
        for gone in self._channels - set(status):
            _remove(self.queue_depth, gone)
            _remove(self.breaker_open, gone)
            for outcome in ("sent", "failed"):
                _remove(self.notifications, gone, outcome)
        for name, s in status.items():
            self.queue_depth.labels(name).set(int(s.get("queued", 0)))
            self.breaker_open.labels(name).set(1 if s.get("breaker") == "open" else 0)
        self._channels = set(status)

    # -- configuration -------------------------------------------------------------------

    def config_loaded(self, at: float) -> None:
        """The first load at start-up: not a reload, but the gauges say it worked."""
        self.last_reload_successful.set(1)
        self.last_reload_timestamp.set(at)

    def reload(self, *, ok: bool, at: float) -> None:
        self.reloads.labels("success" if ok else "failure").inc()
        self.last_reload_successful.set(1 if ok else 0)
        self.last_reload_timestamp.set(at)

    # -- journal and collectors ----------------------------------------------------------

    def observe_fsync(self, seconds: float) -> None:
        """Fits Journal(on_fsync=metrics.observe_fsync)."""
        self.journal_fsync.observe(seconds)

    def journal_degraded(self, degraded: bool) -> None:
        self.journal_degraded_gauge.set(1 if degraded else 0)

    def collector(self, name: str, *, up: bool, duration: float | None = None) -> None:
        self.collector_up.labels(name).set(1 if up else 0)
        if duration is not None:
            self.collector_duration.labels(name).set(duration)
        self._collectors.add(name)

    def sync_collectors(
        self, names: Iterable[str], down: Iterable[str], durations: Mapping[str, float]
    ) -> None:
        """All collectors at once (e.g. from CollectorHub): those not in `names`
        any more are removed, e.g. after a reload dropped them."""
        names, down_set = set(names), set(down)
        for gone in self._collectors - names:
            _remove(self.collector_up, gone)
            _remove(self.collector_duration, gone)
        self._collectors = set()
        for name in names:
            self.collector(name, up=name not in down_set, duration=durations.get(name))

    def forget_group(self, group: str) -> None:
        """A group removed by a reload stops being exported."""
        _remove(self.evaluation_duration, group)
        _remove(self.evaluation_overruns, group)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def _remove(metric: Counter | Gauge | Histogram, *labels: str) -> None:
    # older prometheus_client raises KeyError for a label set it never saw
    with contextlib.suppress(KeyError):
        metric.remove(*labels)
