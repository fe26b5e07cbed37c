"""One journal line: how an event is encoded, sealed with its CRC-32 and opened again.

Every line is one JSON object written whole, whose last member is a CRC-32 of
the text before it::

    {"v":1,"seq":7,"ts":"2026-11-22T20:00:00.123Z","event":"firing",...,"crc":"1a2b3c4d"}

Separate from the journal because the writer, the readers, replay, snapshots and
repair all speak this format, and none of them should need the others for it.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable, Mapping
from typing import Any, cast

from engine.common.boundary import clean, clean_text, valid_text
from engine.common.json_text import compact_json, compact_json_ascii, make_fast_encoder
from engine.errors import InputError, JournalError
from engine.journal.format import FORMAT_VERSION

Event = dict[str, Any]

# What every line we write starts with; lets readers skip lines without parsing them.
_PREFIX = re.compile(rb'\{"v":(\d+),"seq":(\d+),(?:"ts":"([^"\\]*)")?')
CRC_HEAD = b',"crc":"'
SUFFIX_LEN = 18  # ,"crc":"xxxxxxxx"}


def encode_json(obj: Any) -> bytes:
    """Compact JSON as the journal writes it: lone surrogates (from
    surrogateescape'd input) only survive as \\u escapes."""
    try:
        return compact_json(obj).encode("utf-8")
    except UnicodeEncodeError:
        return compact_json_ascii(obj).encode("ascii")


# encode_json()'s bytes through orjson, for events (json_text.make_fast_encoder):
# any null may be a NaN, which json writes NaN, so an object with one is written
# by encode_json; events seldom hold one, unlike the stored alerts of snapshots
# (`"ack":null`), which therefore keep encode_json.
encode_event: Callable[[Any], bytes] = make_fast_encoder(encode_json, nan_is_null=False)


def seal_encoded(body: bytes) -> bytes:
    """An encoded JSON object (`{...}`) as one checksummed line."""
    head = body[:-1]
    return b'%s,"crc":"%08x"}\n' % (head, zlib.crc32(head))


def seal(obj: Mapping[str, Any]) -> bytes:
    """`obj` as one checksummed line, newline included."""
    return seal_encoded(encode_event(obj))


def writable(rec: Event, error: BaseException) -> tuple[Event, bytes]:
    """`rec` cut down to what can be written (engine/common/boundary.py's bounds), and why;
    as a last resort only its identity: the event is journaled either way."""
    bounded, _cut = clean(rec)
    try:
        out = cast(Event, bounded)
        return out, seal(out)
    except (RecursionError, ValueError, TypeError):
        keep = ("v", "seq", "ts", "event", "alert", "rule", "channel", "collector")
        out = {k: rec[k] for k in keep if isinstance(rec.get(k), str | int)}
        out["unwritable"] = clean_text(f"{type(error).__name__}: {error}", 500)
        return out, seal(out)


class BadLine(InputError):
    """A line that cannot be used. `damaged`: its bytes are wrong (torn or rotted),
    as opposed to well-formed content this version refuses."""

    def __init__(self, reason: str, *, damaged: bool = True) -> None:
        self.reason = reason
        self.damaged = damaged
        super().__init__(reason)


def check_crc(line: bytes) -> None:
    if len(line) < SUFFIX_LEN + 2 or line[-SUFFIX_LEN:-10] != CRC_HEAD or line[-2:] != b'"}':
        raise BadLine("no checksum at the end of the line")
    digits = line[-10:-2]
    if digits.strip(b"0123456789abcdef"):
        raise BadLine("malformed checksum")
    if zlib.crc32(line[:-SUFFIX_LEN]) != int(digits, 16):
        raise BadLine("checksum mismatch")


def open_line(line: bytes) -> Event:
    """The event in one line (without its newline); raises BadLine."""
    check_crc(line)
    try:
        obj = json.loads(line)
    except ValueError:  # includes UnicodeDecodeError
        raise BadLine("checksum matches but the line is not valid JSON") from None
    if not isinstance(obj, dict):
        raise BadLine("not a JSON object", damaged=False)
    del obj["crc"]
    v, seq = obj.get("v"), obj.get("seq")
    if v != FORMAT_VERSION:
        if type(v) is int and v > FORMAT_VERSION:
            raise BadLine(f"format version {v} is newer than this vigil reads", damaged=False)
        raise BadLine(f"bad format version {v!r}", damaged=False)
    if type(seq) is not int or seq < 1:
        raise BadLine(f"bad seq {seq!r}", damaged=False)
    if not isinstance(obj.get("event"), str):
        raise BadLine("no event name", damaged=False)
    if b"\\ud" in line:  # a lone surrogate escaped by an older vigil: valid text now
        return cast(Event, valid_text(obj))
    return obj


def location(path: str, offset: int) -> str:
    return f"{path}:{offset}"


def corrupt(path: str, offset: int, reason: str) -> JournalError:
    return JournalError(
        f"{location(path, offset)}: {reason}; `vigil log verify` lists the damage, "
        "`vigil log repair` quarantines it"
    )


def line_prefix(line: bytes) -> tuple[int, str | None] | None:
    """(seq, ts) read from the start of a line without parsing it, if it looks like ours."""
    m = _PREFIX.match(line)
    if m is None:
        return None
    ts = m.group(3)
    return int(m.group(2)), ts.decode("ascii", "replace") if ts is not None else None
