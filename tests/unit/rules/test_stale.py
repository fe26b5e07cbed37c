"""A collector that is down freezes the alerts that read it (issue 13.A.3): no
transition, timers stopped, a `stale` mark; `no_data` is only for a metric
missing from a working collector, with a vigil.yaml-wide default."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.config.build import ConfigLoader
from engine.config.model import Rule, RuleGroup
from engine.expr.compiler import compile_expr
from engine.expr.history import History
from engine.rules.evaluator import Evaluator, Snapshot

NAMES = {"app"}


def rule(rid: str, expr: str, **kw: Any) -> Rule:
    each = kw.pop("each", None)
    resolve = kw.get("resolve_expr")
    return Rule(
        id=rid,
        group="g",
        expr=expr,
        compiled=compile_expr(expr, names=NAMES | ({"it"} if each else set())),
        each=each,
        compiled_each=compile_expr(each, names=NAMES) if each else None,
        compiled_resolve=compile_expr(resolve, names=NAMES) if resolve else None,
        **kw,
    )


def run(ev: Evaluator, r: Rule, values: dict[str, Any] | None, t: float) -> list[str]:
    """One evaluation at monotonic `t`; `values` None = the `app` collector is down."""
    snap = Snapshot(
        {"app": values} if values is not None else {},
        frozenset() if values is not None else frozenset({"app"}),
        1_800_000_000.0 + t,
        t,
    )
    return [t.event.kind for t in ev.run_group(RuleGroup("g", 1.0, (r,)), snap)]


def test_outage_never_resolves_and_ends_without_refiring() -> None:
    for r in (
        rule("plain", "app.q > 5"),
        rule("hyst", "app.q > 5", resolve_expr="app.q < 1"),
        rule("kept", "app.q > 5", no_data="ok", keep_firing_for=0.0),
    ):
        ev = Evaluator(History(60))
        assert run(ev, r, {"q": 9}, 0) == ["firing"]
        assert run(ev, r, None, 1) == ["stale"]
        for t in range(2, 30):
            assert run(ev, r, None, t) == []
        (alert,) = ev.alerts.values()
        assert alert.state == "firing" and alert.stale_since == 1
        assert run(ev, r, {"q": 9}, 30) == ["stale_end"]
        assert run(ev, r, {"q": 9}, 31) == []


def test_each_instances_are_kept_not_vanished() -> None:
    r = rule("disk", "it.used > 90", each="app.disks")
    ev = Evaluator(History(60))
    disks = [{"labels": {"d": "a"}, "used": 95}, {"labels": {"d": "b"}, "used": 99}]
    assert run(ev, r, {"disks": disks}, 0) == ["firing", "firing"]
    assert run(ev, r, None, 1) == ["stale", "stale"]
    assert run(ev, r, None, 2) == []
    assert {a.state for a in ev.alerts.values()} == {"firing"}
    assert run(ev, r, {"disks": disks}, 3) == ["stale_end", "stale_end"]
    # a disk that really went away (the collector works) still resolves
    assert run(ev, r, {"disks": disks[:1]}, 4) == ["resolved"]


def test_for_timer_stops_during_the_outage() -> None:
    r = rule("slow", "app.q > 5", for_=10.0)
    ev = Evaluator(History(60))
    assert run(ev, r, {"q": 9}, 0) == ["pending"]
    assert run(ev, r, {"q": 9}, 4) == []
    assert run(ev, r, None, 5) == ["stale"]
    assert run(ev, r, None, 100) == []
    # 5 s of `for` had passed when the outage was seen; 5 more are needed after it
    assert run(ev, r, {"q": 9}, 101) == ["stale_end"]
    assert run(ev, r, {"q": 9}, 105) == []
    assert run(ev, r, {"q": 9}, 106) == ["firing"]


def test_keep_firing_for_timer_stops_during_the_outage() -> None:
    r = rule("kf", "app.q > 5", keep_firing_for=10.0)
    ev = Evaluator(History(60))
    assert run(ev, r, {"q": 9}, 0) == ["firing"]
    assert run(ev, r, None, 1) == ["stale"]
    assert run(ev, r, {"q": 0}, 500) == ["stale_end"]  # not resolved by the outage's length
    assert run(ev, r, {"q": 0}, 505) == []


def test_missing_metric_of_a_working_collector_is_no_data() -> None:
    r = rule("plain", "app.q > 5")
    ev = Evaluator(History(60))
    assert run(ev, r, {"q": 9}, 0) == ["firing"]
    assert run(ev, r, {"other": 1}, 1) == ["no_data", "resolved"]


def test_vigil_yaml_sets_the_default_no_data(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "channels").mkdir()
    (tmp_path / "vigil.yaml").write_text(
        "no_data: keep\ncollectors:\n  - {name: app, type: static, values: {q: 1}}\n"
    )
    (tmp_path / "rules" / "r.yaml").write_text(
        "group: g\nrules:\n"
        "  - {id: inherits, expr: app.q > 5}\n"
        "  - {id: own, expr: app.q > 5, no_data: alert}\n"
    )
    result = ConfigLoader().load(str(tmp_path / "vigil.yaml"))
    assert result.config is not None, result.problems
    got = {r.id: r.no_data for r in result.config.rules()}
    assert got == {"inherits": "keep", "own": "alert"}
    assert result.config.no_data == "keep"

    (tmp_path / "vigil.yaml").write_text("no_data: maybe\n")
    bad = ConfigLoader().load(str(tmp_path / "vigil.yaml"))
    assert bad.config is None
    assert any("vigil.yaml:1:" in p.format() and "no_data" in p.format() for p in bad.problems)
