"""Alertmanager's routing semantics through the notification pipeline: inhibition
between alerts matching both sides, matchers, nested routes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.common.matchers import MatcherError, compile_regex, parse, to_text
from engine.config.build import ConfigLoader
from engine.config.model import Channel, Config, Inhibit, Matcher, Route, frozen_map
from engine.notify import am_timing, router
from engine.notify.base import Notification, iso
from engine.notify.pipeline import Pipeline

CONTEXT = Path(__file__).resolve().parents[2] / "testdata" / "context" / "vigil.yaml"
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC).timestamp()


def M(label: str, *values: str) -> Matcher:
    return Matcher(label, frozenset(values))


def fire(fp: str, *, rule: str = "r1", severity: str = "warning", **labels: str) -> dict[str, Any]:
    return {
        "event": "firing",
        "alert": fp,
        "rule": rule,
        "group": "g",
        "labels": dict(labels),
        "severity": severity,
        "value": 1.0,
        "annotations": {},
        "pending_since": T0,
        "firing_since": T0,
        "ts": iso(T0),
        "seq": 1,
    }


def pipe(routes: tuple[Route, ...], **kw: Any) -> Pipeline:
    names = sorted({c for r in routes for c in r.channels})
    chs = tuple(Channel(n, "webhook") for n in names)
    return Pipeline(Config(routes=routes, channels=chs, **kw), {c.name: "webhook" for c in chs})


def sent(p: Pipeline, now: float) -> list[tuple[str, str]]:
    out: list[Notification] = p.due(now)
    for n in out:
        p.delivered(n, True, now)
    return sorted((n.channel, a.fingerprint) for n in out for a in n.alerts)


def test_two_alerts_matching_both_sides_of_an_inhibit_rule_are_both_notified() -> None:
    """13.A.4: on old code each inhibited the other and nothing was sent."""
    rule = Inhibit((M("team", "db"),), (M("team", "db"),), ("host",))
    p = pipe((Route((), ("ops",), group_by=("...",)),), inhibits=(rule,))
    p.ingest(fire("a", rule="disk_full", team="db", host="h"), T0)
    p.ingest(fire("b", rule="replica_lag", team="db", host="h"), T0)
    assert sent(p, T0) == [("ops", "a"), ("ops", "b")]


# -- 13.A.10: one matcher semantics (Alertmanager's), !=, !~, nested routes ------------------


def load_channels(tmp_path: Path, text: str) -> Config:
    f = tmp_path / "channels.yaml"
    f.write_text(text)
    result = ConfigLoader().load(str(CONTEXT), [str(f)])
    assert result.config is not None, [p.format() for p in result.problems]
    return result.config


def test_a_missing_label_matches_as_the_empty_string_everywhere() -> None:
    no_x = {"rule": "r", "severity": "warning"}
    assert Matcher("x", regex=compile_regex(".*")).matches(no_x)  # old code: False
    assert Matcher("x", frozenset({""})).matches(no_x)
    assert not Matcher("x", regex=compile_regex(".+")).matches(no_x)
    assert parse("x!=ops").matches(no_x)
    assert not parse('x!~""').matches(no_x)
    assert parse("x!~a.*").matches(no_x)


def test_regexes_are_fully_anchored_and_ops_parse() -> None:
    labels = {"service": "db-main", "team": "ops"}
    assert parse('service=~"db.*"').matches(labels)
    assert not parse("service=~db").matches(labels)  # anchored at both ends
    assert not parse("service=~main").matches(labels)
    assert not parse("team!=ops").matches(labels)
    assert parse("team!=dev").matches(labels)
    assert not parse('service!~"db-.*"').matches(labels)
    assert parse(' env = "a b" ') == Matcher("env", frozenset({"a b"}))
    assert parse('v="say \\"hi\\"\\\\"').values == frozenset({'say "hi"\\'})
    assert to_text(parse('service=~"db.*"')) == 'service=~"db.*"'
    for text in ["team", "team==x", "1x=y", 'x="open', "x=a,b"]:
        try:
            parse(text)
        except MatcherError as e:
            assert "\n" not in str(e)
        else:
            raise AssertionError(f"{text!r} parsed")


def test_match_re_on_a_missing_label_routes_through_the_pipeline(tmp_path: Path) -> None:
    config = load_channels(
        tmp_path,
        """
channels:
  - {name: any-zone, type: memory}
  - {name: rest, type: memory}
routes:
  - match_re: {zone: ".*"}
    channels: [any-zone]
  - channels: [rest]
""",
    )
    p = Pipeline(config, {"any-zone": "memory", "rest": "memory"})
    p.ingest(fire("a"), T0)  # no zone label: "" matches ".*"
    assert sent(p, T0) == [("any-zone", "a")]


NESTED = """
channels:
  - {name: default, type: memory}
  - {name: db, type: memory}
  - {name: db-pager, type: memory}
  - {name: audit, type: memory}
time_intervals:
  - {name: office, weekdays: [mon]}
routes:
  - matchers: ['team=~"db|storage"']
    channels: [db]
    group_by: [host]
    group_wait: 30s
    group_interval: 2m
    repeat_interval: 1h
    active_time: [office]
    routes:
      - matchers: ['severity=critical']
        channels: [db-pager]
        group_wait: 5s
        continue: true
      - matchers: ['env!=staging']
        routes:
          - match: {service: audit}
            channels: [audit]
            group_by: ["..."]
  - channels: [default]
"""


def test_nested_routes_inherit_override_and_fall_back_to_the_parent(tmp_path: Path) -> None:
    config = load_channels(tmp_path, NESTED)

    def where(**labels: str) -> list[tuple[int, tuple[str, ...]]]:
        ml = router.match_labels(labels, "r", labels.pop("severity", "warning"))
        return [(i, r.channels) for i, r in router.targets(config, ml)]

    # pre-order indices: 0 db, 1 db-pager, 2 env!=staging, 3 audit, 4 default
    assert where(team="db", env="prod") == [(2, ("db",))]  # inherits channels [db]
    assert where(team="db", env="staging") == [(0, ("db",))]  # no child: the parent
    assert where(team="db", severity="critical", env="staging") == [(1, ("db-pager",))]
    assert where(team="db", severity="critical", service="audit") == [
        (1, ("db-pager",)),  # continue: true lets the next sibling match too
        (3, ("audit",)),
    ]
    assert where(team="web") == [(4, ("default",))]
    assert where() == [(4, ("default",))]  # missing team is "": not db|storage
    pager, mid, audit = config.routes[1], config.routes[2], config.routes[3]
    assert (pager.group_wait, pager.group_interval, pager.repeat_interval) == (5.0, 120.0, 3600.0)
    assert pager.group_by == ("host",) and pager.active_time == ("office",)
    assert (mid.group_wait, mid.channels, mid.continue_) == (30.0, ("db",), False)
    assert audit.group_by == ("...",) and audit.active_time == ("office",)


def test_negative_matchers_in_inhibit_rules_and_silences(tmp_path: Path) -> None:
    config = load_channels(
        tmp_path,
        """
channels:
  - {name: ops, type: memory}
routes:
  - channels: [ops]
    group_by: ["..."]
inhibit:
  - source_matchers: ['rule=host_down']
    target_matchers: ['rule!=host_down', 'team!~"sec.*"']
    equal: [host]
silences:
  - matchers: ['env!="prod"', 'rule=~"disk_.*"']
    until: 2099-01-01T00:00:00Z
    reason: only prod disks matter
""",
    )
    p = Pipeline(config, {"ops": "memory"})
    p.ingest(fire("down", rule="host_down", host="h"), T0)
    p.ingest(fire("cpu", rule="cpu", host="h"), T0)  # inhibited
    p.ingest(fire("secu", rule="login", host="h", team="security"), T0)  # team!~sec.*: no
    p.ingest(fire("disk_dev", rule="disk_full", host="x"), T0)  # env "" != prod: silenced
    p.ingest(fire("disk_prod", rule="disk_full", host="y", env="prod"), T0)
    assert sent(p, T0) == [("ops", "disk_prod"), ("ops", "down"), ("ops", "secu")]


def test_a_child_route_without_channels_at_the_top_level_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "channels.yaml"
    f.write_text("channels: [{name: a, type: memory}]\nroutes:\n  - matchers: ['x=y']\n")
    result = ConfigLoader().load(str(CONTEXT), [str(f)])
    assert result.config is None
    assert any("channels" in p.format() for p in result.problems)


# -- 13.A.2: the alertmanager channel re-sends firing alerts every resend_delay ------------


def test_alertmanager_channels_get_firing_alerts_again_every_resend_delay() -> None:
    chs = (
        Channel("am", "alertmanager", frozen_map({"url": "http://am", "resolve_timeout": "4s"})),
        Channel("hook", "webhook"),
    )
    route = Route((), ("am", "hook"), group_interval=300.0, repeat_interval=3600.0)
    types = {"am": "alertmanager", "hook": "webhook"}
    p = Pipeline(Config(routes=(route,), channels=chs), types)  # offline: CLOSING_TYPES
    p.ingest(fire("a"), T0)
    assert sent(p, T0) == [("am", "a"), ("hook", "a")]
    assert p.next_deadline() == T0 + 1.0  # resend_delay = resolve_timeout / 4
    assert sent(p, T0 + 0.5) == []
    for k in range(1, 6):  # every second, far inside group_interval and repeat_interval
        assert sent(p, T0 + k) == [("am", "a")]
    ack = {"event": "acknowledged", "alert": "a", "by": "x", "until": None, "ts": iso(T0 + 5.5)}
    p.ingest(ack, T0 + 5.5)
    got = sent(p, T0 + 5.5) + sent(p, T0 + 6) + sent(p, T0 + 7)
    assert got.count(("am", "a")) >= 2  # acknowledged here, still firing there
    p.ingest({**fire("a"), "event": "resolved", "ts": iso(T0 + 7.2)}, T0 + 7.2)
    assert sent(p, T0 + 7.2) == []
    assert sent(p, T0 + 8) == [("am", "a")]  # the resolve, within resend_delay
    assert sent(p, T0 + 300) == [("hook", "a")]  # the webhook's at group_interval
    assert sent(p, T0 + 400) == []  # and nothing after it


def test_alertmanager_timing_settings() -> None:
    assert am_timing.timing({}) == (60.0, 300.0)
    assert am_timing.timing({"resolve_timeout": "2m"}) == (30.0, 120.0)
    assert am_timing.timing({"resend_delay": "10s", "resolve_timeout": "20s"}) == (10.0, 20.0)
    for bad in ({"resend_delay": "3m"}, {"resend_delay": "0s"}):
        try:
            am_timing.timing(bad)
        except ValueError as e:
            assert "resend_delay" in str(e)
        else:
            raise AssertionError(bad)


def test_api_silence_matchers_take_negation_and_alertmanager_strings() -> None:
    from engine.api.request import parse_matchers
    from engine.api.responses import ApiError

    got = parse_matchers(
        [
            {"label": "env", "value": "prod", "negate": True},
            'service=~"db.*"',
            "team!~ops|sec",
            {"label": "zone", "regex": ".*"},
        ]
    )
    assert got == [
        {"label": "env", "value": "prod", "negate": True},
        {"label": "service", "regex": "db.*"},
        {"label": "team", "regex": "ops|sec", "negate": True},
        {"label": "zone", "regex": ".*"},
    ]
    s = router.silence_from_state("s1", {"matchers": got, "until": T0 + 60})
    assert s is not None
    ml = router.match_labels({"service": "db-1"}, "r", "warning")  # no env, team or zone
    assert router.silenced_by([s], ml, T0) is s
    assert router.silenced_by([s], {**ml, "env": "prod"}, T0) is None
    assert router.silenced_by([s], {**ml, "team": "sec"}, T0) is None
    for bad in (['x=~"(a)\\\\1"'], [{"label": "x", "regex": "(?=a)"}], ["nope"]):
        try:
            parse_matchers(bad)
        except ApiError as e:
            assert e.status == 422 and "\n" not in str(e)
        else:
            raise AssertionError(bad)


def test_offline_closing_types_are_what_the_channel_classes_say() -> None:
    """`vigil test` and `vigil explain` (no channel classes at hand) must treat a
    channel as the daemon does: the alertmanager channel closes incidents."""
    from importlib.metadata import entry_points

    from engine.notify.pipeline import CLOSING_TYPES

    classes = {ep.name: ep.load() for ep in entry_points(group="vigil.channels")}
    closing = {n for n, c in classes.items() if getattr(c, "closes_incidents", False)}
    assert closing == set(CLOSING_TYPES)


def test_cli_silence_matchers_take_all_four_operators() -> None:
    import argparse

    from engine.cli.client import _matcher
    from engine.cli.output import matchers_text as _matchers

    got = [_matcher(t) for t in ("host=web-1", "env!=prod", "svc=~db.*", "team!~ops|sec")]
    assert got == [
        {"label": "host", "value": "web-1"},
        {"label": "env", "value": "prod", "negate": True},
        {"label": "svc", "regex": "db.*"},
        {"label": "team", "regex": "ops|sec", "negate": True},
    ]
    assert _matchers(got) == "host=web-1, env!=prod, svc=~db.*, team!~ops|sec"
    try:
        _matcher(r"x=~(a)\1")
    except argparse.ArgumentTypeError as e:
        assert "RE2" in str(e)
    else:
        raise AssertionError("a back-reference was taken")
