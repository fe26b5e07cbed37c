"""Routing, silences and inhibition: the label-matching parts of notification."""

from __future__ import annotations

from typing import Any

from engine.common.matchers import compile_regex
from engine.config.model import Config, Inhibit, Matcher, Route, Rule, Silence
from engine.notify import router


def M(label: str, *values: str) -> Matcher:
    return Matcher(label, frozenset(values))


def rule(rid: str, channels: tuple[str, ...] | None = None) -> Rule:
    compiled: Any = None
    return Rule(id=rid, group="g", expr="True", compiled=compiled, channels=channels)


ROUTES = (
    Route((M("severity", "critical"),), ("pager",)),
    Route((M("team", "db"),), ("db-slack",), continue_=True),
    Route((Matcher("rule", regex=compile_regex("host_.*")),), ("hosts",)),
    Route((), ("default",)),
)
CONFIG = Config(routes=ROUTES)


def chans(labels: dict[str, str]) -> list[str]:
    return [c for r in router.route(CONFIG, labels) for c in r.channels]


def test_match_labels_adds_rule_and_severity() -> None:
    m = router.match_labels({"host": "a", "rule": "spoof"}, "r1", "warning")
    assert m == {"host": "a", "rule": "r1", "severity": "warning"}


def test_first_match_wins() -> None:
    assert chans(router.match_labels({}, "x", "critical")) == ["pager"]
    assert chans(router.match_labels({"team": "db"}, "x", "critical")) == ["pager"]


def test_continue_lets_later_routes_match() -> None:
    assert chans(router.match_labels({"team": "db"}, "host_cpu", "warning")) == [
        "db-slack",
        "hosts",
    ]
    assert chans(router.match_labels({"team": "db"}, "other", "warning")) == [
        "db-slack",
        "default",
    ]


def test_route_without_matchers_matches_everything() -> None:
    assert chans(router.match_labels({}, "anything", "info")) == ["default"]
    assert router.route(Config(), {"a": "b"}) == []


def test_rule_channels_bypass_routing() -> None:
    got = router.targets(CONFIG, router.match_labels({}, "r", "critical"), rule("r", ("ops",)))
    assert [(i, r.channels) for i, r in got] == [(router.BYPASS_INDEX, ("ops",))]
    got = router.targets(CONFIG, router.match_labels({}, "r", "critical"), rule("r"))
    assert [(i, r.channels) for i, r in got] == [(0, ("pager",))]


def test_silence_from_state_shapes() -> None:
    s = router.silence_from_state(
        "s1",
        {
            "matchers": [
                {"label": "host", "values": ["a", "b"]},
                {"label": "rule", "regex": "disk_.*"},
                {"label": "team", "value": "infra"},
            ],
            "until": 200.0,
            "starts": 100.0,
            "reason": "maintenance",
            "created_by": "alice",
        },
    )
    assert s is not None and s.created_by == "alice"
    labels = {"host": "b", "rule": "disk_full", "team": "infra"}
    assert router.silenced_by([s], labels, 150.0) is s
    assert router.silenced_by([s], labels, 99.0) is None  # not started
    assert router.silenced_by([s], labels, 200.0) is None  # expired
    assert router.silenced_by([s], {**labels, "host": "c"}, 150.0) is None
    cfg_shape = router.silence_from_state("s2", {"match": {"host": "a"}, "until": 10})
    assert cfg_shape is not None and cfg_shape.created_by == "api"
    assert router.silence_from_state("bad", {"matchers": [], "until": 1}) is None
    assert router.silence_from_state("bad", {"matchers": [{"label": "a"}]}) is None
    assert (
        router.silence_from_state("bad", {"matchers": [{"label": "a", "regex": "("}], "until": 1})
        is None
    )


def test_config_silence_active_window() -> None:
    s = Silence("c", (M("host", "a"),), until=100.0, reason="r")
    assert router.silence_active(s, 0.0) and not router.silence_active(s, 100.0)


def test_inhibition_needs_equal_labels_and_never_inhibits_itself() -> None:
    inh = router.Inhibitor(
        [Inhibit((M("severity", "critical"),), (M("severity", "warning", "critical"),), ("host",))]
    )
    crit_a = router.match_labels({"host": "a"}, "down", "critical")
    warn_a = router.match_labels({"host": "a"}, "slow", "warning")
    warn_b = router.match_labels({"host": "b"}, "slow", "warning")
    assert not inh.inhibited("w", warn_a)
    changes = inh.set_firing("c", crit_a, True)
    assert changes and inh.affects(changes, warn_a) and not inh.affects(changes, warn_b)
    assert inh.inhibited("w", warn_a)
    assert not inh.inhibited("w2", warn_b)
    assert not inh.inhibited("c", crit_a)  # matches source and target: not by itself
    inh.set_firing("c2", crit_a, True)
    assert not inh.inhibited("c", crit_a)  # nor by another two-sided one (Alertmanager)
    assert inh.inhibited("w", warn_a)  # which still inhibits a one-sided target
    inh.set_firing("c", crit_a, False)
    inh.set_firing("c2", crit_a, False)
    assert not inh.inhibited("w", warn_a)
    assert inh.set_firing("w", warn_a, True) == []  # not a source


def test_missing_equal_label_counts_as_empty() -> None:
    inh = router.Inhibitor([Inhibit((M("rule", "src"),), (M("rule", "dst"),), ("zone",))])
    inh.set_firing("s", router.match_labels({}, "src", "warning"), True)
    assert inh.inhibited("d", router.match_labels({}, "dst", "warning"))
    assert not inh.inhibited("d", router.match_labels({"zone": "x"}, "dst", "warning"))


def test_two_sided_alerts_do_not_mute_each_other() -> None:
    """13.A.4: two alerts that each match both sides of an inhibit rule are both
    notified (Alertmanager ignores a source that also matches the target side when
    the target also matches the source side); a one-sided source still mutes them."""
    inh = router.Inhibitor([Inhibit((M("team", "db"),), (M("team", "db"),), ("host",))])
    a = router.match_labels({"team": "db", "host": "h"}, "disk_full", "warning")
    b = router.match_labels({"team": "db", "host": "h"}, "replica_lag", "warning")
    inh.set_firing("a", a, True)
    inh.set_firing("b", b, True)
    assert not inh.inhibited("a", a) and not inh.inhibited("b", b)
    one_sided = Inhibit((M("rule", "host_down"),), (M("team", "db"),), ("host",))
    inh2 = router.Inhibitor([one_sided])
    down = router.match_labels({"team": "net", "host": "h"}, "host_down", "critical")
    inh2.set_firing("a", a, True)
    inh2.set_firing("down", down, True)
    assert inh2.inhibited("a", a)
    assert router.source_counts(one_sided, a, down)
    rule2 = inh.rules[0]
    assert not router.source_counts(rule2, a, b)
