"""A real `vigil run` following a log: killed with kill -9 mid-stream and started
again, it reads exactly the lines written meanwhile, including the rest of the
file that was rotated away while it was down.

What is exact: the offset and the counters are one journal record per file,
journaled after each pass and before the pass's sample is published. So after
the restart the count of lines read equals the count of lines written, no more
(nothing counted twice) and no less (nothing lost), and the rule that reads it
fires. Lines read in the pass the kill interrupted (their record not journaled)
are read again by the next start; that pass's sample was never published, so no
rule saw them the first time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

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


def test_kill9_mid_stream_then_restart_reads_exactly_the_lines_written_meanwhile(
    tmp_path: Path,
) -> None:
    log = tmp_path / "app.log"
    d = Daemon(tmp_path, RULES)
    cfg = tmp_path / "vigil.yaml"
    cfg.write_text(
        cfg.read_text().replace(
            "collectors:\n",
            f"collectors:\n  - {{name: logs, type: logtail, paths: [{log}], interval: 100ms}}\n",
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
        # mid-stream: the daemon has journaled some lines, the writer goes on
        d.wait_for(lambda evs: any(r["lines"] > 500 for r in records(d, log)), what="a record")
        d.kill9()
        at_kill = records(d, log)[-1]["lines"]
        assert at_kill < FIRST, "the writer must still be writing at the kill"
        assert w1.wait(30) == 0
        # while down: the file is rotated away (rename) and a new one written
        os.rename(log, f"{log}.1")
        w2 = writer(log, SECOND, FIRST)
        time.sleep(0.5)
        d.start()
        assert w2.wait(30) == 0
        total = FIRST + SECOND
        d.wait_for(
            lambda evs: any(r["lines"] >= total for r in records(d, log)),
            timeout=30,
            what=f"{total} lines",
        )
        time.sleep(1.0)  # a few more passes: nothing more may be counted
        last = records(d, log)[-1]
        assert last["lines"] == total, f"read {last['lines']} lines of {total}"
        assert last["offset"] == log.stat().st_size
        assert last["rotations"] == 1
        assert "firing" in d.alert_events("every_line_read")
    finally:
        for w in (w1, w2):
            if w is not None and w.poll() is None:
                w.kill()
                w.wait(10)
        if d.proc is not None and d.proc.poll() is None:
            d.stop()
