"""13.19 and 13.18 in the pipeline: per-alert `silenced`, `unsilenced`, `inhibited`
(and `uninhibited`) events, an API silence ending by time and an acknowledgement
lapsing are journaled once, also across a restart; the webhook's view of an
acknowledgement has its `until` in RFC 3339."""

from __future__ import annotations

from typing import Any

from engine.config.model import Inhibit, Silence
from engine.journal.store import fold_event, initial_state
from engine.notify.base import iso
from tests.unit.notify.test_delivery_resume import Run
from tests.unit.notify.test_pipeline import T0, M, fire, mark, pipe, resolve, route


def silence_created(sid: str, until: float, at: float, **match: str) -> dict[str, Any]:
    return {
        "event": "silence_created",
        "id": sid,
        "matchers": [{"label": k, "value": v} for k, v in match.items()],
        "starts": None,
        "until": until,
        "reason": "r",
        "created_by": "bob",
        "ts": iso(at),
    }


def journal(r: Run, now: float) -> list[dict[str, Any]]:
    """What the dispatcher journals of the pipeline's own events, folded."""
    evs = r.p.take_events()
    for ev in evs:
        fold_event(r.state, {**ev, "ts": iso(now)})
    return evs


def kinds(evs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["event"], e.get("alert") or e.get("id")) for e in evs]


def test_silenced_unsilenced_and_silence_expiry_by_time_are_journaled_once() -> None:
    r = Run(route("ops", group_interval=60))
    r.ingest(fire("a", host="h1"), T0)
    r.ingest(fire("b", host="h2"), T0)
    r.step(T0)
    assert journal(r, T0) == []
    r.ingest(silence_created("s1", T0 + 300, T0 + 10, host="h1"), T0 + 10)
    r.step(T0 + 10)
    evs = journal(r, T0 + 10)
    assert kinds(evs) == [("silenced", "a")] and evs[0]["silence"] == "s1"
    assert evs[0]["rule"] == "r1" and evs[0]["labels"] == {"host": "h1"}
    r.step(T0 + 100)
    assert journal(r, T0 + 100) == []
    # a restart does not journal the same mark again
    r.restart(T0 + 120)
    r.step(T0 + 120)
    assert journal(r, T0 + 120) == []
    r.step(T0 + 300)  # the silence ends by time: journaled, then the alert is unsilenced
    evs = journal(r, T0 + 300)
    assert kinds(evs) == [("silence_expired", "s1"), ("unsilenced", "a")]
    assert evs[0]["cause"] == "time" and evs[0]["until"] == iso(T0 + 300)
    assert r.state["silences"] == {} and "s1" in r.state["silences_expired"]
    assert r.state["silences_expired"]["s1"]["until"] == T0 + 300
    r.restart(T0 + 400)
    r.step(T0 + 400)
    assert journal(r, T0 + 400) == []


def test_a_silence_that_ended_while_the_daemon_was_down_is_journaled_at_start() -> None:
    r = Run(route("ops"))
    r.ingest(fire("a", host="h1"), T0)
    r.ingest(silence_created("s1", T0 + 60, T0, host="h1"), T0)
    r.step(T0)
    journal(r, T0)
    r.restart(T0 + 500)
    r.step(T0 + 500)
    assert sorted(kinds(journal(r, T0 + 500))) == [("silence_expired", "s1"), ("unsilenced", "a")]


def test_inhibited_and_uninhibited_are_journaled() -> None:
    inh = Inhibit((M("severity", "critical"),), (M("severity", "warning"),))
    p = pipe(route("ops", group_by=("rule",)), inhibits=(inh,))
    r = Run.__new__(Run)
    r.p, r.routes = p, ()
    r.state = initial_state()
    r.ingest(fire("w", rule="w", severity="warning"), T0)
    r.step(T0)
    assert journal(r, T0) == []
    r.ingest(fire("c", T0 + 5, rule="c", severity="critical"), T0 + 5)
    r.step(T0 + 5)
    assert kinds(journal(r, T0 + 5)) == [("inhibited", "w")]
    r.ingest(resolve("c", T0 + 50, rule="c", severity="critical"), T0 + 50)
    r.step(T0 + 50)
    assert kinds(journal(r, T0 + 50)) == [("uninhibited", "w")]


def test_an_acknowledgement_lapses_once_journaled_and_shows_until_in_rfc3339() -> None:
    r = Run(route("pd", group_interval=60))  # pd closes incidents: it sees acknowledgements
    r.ingest(fire("a"), T0)
    r.step(T0)
    r.ingest(mark("acknowledged", "a", T0 + 10, by="bob", until=T0 + 100), T0 + 10)
    [n] = r.step(T0 + 60)
    assert n.alerts[0].acknowledged == {"by": "bob", "note": None, "until": iso(T0 + 100)}
    assert n.alerts[0].as_dict()["acknowledged"]["until"] == "2026-11-23T10:01:40.000Z"
    assert journal(r, T0 + 60) == []
    r.step(T0 + 100)
    evs = journal(r, T0 + 100)
    assert kinds(evs) == [("unacknowledged", "a")]
    assert evs[0]["cause"] == "expired" and evs[0]["by"] == "bob"
    assert r.state["alerts"]["a"]["ack"] is None  # no longer shown as acknowledged
    r.restart(T0 + 200)
    r.step(T0 + 200)
    assert journal(r, T0 + 200) == []


def test_an_acknowledgement_that_lapsed_while_down_is_journaled_at_start() -> None:
    r = Run(route("ops"))
    r.ingest(fire("a"), T0)
    r.step(T0)
    r.ingest(mark("acknowledged", "a", T0 + 10, by="bob", until=T0 + 100), T0 + 10)
    r.restart(T0 + 1000)
    r.step(T0 + 1000)
    assert kinds(journal(r, T0 + 1000)) == [("unacknowledged", "a")]
    assert r.state["alerts"]["a"]["ack"] is None


def test_config_silence_marks_are_journaled_too() -> None:
    sil = Silence("cfg", (M("host", "h1"),), until=T0 + 500, reason="r", starts=T0 + 100)
    p = pipe(route("ops", group_interval=60), silences=(sil,))
    r = Run.__new__(Run)
    r.p, r.routes = p, ()
    r.state = initial_state()
    r.ingest(fire("a", host="h1"), T0)
    r.step(T0)
    r.step(T0 + 100)
    assert kinds(journal(r, T0 + 100)) == [("silenced", "a")]
    r.step(T0 + 500)
    # 13.19: the channel file's silence ending by time is journaled too, once
    evs = journal(r, T0 + 500)
    assert kinds(evs) == [("silence_expired", "cfg"), ("unsilenced", "a")]
    assert evs[0]["cause"] == "time" and evs[0]["source"] == "config"
    assert evs[0]["until"] == iso(T0 + 500)
    r.step(T0 + 900)
    assert journal(r, T0 + 900) == []
    # a restart finds it in the config again, and does not journal it again
    r.p = pipe(route("ops", group_interval=60), silences=(sil,))
    r.p.load_state(r.state, T0 + 1000)
    r.step(T0 + 1000)
    r.step(T0 + 2000)
    assert journal(r, T0 + 2000) == []


def test_a_config_silence_that_ended_while_the_daemon_was_down_is_journaled_at_start() -> None:
    sil = Silence("cfg", (M("host", "h1"),), until=T0 + 500, reason="maint")
    r = Run.__new__(Run)
    r.p, r.routes = pipe(route("ops"), silences=(sil,)), ()
    r.state = initial_state()
    r.ingest(fire("a", host="h1"), T0)
    r.step(T0)
    assert kinds(journal(r, T0)) == [("silenced", "a")]
    # down from T0 + 10 to T0 + 900
    r.p = pipe(route("ops"), silences=(sil,))
    r.p.load_state(r.state, T0 + 900)
    r.step(T0 + 900)
    evs = journal(r, T0 + 900)
    assert sorted(kinds(evs)) == [("silence_expired", "cfg"), ("unsilenced", "a")]
    assert r.state["config_silences_expired"] == {"cfg": T0 + 500}
    r.p = pipe(route("ops"), silences=(sil,))  # and once only
    r.p.load_state(r.state, T0 + 1000)
    r.step(T0 + 1000)
    assert journal(r, T0 + 1000) == []
