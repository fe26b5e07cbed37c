"""The notification a preview renders is the one the real pipeline makes for the
same alert: same group key, idempotency key, title, body and alert (route
templates, group_by and the rule's annotation templates included), whether the
alert is synthesized from its rule or read from the folded journal state."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from engine.channels.preview_build import (
    Choice,
    PreviewError,
    choose,
    marked_test_notification,
    preview,
    preview_live,
)
from engine.config.build import ConfigLoader
from engine.config.model import Config
from engine.journal.store import fold_event, initial_state
from engine.notify.base import Notification, iso
from engine.notify.pipeline import Pipeline
from engine.plugins import registry
from engine.rules.state import fingerprint

pytestmark = pytest.mark.timeout(60)

T0 = 1_796_000_000.0
RULES = """\
group: g
interval: 10s
rules:
  - id: cpu_high
    expr: app.cpu > 90
    severity: critical
    labels: {team: infra}
    annotations: {summary: "CPU {{ value }} on {{ labels.host }}", runbook: "https://wiki/cpu"}
"""
CHANNELS = """\
channels:
  - {name: ops, type: memory}
  - {name: hook, type: webhook, url: "http://127.0.0.1:9/hook"}
routes:
  - match: {team: infra}
    channels: [ops, hook]
    group_by: [team, host]
    group_wait: 0s
    templates: {title: "{{ status|upper }} {{ rules|join(',') }} on {{ group_labels.host }}"}
"""


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    root = tmp_path_factory.mktemp("preview")
    (root / "rules").mkdir()
    (root / "channels").mkdir()
    (root / "rules" / "r.yaml").write_text(RULES)
    (root / "channels" / "c.yaml").write_text(CHANNELS)
    path: Path = root / "vigil.yaml"
    path.write_text(
        "rules: [rules]\nchannels: [channels]\ndata_dir: data\n"
        f"collectors:\n  - {{name: app, type: file, path: {root / 'app.json'}, format: json}}\n"
    )
    result = ConfigLoader().load(str(path))
    assert result.config is not None, [p.format() for p in result.problems]
    return result.config


def firing(labels: dict[str, str]) -> dict[str, Any]:
    # no annotations: the pipeline renders them from the rule's, as for an old record
    return {
        "event": "firing", "alert": fingerprint("cpu_high", labels), "rule": "cpu_high",
        "group": "g", "labels": labels, "severity": "critical", "value": 95.5,
        "pending_since": T0, "firing_since": T0,
    }  # fmt: skip


def real(config: Config, ev: dict[str, Any]) -> dict[str, Notification]:
    """What the pipeline sends for the event, per channel; and folds it as the journal does."""
    textless = {  # as the dispatcher asks the senders (their channels' uses_text)
        c.name
        for c in config.channels
        if not getattr(registry.load("vigil.channels", c.type), "uses_text", True)
    }
    p = Pipeline(config, {c.name: c.type for c in config.channels}, textless=textless)
    p.ingest(ev, T0)
    return {n.channel: n for n in p.due(T0)}


def same(a: Notification, b: Notification) -> None:
    for f in ("group_key", "key", "status", "title", "body", "html", "kind", "alerts"):
        assert getattr(a, f) == getattr(b, f), f


def test_a_rules_alert_renders_as_the_pipeline_renders_it(config: Config) -> None:
    labels = {"team": "infra", "host": "web-1"}
    sent = real(config, firing(labels))
    choice = Choice(rule="cpu_high", labels={"host": "web-1"}, value=95.5)
    ops = choose(config, "ops", choice, T0, text=True)
    same(ops, sent["ops"])
    assert ops.title == "FIRING cpu_high on web-1"  # the route's template
    assert ops.alerts[0].annotations["summary"] == "CPU 95.5 on web-1"
    # a channel that reads no text gets none rendered, as from the pipeline
    same(choose(config, "hook", choice, T0, text=False), sent["hook"])


def test_a_stored_alert_renders_as_the_pipeline_renders_it(config: Config) -> None:
    labels = {"team": "infra", "host": "web-2"}
    ev = firing(labels)
    sent = real(config, ev)
    state = initial_state()
    fold_event(state, {**ev, "ts": iso(T0)})
    stored = {**state["alerts"][ev["alert"]], "fingerprint": ev["alert"]}
    # the journal's record has no annotations: rendered now from the rule's, as the pipeline did
    stored["annotations"] = dict(sent["ops"].alerts[0].annotations)
    same(choose(config, "ops", Choice(stored=stored), T0, text=True), sent["ops"])


def test_the_rules_own_labels_win_and_reserved_ones_are_dropped(config: Config) -> None:
    n = choose(
        config, "ops",
        Choice(rule="cpu_high", labels={"team": "x", "severity": "low", "host": "h"}),
        T0, text=True,
    )  # fmt: skip
    (a,) = n.alerts
    assert dict(a.labels) == {"team": "infra", "host": "h"} and a.severity == "critical"
    assert a.fingerprint == fingerprint("cpu_high", {"team": "infra", "host": "h"})


def test_the_default_is_the_test_notification_and_resolved_resolves_it(config: Config) -> None:
    n = choose(config, "ops", Choice(), T0, text=True)
    assert n == marked_test_notification("ops", T0) and n.title.startswith("[TEST]")
    gone = choose(config, "ops", Choice(resolved=True), T0, text=True)
    assert gone.status == "resolved"
    assert [(a.status, a.ends_at) for a in gone.alerts] == [("resolved", T0)]
    assert replace(gone, status="firing", alerts=n.alerts) == n


def test_unknown_names_are_one_line_errors(config: Config) -> None:
    with pytest.raises(PreviewError, match=r"unknown channel 'nope' \(channels: hook, ops\)"):
        asyncio.run(preview(config, "nope", Choice(), T0))
    with pytest.raises(PreviewError, match=r"unknown rule 'nope' \(rules: cpu_high\)"):
        asyncio.run(preview(config, "ops", Choice(rule="nope"), T0))
    with pytest.raises(KeyError):
        asyncio.run(preview_live(config, initial_state(), "ops", Choice(alert="0123"), T0))
    with pytest.raises(KeyError):
        asyncio.run(preview_live(config, initial_state(), "nope", Choice(), T0))


def test_the_answer_carries_the_rendered_text_and_the_wire(config: Config) -> None:
    got = asyncio.run(preview(config, "hook", Choice(rule="cpu_high", value=1), T0))
    assert (got["channel"], got["type"]) == ("hook", "webhook")
    assert got["notification"]["title"] == ""  # a webhook reads no rendered text
    (w,) = got["wire"]
    # a URL's path is hidden even when written plainly: tokens live there (redaction.py)
    assert w["target"] == "POST http://127.0.0.1:9/***" and '"rule":"cpu_high"' in w["body"]
