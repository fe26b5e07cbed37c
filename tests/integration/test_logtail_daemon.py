"""A real `vigil run` following a log: stopped mid-stream (kill -9, or SIGTERM)
and started again, it reads exactly the lines written meanwhile, including the
rest of the file that was rotated away while it was down.

What is exact: a file's offset and counters are one journal record, so they move
back together. After the restart the count of lines read equals the count of
lines written: no more (nothing counted twice) and no less (nothing lost), and
the rule that reads it fires. After kill -9 the lines read since the last record
(at most save_interval of them) are read again, and counted once; a SIGTERM
journals the offset at the stop, so nothing is read again.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.daemon import Daemon

WRITER = str(Path(__file__).with_name("logwriter.py"))
FIRST, SECOND = 8000, 6000  # lines of the file rotated while down, of the new one
RATE = 2000

RULES = f"""
group: logs
interval: 100ms
rules:
  - id: every_line_read
    expr: logs.lines >= {FIRST + SECOND}
    severity: info
"""


def writer(log: Path, lines: int, first: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, WRITER, str(log), "none", str(lines), "0", str(RATE),
         "--first", str(first)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def records(d: Daemon, log: Path) -> list[dict[str, Any]]:
    return [
        e["state"]
        for e in d.events()
        if e["event"] == "collector_state" and e.get("key") == str(log) and e.get("state")
    ]


@pytest.mark.parametrize("how", ["kill9", "sigterm"])
def test_a_restart_mid_stream_reads_exactly_the_lines_written_meanwhile(
    tmp_path: Path, how: str
) -> None:
    log = tmp_path / "app.log"
    d = Daemon(tmp_path, RULES)
    cfg = tmp_path / "vigil.yaml"
    cfg.write_text(
        cfg.read_text().replace(
            "collectors:\n",
            f"collectors:\n  - {{name: logs, type: logtail, paths: [{log}], interval: 100ms, "
            f"save_interval: {'300ms' if how == 'kill9' else '1h'}}}\n",
        )
    )
    w1 = w2 = None
    log.touch()
    try:
        d.start()
        # the first pass has seen the empty file (`start: saved` starts a file it has
        # no record of at its end): from here on every line counts
        d.wait_for(lambda evs: bool(records(d, log)), what="the first pass")
        w1 = writer(log, FIRST, 0)
        if how == "kill9":  # mid-stream: some lines journaled, the writer goes on
            d.wait_for(lambda evs: any(r["lines"] > 500 for r in records(d, log)), what="lines")
            d.kill9()
        else:
            time.sleep(1.0)
            assert d.stop() == 0
            evs = d.events()
            assert evs[-1]["event"] == "stopped"
            assert evs[-2]["event"] == "collector_state", "the offset is journaled at the stop"
        at_stop = records(d, log)[-1]["lines"]
        assert 0 < at_stop < FIRST, "the writer must still be writing at the stop"
        assert w1.wait(30) == 0
        # while down: the file is rotated away (rename) and a new one written
        os.rename(log, f"{log}.1")
        w2 = writer(log, SECOND, FIRST)
        time.sleep(0.5)
        d.start()
        assert w2.wait(30) == 0
        total = FIRST + SECOND
        d.wait_for(lambda evs: "firing" in d.alert_events("every_line_read"), 30, "all lines")
        time.sleep(1.0)  # a few more passes: nothing more may be counted
        assert d.stop() == 0  # journals the last offset
        last = records(d, log)[-1]
        assert last["lines"] == total, f"read {last['lines']} lines of {total}"
        assert last["offset"] == log.stat().st_size
        assert last["rotations"] == 1
    finally:
        for w in (w1, w2):
            if w is not None and w.poll() is None:
                w.kill()
                w.wait(10)
        if d.proc is not None and d.proc.poll() is None:
            d.stop()
