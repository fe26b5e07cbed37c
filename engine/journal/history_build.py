"""The history index's file and how journal events are folded into it.

The index is a cache of the journal, never its equal: ``data_dir/history/index.sqlite3``
(SQLite, WAL) holds what the journal said about alerts, shaped for the questions of
engine/journal/history_query.py, and the journal position (seq and ts of the last
event) it covers. Deleted, damaged, of another schema or ahead of the journal (the
event at its position is not in the journal any more), it is rebuilt from the journal.

Tables::

    meta      key -> value: schema, generation (new at each build), seq, ts
    series    one alert instance: id, fp (unique), rule, labels (JSON)
    episodes  one alert episode, pending or firing until resolved or inactive:
              id, series, rule, severity, start, pending_at, firing_at, end,
              end_kind, acked_at, ack_by, notified, failed, first_seq, last_seq
    ep_span   R*Tree over (start, end or far future): the episodes open at a time
    events    every per-alert event: (series, seq) -> ts, kind, episode, data (JSON)
    hours     per UTC hour: episodes started, firing starts, firing ends

An episode follows engine/journal/store.py's fold: `pending` or `firing` for an
alert without an open episode opens one (so does `pending` while firing: the fold
starts the alert afresh); `resolved` or `inactive` closes it. Notifications count
against the alert's latest episode (a resolve's notification follows the resolve).
Times are the journal's own stamps (``ts``), epoch seconds. A wall clock stepped back
may stamp an end before its start: such an episode is never active, and its firing
span counts as ending when it started firing.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from engine.errors import VigilError
from engine.journal.files import FILE_MODE

SCHEMA = 1
INDEX_DIR = "history"
INDEX_FILE = "index.sqlite3"
OPEN_END = 1e12  # the R*Tree's end of an open episode (year 33658)
HOUR = 3600

# what a per-alert event's stored data leaves out: the envelope, and what the
# series and the episode hold already
_DROP = frozenset(("v", "seq", "ts", "crc", "event", "alert", "rule", "labels", "annotations"))

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY, fp TEXT NOT NULL UNIQUE, rule TEXT, labels TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS episodes (
    id INTEGER PRIMARY KEY, series INTEGER NOT NULL, rule TEXT, severity TEXT,
    start REAL NOT NULL, pending_at REAL, firing_at REAL, end REAL, end_kind TEXT,
    acked_at REAL, ack_by TEXT, notified INTEGER NOT NULL, failed INTEGER NOT NULL,
    first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS episodes_start ON episodes (start);
CREATE INDEX IF NOT EXISTS episodes_series ON episodes (series, start);
CREATE INDEX IF NOT EXISTS episodes_rule ON episodes (rule, start);
CREATE VIRTUAL TABLE IF NOT EXISTS ep_span USING rtree(id, lo, hi);
CREATE TABLE IF NOT EXISTS events (
    series INTEGER NOT NULL, seq INTEGER NOT NULL, ts REAL NOT NULL, kind TEXT NOT NULL,
    episode INTEGER, data TEXT, PRIMARY KEY (series, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS hours (
    h INTEGER PRIMARY KEY, started INTEGER NOT NULL, fired INTEGER NOT NULL,
    ended INTEGER NOT NULL);
"""


class IndexBroken(VigilError):
    """The index file cannot be used as it is: rebuild it from the journal."""


def index_path(data_dir: str) -> str:
    return os.path.join(data_dir, INDEX_DIR, INDEX_FILE)


def connect(path: str, *, write: bool) -> sqlite3.Connection:
    """A connection of one thread; WAL so readers never wait for the writer."""
    if write:
        os.makedirs(os.path.dirname(path), mode=0o750, exist_ok=True)
        # the journal's own mode: labels and acknowledgement notes are as private here
        # (SQLite gives its -wal and -shm files the mode of the database file)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
    elif not os.path.exists(path):
        raise IndexBroken(f"{path}: no index yet")
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5.0)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        # the journal is the durable record: losing the index's last commits to a
        # power cut only means catching up again
        db.execute("PRAGMA synchronous=OFF" if write else "PRAGMA query_only=ON")
        db.execute("PRAGMA cache_size=-16000")
    except sqlite3.DatabaseError as e:
        db.close()
        raise IndexBroken(f"{path}: {e}") from None
    return db


def remove_index(data_dir: str) -> None:
    path = index_path(data_dir)
    for p in (path, path + "-wal", path + "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(p)


@functools.lru_cache(maxsize=4096)
def _second(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def epoch(ts: Any) -> float:
    """Epoch seconds of a journal stamp (2026-11-22T20:00:00.123Z, or any ISO-8601)."""
    if isinstance(ts, int | float):
        return float(ts)
    if not isinstance(ts, str):
        return 0.0
    if len(ts) == 24 and ts[19] == "." and ts[23] == "Z":  # the journal's own form: fast
        # one division, rounded once: the same float as datetime's own timestamp()
        return (int(_second(ts[:19])) * 1000 + int(ts[20:23])) / 1000
    d = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    return (d if d.tzinfo is not None else d.replace(tzinfo=UTC)).timestamp()


@dataclass(slots=True)
class Episode:
    id: int
    series: int
    rule: str | None
    severity: str | None
    start: float
    pending_at: float | None
    firing_at: float | None
    end: float | None
    end_kind: str | None
    acked_at: float | None
    ack_by: str | None
    notified: int
    failed: int
    first_seq: int
    last_seq: int
    firing: bool = False  # its state now (not stored: firing_at and end say it)

    def row(self) -> tuple[Any, ...]:
        return (
            self.id, self.series, self.rule, self.severity, self.start, self.pending_at,
            self.firing_at, self.end, self.end_kind, self.acked_at, self.ack_by,
            self.notified, self.failed, self.first_seq, self.last_seq,
        )  # fmt: skip


_EP_COLUMNS = (
    "id, series, rule, severity, start, pending_at, firing_at, end, end_kind, "
    "acked_at, ack_by, notified, failed, first_seq, last_seq"
)


def _json(v: Any) -> str:
    """JSON text, keys sorted; orjson (a third of json's time), json for what it refuses
    (integers beyond 64 bits, keys that are not text)."""
    try:
        return orjson.dumps(v, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:
        return json.dumps(v, sort_keys=True, default=str)


def _text(v: Any) -> str | None:
    return v if isinstance(v, str) else None


class Builder:
    """Folds journal events into the index; the one writer of the file (one thread)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        db.executescript(_DDL)
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        if not meta:
            meta = {
                "schema": SCHEMA, "generation": secrets.token_hex(8), "seq": 0, "ts": "",
                "series_version": 0,
            }  # fmt: skip
            db.executemany("INSERT INTO meta VALUES (?, ?)", list(meta.items()))
        if meta.get("schema") != SCHEMA:
            raise IndexBroken(f"index schema {meta.get('schema')!r}, this vigil writes {SCHEMA}")
        self.seq: int = int(meta["seq"])
        self.ts: str = str(meta["ts"])
        self.generation: str = str(meta["generation"])
        self.series: dict[str, int] = dict(db.execute("SELECT fp, id FROM series"))
        # series first seen in an event without the alert's rule and labels (an
        # acknowledgement or a notification only): named by the next event that has them
        self.bare = {fp for (fp,) in db.execute("SELECT fp FROM series WHERE rule IS NULL")}
        self.series_version = int(meta["series_version"])
        self._named: list[tuple[str, str, str]] = []
        self.open: dict[int, Episode] = {}  # series -> its open episode
        self.latest: dict[int, Episode] = {}  # series -> its newest episode
        rows = db.execute(
            f"SELECT {_EP_COLUMNS} FROM episodes WHERE id IN "
            "(SELECT max(id) FROM episodes GROUP BY series)"
        )
        for r in rows:
            ep = Episode(*r)
            ep.firing = ep.firing_at is not None
            self.latest[ep.series] = ep
            if ep.end is None:
                self.open[ep.series] = ep
        self.next_id = 1 + (db.execute("SELECT max(id) FROM episodes").fetchone()[0] or 0)
        self._new_series: list[tuple[int, str, str | None, str]] = []
        self._dirty: dict[int, Episode] = {}
        self._events: list[tuple[Any, ...]] = []
        self._hours: dict[int, list[int]] = {}

    # -- folding ---------------------------------------------------------------------------
    def _series_of(self, fp: str, ev: dict[str, Any]) -> int:
        sid = self.series.get(fp)
        rule, labels = _text(ev.get("rule")), ev.get("labels")
        text = _json(labels if isinstance(labels, dict) else {})
        if sid is None:
            sid = len(self.series) + 1
            self.series[fp] = sid
            self._new_series.append((sid, fp, rule, text))
            if rule is None:
                self.bare.add(fp)
        elif rule is not None and fp in self.bare:
            self.bare.discard(fp)
            self._named.append((rule, text, fp))
        return sid

    def _hour(self, t: float, col: int) -> None:
        h = int(t // HOUR)
        row = self._hours.get(h)
        if row is None:
            row = self._hours[h] = [0, 0, 0]
        row[col] += 1

    def _event_row(
        self, sid: int, seq: int, t: float, kind: str, ep: Episode | None, ev: Any
    ) -> None:
        data = {k: v for k, v in ev.items() if k not in _DROP}
        self._events.append(
            (sid, seq, t, kind, ep.id if ep else None, _json(data) if data else None)
        )

    def apply(self, ev: dict[str, Any]) -> None:
        """Fold one journal event (as the readers yield them) into the pending batch."""
        seq, kind = ev["seq"], ev.get("event")
        t = epoch(ev.get("ts"))
        fp = ev.get("alert")
        if isinstance(fp, str):
            sid = self._series_of(fp, ev)
            ep = self.open.get(sid)
            if kind in ("pending", "firing"):
                if ep is not None and kind == "pending" and ep.firing:
                    self._close(ep, t, "pending", seq)
                    ep = None
                if ep is None:
                    ep = Episode(
                        self.next_id, sid, _text(ev.get("rule")), None, t, None, None, None,
                        None, None, None, 0, 0, seq, seq,
                    )  # fmt: skip
                    self.next_id += 1
                    self.open[sid] = self.latest[sid] = ep
                    self._hour(t, 0)
                if kind == "pending" and ep.pending_at is None:
                    ep.pending_at = t
                if kind == "firing" and not ep.firing:
                    ep.firing = True
                    ep.firing_at = t
                    self._hour(t, 1)
                ep.severity = _text(ev.get("severity"))
            elif kind in ("resolved", "inactive"):
                if ep is not None:
                    self._close(ep, t, kind, seq)
            elif kind == "acknowledged" and ep is not None and ep.acked_at is None:
                ep.acked_at, ep.ack_by = t, _text(ev.get("by"))
            ep = ep or self.latest.get(sid)
            if ep is not None:
                ep.last_seq = seq
                self._dirty[ep.id] = ep
            self._event_row(sid, seq, t, str(kind), ep, ev)
        elif kind in ("notified", "notify_failed"):
            fps = ev.get("alerts")
            for one in fps if isinstance(fps, list) else ():
                if not isinstance(one, str):
                    continue
                sid = self._series_of(one, {})
                ep = self.latest.get(sid)
                if ep is not None:
                    if kind == "notified":
                        ep.notified += 1
                    else:
                        ep.failed += 1
                    self._dirty[ep.id] = ep
                self._event_row(sid, seq, t, kind, ep, ev)
        self.seq, self.ts = seq, str(ev.get("ts", ""))

    def _close(self, ep: Episode, t: float, kind: str, seq: int) -> None:
        ep.end, ep.end_kind, ep.last_seq = t, kind, seq
        if ep.firing:  # a clock stepped back may stamp an end before the firing start
            self._hour(max(t, ep.firing_at or t), 2)
        self._dirty[ep.id] = ep
        del self.open[ep.series]

    # -- writing ---------------------------------------------------------------------------
    def flush(self) -> None:
        """Write the batch and the position it reaches in one transaction."""
        db = self.db
        db.execute("BEGIN")
        try:
            db.executemany("INSERT INTO series VALUES (?, ?, ?, ?)", self._new_series)
            if self._named:  # readers reload their series when the version changes
                db.executemany("UPDATE series SET rule = ?, labels = ? WHERE fp = ?", self._named)
                self.series_version += 1
                db.execute(
                    "UPDATE meta SET value = ? WHERE key = 'series_version'", (self.series_version,)
                )
            eps = list(self._dirty.values())
            db.executemany(
                f"INSERT OR REPLACE INTO episodes ({_EP_COLUMNS}) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [e.row() for e in eps],
            )
            db.executemany(
                "INSERT OR REPLACE INTO ep_span VALUES (?, ?, ?)",
                [(e.id, e.start, OPEN_END if e.end is None else max(e.end, e.start)) for e in eps],
            )
            db.executemany("INSERT OR REPLACE INTO events VALUES (?, ?, ?, ?, ?, ?)", self._events)
            db.executemany(
                "INSERT INTO hours VALUES (?, ?, ?, ?) ON CONFLICT(h) DO UPDATE SET "
                "started = started + excluded.started, fired = fired + excluded.fired, "
                "ended = ended + excluded.ended",
                [(h, *v) for h, v in self._hours.items()],
            )
            db.executemany(
                "UPDATE meta SET value = ? WHERE key = ?", [(self.seq, "seq"), (self.ts, "ts")]
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._new_series, self._dirty, self._events, self._hours = [], {}, [], {}
        self._named = []

    def fold(self, events: Iterable[dict[str, Any]]) -> int:
        n = 0
        for ev in events:
            self.apply(ev)
            n += 1
        if n:
            self.flush()
        return n
