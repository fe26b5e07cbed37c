"""Questions the history index answers (engine/journal/history_build.py builds it).

    episodes(rule, matchers, t1, t2, limit)   episodes that overlap [t1, t2], newest start first
    state_at(t)                               alerts pending or firing at t
    counts(by, t1, t2)                        per hour or day: episodes started, firing starts,
                                              alerts firing at any time in the bucket
    timeline(fp)                              every per-alert event of one fingerprint

Intervals: an episode is active on [start, end) (resolved at `end`, not active then),
firing on [firing_at, max(end, firing_at)]; an open episode has no end. Label matchers are
engine/common/matchers.py's (Alertmanager's semantics), applied to the alert's labels
plus `alertname` (its rule), like the routes; they are matched once per alert
instance (series), not per episode, so a year of episodes costs no regex per row.

One Reader per thread: SQLite connections are not shared.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Sequence
from typing import Any

from engine.common.matchers import Matcher, matches_all
from engine.journal.history_build import HOUR, IndexBroken, connect, index_path

DAY = 86400
_IN_LIST = 500  # up to this many series: look each one up; beyond, filter a time scan
_EP = (
    "e.id, e.series, e.rule, e.severity, e.start, e.pending_at, e.firing_at, e.end, "
    "e.end_kind, e.acked_at, e.ack_by, e.notified, e.failed"
)


class Series:
    __slots__ = ("fp", "labels", "match", "rule")

    def __init__(self, fp: str, rule: str | None, labels: dict[str, str]) -> None:
        self.fp, self.rule, self.labels = fp, rule, labels
        self.match = {**labels, "alertname": rule or ""}


class Reader:
    """Read-only queries over the index of one data_dir."""

    def __init__(self, data_dir: str) -> None:
        self.path = index_path(data_dir)
        self.db: sqlite3.Connection | None = None
        self._ino = -1
        self._generation = ""
        self._series: dict[int, Series] = {}
        self._by_fp: dict[str, int] = {}
        self._max_series = 0

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None

    def _refresh(self) -> sqlite3.Connection:
        """The connection, reopened if the index was rebuilt; new series loaded."""
        try:
            ino = os.stat(self.path).st_ino
        except FileNotFoundError:
            self.close()
            raise IndexBroken("the history index is being built") from None
        if self.db is None or ino != self._ino:
            self.close()
            self.db, self._ino = connect(self.path, write=False), ino
            self._series, self._by_fp, self._max_series, self._generation = {}, {}, 0, ""
        db = self.db
        meta = dict(db.execute("SELECT key, value FROM meta"))
        if "generation" not in meta:
            raise IndexBroken("the history index is being built")
        generation = f"{meta['generation']}/{meta.get('series_version')}"
        if generation != self._generation:
            self._series, self._by_fp, self._max_series = {}, {}, 0
            self._generation = generation
        for sid, fp, rule, labels in db.execute(
            "SELECT id, fp, rule, labels FROM series WHERE id > ? ORDER BY id",
            (self._max_series,),
        ):
            self._series[sid] = Series(fp, rule, json.loads(labels))
            self._by_fp[fp] = sid
            self._max_series = sid
        return db

    def position(self) -> tuple[int, str]:
        """(seq, ts) of the last journal event the index covers."""
        db = self._refresh()
        meta = dict(db.execute("SELECT key, value FROM meta"))
        return int(meta["seq"]), str(meta["ts"])

    def _wanted(self, rule: str | None, matchers: Sequence[Matcher]) -> set[int] | None:
        """Series ids the filters let through; None: no filter."""
        if rule is None and not matchers:
            return None
        return {
            sid
            for sid, s in self._series.items()
            if (rule is None or s.rule == rule) and matches_all(matchers, s.match)
        }

    def _episode(self, r: Sequence[Any]) -> dict[str, Any]:
        s = self._series[r[1]]
        return {
            "id": r[0],
            "fingerprint": s.fp,
            "rule": r[2] if r[2] is not None else s.rule,
            "labels": s.labels,
            "severity": r[3],
            "start": r[4],
            "pending_at": r[5],
            "firing_at": r[6],
            "end": r[7],
            "end_kind": r[8],
            "acked_at": r[9],
            "acked_by": r[10],
            "notified": r[11],
            "notify_failed": r[12],
        }

    # -- episodes ----------------------------------------------------------------------------
    def episodes(
        self,
        *,
        rule: str | None = None,
        matchers: Sequence[Matcher] = (),
        t1: float | None = None,
        t2: float | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Episodes active at some time in [t1, t2], newest start first, at most `limit`."""
        db = self._refresh()
        lo = -1e18 if t1 is None else t1
        hi = 1e18 if t2 is None else t2
        want = self._wanted(rule, matchers)
        out: list[dict[str, Any]] = []
        if (want is not None and not want) or lo > hi:
            return out
        # those starting inside the window, newest first ...
        if want is not None and len(want) <= _IN_LIST:
            marks = ",".join("?" * len(want))
            rows = db.execute(
                f"SELECT {_EP} FROM episodes e WHERE e.series IN ({marks}) "
                "AND e.start >= ? AND e.start <= ? AND (e.end IS NULL OR e.end >= ?) "
                "ORDER BY e.start DESC, e.id DESC LIMIT ?",
                (*want, lo, hi, lo, limit),
            )
            out = [self._episode(r) for r in rows]
        else:
            cur = db.execute(
                f"SELECT {_EP} FROM episodes e WHERE e.start >= ? AND e.start <= ? "
                "AND (e.end IS NULL OR e.end >= ?) ORDER BY e.start DESC, e.id DESC",
                (lo, hi, lo),
            )
            for r in cur:
                if want is None or r[1] in want:
                    out.append(self._episode(r))
                    if len(out) >= limit:
                        break
            cur.close()
        # ... then those that started before it and were still active when it began
        if len(out) < limit and t1 is not None:
            older = [
                r
                for r in self._stab(db, lo, strict_start=True)
                if (want is None or r[1] in want) and (r[7] is None or r[7] >= lo)
            ]
            older.sort(key=lambda r: (r[4], r[0]), reverse=True)
            out.extend(self._episode(r) for r in older[: limit - len(out)])
        return out

    def _stab(self, db: sqlite3.Connection, t: float, *, strict_start: bool) -> list[Any]:
        """Episodes whose span holds t (the R*Tree's float32 bounds are rounded outwards,
        so the exact test on start and end is the caller's)."""
        op = "<" if strict_start else "<="
        return db.execute(
            f"SELECT {_EP} FROM ep_span s JOIN episodes e ON e.id = s.id "
            f"WHERE s.lo <= ? AND s.hi >= ? AND e.start {op} ?",
            (t, t, t),
        ).fetchall()

    # -- state at a time ---------------------------------------------------------------------
    def state_at(
        self, t: float, *, rule: str | None = None, matchers: Sequence[Matcher] = ()
    ) -> list[dict[str, Any]]:
        """Alerts active at t ([start, end)), each with its state then; oldest first."""
        db = self._refresh()
        want = self._wanted(rule, matchers)
        rows = [
            r
            for r in self._stab(db, t, strict_start=False)
            if (r[7] is None or r[7] > t) and (want is None or r[1] in want)
        ]
        rows.sort(key=lambda r: (r[4], r[0]))
        out = []
        for r in rows:
            ep = self._episode(r)
            ep["state"] = "firing" if r[6] is not None and r[6] <= t else "pending"
            out.append(ep)
        return out

    # -- counts ------------------------------------------------------------------------------
    def counts(self, by: str, t1: float, t2: float) -> list[dict[str, Any]]:
        """Buckets of `by` ("hour" or "day", UTC) from the one holding t1 to the one
        holding t2: episodes started, firing starts, and alerts firing at any time in
        the bucket (firing at its start, or starting to fire in it)."""
        db = self._refresh()
        width = HOUR if by == "hour" else DAY
        b1, b2 = int(t1 // width) * width, int(t2 // width) * width
        per = width // HOUR
        opened, ended = db.execute(
            "SELECT coalesce(sum(fired), 0), coalesce(sum(ended), 0) FROM hours WHERE h < ?",
            (b1 // HOUR,),
        ).fetchone()
        firing_now = opened - ended  # firing at the first bucket's start
        sums: dict[int, list[int]] = {}
        for h, started, fired, end in db.execute(
            "SELECT h, started, fired, ended FROM hours WHERE h >= ? AND h < ?",
            (b1 // HOUR, b2 // HOUR + per),
        ):
            row = sums.setdefault(h // per * width, [0, 0, 0])
            row[0] += started
            row[1] += fired
            row[2] += end
        out = []
        for b in range(b1, b2 + width, width):
            started, fired, end = sums.get(b, (0, 0, 0))
            out.append({"t": b, "started": started, "fired": fired, "firing": firing_now + fired})
            firing_now += fired - end
        return out

    # -- one alert ---------------------------------------------------------------------------
    def timeline(self, fp: str, *, limit: int = 1000) -> dict[str, Any] | None:
        """One fingerprint's episodes and its last `limit` events, in journal order; None
        if the index has never seen it."""
        db = self._refresh()
        sid = self._by_fp.get(fp)
        if sid is None:
            return None
        s = self._series[sid]
        eps = db.execute(
            f"SELECT {_EP} FROM episodes e WHERE e.series = ? ORDER BY e.id", (sid,)
        ).fetchall()
        rows = db.execute(
            "SELECT seq, ts, kind, episode, data FROM events WHERE series = ? "
            "ORDER BY seq DESC LIMIT ?",
            (sid, limit),
        ).fetchall()
        events = []
        for seq, ts, kind, episode, data in reversed(rows):
            ev: dict[str, Any] = {"seq": seq, "ts": ts, "event": kind, "episode": episode}
            if data is not None:
                ev.update(json.loads(data))
            events.append(ev)
        return {
            "fingerprint": fp,
            "rule": s.rule,
            "labels": s.labels,
            "episodes": [self._episode(r) for r in eps],
            "events": events,
        }
