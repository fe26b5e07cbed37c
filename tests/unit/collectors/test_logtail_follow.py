"""logtail: one open file cut into lines, and which file a file is (identity)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from engine.collectors.logtail.follow import Counters, Limits, OpenFile
from engine.collectors.logtail.identity import FP_LEN, FileId, find_elsewhere, identify

LIMITS = Limits(max_line_bytes=16, batch_bytes=64)


def read_all(of: OpenFile, c: Counters, *, final: bool = False) -> list[str]:
    out: list[str] = []
    while (b := of.read_batch("p", c, final=final)) is not None:
        assert b.start <= b.end == of.offset
        out += b.lines
    return out


def test_a_half_written_line_waits_for_its_newline(tmp_path: Path) -> None:
    p = tmp_path / "a.log"
    p.write_bytes(b"one\ntw")
    of, c = OpenFile.open(str(p), 0, LIMITS), Counters()
    assert read_all(of, c) == ["one"]
    assert of.offset == 4
    with open(p, "ab") as f:
        f.write(b"o\nthree\n")
    assert read_all(of, c) == ["two", "three"]
    assert (c.lines, c.bytes, c.truncated) == (3, 14, 0)


def test_a_finished_file_gives_its_last_line_without_a_newline(tmp_path: Path) -> None:
    p = tmp_path / "a.log"
    p.write_bytes(b"one\nlast")
    of = OpenFile.open(str(p), 0, LIMITS)
    assert read_all(of, Counters(), final=True) == ["one", "last"]


def test_invalid_utf8_becomes_replacement_characters_and_crlf_is_one_newline(
    tmp_path: Path,
) -> None:
    p = tmp_path / "a.log"
    p.write_bytes(b"ok\r\nbad \xff\xfe\xc3(\r\n\n")
    of = OpenFile.open(str(p), 0, LIMITS)
    assert read_all(of, Counters()) == ["ok", "bad \ufffd\ufffd\ufffd(", ""]


def test_long_lines_are_cut_and_counted_and_their_rest_skipped_across_reads(
    tmp_path: Path,
) -> None:
    p = tmp_path / "a.log"
    exact = b"e" * 16
    p.write_bytes(b"a" * 40 + b"\n" + exact + b"\nshort\n" + b"b" * 200 + b"\nend\n")
    of, c = OpenFile.open(str(p), 0, LIMITS), Counters()
    assert read_all(of, c) == ["a" * 16, "e" * 16, "short", "b" * 16, "end"]
    assert c.truncated == 2
    assert c.bytes == p.stat().st_size


def test_a_long_line_still_being_written_is_cut_once(tmp_path: Path) -> None:
    p = tmp_path / "a.log"
    p.write_bytes(b"x" * 100)
    of, c = OpenFile.open(str(p), 0, LIMITS), Counters()
    assert read_all(of, c) == ["x" * 16]
    with open(p, "ab") as f:
        f.write(b"x" * 100 + b"\nnext\n")
    assert read_all(of, c) == ["next"]
    assert c.truncated == 1


def test_restarted_sees_copytruncate_even_when_the_file_grew_back(tmp_path: Path) -> None:
    p = tmp_path / "a.log"
    p.write_bytes(b"0001 first line\n0002 second\n")
    of = OpenFile.open(str(p), 0, LIMITS)
    read_all(of, Counters())
    assert not of.restarted()
    p.write_bytes(b"0003 other start, and longer than before\n")  # truncate + write
    assert of.restarted()
    of.start_over()
    assert of.offset == 0 and not of.restarted()


def test_the_fingerprint_grows_with_a_short_file(tmp_path: Path) -> None:
    p = tmp_path / "a.log"
    p.write_bytes(b"ab\n")
    of = OpenFile.open(str(p), 0, LIMITS)
    assert of.ident.fp_len == 3
    with open(p, "ab") as f:
        f.write(b"c" * 500 + b"\n")
    assert not of.restarted()
    assert of.ident.fp_len == FP_LEN


def test_identity_records_round_trip_and_junk_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "a.log"
    p.write_bytes(b"x\n")
    fd = os.open(p, os.O_RDONLY)
    try:
        ident = identify(fd)
    finally:
        os.close(fd)
    assert FileId.from_record(ident.to_record()) == ident
    for junk in (None, [], {"dev": "1", "ino": 2, "fp_len": 0, "fp": ""},
                 {**ident.to_record(), "ino": -1}, {**ident.to_record(), "fp_len": True}):  # fmt: skip
        assert FileId.from_record(junk) is None


def test_find_elsewhere_prefers_the_same_inode_then_a_copy(tmp_path: Path) -> None:
    p = tmp_path / "access.log"
    p.write_bytes(b"line 1\nline 2\n")
    fd = os.open(p, os.O_RDONLY)
    ident = identify(fd)
    os.close(fd)
    shutil.copyfile(p, tmp_path / "access.log.0-copy")
    os.rename(p, tmp_path / "access.log.1")
    (tmp_path / "access.log.2.gz").write_bytes(b"\x1f\x8b compressed")
    (tmp_path / "other.log").write_bytes(b"line 1\nline 2\n")  # not named after it
    p.write_bytes(b"new\n")
    found = find_elsewhere(ident, str(p))
    assert found is not None
    os.close(found[0])
    assert found[1] == str(tmp_path / "access.log.1")
    os.unlink(tmp_path / "access.log.1")
    found = find_elsewhere(ident, str(p))
    assert found is not None
    os.close(found[0])
    assert found[1] == str(tmp_path / "access.log.0-copy")
    assert find_elsewhere(ident, str(p), min_size=100) is None  # too short to hold the rest
