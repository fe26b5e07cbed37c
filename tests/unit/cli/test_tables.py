"""A table cell is data (labels, log lines an attacker wrote): at a terminal it is
neither rich markup nor a terminal control sequence; piped, it is one line."""

from __future__ import annotations

import contextlib
import io
from typing import Any

from engine.cli.tables import Rows, evidence_lines

HOSTILE = "\x1b]0;pwned\x07\x1b[2J[bold]loud[/bold]"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_the_data_as_text_without_its_control_characters() -> None:
    rows = Rows("labels", "summary")
    rows.add_row(f"ip={HOSTILE}", "fine")
    out = Terminal()
    rows.show(stream=out)
    text = out.getvalue()
    assert "\x07" not in text and "\x1b]0;" not in text and "\x1b[2J" not in text
    assert "[bold]loud[/bold]" in text, "rich markup in data is shown, not applied"
    assert "pwned" in text


def test_a_pipe_gets_one_escaped_line_per_row() -> None:
    rows = Rows("labels", "summary")
    rows.add_row(f"ip={HOSTILE}", "two\nlines")
    out = io.StringIO()
    rows.show(stream=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert not any(ord(c) < 32 for c in lines[1])


def test_evidence_headers_are_escaped_too() -> None:
    alert = {"fingerprint": "f" * 16, "rule": "r", "labels": {"ip": HOSTILE}}
    alert["annotations"] = {"evidence": "GET /\x1b[31mred"}
    for line in evidence_lines([alert], 5):
        assert not any(ord(c) < 32 for c in line), repr(line)


def test_vigil_log_and_logtest_lines_carry_no_control_character(tmp_path: Any) -> None:
    from engine.cli.log import format_event
    from engine.cli.main import main

    ev = {"ts": "2026-12-07T00:00:00Z", "seq": 1, "event": "firing", "labels": {"ip": HOSTILE}}
    assert not any(ord(c) < 32 for c in format_event(ev))
    log = tmp_path / "access.log"
    log.write_text(
        f'{HOSTILE} - - [07/Dec/2026:01:30:00 +0000] "GET /?id=1%27%20OR%201=1-- HTTP/1.1" '
        f'200 5 "-" "{HOSTILE}"\n'
    )
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["logtest", str(log), "--format", "nginx", "--show", "1"]) == 0
    assert "pwned" in out.getvalue()
    assert not any(ord(c) < 32 and c != "\n" for c in out.getvalue())
