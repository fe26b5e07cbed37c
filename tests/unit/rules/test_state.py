"""Example tests for the alert state machine: one test per transition and policy."""

from __future__ import annotations

from typing import Any, cast

import pytest

from engine.config.model import Flapping, Rule
from engine.rules.state import IDLE, NO_EVENTS, Alert, Event, Result, fingerprint, is_idle, step

T0 = 1000.0  # monotonic clocks start anywhere

TRUE = Result("value", matched=True, value=95.0)
FALSE = Result("value", matched=False, value=10.0)
NO_DATA = Result("no_data")


def rule(**kw: Any) -> Rule:
    kw.setdefault("id", "cpu_high")
    kw.setdefault("group", "host")
    kw.setdefault("expr", "x > 90")
    kw.setdefault("compiled", cast(Any, None))  # the state machine never evaluates it
    return Rule(**kw)


def run(
    r: Rule, prev: Alert | None, result: Result, now: float, **kw: Any
) -> tuple[Alert, list[str]]:
    alert, events = step(r, prev, result, now, **kw)
    assert all(e.alert is alert for e in events)
    return alert, [e.kind for e in events]


def drive(r: Rule, seq: list[tuple[float, Result]]) -> tuple[Alert, list[list[str]]]:
    alert: Alert | None = None
    kinds = []
    for now, res in seq:
        alert, ks = run(r, alert, res, now)
        kinds.append(ks)
    assert alert is not None
    return alert, kinds


# fingerprint


def test_fingerprint_is_stable_across_processes_and_versions() -> None:
    # Golden value: sha256('["cpu_high",[["host","a"],["team","infra"]]]')[:16].
    # If this changes, every journal and Alertmanager dedup key changes with it.
    assert fingerprint("cpu_high", {"team": "infra", "host": "a"}) == "2d79dcd8224354d9"


def test_fingerprint_ignores_label_order_and_tells_labels_apart() -> None:
    a = fingerprint("r", {"a": "1", "b": "2"})
    assert a == fingerprint("r", {"b": "2", "a": "1"})
    assert len(a) == 16 and int(a, 16) >= 0
    assert a != fingerprint("r", {"a": "1", "b": "3"})
    assert a != fingerprint("r2", {"a": "1", "b": "2"})
    assert a != fingerprint("r", {"a": "1"})
    # No ambiguity between label names and values or across the rule id.
    assert fingerprint("r", {"a": "b"}) != fingerprint("r", {"b": "a"})
    assert fingerprint("r", {"é": "ü"}) == fingerprint("r", {"é": "ü"})


# idle / hot path


def test_no_alert_and_no_match_returns_the_idle_sentinel() -> None:
    alert, events = step(rule(), None, FALSE, T0)
    assert alert is IDLE and events is NO_EVENTS
    assert is_idle(alert)
    # IDLE passed back in is the same as None.
    assert step(rule(), IDLE, FALSE, T0)[0] is IDLE


def test_quiet_inactive_alert_is_returned_unchanged() -> None:
    r = rule(flapping=Flapping(max_changes=0))
    prev = Alert("fp", "cpu_high", {}, "inactive")
    alert, events = step(r, prev, FALSE, T0)
    assert alert is prev and events is NO_EVENTS


def test_unknown_result_kind_is_a_caller_bug() -> None:
    with pytest.raises(ValueError, match="unknown result kind"):
        step(rule(), None, Result(cast(Any, "bogus")), T0)


# inactive → firing / pending → firing


def test_without_for_the_alert_fires_at_once_with_one_event() -> None:
    r = rule(labels={"team": "infra"})
    labels = {"team": "infra", "disk": "/"}
    alert, kinds = run(r, None, TRUE, T0, labels=labels)
    assert kinds == ["firing"]
    assert alert.state == "firing"
    assert alert.fingerprint == fingerprint("cpu_high", labels)
    assert alert.rule_id == "cpu_high"
    assert dict(alert.labels) == labels
    assert alert.firing_since == alert.pending_since == alert.last_true == T0
    assert alert.value == 95.0 and alert.streak == 1
    labels["disk"] = "/var"  # the alert keeps its own copy
    assert alert.labels["disk"] == "/"


def test_labels_default_to_the_rule_labels() -> None:
    r = rule(labels={"team": "infra"})
    alert, _ = run(r, None, TRUE, T0)
    assert dict(alert.labels) == {"team": "infra"}
    assert alert.fingerprint == fingerprint("cpu_high", {"team": "infra"})


def test_for_holds_the_alert_pending_until_it_elapses() -> None:
    r = rule(for_=60.0)
    alert, kinds = drive(r, [(T0, TRUE), (T0 + 30, TRUE), (T0 + 59.9, TRUE), (T0 + 60, TRUE)])
    assert kinds == [["pending"], [], [], ["firing"]]
    assert alert.state == "firing"
    assert alert.pending_since == T0 and alert.firing_since == T0 + 60


def test_consecutive_needs_n_trues_in_a_row() -> None:
    r = rule(consecutive=3)
    alert, kinds = drive(r, [(T0, TRUE), (T0 + 1, TRUE), (T0 + 2, TRUE)])
    assert kinds == [["pending"], [], ["firing"]]
    assert alert.streak == 3
    # A false in between starts the count again.
    _, kinds = drive(r, [(T0, TRUE), (T0 + 1, TRUE), (T0 + 2, FALSE), (T0 + 3, TRUE)])
    assert kinds == [["pending"], [], ["inactive"], ["pending"]]


def test_consecutive_of_one_fires_at_once() -> None:
    _, kinds = drive(rule(consecutive=1), [(T0, TRUE)])
    assert kinds == [["firing"]]


def test_for_and_consecutive_together_must_both_hold() -> None:
    r = rule(for_=10.0, consecutive=3)
    # Three trues within 10s: not yet.
    _, kinds = drive(r, [(T0, TRUE), (T0 + 1, TRUE), (T0 + 2, TRUE), (T0 + 10, TRUE)])
    assert kinds == [["pending"], [], [], ["firing"]]
    # 10s elapsed but only two trues: not yet.
    _, kinds = drive(r, [(T0, TRUE), (T0 + 10, TRUE), (T0 + 11, TRUE)])
    assert kinds == [["pending"], [], ["firing"]]


def test_pending_cancelled_when_the_expr_turns_false() -> None:
    r = rule(for_=60.0)
    alert, kinds = drive(r, [(T0, TRUE), (T0 + 15, FALSE)])
    assert kinds == [["pending"], ["inactive"]]
    assert alert.state == "inactive" and alert.pending_since is None and alert.streak == 0
    # A pending period that never fired is no state change a channel heard of:
    # nothing for flapping detection to keep (13.A8)
    assert is_idle(alert) and alert.changes == ()


def test_pending_restarts_the_for_period_after_a_cancel() -> None:
    r = rule(for_=60.0)
    _, kinds = drive(r, [(T0, TRUE), (T0 + 30, FALSE), (T0 + 45, TRUE), (T0 + 90, TRUE)])
    assert kinds == [["pending"], ["inactive"], ["pending"], []]


# firing → resolved


def test_firing_steady_updates_value_and_last_true_without_events() -> None:
    r = rule()
    alert, kinds = drive(r, [(T0, TRUE), (T0 + 15, Result("value", matched=True, value=97.0))])
    assert kinds == [["firing"], []]
    assert alert.value == 97.0 and alert.last_true == T0 + 15 and alert.firing_since == T0


def test_firing_resolves_when_the_expr_turns_false() -> None:
    alert, kinds = drive(rule(), [(T0, TRUE), (T0 + 15, FALSE)])
    assert kinds == [["firing"], ["resolved"]]
    assert alert.state == "resolved"
    assert alert.firing_since == T0  # kept for the resolved notification's starts_at
    assert alert.value == 10.0


def test_keep_firing_for_counts_from_the_first_false() -> None:
    # SPEC: "stays firing this long after expr turns false"; Prometheus counts from
    # the first false evaluation too (KeepFiringSince), not from the last true one
    r = rule(keep_firing_for=60.0)
    _, kinds = drive(
        r,
        [(T0, TRUE), (T0 + 15, FALSE), (T0 + 60, FALSE), (T0 + 74, FALSE), (T0 + 75, FALSE)],
    )
    assert kinds == [["firing"], [], [], [], ["resolved"]]
    # A true in between restarts the hold.
    _, kinds = drive(
        r,
        [(T0, TRUE), (T0 + 30, FALSE), (T0 + 40, TRUE), (T0 + 60, FALSE), (T0 + 119, FALSE),
         (T0 + 120, FALSE)],
    )  # fmt: skip
    assert kinds == [["firing"], [], [], [], [], ["resolved"]]


def test_resolve_expr_holds_the_alert_firing_until_it_holds() -> None:
    r = rule(resolve_expr="x < 80")
    low = Result("value", matched=False, resolve_ok=False, value=85.0)
    unknown = Result("value", matched=False, resolve_ok=None, value=85.0)
    ok = Result("value", matched=False, resolve_ok=True, value=70.0)
    _, kinds = drive(r, [(T0, TRUE), (T0 + 15, low), (T0 + 30, unknown), (T0 + 45, ok)])
    assert kinds == [["firing"], [], [], ["resolved"]]


def test_resolve_expr_and_keep_firing_for_both_apply() -> None:
    r = rule(resolve_expr="x < 80", keep_firing_for=60.0)
    ok = Result("value", matched=False, resolve_ok=True)
    _, kinds = drive(r, [(T0, TRUE), (T0 + 15, ok), (T0 + 60, ok), (T0 + 75, ok)])
    assert kinds == [["firing"], [], [], ["resolved"]]


def test_resolve_ok_is_ignored_without_resolve_expr() -> None:
    res = Result("value", matched=False, resolve_ok=False)
    _, kinds = drive(rule(), [(T0, TRUE), (T0 + 15, res)])
    assert kinds == [["firing"], ["resolved"]]


def test_held_firing_alert_with_an_equal_value_is_not_reallocated() -> None:
    r = rule(keep_firing_for=60.0)
    a1, _ = drive(r, [(T0, TRUE), (T0 + 15, FALSE)])
    a2, events = step(r, a1, Result("value", matched=False, value=float("10")), T0 + 30)
    assert a2 is a1 and events == ()


# resolved → …


def test_resolved_then_false_goes_inactive_silently() -> None:
    r = rule(flapping=Flapping(max_changes=0))
    alert, kinds = drive(r, [(T0, TRUE), (T0 + 15, FALSE), (T0 + 30, FALSE)])
    assert kinds == [["firing"], ["resolved"], []]
    assert alert.state == "inactive" and alert.firing_since is None
    assert is_idle(alert)


def test_resolved_then_true_starts_a_new_episode() -> None:
    alert, kinds = drive(rule(), [(T0, TRUE), (T0 + 15, FALSE), (T0 + 30, TRUE)])
    assert kinds == [["firing"], ["resolved"], ["firing"]]
    assert alert.firing_since == T0 + 30
    alert, kinds = drive(
        rule(for_=20.0), [(T0, TRUE), (T0 + 20, TRUE), (T0 + 35, FALSE), (T0 + 50, TRUE)]
    )
    assert kinds == [["pending"], ["firing"], ["resolved"], ["pending"]]
    assert alert.pending_since == T0 + 50 and alert.firing_since is None


# no_data


def test_no_data_ok_resolves_a_firing_alert_and_marks_it() -> None:
    r = rule(resolve_expr="x < 80", keep_firing_for=30.0)
    alert, kinds = drive(r, [(T0, TRUE), (T0 + 15, NO_DATA), (T0 + 45, NO_DATA)])
    assert kinds == [["firing"], ["no_data"], ["resolved"]]
    assert alert.no_data and alert.state == "resolved"
    assert alert.value == 95.0  # the last observed value stays


def test_no_data_ok_cancels_pending() -> None:
    _, kinds = drive(rule(for_=60.0), [(T0, TRUE), (T0 + 15, NO_DATA)])
    assert kinds == [["pending"], ["no_data", "inactive"]]


def test_no_data_event_once_and_mark_cleared_by_a_value() -> None:
    r = rule(flapping=Flapping(max_changes=0))
    a1, kinds = run(r, None, NO_DATA, T0, labels={"disk": "/"})
    assert kinds == ["no_data"] and a1.no_data and a1.state == "inactive"
    assert a1.fingerprint == fingerprint("cpu_high", {"disk": "/"})
    assert not is_idle(a1)  # keep it, or the event would repeat next step
    a2, events = step(r, a1, NO_DATA, T0 + 15)
    assert a2 is a1 and events == ()
    a3, events = step(r, a2, FALSE, T0 + 30)
    assert events == () and not a3.no_data and is_idle(a3)


def test_no_data_keep_freezes_state_and_timers() -> None:
    r = rule(for_=30.0, no_data="keep")
    a1, _ = run(r, None, TRUE, T0)
    a2, kinds = run(r, a1, NO_DATA, T0 + 60)
    assert kinds == ["no_data"]
    assert a2.state == "pending" and a2.no_data  # for elapsed, but nothing advances
    assert (a2.pending_since, a2.streak, a2.last_true) == (a1.pending_since, 1, T0)
    a3, events = step(r, a2, NO_DATA, T0 + 90)
    assert a3 is a2 and events == ()
    a4, kinds = run(r, a3, TRUE, T0 + 120)
    assert kinds == ["firing"] and not a4.no_data


def test_no_data_keep_holds_a_firing_alert() -> None:
    r = rule(no_data="keep")
    alert, kinds = drive(r, [(T0, TRUE), (T0 + 15, NO_DATA), (T0 + 600, NO_DATA)])
    assert kinds == [["firing"], ["no_data"], []]
    assert alert.state == "firing"


def test_no_data_alert_fires_after_for() -> None:
    r = rule(for_=30.0, no_data="alert")
    alert, kinds = drive(r, [(T0, NO_DATA), (T0 + 15, NO_DATA), (T0 + 30, NO_DATA)])
    assert kinds == [["no_data", "pending"], [], ["firing"]]
    assert alert.no_data and alert.state == "firing"


# errors


def test_on_error_error_marks_once_and_clears_on_a_value() -> None:
    r = rule(for_=30.0)
    a1, _ = run(r, None, TRUE, T0)
    a2, kinds = run(r, a1, Result("error", error="division by zero"), T0 + 60)
    assert kinds == ["error"]
    assert a2.error == "division by zero" and a2.state == "pending"
    assert a2.pending_since == T0 and a2.streak == 1  # frozen
    a3, kinds = run(r, a2, Result("error", error="name x missing"), T0 + 75)
    assert kinds == [] and a3.error == "name x missing"  # latest reason, no new event
    a4, kinds = run(r, a3, TRUE, T0 + 90)
    assert kinds == ["firing"] and a4.error is None


def test_on_error_error_without_a_message_still_marks() -> None:
    alert, kinds = run(rule(), None, Result("error"), T0)
    assert kinds == ["error"] and alert.error and alert.state == "inactive"
    assert not is_idle(alert)


def test_on_error_keep_changes_nothing() -> None:
    r = rule(on_error="keep")
    a1, _ = run(r, None, TRUE, T0)
    a2, events = step(r, a1, Result("error", error="boom"), T0 + 15)
    assert a2 is a1 and events == ()
    assert step(r, None, Result("error", error="boom"), T0) == (IDLE, ())


def test_on_error_alert_counts_as_a_match() -> None:
    r = rule(on_error="alert", for_=10.0)
    boom = Result("error", error="boom")
    alert, kinds = drive(r, [(T0, boom), (T0 + 10, boom)])
    assert kinds == [["pending"], ["firing"]]
    assert alert.error == "boom"


# flapping


def test_flapping_set_once_and_cleared_with_hysteresis() -> None:
    r = rule(flapping=Flapping(max_changes=4, window=100.0))
    seq = [(T0 + 10 * i, TRUE if i % 2 == 0 else FALSE) for i in range(6)]
    alert, kinds = drive(r, seq)
    assert kinds == [
        ["firing"],
        ["resolved"],
        ["firing"],
        ["resolved", "flapping"],
        ["firing"],
        ["resolved"],
    ]
    assert alert.flapping and alert.state == "resolved"
    assert len(alert.changes) == 4  # capped at max_changes
    # Quiet: changes leave the window; below 4 // 2 = 2 the mark clears.
    # changes at 20, 30, 40, 50 (capped at max_changes)
    a, ks = run(r, alert, FALSE, T0 + 125)  # inactive silently; 30, 40, 50 remain
    assert ks == [] and a.flapping and a.state == "inactive"
    a, ks = run(r, a, FALSE, T0 + 135)  # 40, 50: not below 2 yet
    assert ks == [] and a.flapping
    a, ks = run(r, a, FALSE, T0 + 145)  # 50 only
    assert ks == ["flapping_end"] and not a.flapping
    a, ks = run(r, a, FALSE, T0 + 200)
    assert ks == [] and is_idle(a)


def test_default_flapping_never_holds_ordinary_episodes() -> None:
    """13.A8: with the default settings, pending periods do not count as changes
    and two real `for` episodes (pending, firing, resolved twice) are not flapping."""
    r = rule(for_=30.0)
    seq = [
        (T0, TRUE), (T0 + 30, TRUE), (T0 + 60, FALSE),  # episode 1
        (T0 + 90, TRUE), (T0 + 120, TRUE), (T0 + 150, FALSE),  # episode 2
        (T0 + 180, TRUE), (T0 + 190, FALSE),  # a pending period that never fires
        (T0 + 200, TRUE), (T0 + 210, FALSE),
    ]  # fmt: skip
    alert, kinds = drive(r, seq)
    assert [k for ks in kinds for k in ks].count("firing") == 2
    assert all("flapping" not in k for k in kinds) and not alert.flapping


def test_flapping_counts_only_changes_within_the_window() -> None:
    r = rule(flapping=Flapping(max_changes=3, window=25.0))
    seq = [(T0 + 20 * i, TRUE if i % 2 == 0 else FALSE) for i in range(6)]
    alert, kinds = drive(r, seq)
    assert all("flapping" not in k for k in kinds)
    assert not alert.flapping


def test_flapping_disabled_by_max_changes_zero_clears_an_old_mark() -> None:
    prev = Alert("fp", "r", {}, "inactive", changes=(T0,), flapping=True)
    alert, kinds = run(rule(flapping=Flapping(max_changes=0)), prev, FALSE, T0 + 1)
    assert kinds == ["flapping_end"] and is_idle(alert)


def test_events_are_frozen_values() -> None:
    alert, events = step(rule(), None, TRUE, T0)
    assert events == (Event("firing", alert),)
    with pytest.raises(AttributeError):
        alert.state = "inactive"  # type: ignore[misc]


def test_alert_field_order() -> None:
    # engine/rules/state.py builds alerts positionally on the hot path; a reordering must fail here.
    assert list(Alert._fields) == [
        "fingerprint",
        "rule_id",
        "labels",
        "state",
        "value",
        "pending_since",
        "firing_since",
        "last_true",
        "streak",
        "changes",
        "flapping",
        "no_data",
        "error",
        "stale_since",
        "false_since",
    ]


def test_flapping_window_zero_disables_detection() -> None:
    r = rule(flapping=Flapping(max_changes=1, window=0.0))
    alert, kinds = drive(r, [(T0, TRUE), (T0 + 1, FALSE), (T0 + 2, TRUE)])
    assert kinds == [["firing"], ["resolved"], ["firing"]]
    assert alert.changes == () and not alert.flapping
