"""Alerts that were firing all through the events a report reads, with no event of
their own among them: an outage that began before the previous period and had
not ended by the period's end.

Nothing inside the window tells of them, so they are found after it: a later
`resolved` event says when its alert began firing (`firing_since`, kept on
resolved events: engine/rules/state.py), and the newest snapshot lists every
alert still firing then, with its `firing_since`. Either gives an episode that
fired before the window and is open at its end: it adds to time firing and
takes from availability, and is an incident of no period.
"""

from __future__ import annotations

from collections.abc import Container, Iterator
from typing import Any

from engine.journal.format import format_ts
from engine.journal.snapshots import read_snapshot
from engine.report.aggregate import NONE, Episode, labels_of
from engine.report.scan import scan

__all__ = ["firing_throughout"]

_END = "9999-12-31T23:59:59.999Z"


def _later(data_dir: str, until: float, index: bool) -> Iterator[tuple[bytes, str, Any, float]]:
    """(alert, rule, labels, firing_since) of resolved events after `until`, and
    of the newest snapshot's firing alerts."""
    for _t, kind, fp, rule, labels, since in scan(data_dir, format_ts(until), _END, index=index):
        if kind == b"resolved" and since is not None:
            yield fp, (rule or b"").decode("utf-8", "replace") or NONE, labels, since
    snap = read_snapshot(data_dir)
    alerts = snap[1].get("alerts") if snap is not None else None
    for fp, a in (alerts or {}).items():
        since = a.get("firing_since") if isinstance(a, dict) else None
        if a.get("state") == "firing" and isinstance(since, int | float):
            labels = a.get("labels")
            yield (
                str(fp).encode(),
                str(a.get("rule")),
                labels if isinstance(labels, dict) else {},
                since,
            )


def firing_throughout(
    data_dir: str,
    since: float,
    until: float,
    seen: Container[bytes],
    team_label: str,
    *,
    index: bool = True,
) -> list[Episode]:
    """Episodes of alerts not in `seen` (every alert with an event in the window
    read) that began firing before `since` and still fired at `until`."""
    out: list[Episode] = []
    done: set[bytes] = set()
    for fp, rule, labels, began in _later(data_dir, until, index):
        if fp in seen or fp in done:
            continue
        done.add(fp)  # the first word after the window is the one that counts
        if began < since:
            team = str(labels_of(labels).get(team_label, NONE))
            out.append(Episode(fp, rule, team, labels, began, began))
    return out
