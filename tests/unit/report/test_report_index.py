"""The report read from the rows the history index keeps (engine/journal/digest.py)
is the report of the journal as it is now, whatever state the index is in: absent,
behind the journal, made of another journal (replaced in place, cut short, copied
elsewhere) or damaged. Each case against the full scan (`index=False`)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from engine.journal.digest import Digester, chain, listing, rows_dir
from engine.report.build import make_report, render
from tests.unit.report import fixed
from tests.unit.report.journal_gen import write_journal

pytestmark = pytest.mark.timeout(60)

SEG = 1500  # bytes per segment: several rotated segments and an active one


def report(d: Path, *, index: bool = True) -> bytes:
    return render(make_report(str(d), fixed.OPTIONS, fixed.INTERVALS, index=index), "json")


def digest(d: Path) -> Digester:
    g = Digester(str(d), block=900, active_min=0)  # chunks of a few lines
    g.update()
    return g


def chunks(d: Path) -> list[Path]:
    return sorted(Path(p) for files in listing(rows_dir(str(d))).values() for p in files.values())


def events() -> list[tuple[float, dict[str, Any]]]:
    return sorted(fixed.events(), key=lambda x: x[0])


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    write_journal(str(d), events(), SEG)
    assert len(list(d.glob("alerts-*.jsonl"))) >= 3
    return d


def test_absent_index_reads_the_journal_and_writes_nothing(journal: Path) -> None:
    assert report(journal) == report(journal, index=False)
    assert not (journal / "history").exists()  # a report never writes the index


def test_index_read_is_the_same_report(journal: Path) -> None:
    plain = report(journal, index=False)
    digest(journal)
    assert len(chunks(journal)) > 5
    assert report(journal) == plain


def test_index_behind_the_journal(tmp_path: Path) -> None:
    d = tmp_path / "data"
    evs = events()
    write_journal(str(d), evs[: len(evs) // 2], SEG)
    digest(d)
    write_journal(str(d), evs[len(evs) // 2 :], SEG)  # the daemon stopped before indexing these
    assert report(d) == report(d, index=False)
    whole = tmp_path / "whole"
    write_journal(str(whole), evs, SEG)
    assert report(d) == report(whole, index=False)


def _shifted(evs: list[tuple[float, dict[str, Any]]]) -> list[tuple[float, dict[str, Any]]]:
    # the same events one second later: the same line lengths, other times
    return [(t + 1, ev) for t, ev in evs]


def test_journal_replaced_in_place(journal: Path, tmp_path: Path) -> None:
    """Another journal written into the same files (same inodes, same sizes): the
    chunks' ranges still fit, only the journal's bytes at their edges tell."""
    before = report(journal, index=False)
    digest(journal)
    other = tmp_path / "other"
    write_journal(str(other), _shifted(events()), SEG)
    for src in other.glob("alerts*.jsonl"):
        dst = journal / src.name
        ino = dst.stat().st_ino
        with open(dst, "r+b") as f:
            f.write(src.read_bytes())
            f.truncate()
        assert dst.stat().st_ino == ino
    assert report(other, index=False) != before  # the old rows would give the old report
    assert report(journal) == report(other, index=False)
    assert report(journal, index=False) == report(other, index=False)


def test_index_ahead_of_the_journal(tmp_path: Path) -> None:
    """The journal put back to an older copy of itself (a restore, a cut): the
    chunks of lines it does not hold any more are not read."""
    d = tmp_path / "data"
    evs = events()
    write_journal(str(d), evs[: len(evs) // 2], SEG)
    older = {p.name: p.read_bytes() for p in d.glob("alerts*.jsonl")}
    write_journal(str(d), evs[len(evs) // 2 :], SEG)
    running = digest(d)
    for p in d.glob("alerts*.jsonl"):
        if p.name not in older:
            p.unlink()
    for name, data in older.items():
        with open(d / name, "r+b") as f:  # in place: the same inodes
            f.write(data)
            f.truncate()
    assert report(d) == report(d, index=False)
    restored = tmp_path / "restored"
    write_journal(str(restored), evs[: len(evs) // 2], SEG)
    assert report(d) == report(restored, index=False)
    running.update()  # the running child: the rows of the files put back
    assert all_kept(d)
    assert report(d) == report(restored, index=False)


def test_active_segment_cut_short_under_the_running_child(tmp_path: Path) -> None:
    """The same file, the same first line, fewer lines (an older copy put back):
    the running child drops the rows past its end and keeps those of what it holds."""
    d = tmp_path / "data"
    evs = events()
    write_journal(str(d), evs[: len(evs) // 2])  # one segment: the active one
    older = (d / "alerts.jsonl").read_bytes()
    write_journal(str(d), evs[len(evs) // 2 :])
    running = digest(d)
    assert all_kept(d)
    with open(d / "alerts.jsonl", "r+b") as f:
        f.truncate(len(older))
    assert report(d) == report(d, index=False)
    running.update()
    assert all_kept(d)
    assert report(d) == report(d, index=False)


def all_kept(d: Path) -> bool:
    """Whether the kept rows cover every segment whole."""
    files = listing(rows_dir(str(d)))
    for seg in d.glob("alerts*.jsonl"):
        with open(seg, "rb") as f:
            ends = [c.end for c in chain(f.fileno(), files)]
        if (ends[-1] if ends else 0) != seg.stat().st_size:
            return False
    return True


def test_journal_copied_elsewhere(journal: Path, tmp_path: Path) -> None:
    digest(journal)
    copy = tmp_path / "copy"
    shutil.copytree(journal, copy)  # other inodes: the copied chunks describe no file here
    assert chunks(copy)
    assert report(copy) == report(journal, index=False)
    foreign = set(chunks(copy))
    digest(copy)  # the daemon started on the copy: its own chunks, the foreign ones gone
    assert chunks(copy) and not foreign & set(chunks(copy))
    assert report(copy) == report(journal, index=False)


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "garbage"])
def test_damaged_chunk_is_never_trusted(journal: Path, damage: str) -> None:
    plain = report(journal, index=False)
    digest(journal)
    victim = chunks(journal)[len(chunks(journal)) // 2]
    raw = bytearray(victim.read_bytes())
    if damage == "flip":
        raw[len(raw) - 5] ^= 0x01  # inside the rows
    elif damage == "truncate":
        del raw[len(raw) // 2 :]
    elif damage == "empty":
        raw = bytearray()
    else:
        raw = bytearray(os.urandom(len(raw)))
    victim.write_bytes(bytes(raw))
    assert report(journal) == plain
    running = Digester(str(journal), block=900, active_min=0, recheck=0)
    running.update()  # the daemon's child checks every chunk at its start and hourly
    assert victim.read_bytes() != bytes(raw)
    assert report(journal) == plain
    raw = bytearray(victim.read_bytes())
    raw[len(raw) - 5] ^= 0x01
    victim.write_bytes(bytes(raw))
    running.update()  # the same child, its hour (here: no time) later
    assert victim.read_bytes() != bytes(raw)
    assert report(journal) == plain


def test_rows_of_the_active_segment_wait_for_a_whole_block(tmp_path: Path) -> None:
    """The active segment's last lines are read from the journal until a block of
    them is there to keep; the rotated ones are kept whole."""
    d = tmp_path / "data"
    write_journal(str(d), events(), SEG)
    Digester(str(d), block=900, active_min=1 << 20).update()
    active = (d / "alerts.jsonl").stat().st_ino
    kept = listing(rows_dir(str(d)))
    assert active not in kept and len(kept) == len(list(d.glob("alerts-*.jsonl")))
    assert report(d) == report(d, index=False)
