"""journalctl's JSON stream however it arrives in reads (issue 16, hostile entries):
an entry longer than what the source holds (any local user can log a 300 KB
message, or binary data journalctl prints as a list of byte values) is one line,
cut to max_line_bytes and counted in `truncated`, with the entries around it
intact, whatever the sizes of the reads that bring it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
import pytest

from engine.collectors.logtail.follow import Limits
from engine.collectors.logtail.journald import JournaldSettings, JournalSource
from engine.collectors.logtail.sink import LineBatch

MAX = 4096
HOLD = 16 * MAX + 65536  # what the source holds of one entry


class Lines:
    def __init__(self) -> None:
        self.got: list[str] = []

    def lines(self, batch: LineBatch) -> None:
        self.got.extend(batch.lines)

    def values(self) -> Mapping[str, Any]:
        return {}


def entry(i: int, message: object, *, message_first: bool = False) -> bytes:
    head = {"__CURSOR": f"s=ab;i={i}", "__REALTIME_TIMESTAMP": "1765000000000000"}
    ident = {"SYSLOG_IDENTIFIER": "sshd", "SYSLOG_PID": "4242"}
    fields = {"MESSAGE": message, **ident} if message_first else {**ident, "MESSAGE": message}
    return orjson.dumps({**head, **fields}) + b"\n"


def read(stream: bytes, chunk: int) -> tuple[JournalSource, list[str]]:
    sink = Lines()
    src = JournalSource(JournaldSettings(), Limits(MAX, 65536), "saved", [sink])
    for at in range(0, len(stream), chunk):
        src._lines(stream[at : at + chunk])
    return src, sink.got


ATTACK = "Failed password for root from 203.0.113.50 port 22 ssh2 "
LONG_TEXT = ATTACK + "A\\x1b\u00e9" * 100_000  # escapes and a 2-byte character, ~500 KB
LONG_BINARY = [*(ATTACK + "x" * 200_000).encode(), 0xFF]  # journalctl's byte list


@pytest.mark.parametrize("chunk", [1000, 4096, 65536, 10**7])
@pytest.mark.parametrize("long", [LONG_TEXT, LONG_BINARY], ids=["text", "bytes"])
@pytest.mark.parametrize("first", [False, True], ids=["ident-first", "message-first"])
def test_an_entry_longer_than_held_is_one_cut_line_between_intact_ones(
    chunk: int, long: object, first: bool
) -> None:
    """With MESSAGE before SYSLOG_IDENTIFIER (as journalctl printed a real 150 KB
    entry), the identifier comes from the entry's tail: the cut line still starts
    with `sshd[4242]: `, which the sshd format needs."""
    middle = entry(2, long, message_first=first)
    stream = entry(1, "first") + middle + entry(3, "third")
    assert len(middle) > HOLD  # the case under test: it cannot be held whole
    src, got = read(stream, chunk)
    assert len(got) == 3, [g[:80] for g in got]
    assert got[0] == "sshd[4242]: first" and got[2] == "sshd[4242]: third"
    assert got[1].startswith("sshd[4242]: " + ATTACK), got[1][:100]
    assert len(got[1].encode()) <= MAX
    assert "\ufffd" not in got[1][:-1]  # the cut did not garble what it kept
    assert src.counters.lines == 3 and src.counters.truncated == 1
    assert src.cursor == "s=ab;i=3"


@pytest.mark.parametrize("chunk", [5, 4096, 65536])
def test_an_entry_held_whole_then_cut_and_the_message_first_order(chunk: int) -> None:
    middle = entry(2, ATTACK + "B" * 100_000, message_first=True)
    assert MAX < len(middle) < HOLD
    src, got = read(entry(1, "first") + middle + entry(3, "third"), chunk)
    assert [g[:30] for g in got] == [
        "sshd[4242]: first",
        "sshd[4242]: " + ATTACK[:18],
        "sshd[4242]: third",
    ]
    assert src.counters.lines == 3 and src.counters.truncated == 1


@pytest.mark.parametrize("kind", ["text", "bytes"])
@pytest.mark.parametrize("first", [False, True], ids=["ident-first", "message-first"])
def test_a_cut_anywhere_in_an_escape_character_or_byte_value_keeps_a_true_prefix(
    kind: str, first: bool
) -> None:
    """Every position of the cut within the long field: the kept text is always a
    prefix of the message (no cut escape, character or byte value misread)."""
    message = ATTACK + '\\"\u00e9\u2603\x01' * 40_000  # 15 bytes of JSON each
    for shift in range(15):
        text = "x" * shift + message + "y" * shift  # moves where head and tail are cut
        long: object = text if kind == "text" else list(text.encode())
        src, got = read(entry(1, long, message_first=first) + entry(2, "next"), 65536)
        assert len(got) == 2 and got[1] == "sshd[4242]: next", shift
        assert ("sshd[4242]: " + text).startswith(got[0]), (shift, got[0][-20:])
        assert len(got[0]) > 1000 and src.counters.truncated == 1
