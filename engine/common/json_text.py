"""Compact JSON text for the hot paths: CPython's C encoder, and orjson in front
of it where orjson's bytes are the same (make_fast_encoder).

json.dumps() builds a new JSONEncoder on every call, which is about half the
cost of encoding a typical journal event or a notification's key. These call
the C encoder directly; the output is byte for byte that of
json.dumps(obj, separators=(",", ":"), ensure_ascii=...), except that a Secret
becomes "***", mappings become objects and sets sorted arrays.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from engine.common.secret import Secret


def _default(o: object) -> object:
    """JSON for what json does not know; a Secret is never written."""
    if isinstance(o, Secret):
        return "***"
    if isinstance(o, Mapping):
        return dict(o)
    if isinstance(o, set | frozenset):
        return sorted(o, key=str)
    raise TypeError(f"a {type(o).__name__} cannot be written as JSON")


def make_encoder(
    *,
    ensure_ascii: bool,
    default: Callable[[object], object] = _default,
    allow_nan: bool = True,
) -> Callable[[object], str]:
    """Compact JSON text of an object; `default` converts what JSON does not know
    (by default: Secrets redacted, mappings, sets); without `allow_nan`, NaN and
    infinities raise ValueError, as json.dumps(allow_nan=False) does.

    Calls CPython's C encoder directly: JSONEncoder.encode() builds a new one
    on every call, which is half the cost of a typical event. No circular
    check (a cycle raises RecursionError): events are trees.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is not None:
        # these are the C quoting functions whenever the C encoder exists
        quote = (
            json.encoder.encode_basestring_ascii if ensure_ascii else json.encoder.encode_basestring
        )
        it = make(None, default, quote, None, ":", ",", False, False, allow_nan)
        return lambda o: "".join(it(o, 0))
    return json.JSONEncoder(
        ensure_ascii=ensure_ascii,
        separators=(",", ":"),
        default=default,
        allow_nan=allow_nan,
        check_circular=False,
    ).encode


# a str as a JSON string, non-ASCII escaped (the C function when there is one)
quote_ascii: Callable[[str], str] = json.encoder.encode_basestring_ascii

compact_json = make_encoder(ensure_ascii=False)
compact_json_ascii = make_encoder(ensure_ascii=True)


# Where orjson's bytes may differ from json's (measured on orjson 3.13, pinned by
# tests/unit/common/test_json_text.py): floats of decimal exponent -5 to -9, which json
# writes as 1e-05 and 1.5e-07 and orjson as 0.00001 and 1.5e-7. Each pattern has a
# literal prefix, so a search costs ~0.3 ms per MB; a string that happens to match
# only costs a fallback.
_MAY_DIFFER = (re.compile(rb"e-[0-9](?:[,\]}]|\Z)"), re.compile(rb"0\.0000"))


@functools.cache
def _orjson() -> tuple[Callable[..., bytes], int]:
    """orjson.dumps, and the options that send to `default` the types json hands
    to it (times, dataclasses) but orjson would write itself. Imported on first
    use: with uuid and zoneinfo it costs ~2.5 ms, which `vigil validate` and
    `vigil test` need not pay."""
    import orjson

    return orjson.dumps, orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def make_fast_encoder(
    fallback: Callable[[object], bytes],
    default: Callable[[Any], object] = _default,
    *,
    nan_is_null: bool,
) -> Callable[[object], bytes]:
    """UTF-8 compact JSON through orjson (2-5x json's C encoder), byte
    for byte what `fallback` gives: whatever orjson refuses (ints beyond 64 bits,
    non-string keys, lone surrogates, nesting over 254) or may write otherwise
    (_MAY_DIFFER) is written by `fallback`. orjson writes NaN and infinities as
    null: unless `nan_is_null` (the fallback does so too), any null in the output
    sends the object to `fallback`. Times and dataclasses go to `default`, as with
    json; enums, UUIDs and numpy values, which json refuses, orjson writes."""
    first, second = (p.search for p in _MAY_DIFFER)

    def encode(obj: object) -> bytes:
        dumps, passthrough = _orjson()
        try:
            out = dumps(obj, default=default, option=passthrough)
        except TypeError:  # orjson.JSONEncodeError; the fallback raises its own
            return fallback(obj)
        if first(out) or second(out) or (not nan_is_null and b"null" in out):
            return fallback(obj)
        return out

    return encode
