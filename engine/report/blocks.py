"""The report as a document of blocks (headings, paragraphs, tables), which the
Markdown and HTML renderings each write in their own syntax: one place says what
the report shows and in which order."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from engine.report.tables import GROUP_COLUMNS, group_cells, pct, summary_lines

__all__ = ["Heading", "Para", "Table", "blocks"]


@dataclass(frozen=True, slots=True)
class Heading:
    text: str


@dataclass(frozen=True, slots=True)
class Para:
    text: str
    bullet: bool = False


@dataclass(frozen=True, slots=True)
class Table:
    head: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


Block = Heading | Para | Table


def _change(items: list[dict[str, Any]], key: str) -> Table:
    return Table(
        ("rule", key, "previous", "change"),
        tuple((n["rule"], str(n[key]), str(n["previous"]), f"{n['change']:+d}") for n in items),
    )


def blocks(report: Mapping[str, Any]) -> Iterator[Block]:
    """Everything after the title, in order."""
    t = report["totals"]
    for s in summary_lines(report, 0)[1:]:
        yield Para(s, bullet=True)
    yield Para(f"time with an alert firing: {pct(t['time_firing_pct'], 2)}", bullet=True)
    groups = (
        ("Rules", "rules"),
        ("Routes", "routes"),
        (f"Teams (label {report['team_label']})", "teams"),
    )
    for title, key in groups:
        yield Heading(title)
        yield Table(
            ("name", *GROUP_COLUMNS), tuple((r["name"], *group_cells(r)) for r in report[key])
        )
    yield Heading("Noisiest rules")
    yield Para(f"incidents against the previous period, from {report['period']['previous_since']}")
    yield _change(report["noisiest"], "incidents")
    yield Heading("Flapping rules")
    yield _change(report["flapping"], "flaps")
    i = report["interruptions"]
    yield Heading("Interruptions")
    yield Para(f"notifications sent: {i['notifications']}", bullet=True)
    for key, words in (("off_hours", "off-hours"), ("sleep_hours", "sleep-hours")):
        x = i[key]
        got = (
            f"{x['count']} (interval {x['interval']})"
            if x["interval"]
            else "no interval configured"
        )
        yield Para(f"{words}: {got}", bullet=True)
    a = report["availability"]
    yield Heading("Availability of HTTP checks")
    maint = (
        f"time inside the interval {a['maintenance']} (maintenance) left out"
        if a["maintenance"]
        else "no maintenance interval"
    )
    rules = ", ".join(a["rules"]) or "no rules"
    yield Para(f"From the alerts of: {rules} ({a['source']}); {maint}.")
    yield Table(
        ("rule", "target", "availability", "down"),
        tuple(
            (
                x["rule"],
                ", ".join(f"{k}={v}" for k, v in x["labels"].items()) or x["alert"],
                pct(x["availability_pct"], a["decimals"]),
                f"{x['down_seconds']}s",
            )
            for x in a["targets"]
        ),
    )
