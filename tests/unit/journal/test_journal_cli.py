"""`vigil log ...`: exit codes, one-line errors, output formats, filters."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from engine.cli import log
from engine.config.model import LogConfig
from engine.journal.files import ACTIVE
from engine.journal.format import format_ts
from engine.journal.journal import Journal
from engine.journal.snapshots import read_snapshot

T0 = 1_795_000_000.0


def parser(**top: Any) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vigil")
    if top.get("config"):
        p.add_argument("-c", "--config")  # as the lead's cli may define it at the top
    sub = p.add_subparsers(dest="command", required=True)
    log.register(sub)
    return p


def vigil(*argv: str, p: argparse.ArgumentParser | None = None) -> int:
    args = (p or parser()).parse_args(argv)
    code = args.func(args)
    assert isinstance(code, int)
    return code


def populate(d: Path, now: float = T0) -> None:
    """Six events a minute apart ending at `now`."""
    clock = [now - 300]
    j = Journal(d, LogConfig(), clock=lambda: clock[0])
    j.open()
    for e in (
        {"event": "started"},
        {"event": "pending", "alert": "a1b2c3", "rule": "cpu_high", "severity": "warning"},
        {"event": "firing", "alert": "a1b2c3", "rule": "cpu_high", "severity": "critical",
         "labels": {"host": "web 1"}, "value": 97.5},
        {"event": "notified", "alert": "a1b2c3", "channel": "ops"},
        {"event": "firing", "alert": "ffee00", "rule": "disk_full", "severity": "warning"},
        {"event": "resolved", "alert": "a1b2c3", "rule": "cpu_high"},
    ):  # fmt: skip
        j.append_sync([e])
        clock[0] += 60
    j.close_sync()


def one_line(err: str) -> str:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


# ------------------------------------------------------------------- verify


def test_verify_sound(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    populate(tmp_path)
    assert vigil("log", "verify", "--data-dir", str(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "journal is sound" in out and "seq 1..6" in out


def test_verify_damaged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    populate(tmp_path)
    active = tmp_path / ACTIVE
    ls = active.read_bytes().splitlines(keepends=True)
    active.write_bytes(ls[0] + b"oops\n" + b"".join(ls[1:]))
    assert vigil("log", "verify", "--data-dir", str(tmp_path)) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"{active}:{len(ls[0])}: no checksum at the end of the line"
    assert "vigil log repair" in err[1]
    assert vigil("log", "verify", "--data-dir", str(tmp_path), "--format", "json") == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and len(doc["problems"]) == 1 and doc["last_seq"] == 6


def test_a_missing_data_dir_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for cmd in ("verify", "tail", "query", "repair", "compact"):
        assert vigil("log", cmd, "--data-dir", str(tmp_path / "nope")) == 1, cmd
        assert "no such directory" in one_line(capsys.readouterr().err)


# -------------------------------------------------------------- tail/query


def test_tail_text_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    populate(tmp_path)
    assert vigil("log", "tail", "--data-dir", str(tmp_path), "-n", "2") == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2
    assert out[0].startswith(f"{format_ts(T0 - 60)} #5 firing ")
    assert "rule=disk_full alert=ffee00 severity=warning" in out[0]
    assert vigil("log", "tail", "--data-dir", str(tmp_path), "--format", "json") == 0
    events = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5, 6]
    assert "crc" not in events[0]


def test_text_lines_show_labels_and_quote_what_needs_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    populate(tmp_path)
    vigil("log", "query", "--data-dir", str(tmp_path), "--event", "firing", "--rule", "cpu_high")
    [line] = capsys.readouterr().out.splitlines()
    assert line.endswith('rule=cpu_high alert=a1b2c3 severity=critical value=97.5 {host="web 1"}')


def q(d: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> list[int]:
    assert vigil("log", "query", "--data-dir", str(d), "--format", "json", *argv) == 0
    return [json.loads(x)["seq"] for x in capsys.readouterr().out.splitlines()]


def test_query_filters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    populate(tmp_path)
    assert q(tmp_path, capsys) == [1, 2, 3, 4, 5, 6]
    assert q(tmp_path, capsys, "--event", "firing,resolved") == [3, 5, 6]
    assert q(tmp_path, capsys, "--event", "firing", "--event", "started") == [1, 3, 5]
    assert q(tmp_path, capsys, "--rule", "disk_full") == [5]
    assert q(tmp_path, capsys, "--alert", "a1b") == [2, 3, 4, 6]
    assert q(tmp_path, capsys, "--severity", "critical") == [3]
    assert q(tmp_path, capsys, "--since", format_ts(T0 - 120)) == [4, 5, 6]  # inclusive
    assert q(tmp_path, capsys, "--until", format_ts(T0 - 240)) == [1, 2]
    assert q(tmp_path, capsys, "--alert", "a1b", "--limit", "2") == [2, 3]


def test_query_since_a_duration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    populate(tmp_path, now=time.time())
    assert q(tmp_path, capsys, "--since", "150s") == [4, 5, 6]
    assert q(tmp_path, capsys, "--since", "1h") == [1, 2, 3, 4, 5, 6]
    assert q(tmp_path, capsys, "--until", "1h") == []


def test_query_with_a_bad_time_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    populate(tmp_path)
    assert vigil("log", "query", "--data-dir", str(tmp_path), "--since", "last tuesday") == 2
    assert "neither a duration" in one_line(capsys.readouterr().err)


def test_bad_counts_and_durations_are_argparse_usage_errors(tmp_path: Path) -> None:
    for argv in (["tail", "-n", "-3"], ["compact", "--retention", "forever"]):
        with pytest.raises(SystemExit) as e:
            vigil("log", *argv, "--data-dir", str(tmp_path))
        assert e.value.code == 2


# ------------------------------------------------------------ data_dir


def test_data_dir_from_the_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    populate(tmp_path / "state")
    cfg = tmp_path / "vigil.yaml"
    cfg.write_text(f"data_dir: {tmp_path / 'state'}\nlog: {{fsync: always}}\n")
    assert vigil("log", "tail", "-c", str(cfg), "-n", "1", "--format", "json") == 0
    assert json.loads(capsys.readouterr().out)["seq"] == 6
    # a top-level -c, as the main parser may define it, is not clobbered
    p = parser(config=True)
    assert vigil("-c", str(cfg), "log", "tail", "-n", "1", p=p) == 0
    assert "#6 resolved" in capsys.readouterr().out


def test_data_dir_from_vigil_yaml_in_the_working_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    populate(tmp_path / "data")
    assert vigil("log", "tail", "-n", "1") == 0  # no vigil.yaml: ./data
    assert "#6" in capsys.readouterr().out
    populate(tmp_path / "elsewhere")
    (tmp_path / "vigil.yaml").write_text("data_dir: elsewhere\n")
    assert vigil("log", "verify") == 0
    assert "elsewhere: journal is sound" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "message"),
    [("data_dir: [a]\n", "data_dir must be"), ("- a\n", "mapping"), ("a: [\n", "YAML syntax")],
)
def test_a_bad_config_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    cfg = tmp_path / "vigil.yaml"
    cfg.write_text(text)
    assert vigil("log", "verify", "-c", str(cfg)) == 2
    assert message in one_line(capsys.readouterr().err)


# -------------------------------------------------------- repair/compact


def test_repair(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    populate(tmp_path)
    with (tmp_path / ACTIVE).open("ab") as f:
        f.write(b'{"v":1,"seq":7')
    assert vigil("log", "repair", "--data-dir", str(tmp_path)) == 0
    assert "torn final line" in capsys.readouterr().out
    assert vigil("log", "verify", "--data-dir", str(tmp_path)) == 0


def test_repair_while_locked_names_the_holder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    populate(tmp_path)
    j = Journal(tmp_path, LogConfig())
    j.open()
    try:
        assert vigil("log", "repair", "--data-dir", str(tmp_path)) == 1
        assert "is locked by PID" in one_line(capsys.readouterr().err)
        assert vigil("log", "compact", "--data-dir", str(tmp_path)) == 1
        assert "is locked by PID" in one_line(capsys.readouterr().err)
    finally:
        j.close_sync()


def test_compact_with_the_state_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("engine.journal.store")
    populate(tmp_path)
    assert vigil("log", "compact", "--data-dir", str(tmp_path)) == 0
    assert "snapshot-000000000006.json" in capsys.readouterr().out
    snap = read_snapshot(tmp_path)
    assert snap is not None and snap[0] == 6


def test_compact_without_the_state_store_is_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    populate(tmp_path)
    monkeypatch.setitem(sys.modules, "engine.journal.store", None)  # import now raises ImportError
    assert vigil("log", "compact", "--data-dir", str(tmp_path)) == 2
    assert "compact needs the state store" in one_line(capsys.readouterr().err)


# ----------------------------------------------------------------- follow

DRIVER = """
import argparse, sys
from engine.cli import log
p = argparse.ArgumentParser(prog="vigil")
log.register(p.add_subparsers(dest="command", required=True))
a = p.parse_args(sys.argv[1:])
sys.exit(a.func(a))
"""


def test_tail_follow_prints_new_events(tmp_path: Path) -> None:
    populate(tmp_path)
    child = subprocess.Popen(
        [sys.executable, "-c", DRIVER, "log", "tail", "-f", "-n", "1", "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert "#6 resolved" in child.stdout.readline()
        j = Journal(tmp_path, LogConfig())
        j.open()
        j.append_sync([{"event": "collector_down", "collector": "api"}])
        j.close_sync()
        line = child.stdout.readline()
        assert "#7 collector_down" in line and "collector=api" in line
    finally:
        child.terminate()
        child.wait(timeout=10)
