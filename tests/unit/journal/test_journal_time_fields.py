"""13.18: the `acknowledged` and `silence_created` events hold their times in
RFC 3339, like every other time in the journal; a journal written before (epoch
numbers) still replays, restores the same silences and acknowledgements, and
`vigil log` shows its times in RFC 3339 too."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from engine.cli import log
from engine.config.model import Channel, Config, LogConfig, Route
from engine.journal.format import format_ts
from engine.journal.journal import Journal
from engine.journal.store import fold_event, initial_state
from engine.notify import router
from engine.notify.pipeline import Pipeline

T0 = 1_795_000_000.0
FP = "a1b2c3"
MATCHERS = [{"label": "rule", "values": ["cpu_high"]}]


def journal_events(until: Any, starts: Any, ack_until: Any) -> list[dict[str, Any]]:
    return [
        {"event": "firing", "alert": FP, "rule": "cpu_high", "severity": "warning",
         "labels": {"host": "h1"}, "value": 97.5},
        {"event": "silence_created", "id": "s1", "matchers": MATCHERS, "starts": starts,
         "until": until, "reason": "deploy", "created_by": "alice"},
        {"event": "acknowledged", "alert": FP, "by": "bob", "note": "on it",
         "until": ack_until},
    ]  # fmt: skip


OLD = journal_events(T0 + 3600, T0 - 60, T0 + 1800)  # before 13.18: epoch numbers
NEW = journal_events(format_ts(T0 + 3600), format_ts(T0 - 60), format_ts(T0 + 1800))


def write_journal(d: Path, events: list[dict[str, Any]]) -> None:
    j = Journal(d, LogConfig(), clock=lambda: T0 - 120)
    j.open()
    j.append_sync(events)
    j.close_sync()


def replay(d: Path) -> dict[str, Any]:
    j = Journal(d, LogConfig())
    result = j.open()
    j.close_sync()
    state = initial_state()
    for ev in result.events:
        fold_event(state, dict(ev))
    return state


@pytest.mark.parametrize("events", [OLD, NEW], ids=["old_epoch", "rfc3339"])
def test_old_and_new_journals_replay_to_the_same_state(
    tmp_path: Path, events: list[dict[str, Any]]
) -> None:
    write_journal(tmp_path, events)
    state = replay(tmp_path)
    sil = state["silences"]["s1"]
    assert (sil["until"], sil["starts"]) == (T0 + 3600, T0 - 60)
    assert state["alerts"][FP]["ack"]["until"] == T0 + 1800
    s = router.silence_from_state("s1", sil)
    assert s is not None and (s.until, s.starts) == (T0 + 3600, T0 - 60)
    # the pipeline, resumed from it, holds the silence and the acknowledgement
    config = Config(routes=(Route((), ("ops",)),), channels=(Channel("ops", "webhook"),))
    p = Pipeline(config, {"ops": "webhook"})
    p.load_state(state, T0)
    assert p.api_silences["s1"].until == T0 + 3600
    assert p.due(T0) == []  # silenced (and acknowledged): nothing to send
    assert p.alerts[FP].acked(T0) and not p.alerts[FP].acked(T0 + 1800)


@pytest.mark.parametrize("events", [OLD, NEW], ids=["old_epoch", "rfc3339"])
def test_the_events_as_the_pipeline_ingests_them(events: list[dict[str, Any]]) -> None:
    config = Config(routes=(Route((), ("ops",)),), channels=(Channel("ops", "webhook"),))
    p = Pipeline(config, {"ops": "webhook"})
    for ev in events:
        p.ingest(ev, T0)
    assert p.api_silences["s1"].until == T0 + 3600
    assert p.api_silences["s1"].starts == T0 - 60
    assert p.alerts[FP].ack is not None and p.alerts[FP].ack["until"] == T0 + 1800


def test_vigil_log_shows_old_epoch_times_in_rfc3339(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_journal(tmp_path, OLD)
    p = argparse.ArgumentParser(prog="vigil")
    sub = p.add_subparsers(dest="command", required=True)
    log.register(sub)
    args = p.parse_args(["log", "tail", "--data-dir", str(tmp_path)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert f"until={format_ts(T0 + 3600)}" in out and f"starts={format_ts(T0 - 60)}" in out
    assert f"until={format_ts(T0 + 1800)}" in out
    assert "1795" not in out.replace(format_ts(T0 - 120), "")  # no epoch number left


def test_a_malformed_time_is_no_silence() -> None:
    rec = {"matchers": MATCHERS, "until": "next tuesday", "starts": None}
    assert router.silence_from_state("s", rec) is None
