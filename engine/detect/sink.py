"""The detection line sink: batches of lines -> fields -> pattern hits -> per-key windows.

This is the seam with the follower (engine/collectors/logtail/sink.py, `LineSink`):
the collector builds one `DetectSink(settings.parse(its settings))` and adds it as a
sink; the follower calls `lines(batch)` from its reader thread for every batch, and
`values()` at the end of every pass, whose mapping joins the collector's sample:

    keys    [{labels: {ip}, ip, hits: {pack: n}, patterns: {name: n}, <window>: value,
              <bucket>_full: bool, last_seen, evidence: [{at, path, offset, line, patterns}]}]
            one element per key (most hits first, at most max_reported): `each: web.keys`
    totals  {lines, parsed, unparsed, allowed, unkeyed, hits: {pack: n}, patterns: {name: n},
             keys, keys_dropped, keys_expired, keys_unlisted}   since the collector started

A rule reads it like any other `each` list:

    - id: web_sqli
      each: web.keys
      expr: it.hits.sqli >= 3 or it.probes_full
      annotations: {summary: "{{ labels.ip }}: {{ it.hits.sqli }} SQLi attempts"}

Nothing here does I/O or reads a clock unless asked to: `clock` (default
time.time) is called once per batch and once per `values()`, and both methods take
an explicit `now` for tests and benchmarks. Hits and windows run on arrival time,
not on the time written in the line (a replayed old log counts as now).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from engine.detect.patterns import CACHE_SIZE, CACHE_TEXT, Matcher, compile_regex, field_text
from engine.detect.ranking import Ranking
from engine.detect.settings import DetectSettings
from engine.detect.windows import (
    INF,
    KeyState,
    KeyTable,
    Slotted,
    Window,
    WindowSpec,
    slot,
    slot_of,
    steady_until,
    value,
)

EVIDENCE_CHARS = 1024  # a kept line is cut here: evidence is for people, not replays
KEY_CHARS = 256  # a key is an alert label: a hostile log must not make it huge
_IP_CACHE = 65_536


class Batch(Protocol):
    """What the follower hands over: consecutive lines of one file (its LineBatch)."""

    @property
    def path(self) -> str: ...

    @property
    def start(self) -> int: ...

    @property
    def lines(self) -> Sequence[str]: ...


class DetectSink:
    def __init__(self, settings: DetectSettings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self._parse = settings.format.parse
        self._matcher = Matcher(settings.patterns)
        self._names = tuple(p.name for p in settings.patterns)
        self._pack_of = {p.name: p.pack for p in settings.patterns}
        self._patterns_of = tuple(
            frozenset({p.name, p.pack}) for p in settings.patterns
        )  # what a window's `lines: [names]` can name
        self.table = KeyTable(
            settings.windows,
            max_keys=settings.max_keys,
            idle=settings.idle,
            max_distinct=settings.max_distinct,
            evidence=settings.evidence,
        )
        specs = settings.windows
        # windows every keyed line feeds, split by whether they need a field value
        self._always = tuple(
            j for j, s in enumerate(specs) if not s.filtered and s.kind != "distinct"
        )
        self._always_distinct = tuple(
            (j, s.field) for j, s in enumerate(specs) if not s.filtered and s.kind == "distinct"
        )
        # filtered windows: those that only count hits are skipped on the 99 % without one
        self._on_hit = tuple((j, s) for j, s in enumerate(specs) if s.filtered and s.lines != "all")
        self._filtered = tuple(
            (j, s) for j, s in enumerate(specs) if s.filtered and s.lines == "all"
        )
        self._allow = tuple((f, compile_regex(rx, f"allow.{f}")) for f, rx in settings.allow)
        # per allow entry, text -> allowed: user agents repeat, and an RE2 call from
        # Python costs more than the rest of a benign line's work
        self._allow_seen: tuple[dict[str, bool], ...] = tuple({} for _ in self._allow)
        self._ip_allowed: dict[str, bool] = {}
        self.counts = {"lines": 0, "parsed": 0, "unparsed": 0, "allowed": 0, "unkeyed": 0}
        self.pattern_totals = dict.fromkeys(self._names, 0)
        self._ranking: Ranking[dict[str, int]] = Ranking()
        # the elements of the last snapshot, key -> (score, hits by pattern, element):
        # a key no line touched since, with the same score and hits, is listed with
        # the same element object (most of them, between two passes a second apart),
        # which the boundary walk (engine/common/boundary.py, Memo) then skips too
        self._listed: dict[str, tuple[tuple[float, ...], dict[str, int], dict[str, Any]]] = {}
        self._now = float("-inf")

    def time(self, now: float) -> float:
        """The sink's time for a clock reading `now`: never before one it was given.
        Windows measure durations, and reading one drops what has left it; had the
        clock stepped back, a value dropped at the later reading would be gone while
        one not read then would count again, so keys would differ by when they were
        last read. After a step back the windows stand still until the clock is
        past where they were."""
        if now > self._now:
            self._now = now
        return self._now

    # -- LineSink ----------------------------------------------------------------------

    def lines(self, batch: Batch, now: float | None = None) -> None:
        self.feed(batch.lines, self.clock() if now is None else now, batch.path, batch.start)

    def values(self, now: float | None = None) -> dict[str, Any]:
        return self.snapshot(self.clock() if now is None else now)

    # -- the work ------------------------------------------------------------------------

    def feed(self, lines: Iterable[str], now: float, path: str = "", start: int = 0) -> None:
        """Parse, match and count `lines` (consecutive, from byte `start` of `path`)."""
        now = self.time(now)
        parse = self._parse
        match = self._matcher.match if self.settings.patterns else None
        key_field = self.settings.key
        touch = self.table.touch
        keys = self.table.keys
        dirty = self._ranking.dirty.add
        move_to_end = keys.move_to_end
        # what each window's add() takes, computed once for the whole batch
        args = [
            now if s.kind in ("bucket", "distinct") else slot(s, now) for s in self.settings.windows
        ]
        always = tuple((j, args[j]) for j in self._always)
        always_distinct, filtered, on_hit = self._always_distinct, self._filtered, self._on_hit
        hit_slot = slot_of(self.settings.window, now)
        allow, networks = self._allow, self.settings.allow_networks
        pending: list[tuple[int, dict[str, object]]] = []  # evidence waiting for its offset
        unparsed = allowed = unkeyed = 0
        lines = lines if isinstance(lines, Sequence) else list(lines)
        n = len(lines)
        for i, line in enumerate(lines):
            f = parse(line)
            if f is None:
                unparsed += 1
                continue
            key = f.get(key_field)
            if networks and key is not None and self._in_networks(key):
                allowed += 1
                continue
            if allow and self._allowed(f, line):
                allowed += 1
                continue
            hits = match(f, line) if match is not None else ()
            if key is None:
                unkeyed += 1
                if hits:
                    self._count_hits(None, hits, hit_slot)
                continue
            if len(key) > KEY_CHARS:
                key = key[:KEY_CHARS]
            dirty(key)
            st = keys.get(key)
            if st is None:
                st = touch(key, now)
            else:  # KeyTable.touch for a known key, inlined: it runs on every line
                move_to_end(key)
                st.last = now
            ws = st.windows
            for j, arg in always:
                ws[j].add(arg)
            for j, field in always_distinct:
                v = f.get(field)
                if v is not None:
                    ws[j].add(now, v)
            wanted = bool(hits)
            for j, spec in filtered:  # `where` only: checked inline, no call per line
                for field, values in spec.where:
                    if f.get(field) not in values:
                        break
                else:
                    wanted = True
                    self._add(ws[j], spec, args[j], f)
            if hits:
                for j, spec in on_hit:
                    if self._wants(spec, f, hits):
                        self._add(ws[j], spec, args[j], f)
            if hits:
                self._count_hits(st.hits, hits, hit_slot)
            if wanted and st.evidence.maxlen:
                ev: dict[str, object] = {
                    "at": now,
                    "path": path,
                    "offset": start,
                    "line": line[:EVIDENCE_CHARS],
                    "patterns": [self._names[h] for h in hits],
                }
                st.evidence.append(ev)
                pending.append((i, ev))
        if pending:
            _set_offsets(lines, start, pending)
        counts = self.counts
        counts["lines"] += n
        counts["parsed"] += n - unparsed
        counts["unparsed"] += unparsed
        counts["allowed"] += allowed
        counts["unkeyed"] += unkeyed

    def _count_hits(
        self, per_key: dict[str, Slotted] | None, hits: tuple[int, ...], hit_slot: int
    ) -> None:
        totals = self.pattern_totals
        for h in hits:
            name = self._names[h]
            totals[name] += 1
            if per_key is not None:
                c = per_key.get(name)
                if c is None:
                    c = per_key[name] = Slotted(self.settings.window)
                c.add(hit_slot)

    @staticmethod
    def _add(w: Window, spec: WindowSpec, arg: float, f: dict[str, str]) -> None:
        if spec.kind != "distinct":
            w.add(arg)
        elif (v := f.get(spec.field)) is not None:
            w.add(arg, v)

    def _wants(self, spec: WindowSpec, f: dict[str, str], hits: tuple[int, ...]) -> bool:
        on = spec.lines
        if on == "hit" and not hits:
            return False
        if on not in ("all", "hit") and all(self._patterns_of[h].isdisjoint(on) for h in hits):
            return False
        return all(f.get(field) in values for field, values in spec.where)

    def _in_networks(self, key: str) -> bool:
        got = self._ip_allowed.get(key)
        if got is None:
            try:
                addr = ipaddress.ip_address(key)
                got = any(addr in net for net in self.settings.allow_networks)
            except ValueError:
                got = False
            if len(self._ip_allowed) >= _IP_CACHE:
                self._ip_allowed.clear()
            self._ip_allowed[key] = got
        return got

    def _allowed(self, f: dict[str, str], line: str) -> bool:
        for (field, rx), seen in zip(self._allow, self._allow_seen, strict=True):
            text = field_text(f, line, field)
            if text is None:
                continue
            got = seen.get(text)
            if got is None:
                got = rx.search(text) is not None
                if len(text) <= CACHE_TEXT:
                    if len(seen) >= CACHE_SIZE:
                        seen.clear()
                    seen[text] = got
            if got:
                return True
        return False

    # -- what rules read -----------------------------------------------------------------

    def snapshot(self, now: float) -> dict[str, Any]:
        now = self.time(now)
        table = self.table
        table.expire(now)
        touched = set(self._ranking.dirty)  # their last_seen and evidence may differ
        # the best max_reported keys, re-scoring only those touched since the last
        # snapshot, listed or bounded above the listed (engine/detect/ranking.py)
        top = self._ranking.top(
            self.settings.max_reported, now, table.keys, lambda key: self._score(key, now)
        )
        before, kept = self._listed, {}
        listed = []
        for key, score, bp in top:
            was = before.get(key)
            if was is None or key in touched or was[0] != score or was[1] != bp:
                was = (score, bp, self._element(key, table.keys[key], bp, score, now))
            kept[key] = was
            listed.append(was[2])
        self._listed = kept
        pack_totals = dict.fromkeys(self.settings.packs, 0)
        for name, got in self.pattern_totals.items():
            pack_totals[self._pack_of[name]] += got
        totals: dict[str, Any] = dict(self.counts)
        totals.update(
            hits=pack_totals,
            patterns=dict(self.pattern_totals),
            keys=len(table),
            keys_dropped=table.dropped,
            keys_expired=table.expired,
            keys_unlisted=len(table) - len(listed),
        )
        return {"keys": listed, "totals": totals}

    def _score(self, key: str, now: float) -> tuple[tuple[float, ...], dict[str, int], float]:
        """A key's score (hits, then the windows in their order), hits by pattern,
        and until when both hold if no line touches the key."""
        st = self.table.keys[key]
        by_pattern: dict[str, int] = {}
        until = INF
        if st.hits:
            for name, c in list(st.hits.items()):
                got = c.read(now)
                if got:
                    by_pattern[name] = got
                    until = min(until, c.steady_until())
                else:
                    del st.hits[name]  # its window is empty: free it
        specs = self.settings.windows
        score = (
            sum(by_pattern.values()),
            *(value(spec, w, now) for spec, w in zip(specs, st.windows, strict=True)),
        )
        for w in st.windows:
            until = min(until, steady_until(w, now))
        return score, by_pattern, until

    def _element(
        self,
        key: str,
        st: KeyState,
        by_pattern: dict[str, int],
        score: tuple[float, ...],
        now: float,
    ) -> dict[str, Any]:
        """One `each` element; `score` holds the windows' values after the hits."""
        key_field = self.settings.key
        hits = dict.fromkeys(self.settings.packs, 0)
        for name, got in by_pattern.items():
            hits[self._pack_of[name]] += got
        el: dict[str, Any] = {"labels": {key_field: key}, key_field: key}
        el["hits"] = hits
        el["patterns"] = by_pattern
        for spec, v in zip(self.settings.windows, score[1:], strict=True):
            el[spec.name] = v
            if spec.kind == "bucket":
                el[f"{spec.name}_full"] = v >= spec.capacity
        el["last_seen"] = st.last
        el["evidence"] = [dict(e) for e in st.evidence]
        return el


def _set_offsets(
    lines: Sequence[str], start: int, pending: list[tuple[int, dict[str, object]]]
) -> None:
    """Byte offsets of the evidence lines: the batch's start plus the lines before
    (UTF-8 length and a newline each; exact unless the follower cut a line)."""
    offset, upto = start, 0
    for index, ev in pending:
        for line in lines[upto:index]:
            offset += (len(line) if line.isascii() else len(line.encode())) + 1
        upto = index
        ev["offset"] = offset
