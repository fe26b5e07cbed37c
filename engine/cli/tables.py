"""Tables of the CLI: rich for a person at a terminal, one plain line per row otherwise.

Piped or redirected (`vigil alerts | grep team=svc`, a file, a CI log), a row is
one line however long, columns aligned with spaces, never wrapped or folded at
80 columns as rich does when it cannot see a terminal; a cell's line break or tab
is escaped, so it cannot split a row either. Every control character of a cell is
escaped in both forms: cells carry data (labels and lines from logs), and an ESC
or BEL from an attacker must not retitle, clear or recolour the operator's terminal.
"""

from __future__ import annotations

import sys
from typing import IO, Any

_ESCAPES = {c: repr(chr(c))[1:-1] for c in (*range(0x20), 0x7F, 0x85, 0x2028, 0x2029)}


class Rows:
    """Columns and rows, printed by `show` in the form the stream calls for."""

    def __init__(self, *columns: str, no_wrap: frozenset[str] = frozenset()) -> None:
        self.columns = columns
        self.no_wrap = no_wrap
        self.rows: list[tuple[str, ...]] = []

    def add_row(self, *cells: str) -> None:
        self.rows.append(tuple(cells))

    def show(self, caption: str = "", *, title: str = "", stream: IO[str] | None = None) -> None:
        out = stream if stream is not None else sys.stdout
        if _is_terminal(out):
            self._rich(out, caption, title)
            return
        if title:
            out.write(title + "\n")
        cells = [self.columns, *([one_line(c) for c in row] for row in self.rows)]
        widths = [max(len(r[i]) for r in cells) for i in range(len(self.columns))]
        for r in cells:
            # the last column is not padded: no trailing blanks
            line = "  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=False))
            out.write((line + "  " + r[-1] if len(r) > 1 else r[-1]).rstrip() + "\n")
        if caption:
            out.write(caption + "\n")

    def _rich(self, out: IO[str], caption: str, title: str) -> None:
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table(box=None, header_style="bold", pad_edge=False, title=title or None)
        for col in self.columns:
            # ids must stay whole to be copied; free text folds instead
            table.add_column(col, overflow="fold", no_wrap=col in self.no_wrap)
        for row in self.rows:
            # cells are data (log lines, labels): Text, so "[bold]" is not markup, and
            # escaped, so an ESC or BEL never reaches the terminal
            table.add_row(*(Text(one_line(c)) for c in row))
        console = Console(file=out)
        console.print(table)
        if caption:
            console.print(caption, style="dim")


def _is_terminal(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def one_line(text: str) -> str:
    """`text` on one line, every control character escaped (\\x1b, \\n ...)."""
    return str(text).translate(_ESCAPES)


def evidence_lines(alerts: list[dict[str, Any]], limit: int) -> list[str]:
    """For each alert with an `evidence` annotation (the log lines behind a detection,
    rules/security/), its last `limit` lines, each escaped to one line: a log line is
    hostile input and must not move the cursor or recolour the terminal."""
    out: list[str] = []
    for a in alerts if limit > 0 else []:
        text = (a.get("annotations") or {}).get("evidence")
        if not isinstance(text, str) or not text.strip():
            continue
        lines = text.splitlines()
        labels = ",".join(f"{k}={v}" for k, v in sorted((a.get("labels") or {}).items()))
        more = f", the last {limit} of {len(lines)}" if len(lines) > limit else ""
        out.append(
            one_line(
                f"evidence of {str(a.get('fingerprint'))[:12]} {a.get('rule')} {{{labels}}}{more}:"
            )
        )
        out.extend("  " + one_line(x) for x in lines[-limit:])
    return out
