"""The orjson encoders (engine/common/json_text.py make_fast_encoder) of the API
(engine/api/responses.py) and of the journal (engine/journal/lines.py) write
exactly the bytes of the json encoders they replaced, on a corpus of awkward
values. A future orjson that writes anything differently outside what the
encoder sends back to json fails here."""

from __future__ import annotations

import math
import random
import re
import struct
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import pytest

from engine.api import responses
from engine.common.json_text import make_fast_encoder
from engine.common.matchers import Matcher
from engine.common.secret import Secret
from engine.journal import lines

pytestmark = pytest.mark.timeout(60)

STRINGS = [
    "",
    "plain",
    "é ü 中文 🚀",
    "\u2028\u2029\ufeff\uffff\u00a0",
    "\x00\x01\x08\x0b\x1f\x7f\x80\x9f",
    '\b\f\n\r\t"\\/',
    "</script><!--",
    "node-1",
    "e-1,",  # looks like a float's exponent: falls back, same bytes
    "0.00001",
]
INTS = [0, 1, -1, 2**53, 2**63 - 1, 2**63, 2**64 - 1, 2**64, 2**70, -(2**63), -(2**64), True]
FLOATS = [
    0.1,
    1.0,
    -0.0,
    0.0,
    1 / 3,
    2.5,
    1e15,
    1e16,
    1e17,
    1e22,
    1.5e300,
    1e-4,
    1e-5,
    1.5e-7,
    1e-9,
    1e-10,
    5e-324,
    1.7976931348623157e308,
    math.nan,
    math.inf,
    -math.inf,
]


def _floats() -> list[float]:
    """Decimal-looking values at every exponent, and random bit patterns."""
    out = [m * 10.0**e for e in range(-320, 309) for m in (1, -1.5, 3.14159, 9.99)]
    rng = random.Random(15)
    for _ in range(50_000):
        f = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        out.append(f)
    return out


def _corpus() -> list[Any]:
    when = datetime(2026, 11, 22, 20, 0, 0, 123000, tzinfo=UTC)
    values: list[Any] = [*STRINGS, *INTS, *FLOATS, None, False]
    return [
        *({"v": v} for v in values),
        {"values": values},
        {"b": 1, "a": 2, "é": [1, {"z": None}], "": ()},  # key order kept, tuples are lists
        {"deep": [[[[[[{"x": [1.5, "y"]}]]]]]]},
        {1: "an int key", None: "null key"},
        {"at": when, "naive": when.replace(tzinfo=None)},
        {"secret": Secret("hunter2"), "set": {"b", "a"}, "ro": MappingProxyType({"k": "v"})},
        {"matcher": Matcher("team", frozenset({"a", "b"})), "regex": re.compile("a+")},
        {"lone": "\ud800"},  # a lone surrogate: both refuse it
        {"too deep": _nested(300)},
    ]


def _nested(depth: int) -> Any:
    out: Any = 1
    for _ in range(depth):
        out = [out]
    return out


def _outcome(encode: Any, value: Any) -> bytes | str:
    try:
        out: bytes = encode(value)
        return out
    except Exception as e:
        return f"raises {type(e).__name__}"


ENCODERS = {
    "api": (responses.encode, responses._encode_json),
    "journal": (lines.encode_event, lines.encode_json),
}


@pytest.mark.parametrize("which", ENCODERS)
def test_encoding_is_byte_identical_to_the_json_encoder(which: str) -> None:
    new, old = ENCODERS[which]
    for value in _corpus():
        assert _outcome(new, value) == _outcome(old, value), value
    floats = _floats()
    for start in range(0, len(floats), 1000):
        chunk = {"values": floats[start : start + 1000]}
        assert new(chunk) == old(chunk)


def test_the_journal_still_writes_nan_and_lone_surrogates_as_before() -> None:
    assert lines.encode_event({"v": math.nan, "w": None}) == b'{"v":NaN,"w":null}'
    assert lines.encode_event({"s": "a\udcff"}) == b'{"s":"a\\udcff"}'


@pytest.mark.parametrize("which", ENCODERS)
def test_orjson_writes_json_bytes_wherever_it_is_trusted(which: str) -> None:
    """Without the fallback: every value orjson writes without a sign of a
    difference is json's bytes (what changes with orjson's version)."""
    old = ENCODERS[which][1]
    if which == "api":
        fast = make_fast_encoder(_no_fallback, responses.ApiEncoder().default, nan_is_null=True)
    else:
        fast = make_fast_encoder(_no_fallback, nan_is_null=False)
    trusted = 0
    for value in [*_corpus(), *({"v": f} for f in _floats())]:
        try:
            out = fast(value)
        except _FellBack:
            continue
        assert out == old(value), value
        trusted += 1
    assert trusted > 40_000  # most values take the fast path


def test_a_typical_listing_takes_the_fast_path() -> None:
    fast = make_fast_encoder(_no_fallback, responses.ApiEncoder().default, nan_is_null=True)
    view = {
        "fingerprint": "98a3cb8492d0763f",
        "labels": {"host": "web-001", "service": "svc-1", "env": "prod"},
        "annotations": {"summary": "cpu at 91.2% on web-001 — é"},
        "value": 91.234,
        "starts_at": "2026-12-06T04:24:18.390Z",
        "firing_since": None,
        "silenced_by": [],
        "escalation": 0,
    }
    body = {"alerts": [view] * 100}
    assert fast(body) == responses._encode_json(body)


class _FellBack(Exception):
    pass


def _no_fallback(_value: object) -> bytes:
    raise _FellBack
