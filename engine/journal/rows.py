"""The journal events a report needs, read fast: whole segments in large blocks,
one regular expression over each block, lines of kinds the report ignores skipped.

A year of a busy daemon is a million lines; engine/journal/reader.py's
iter_events parses every one of them into a dict, which alone takes longer than
the report may. Here one pattern reads, from each line of a kept kind, its
timestamp and the few fields the report uses (in the order the journal writes
them); a line it cannot read that way is parsed whole. Every line used is
checksummed first: a report never counts damaged data (a line that fails is an
error, as for every reader). Lines the report skips are not checked: `vigil log
verify` does that.

Here, below the report, because the history follower keeps these rows too
(engine/journal/digest.py): the report (engine/report/scan.py) reads them from
there instead of parsing the lines again.
"""

from __future__ import annotations

import calendar
import contextlib
import re
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO

import orjson

from engine.journal.lines import corrupt

__all__ = ["KINDS", "Row", "blocks", "epoch", "rows"]

# the kinds a report reads; every other line is skipped without parsing
KINDS = frozenset(
    {
        b"pending",
        b"firing",
        b"resolved",
        b"inactive",
        b"flapping",
        b"acknowledged",
        b"escalated",
        b"notified",
        b"notify_failed",
    }
)
# One line of a kept kind: the journal's fixed head, then the fields each kind
# starts with, in the order the builders write them (engine/common/records.py: the
# format is a contract), then the checksum at the end. A kept line the specific
# branches miss (text with escapes, another layout) takes the last branch and is
# parsed whole instead.
_S = rb'[^"\\\n]*'
_LINE = re.compile(
    rb'\{"v":1,"seq":\d+,"ts":"((\d{4}-\d\d-\d\dT\d\d):(\d\d):(\d\d\.\d{3})Z)","event":"(?:'
    rb'(pending|firing|resolved|inactive|flapping)","alert":"('
    + _S
    + rb')","rule":"('
    + _S
    + rb')","labels":(\{[^{}\n]*\})'
    rb'|(notified|notify_failed)","channel":"' + _S + rb'","key":"(?:[^"\\\n]|\\.)*",'
    rb'"alerts":\[([^\]\n]*)\],"status":"' + _S + rb'","group_key":"[^"|\\\n]*\|(-?\d+)\|'
    rb'|(acknowledged)","alert":"(' + _S + rb')"'
    rb'|(escalated)","alert":"(' + _S + rb')","rule":"(' + _S + rb')"'
    rb"|(" + b"|".join(sorted(KINDS)) + rb')"'
    rb')[^\n]*"crc":"([0-9a-f]{8})"\}\n'
)
_SINCE = re.compile(rb'"firing_since":(\d+(?:\.\d+)?)[,}]')
BLOCK = 4 << 20  # bytes per read: the rows of one block are held at once
_CRC_AT = -18  # `,"crc":"xxxxxxxx"}`

# (epoch, kind, a, b, labels, since):
#   alert kinds      fp, rule, labels (raw JSON bytes or a dict), firing_since (resolved)
#   acknowledged     fp
#   escalated        fp, rule
#   notified/failed  tuple of fps, route index (bytes); a test notification is dropped
Row = tuple[float, bytes, Any, Any, Any, Any]

_hours: dict[bytes, int] = {}


def _hour(h: bytes) -> int:
    """Epoch of an hour `2026-11-22T20` of a journal timestamp, cached (a year has
    8,760 of them)."""
    base = calendar.timegm((int(h[0:4]), int(h[5:7]), int(h[8:10]), int(h[11:13]), 0, 0, 0, 0, 0))
    _hours[h] = base
    return base


def blocks(
    path: str, active: bool, start: int = 0, file: BinaryIO | None = None, size: int = BLOCK
) -> Iterator[tuple[int, bytes]]:
    """(offset, whole lines) of a segment from byte `start`, read in large blocks;
    `file`: the segment open already (the same file, even if renamed since)."""
    with open(path, "rb") if file is None else contextlib.nullcontext(file) as f:
        f.seek(start)
        rest = b""
        offset = start
        while True:
            block = f.read(size)
            if not block:
                break
            data = rest + block if rest else block
            cut = data.rfind(b"\n") + 1
            rest = data[cut:]
            yield offset, data[:cut]
            offset += cut
        if rest and not active:
            raise corrupt(path, offset, "incomplete final line")
        # an active segment's unfinished line is a write in progress: not yet an event


def _slow(line: bytes, kind: bytes) -> tuple[Any, Any, Any, Any] | None:
    """The fields of a line the patterns did not read (escapes, another layout)."""
    ev = orjson.loads(line)
    if kind in (b"notified", b"notify_failed"):
        if ev.get("kind") == "test":
            return None
        gk = str(ev.get("group_key", "")).split("|", 2)
        route = gk[1].encode() if len(gk) == 3 else b"?"
        return tuple(str(a).encode() for a in ev.get("alerts") or ()), route, None, None
    fp, rule = ev.get("alert"), ev.get("rule")
    if not isinstance(fp, str):
        return None
    labels = ev.get("labels")
    since = ev.get("firing_since")
    return (
        fp.encode(),
        rule.encode() if isinstance(rule, str) else None,
        labels if isinstance(labels, dict) else {},
        since if isinstance(since, int | float) else None,
    )


def epoch(ts: bytes) -> float:
    """A journal timestamp's epoch, computed as `rows` computes each row's."""
    return (_hours.get(ts[:13]) or _hour(ts[:13])) + int(ts[14:16]) * 60 + float(ts[17:23])


def rows(path: str, offset: int, block: bytes, lo: bytes, hi: bytes) -> Iterator[Row]:
    """The Rows of `block` (whole lines of `path` from byte `offset`) with lo <= ts < hi."""
    view = memoryview(block)
    crc32 = zlib.crc32
    hours = _hours
    for m in _LINE.finditer(block):
        (ts, hour, minute, second, alert, fp, rule, labels, sent, fps, route,
         ack, ack_fp, esc, esc_fp, esc_rule, other, crc) = m.groups()  # fmt: skip
        if ts < lo or ts >= hi:
            continue
        a, b = m.span()
        if a and block[a - 1] != 10:
            continue  # the same text nested inside another line (an audit's details)
        if crc32(view[a : b + _CRC_AT - 1]) != int(crc, 16):
            raise corrupt(path, offset + a, "checksum mismatch")
        base = hours.get(hour)
        if base is None:
            base = _hour(hour)
        t = base + int(minute) * 60 + float(second)
        if sent is not None:
            if fps:
                yield t, sent, tuple(fps[1:-1].split(b'","')), route, None, None
            elif block.find(b'"kind":"test"', a, b) < 0:
                yield t, sent, (), route, None, None
        elif alert is not None:
            since = None
            if alert == b"resolved":
                s = _SINCE.search(block, m.end(8), b)
                since = float(s.group(1)) if s is not None else None
            yield t, alert, fp, rule, labels, since
        elif ack is not None:
            yield t, ack, ack_fp, None, None, None
        elif esc is not None:
            yield t, esc, esc_fp, esc_rule, None, None
        else:
            try:
                got = _slow(block[a : b - 1], other)
            except orjson.JSONDecodeError:
                raise corrupt(path, offset + a, "not valid JSON") from None
            if got is not None:
                yield (t, other, *got)
