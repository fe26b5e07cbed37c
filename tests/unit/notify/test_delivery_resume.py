"""13.A1/A6/A7: a group's delivery state survives a restart (rebuilt from the
journal's events through the state fold), the dedup stage sends only news or
reminders, and every occasion has its own Idempotency-Key."""

from __future__ import annotations

from typing import Any

import pytest

from engine.config.model import Inhibit, Silence
from engine.journal.store import fold_event, initial_state
from engine.notify.base import Notification, iso
from engine.notify.dedup import told_fields
from engine.notify.keys import idempotency_key
from engine.notify.pipeline import Pipeline
from tests.unit.notify.test_pipeline import T0, M, esc_pipe, fire, fps, mark, pipe, resolve, route


class Run:
    """A pipeline whose every event and outcome is also folded into a durable
    state, as the daemon journals them: `restart()` gives the pipeline a new
    process would build from that state."""

    def __init__(self, *routes: Any) -> None:
        self.routes = routes
        self.state = initial_state()
        self.p = pipe(*routes)

    def ingest(self, ev: dict[str, Any], now: float) -> None:
        fold_event(self.state, ev)
        self.p.ingest(ev, now)

    def step(self, now: float, *, ok: bool = True) -> list[Notification]:
        out = self.p.due(now)
        for n in out:
            self.p.delivered(n, ok, now)
            fold_event(
                self.state,
                {
                    "event": "notified" if ok else "notify_failed",
                    "channel": n.channel,
                    "key": n.key,
                    "alerts": [a.fingerprint for a in n.alerts],
                    "status": n.status,
                    "group_key": n.group_key,
                    **(told_fields(n) if n.kind == "alerts" else {"kind": n.kind}),
                    **({"level": n.escalation_level} if n.escalation_level else {}),
                    "ts": now,
                },
            )
        return out

    def restart(self, now: float) -> Pipeline:
        self.p = pipe(*self.routes)
        self.p.load_state(self.state, now)
        return self.p


def test_a_resolve_waiting_for_group_interval_survives_a_restart() -> None:
    r = Run(route("ops", group_interval=300))
    r.ingest(fire("a", host="h1"), T0)
    [first] = r.step(T0)
    r.ingest(resolve("a", T0 + 10, host="h1"), T0 + 10)
    assert r.step(T0 + 20) == []  # waits for group_interval: then the daemon stops
    p = r.restart(T0 + 30)
    assert p.next_deadline() == T0 + 300  # what was due, when it was due
    assert r.step(T0 + 299) == []
    [n] = r.step(T0 + 300)
    assert fps(n) == [("a", "resolved")] and n.alerts[0].ends_at == T0 + 10
    assert n.key == idempotency_key("ops", n.group_key, n.alerts, first.key)
    # once: a second restart owes nothing
    assert r.state["resolving"] == {} and r.state["told"] == {}
    p = r.restart(T0 + 400)
    assert p.next_deadline() is None and r.step(T0 + 10_000) == []


def test_resolve_is_owed_only_to_channels_told_of_the_firing() -> None:
    r = Run(route("ops", "pd", group_interval=300))
    r.ingest(fire("a"), T0)
    out = r.p.due(T0)
    for n in out:  # ops was told, pd failed
        r.p.delivered(n, n.channel == "ops", T0)
    r.state = initial_state()
    fold_event(r.state, fire("a"))
    fold_event(
        r.state,
        {
            "event": "notified",
            "channel": "ops",
            "key": "k1",
            "alerts": ["a"],
            "status": "firing",
            "group_key": out[0].group_key if out[0].channel == "ops" else out[1].group_key,
            "resolved": [],
            "ts": T0,
        },
    )
    r.ingest(resolve("a", T0 + 10), T0 + 10)
    r.restart(T0 + 20)
    [n] = r.step(T0 + 300)
    assert n.channel == "ops" and fps(n) == [("a", "resolved")]


def test_restart_with_a_firing_member_keeps_what_was_told() -> None:
    r = Run(route("ops", group_interval=300, repeat_interval=3600))
    r.ingest(fire("a"), T0)
    r.ingest(fire("b"), T0)
    r.step(T0)
    r.ingest(resolve("a", T0 + 10), T0 + 10)
    r.restart(T0 + 20)
    [n] = r.step(T0 + 300)
    assert fps(n) == [("b", "firing"), ("a", "resolved")]
    # nothing new afterwards: b alone is not sent again until repeat_interval
    assert r.step(T0 + 600) == [] and r.step(T0 + 3000) == []
    r.restart(T0 + 3100)
    assert r.p.next_deadline() == T0 + 300 + 3600
    [rem] = r.step(T0 + 3900)
    assert fps(rem) == [("b", "firing")]


# -- 13.A6: the dedup stage --------------------------------------------------------------


def test_no_second_notification_after_a_member_resolved_and_was_reported() -> None:
    p = pipe(route("ops", group_interval=60, repeat_interval=10_000))
    p.ingest(fire("a"), T0)
    p.ingest(fire("b"), T0)
    step = Run.__new__(Run)
    step.p, step.state, step.routes = p, initial_state(), ()
    step.step(T0)
    p.ingest(resolve("a", T0 + 10), T0 + 10)
    [n] = step.step(T0 + 60)
    assert fps(n) == [("b", "firing"), ("a", "resolved")]
    for t in range(120, 5000, 60):
        assert step.step(T0 + t) == [], t  # the same firing set {b}: nothing new
    assert p.next_deadline() == T0 + 10_080  # only the reminder, on the first tick after


def test_no_second_notification_when_an_inhibited_alert_joins() -> None:

    inh = Inhibit((M("severity", "critical"),), (M("severity", "warning"),), ("team",))
    p = pipe(
        route("ops", group_interval=60, repeat_interval=10_000, group_by=("team",)),
        inhibits=(inh,),
    )
    run = Run.__new__(Run)
    run.p, run.state, run.routes = p, initial_state(), ()
    p.ingest(fire("src", rule="big", severity="critical", team="x"), T0)
    p.ingest(fire("other", rule="other", severity="warning", team="y"), T0)
    run.step(T0)
    p.ingest(fire("tgt", T0 + 5, rule="small", severity="warning", team="x"), T0 + 5)
    for t in range(10, 5000, 30):
        assert run.step(T0 + t) == [], t


def test_no_second_notification_when_a_member_becomes_inhibited() -> None:

    inh = Inhibit((M("severity", "critical"),), (M("severity", "warning"),))
    p = pipe(
        route("ops", group_interval=60, repeat_interval=10_000, group_by=("team",)),
        inhibits=(inh,),
    )
    run = Run.__new__(Run)
    run.p, run.state, run.routes = p, initial_state(), ()
    p.ingest(fire("a", rule="a", severity="warning", team="x"), T0)
    p.ingest(fire("b", rule="b", severity="info", team="x"), T0)
    [n] = run.step(T0)
    assert len(n.alerts) == 2
    # a critical alert elsewhere now inhibits a: {b} alone is nothing new to the channel
    p.ingest(fire("src", T0 + 5, rule="big", severity="critical", team="y"), T0 + 5)
    sent = [n for t in range(10, 5000, 30) for n in run.step(T0 + t)]
    assert [m.group_key for m in sent] == ['ops|0|{"team":"y"}'], sent


def test_a_silence_ending_is_not_news_but_a_new_alert_is() -> None:

    sil = Silence("s", (M("host", "h2"),), until=T0 + 500, reason="r", starts=T0 + 100)
    p = pipe(route("ops", group_interval=60, repeat_interval=10_000), silences=(sil,))
    run = Run.__new__(Run)
    run.p, run.state, run.routes = p, initial_state(), ()
    p.ingest(fire("a", host="h1"), T0)
    p.ingest(fire("b", host="h2"), T0)
    run.step(T0)
    for t in range(60, 1000, 60):  # b silenced, then back: the channel knows both
        assert run.step(T0 + t) == [], t
    p.ingest(fire("c", T0 + 1000, host="h3"), T0 + 1000)
    [n] = run.step(T0 + 1020)
    assert [f for f, _ in fps(n)] == ["a", "b", "c"]


# -- 13.A7: one key per occasion ---------------------------------------------------------


def test_each_occasion_has_its_own_key_and_a_retry_keeps_it() -> None:
    r = Run(route("ops", group_interval=60, repeat_interval=600))
    r.ingest(fire("a"), T0)
    [first] = r.step(T0)
    [rem1] = r.step(T0 + 600, ok=False)  # a reminder that fails ...
    [rem1b] = r.step(T0 + 660)  # ... is retried with its key
    assert rem1b.key == rem1.key != first.key
    r.restart(T0 + 700)  # and the restarted daemon continues the chain
    [rem2] = r.step(T0 + 1260)
    assert fps(rem2) == fps(first) and len({first.key, rem1.key, rem2.key}) == 3
    r.ingest(resolve("a", T0 + 1300), T0 + 1300)
    [end] = r.step(T0 + 1320)
    assert end.status == "resolved" and end.key not in {first.key, rem1.key, rem2.key}


def test_a_notification_lost_in_a_crash_is_resent_with_its_key() -> None:
    r = Run(route("ops", group_interval=60, repeat_interval=600))
    r.ingest(fire("a"), T0)
    r.step(T0)
    r.ingest(fire("b"), T0 + 10)
    [lost] = r.p.due(T0 + 60)  # the process dies before the outcome is journaled
    r.restart(T0 + 70)
    [again] = r.step(T0 + 70)
    assert again.key == lost.key and fps(again) == fps(lost)


def test_acknowledged_then_lapsed_is_news_again() -> None:
    r = Run(route("ops", group_interval=60, repeat_interval=10_000))
    r.ingest(fire("a"), T0)
    r.step(T0)
    r.ingest(mark("acknowledged", "a", T0 + 10, by="bob", until=iso(T0 + 100)), T0 + 10)
    assert r.step(T0 + 60) == []
    assert r.step(T0 + 100) == []  # news, for the group's next tick
    [n] = r.step(T0 + 120)
    assert fps(n) == [("a", "firing")]


def test_escalation_channels_hear_the_end_across_a_restart() -> None:
    r = Run()
    r.p = esc_pipe()
    r.routes = r.p.config.routes
    r.ingest(fire("a"), T0)
    r.step(T0)
    r.step(T0 + 900)  # mgr told (level 1), outside the route
    r.restart(T0 + 1000)
    r.ingest(resolve("a", T0 + 1100), T0 + 1100)
    got = sorted((n.channel, n.status, n.escalation_level) for n in r.step(T0 + 1100))
    assert ("mgr", "resolved", 1) in got


def test_escalation_channels_owed_the_end_get_it_at_start() -> None:
    r = Run()
    r.p = esc_pipe()
    r.routes = r.p.config.routes
    r.ingest(fire("a"), T0)
    r.step(T0)
    r.step(T0 + 900)
    r.ingest(resolve("a", T0 + 1000), T0 + 1000)  # stopped before anything went out
    r.restart(T0 + 1010)
    got = sorted((n.channel, n.status) for n in r.step(T0 + 1010))
    # both at once: mgr as escalation channels hear of an end, ops because its
    # group_interval since the last send passed long ago
    assert got == [("mgr", "resolved"), ("ops", "resolved")]
    assert r.state["resolving"] == {}
    r.restart(T0 + 2000)
    assert r.step(T0 + 5000) == []


def test_an_acknowledgement_that_lapsed_while_down_is_news_after_the_restart() -> None:
    """Told it fires, then acknowledged: the channel is to hear of it again once the
    acknowledgement ends, on the group's next tick (as news, not a reminder an
    hour later), also when the daemon restarts in between (issue 15.3: explain
    rebuilds the pipeline from the state, and found it waiting for the repeat)."""
    r = Run(route("ops", group_interval=300, repeat_interval=3600))
    r.ingest(fire("a"), T0)
    [first] = r.step(T0)
    r.ingest(mark("acknowledged", "a", T0 + 10, by="bob", until=T0 + 100), T0 + 10)
    assert r.step(T0 + 10) == []
    r.restart(T0 + 200)  # the acknowledgement lapsed while it was down
    assert r.step(T0 + 299) == []
    [n] = r.step(T0 + 300)
    assert fps(n) == [("a", "firing")] and n.alerts[0].acknowledged is None
    assert n.key == idempotency_key("ops", n.group_key, n.alerts, first.key)


# -- 13.A1: an acknowledged alert stays told firing until its resolve ----------------------


def _told_then_acked_then_left_out(r: Run, *, until: float | None = None) -> None:
    """a and b told firing; a acknowledged; c joins the group: the channel hears of
    {b, c} without a (acknowledged alerts are left out), and still believes a fires."""
    r.ingest(fire("a"), T0)
    r.ingest(fire("b"), T0)
    [first] = r.step(T0)
    assert [f for f, _ in fps(first)] == ["a", "b"]
    r.ingest(mark("acknowledged", "a", T0 + 10, by="bob", until=until), T0 + 10)
    r.ingest(fire("c", T0 + 20), T0 + 20)
    [n] = r.step(T0 + 60)
    assert fps(n) == [("b", "firing"), ("c", "firing")]


def _resolves_of(sent: list[Notification], fp: str) -> int:
    return sum((fp, "resolved") in fps(n) for n in sent)


@pytest.mark.parametrize("restart", [True, False])
@pytest.mark.parametrize("by", ["change", "repeat"])
def test_an_acknowledged_alert_left_out_of_a_notification_gets_its_resolve(
    restart: bool, by: str
) -> None:
    r = Run(route("ops", group_interval=60, repeat_interval=600))
    if by == "change":
        _told_then_acked_then_left_out(r)
        later = T0 + 100
    else:  # a reminder of b alone leaves the acknowledged a out
        r.ingest(fire("a"), T0)
        r.ingest(fire("b"), T0)
        r.step(T0)
        r.ingest(mark("acknowledged", "a", T0 + 10, by="bob", until=None), T0 + 10)
        assert r.step(T0 + 60) == []
        [rem] = r.step(T0 + 600)
        assert fps(rem) == [("b", "firing")]
        later = T0 + 700
    if restart:
        r.restart(later)
    r.ingest(resolve("a", later + 50), later + 50)
    sent = [n for t in range(0, 1300, 20) for n in r.step(later + t)]
    assert _resolves_of(sent, "a") == 1, [fps(n) for n in sent]
    # once: the channel was told, nothing is owed across another restart
    assert r.state["resolving"] == {}
    r.restart(later + 2000)
    assert _resolves_of([n for t in range(0, 1300, 20) for n in r.step(later + 2000 + t)], "a") == 0


@pytest.mark.parametrize("restart_at", [T0 + 100, T0 + 200])
def test_an_acknowledgement_lapsing_after_a_left_out_notification(restart_at: float) -> None:
    """The acknowledgement ends (before or after the restart): a is news again, the
    channel hears it fires, then hears its resolve once."""
    r = Run(route("ops", group_interval=60, repeat_interval=10_000))
    _told_then_acked_then_left_out(r, until=T0 + 150)
    r.restart(restart_at)
    sent = [n for t in range(int(restart_at - T0), 400, 20) for n in r.step(T0 + t)]
    assert [fps(n) for n in sent] == [[("a", "firing"), ("b", "firing"), ("c", "firing")]]
    r.ingest(resolve("a", T0 + 500), T0 + 500)
    r.restart(T0 + 510)
    sent = [n for t in range(510, 2000, 20) for n in r.step(T0 + t)]
    assert [fps(n) for n in sent] == [[("b", "firing"), ("c", "firing"), ("a", "resolved")]]


def test_an_unacknowledged_alert_after_a_left_out_notification() -> None:
    r = Run(route("ops", group_interval=60, repeat_interval=10_000))
    _told_then_acked_then_left_out(r)
    r.restart(T0 + 100)
    r.ingest(mark("unacknowledged", "a", T0 + 200), T0 + 200)
    r.restart(T0 + 210)
    sent = [n for t in range(210, 400, 20) for n in r.step(T0 + t)]
    assert [fps(n) for n in sent] == [[("a", "firing"), ("b", "firing"), ("c", "firing")]]
    r.ingest(mark("acknowledged", "a", T0 + 400, by="bob", until=None), T0 + 400)
    r.ingest(resolve("b", T0 + 410), T0 + 410)  # {c} and b's end, again without a
    [n] = [n for t in range(400, 500, 20) for n in r.step(T0 + t)]
    assert fps(n) == [("c", "firing"), ("b", "resolved")]
    r.restart(T0 + 500)
    r.ingest(resolve("a", T0 + 600), T0 + 600)
    sent = [n for t in range(600, 2000, 20) for n in r.step(T0 + t)]
    assert [fps(n) for n in sent] == [[("c", "firing"), ("a", "resolved")]]


@pytest.mark.parametrize("restart", [True, False])
def test_a_group_left_with_only_an_acknowledged_alert_still_owes_its_resolve(
    restart: bool,
) -> None:
    """b's end is the group's last notification with anything firing in it: a,
    acknowledged, is still believed firing, so the group goes on."""
    r = Run(route("ops", group_interval=60, repeat_interval=10_000))
    r.ingest(fire("a"), T0)
    r.ingest(fire("b"), T0)
    r.step(T0)
    r.ingest(mark("acknowledged", "a", T0 + 10, by="bob", until=None), T0 + 10)
    r.ingest(resolve("b", T0 + 20), T0 + 20)
    [n] = r.step(T0 + 60)
    assert fps(n) == [("b", "resolved")]
    if restart:
        r.restart(T0 + 100)
    r.ingest(resolve("a", T0 + 200), T0 + 200)
    sent = [n for t in range(200, 2000, 20) for n in r.step(T0 + t)]
    assert [fps(n) for n in sent] == [[("a", "resolved")]]
    assert r.state["told"] == {} and r.state["resolving"] == {}


@pytest.mark.parametrize("restart", [True, False])
def test_a_silenced_alert_left_out_of_a_notification_gets_its_resolve(restart: bool) -> None:
    """The same for any alert told firing and left out since (silenced here): the
    restarted daemon sends what the running one does."""
    sil = Silence("s", (M("host", "h1"),), until=T0 + 10_000, reason="r", starts=T0 + 10)
    r = Run(route("ops", group_interval=60, repeat_interval=10_000))
    r.p = pipe(*r.routes, silences=(sil,))
    r.ingest(fire("a", host="h1"), T0)
    r.ingest(fire("b", host="h2"), T0)
    r.step(T0)
    r.ingest(fire("c", T0 + 20, host="h3"), T0 + 20)
    [n] = r.step(T0 + 60)
    assert fps(n) == [("b", "firing"), ("c", "firing")]
    if restart:
        r.p = pipe(*r.routes, silences=(sil,))
        r.p.load_state(r.state, T0 + 100)
    r.ingest(resolve("a", T0 + 200, host="h1"), T0 + 200)
    sent = [n for t in range(200, 2000, 20) for n in r.step(T0 + t)]
    assert [fps(n) for n in sent] == [[("b", "firing"), ("c", "firing"), ("a", "resolved")]]
