"""Property tests for the alert state machine: random rules, random runs of results.

Each run is checked against a small independent model of what the rule *means*
(when the condition held, for how long, how many times in a row), not against
the implementation's own fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.config.model import Flapping, Rule
from engine.rules.state import IDLE, Alert, Result, fingerprint, is_idle, step

T0 = 5000.0
TRANSITIONS = {"pending", "firing", "resolved", "inactive"}
LEGAL = {
    ("inactive", "pending"),
    ("inactive", "firing"),
    ("pending", "firing"),
    ("pending", "inactive"),
    ("firing", "resolved"),
    ("resolved", "pending"),
    ("resolved", "firing"),
    ("resolved", "inactive"),  # the one silent change
}

durations = st.one_of(
    st.just(0.0),
    st.integers(1, 60).map(float),
    st.floats(0.0, 60.0, allow_nan=False, allow_infinity=False),
)


@st.composite
def rules(draw: st.DrawFn) -> Rule:
    has_resolve = draw(st.booleans())
    return Rule(
        id=draw(st.sampled_from(["r1", "disk_full", "http.down"])),
        group="g",
        expr="x > 1",
        compiled=cast(Any, None),  # never evaluated by the state machine
        for_=draw(durations),
        consecutive=draw(st.integers(0, 4)),
        keep_firing_for=draw(durations),
        resolve_expr="x < 1" if has_resolve else None,
        no_data=draw(st.sampled_from(["ok", "keep", "alert"])),
        on_error=draw(st.sampled_from(["error", "keep", "alert"])),
        flapping=Flapping(
            max_changes=draw(st.integers(0, 6)),
            window=draw(st.sampled_from([0.0, 30.0, 120.0, 600.0])),
        ),
    )


results = st.one_of(
    st.builds(
        Result,
        kind=st.just("value"),
        matched=st.booleans(),
        resolve_ok=st.sampled_from([None, True, False]),
        value=st.one_of(st.none(), st.integers(0, 100), st.floats(0, 100)),
    ),
    st.just(Result("no_data")),
    st.builds(Result, kind=st.just("error"), error=st.sampled_from([None, "boom", "x missing"])),
)
steps = st.lists(
    st.tuples(st.one_of(st.just(0.0), st.integers(1, 30).map(float), durations), results),
    max_size=60,
)


def effective(rule: Rule, r: Result) -> bool | None:
    """What the result says about the condition: held, not held, or unknown (frozen)."""
    if r.kind == "value":
        return r.matched
    policy = rule.no_data if r.kind == "no_data" else rule.on_error
    return {"ok": False, "alert": True}.get(policy)  # keep / error: frozen


@dataclass
class Model:
    run_start: float | None = None  # first time of the current run of trues
    run_len: int = 0  # trues in that run (frozen steps neither count nor break it)
    last_true: float | None = None


def simulate(rule: Rule, seq: list[tuple[float, Result]], labels: dict[str, str]) -> list[str]:
    """Drive `step` the way the evaluator does (dropping idle alerts), check every
    invariant on the way, and return the state after each step."""
    now = T0
    prev: Alert | None = None
    m = Model()
    states: list[str] = []
    firing_open = False  # a firing event not yet followed by resolved
    no_data_open = error_open = False
    flapping = False
    for dt, res in seq:
        now += dt
        eff = effective(rule, res)
        if eff is True:
            if m.run_start is None:
                m.run_start = now
            m.run_len += 1
            m.last_true = now
        elif eff is False:
            m.run_start, m.run_len = None, 0

        alert, events = step(rule, prev, res, now, labels=labels)
        prev_state = prev.state if prev is not None else "inactive"
        kinds = [e.kind for e in events]

        # Events describe the returned alert.
        assert all(e.alert is alert for e in events)
        assert len(kinds) == len(set(kinds))
        # Nothing from nothing: quiet steps on no alert allocate nothing.
        if prev is None and res.kind == "value" and not res.matched:
            assert alert is IDLE and not events
        if alert is not IDLE:
            assert alert.fingerprint == fingerprint(rule.id, labels)
            assert dict(alert.labels) == labels
        else:
            assert not events

        # Every state change is legal and, except resolved → inactive, announced once.
        trans = [k for k in kinds if k in TRANSITIONS]
        if alert.state != prev_state:
            assert (prev_state, alert.state) in LEGAL
            assert trans == (
                [] if alert.state == "inactive" and prev_state == "resolved" else [alert.state]
            )
        else:
            assert trans == []

        if "firing" in kinds:
            assert not firing_open, "two firing events without a resolved in between"
            firing_open = True
            # Never before `for` since the run began, nor before `consecutive` trues.
            assert eff is True and m.run_start is not None
            assert now - m.run_start >= rule.for_
            assert m.run_len >= max(rule.consecutive, 1)
        if "resolved" in kinds:
            assert firing_open and prev_state == "firing", "resolved only after firing"
            firing_open = False
            assert eff is False
            assert m.last_true is not None and now - m.last_true >= rule.keep_firing_for
            if rule.resolve_expr is not None and res.kind == "value":
                assert res.resolve_ok is True
        if alert.state == "firing":
            assert alert.firing_since is not None and alert.last_true is not None
        if alert.state == "pending":
            assert alert.pending_since == m.run_start
        # `streak` is the model's run of trues while it can matter (until the alert
        # fires; a steady firing alert without keep_firing_for is not rebuilt).
        if alert.state != "firing" or rule.keep_firing_for > 0:
            assert (alert.streak if alert is not IDLE else 0) == m.run_len
        if prev_state == "resolved" and eff is not None:
            assert alert.state != "resolved"

        # Frozen steps change neither the state nor the timers.
        if eff is None and prev is not None:
            assert alert.state == prev.state
            assert (alert.pending_since, alert.firing_since, alert.last_true, alert.streak) == (
                prev.pending_since,
                prev.firing_since,
                prev.last_true,
                prev.streak,
            )

        # Marks: an event only when a mark starts; a value clears both.
        starts_no_data = res.kind == "no_data" and not no_data_open
        starts_error = res.kind == "error" and rule.on_error == "error" and not error_open
        assert ("no_data" in kinds) == starts_no_data
        assert ("error" in kinds) == starts_error
        if res.kind == "value":
            no_data_open = error_open = False
        elif res.kind == "no_data":
            no_data_open = True
        elif rule.on_error != "keep":
            error_open = True
        assert alert.no_data == no_data_open
        assert (alert.error is not None) == error_open

        # Flapping: alternating events matching the mark; changes bounded and recent.
        for k in kinds:
            if k == "flapping":
                assert not flapping
                flapping = True
            elif k == "flapping_end":
                assert flapping
                flapping = False
        assert alert.flapping == flapping
        fl = rule.flapping
        if fl.max_changes > 0 and fl.window > 0:
            # Set at max_changes, cleared below half of it (hysteresis).
            if alert.flapping:
                assert len(alert.changes) >= max(1, fl.max_changes // 2)
            else:
                assert len(alert.changes) < fl.max_changes
        assert len(alert.changes) <= max(rule.flapping.max_changes, 0)
        assert all(now - rule.flapping.window < t <= now for t in alert.changes)

        states.append(alert.state)
        prev = None if is_idle(alert) else alert
        if prev is None:
            # The evaluator forgets idle alerts: so must the model of its marks.
            assert not flapping and not no_data_open and not error_open
    return states


LABELS = {"host": "a", "disk": "/"}


@settings(max_examples=400, deadline=None)
@given(rules(), steps)
def test_invariants_hold_for_any_run(rule: Rule, seq: list[tuple[float, Result]]) -> None:
    simulate(rule, seq, LABELS)


@settings(max_examples=200, deadline=None)
@given(rules(), steps)
def test_flapping_never_changes_the_state_machine(
    rule: Rule, seq: list[tuple[float, Result]]
) -> None:
    off = Rule(
        **{f: getattr(rule, f) for f in rule.__dataclass_fields__} | {"flapping": Flapping(0)}
    )
    assert simulate(rule, seq, LABELS) == simulate(off, seq, LABELS)


@settings(max_examples=200, deadline=None)
@given(rules(), steps)
def test_no_data_keep_never_changes_state(rule: Rule, seq: list[tuple[float, Result]]) -> None:
    keep = Rule(**{f: getattr(rule, f) for f in rule.__dataclass_fields__} | {"no_data": "keep"})
    now, prev = T0, None
    for dt, res in seq:
        now += dt
        alert, _ = step(keep, prev, res, now, labels=LABELS)
        if res.kind == "no_data":
            assert alert.state == (prev.state if prev is not None else "inactive")
        prev = None if is_idle(alert) else alert


@settings(max_examples=100, deadline=None)
@given(rules(), steps)
def test_step_is_deterministic(rule: Rule, seq: list[tuple[float, Result]]) -> None:
    now, prev = T0, None
    for dt, res in seq:
        now += dt
        a = step(rule, prev, res, now, labels=LABELS)
        assert step(rule, prev, res, now, labels=LABELS) == a
        prev = None if is_idle(a[0]) else a[0]


label_maps = st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=6)


@given(st.text(max_size=20), label_maps, st.randoms())
def test_fingerprint_ignores_label_order(rule_id: str, labels: dict[str, str], rnd: Any) -> None:
    items = list(labels.items())
    rnd.shuffle(items)
    assert fingerprint(rule_id, dict(items)) == fingerprint(rule_id, labels)
    fp = fingerprint(rule_id, labels)
    assert len(fp) == 16 and all(c in "0123456789abcdef" for c in fp)


@given(st.text(max_size=20), label_maps, st.text(max_size=20), label_maps)
def test_fingerprint_differs_when_identity_differs(
    r1: str, l1: dict[str, str], r2: str, l2: dict[str, str]
) -> None:
    if (r1, l1) != (r2, l2):
        assert fingerprint(r1, l1) != fingerprint(r2, l2)


@settings(max_examples=300, deadline=None)
@given(rules(), steps)
def test_the_no_data_shortcut_agrees_with_the_full_step(
    rule: Rule, seq: list[tuple[float, Result]]
) -> None:
    """A no_data result on an alert already marked no_data takes step()'s shortcut;
    it returns exactly what the full state machine (_advance) would."""
    from engine.rules.state import _advance

    now, prev = T0, None
    for dt, res in seq:
        now += dt
        got = step(rule, prev, res, now, labels=LABELS)
        if res.kind == "no_data" and prev is not None:
            assert got == _advance(rule, prev, res, now, LABELS)
        prev = None if is_idle(got[0]) else got[0]
