"""17 (speed): a real `vigil run` keeps the report's rows beside its history index
(its history child writes data_dir/history/rows), and `vigil report` reads them
while the daemon runs and writes: the same bytes as reading every journal line
(`--no-index`), before and after the rows are deleted under the running daemon
(which writes them again)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.journal.digest import listing, rows_dir
from tests.integration.daemon import Daemon
from tests.integration.test_notify_e2e import RULES
from tests.unit.report import fixed
from tests.unit.report.journal_gen import write_journal

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

VIGIL = str(Path(sys.executable).with_name("vigil"))
UNTIL = "2026-12-03T00:00:00Z"


def report(data: Path, *extra: str) -> bytes:
    p = subprocess.run(
        [VIGIL, "report", "--data-dir", str(data), "--since", "2d", "--until", UNTIL,
         "--format", "json", *extra],
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout


def kept(data: Path) -> set[int]:
    """Inodes of the rotated segments whose rows the daemon keeps."""
    rotated = {p.stat().st_ino for p in data.glob("alerts-*.jsonl")}
    return rotated & set(listing(rows_dir(str(data))))


def wait_kept(data: Path) -> None:
    deadline = time.monotonic() + 60
    want = {p.stat().st_ino for p in data.glob("alerts-*.jsonl")}
    while kept(data) != want:
        assert time.monotonic() < deadline, "the daemon did not keep the rows"
        time.sleep(0.2)


def test_report_reads_the_rows_the_running_daemon_keeps(tmp_path: Path) -> None:
    data = tmp_path / "data"
    evs = sorted(fixed.events(), key=lambda x: x[0])
    write_journal(str(data), evs, segment_bytes=1500)  # several rotated segments
    plain = report(data, "--no-index")
    d = Daemon(tmp_path, RULES)
    d.set_values({"queue": 50})
    d.start()
    try:
        wait_kept(data)
        # the daemon writes on (its alert fires; its child indexes) as reports read
        for _ in range(3):
            assert report(data) == plain
        shutil.rmtree(rows_dir(str(data)))  # deleted under the running daemon
        assert report(data) == plain
        wait_kept(data)
        assert report(data) == plain
    finally:
        assert d.stop() == 0
    assert report(data) == plain == report(data, "--no-index")
