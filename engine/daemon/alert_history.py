"""An alert's recent journal events for GET /api/v1/alerts/{fp} ("history"), never
read on the event loop.

From the history index beside the journal (engine/journal/history.py) when it is
ready: its last HISTORY_LIMIT events, queried in the index's own thread. Before the
index has caught up (a first start, a rebuild) or without one: the alert's events
among the journal's last TAIL_SCAN lines, read backwards in a worker thread, so a
year of journal is never read whole. `history_source` in the alert says which.
GET /api/v1/alerts/{fp}/timeline gives the whole timeline.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

from engine.errors import JournalError
from engine.journal.format import format_ts
from engine.journal.history import HistoryIndex, NotReady
from engine.journal.lines import Event
from engine.journal.reader import tail_matching

log = logging.getLogger("vigil.api")

HISTORY_LIMIT = 100  # events of one alert, the newest
TAIL_SCAN = 20_000  # journal lines read backwards when the index is not ready

Source = Literal["index", "journal_tail", "unavailable"]


def _from_index(fp: str, found: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The index's timeline events in the journal's own shape (RFC 3339 `ts`)."""
    out: list[dict[str, Any]] = []
    for ev in (found or {}).get("events", ()):
        one = {**ev, "ts": format_ts(ev["ts"])}
        if "alerts" not in one:  # a notification names its alerts; the others one alert
            one["alert"] = fp
        out.append(one)
    return out


def _from_journal(data_dir: str, fp: str) -> list[Event]:
    def mine(ev: Event) -> bool:
        return ev.get("alert") == fp or fp in (ev.get("alerts") or ())

    return tail_matching(data_dir, HISTORY_LIMIT, needle=fp.encode(), keep=mine, scan=TAIL_SCAN)


async def alert_history(
    index: HistoryIndex | None, data_dir: str, fp: str
) -> tuple[list[dict[str, Any]], Source]:
    """Alert `fp`'s last events, oldest first, and where they came from."""
    if index is not None:
        try:
            found = await index.query(lambda r: r.timeline(fp, limit=HISTORY_LIMIT))
            return _from_index(fp, found), "index"
        except NotReady:
            pass  # catching up: the journal's tail meanwhile
    try:
        events = await asyncio.to_thread(_from_journal, data_dir, fp)
    except (JournalError, OSError) as e:
        log.warning("history of alert %s: %s", fp, e)
        return [], "unavailable"  # history is a nicety; the alert itself is known
    return [dict(ev) for ev in events], "journal_tail"
