"""engine.daemon.metrics: names, label sets, and the sync helpers the app calls."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from engine import __version__
from engine.daemon.metrics import Metrics
from engine.rules.alert_tally import tally


def samples(m: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(m.exposition().decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(m: Metrics, name: str, **labels: str) -> float | None:
    return samples(m).get((name, tuple(sorted(labels.items()))))


def test_every_metric_is_exposed_with_its_name() -> None:
    m = Metrics()
    m.observe_evaluation("host", 0.003)
    m.evaluation_overrun("host")
    m.set_rules({"enabled": 3, "disabled": 1})
    m.set_alert_counts(tally([{"state": "firing", "severity": "critical"}]).by_state_severity)
    m.sync_channels({"hook": {"queued": 2, "breaker": "open", "sent": 5, "failed": 1}})
    m.reload(ok=False, at=1234.0)
    m.observe_fsync(0.002)
    m.collector("system", up=True, duration=0.05)
    families = {f.name for f in text_string_to_metric_families(m.exposition().decode())}
    for name in (
        "vigil_evaluation_duration_seconds",
        "vigil_evaluation_overruns_total",
        "vigil_rules",
        "vigil_alerts",
        "vigil_notifications_total",
        "vigil_notification_queue_depth",
        "vigil_channel_breaker_open",
        "vigil_reloads_total",
        "vigil_config_last_reload_successful",
        "vigil_config_last_reload_timestamp_seconds",
        "vigil_journal_fsync_seconds",
        "vigil_collector_up",
        "vigil_collector_duration_seconds",
        "vigil_build_info",
    ):
        assert name.removesuffix("_total") in families, name  # a counter's family drops _total
    assert value(m, "vigil_evaluation_duration_seconds_count", group="host") == 1
    assert value(m, "vigil_evaluation_overruns_total", group="host") == 1
    assert value(m, "vigil_notification_queue_depth", channel="hook") == 2
    assert value(m, "vigil_channel_breaker_open", channel="hook") == 1
    assert value(m, "vigil_reloads_total", result="failure") == 1
    assert value(m, "vigil_reloads_total", result="success") == 0
    assert value(m, "vigil_config_last_reload_successful") == 0
    assert value(m, "vigil_config_last_reload_timestamp_seconds") == 1234.0
    assert value(m, "vigil_journal_fsync_seconds_count") == 1
    assert value(m, "vigil_collector_up", collector="system") == 1
    build = [k for k in samples(m) if k[0] == "vigil_build_info"]
    assert len(build) == 1 and ("version", __version__) in build[0][1]


def test_registries_are_private() -> None:
    a, b = Metrics(), Metrics()  # no "Duplicated timeseries" error: not the global registry
    a.reload(ok=True, at=1.0)
    assert value(a, "vigil_reloads_total", result="success") == 1
    assert value(b, "vigil_reloads_total", result="success") == 0


def test_alerts_by_state_and_severity_go_back_to_zero() -> None:
    m = Metrics()
    assert value(m, "vigil_alerts", state="firing", severity="critical") == 0
    m.set_alert_counts(
        tally(
            [
                {"state": "firing", "severity": "critical"},
                {"state": "firing", "severity": "critical"},
                {"state": "pending", "severity": "info"},
            ]
        ).by_state_severity
    )
    assert value(m, "vigil_alerts", state="firing", severity="critical") == 2
    assert value(m, "vigil_alerts", state="pending", severity="info") == 1
    m.set_alert_counts(tally([]).by_state_severity)
    assert value(m, "vigil_alerts", state="firing", severity="critical") == 0
    assert value(m, "vigil_alerts", state="pending", severity="info") == 0


def test_rules_states_left_out_go_to_zero() -> None:
    m = Metrics()
    m.set_rules({"enabled": 3, "disabled": 1})
    m.set_rules({"enabled": 4})
    assert value(m, "vigil_rules", state="enabled") == 4
    assert value(m, "vigil_rules", state="disabled") == 0


def test_each_delivery_counts_once_and_removed_channels_go() -> None:
    """13.16: a delivery is counted once, from its journaled outcome; the senders'
    own totals (Dispatcher.status) set gauges only (they counted it a second time)."""
    m = Metrics()
    m.sync_channels({"a": {"queued": 1, "breaker": "closed", "sent": 0, "failed": 0}})
    for ok in (True, True, True, False):
        m.notification("a", ok=ok)
    m.sync_channels({"a": {"queued": 0, "breaker": "half_open", "sent": 3, "failed": 1}})
    assert value(m, "vigil_notifications_total", channel="a", outcome="sent") == 3
    assert value(m, "vigil_notifications_total", channel="a", outcome="failed") == 1
    assert value(m, "vigil_channel_breaker_open", channel="a") == 0  # probing, not open
    m.sync_channels({"a": {"queued": 0, "breaker": "closed", "sent": 3, "failed": 1}})
    assert value(m, "vigil_notifications_total", channel="a", outcome="sent") == 3
    m.sync_channels({"b": {"queued": 0, "breaker": "closed", "sent": 0, "failed": 0}})
    assert value(m, "vigil_notification_queue_depth", channel="a") is None
    assert value(m, "vigil_notifications_total", channel="a", outcome="sent") is None
    assert value(m, "vigil_notification_queue_depth", channel="b") == 0


def test_notification_counter_directly() -> None:
    m = Metrics()
    m.notification("hook", ok=True)
    m.notification("hook", ok=False)
    assert value(m, "vigil_notifications_total", channel="hook", outcome="sent") == 1
    assert value(m, "vigil_notifications_total", channel="hook", outcome="failed") == 1


def test_collectors_and_groups_removed_after_reload() -> None:
    m = Metrics()
    m.sync_collectors(["system", "api"], down=["api"], durations={"system": 0.1})
    assert value(m, "vigil_collector_up", collector="api") == 0
    assert value(m, "vigil_collector_duration_seconds", collector="system") == 0.1
    m.sync_collectors(["system"], down=[], durations={"system": 0.2})
    assert value(m, "vigil_collector_up", collector="api") is None
    m.observe_evaluation("old", 0.1)
    m.evaluation_overrun("old")
    m.forget_group("old")
    m.forget_group("never-seen")
    assert not any(k[1] == (("group", "old"),) for k in samples(m))


def test_config_loaded_is_not_a_reload() -> None:
    m = Metrics()
    m.config_loaded(99.0)
    assert value(m, "vigil_config_last_reload_successful") == 1
    assert value(m, "vigil_config_last_reload_timestamp_seconds") == 99.0
    assert value(m, "vigil_reloads_total", result="success") == 0
