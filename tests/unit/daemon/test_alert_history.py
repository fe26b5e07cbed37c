"""The alert's `history` (engine/daemon/alert_history.py): from the history index when
it is ready, else from a bounded read of the journal's tail, never the whole journal."""

from __future__ import annotations

import asyncio
from pathlib import Path

from engine.config.model import LogConfig
from engine.daemon import alert_history as ah
from engine.journal.history import HistoryIndex
from engine.journal.journal import Journal

FP, OTHER = "00aa11bb22cc33dd", "ffee00dd11cc22bb"


def _journal(data_dir: Path, noise: int) -> None:
    j = Journal(data_dir, LogConfig(fsync="never"))
    j.open()
    j.append_sync([{"event": "pending", "alert": FP, "rule": "r", "labels": {}}])
    j.append_sync([{"event": "resolved", "alert": OTHER, "rule": "r", "labels": {}}] * noise)
    j.append_sync([{"event": "firing", "alert": FP, "rule": "r", "labels": {}}])
    j.append_sync([{"event": "notified", "channel": "c", "key": "k", "alerts": [OTHER, FP]}])
    j.close_sync()


def test_without_the_index_only_the_journals_tail_is_read(tmp_path: Path) -> None:
    _journal(tmp_path, ah.TAIL_SCAN)  # the pending event is beyond the lines read
    events, source = asyncio.run(ah.alert_history(None, str(tmp_path), FP))
    assert source == "journal_tail"
    assert [e["event"] for e in events] == ["firing", "notified"]


def test_from_the_index_in_the_journals_shape(tmp_path: Path) -> None:
    _journal(tmp_path, ah.TAIL_SCAN)
    index = HistoryIndex(str(tmp_path))
    index.build_now()
    index.ready = True

    async def ask() -> tuple[list[dict[str, object]], str]:
        try:
            return await ah.alert_history(index, str(tmp_path), FP)
        finally:
            index.stop()

    events, source = asyncio.run(asyncio.wait_for(ask(), 30))
    assert source == "index"
    assert [(e["event"], e.get("alert")) for e in events] == [
        ("pending", FP), ("firing", FP), ("notified", None)
    ]  # fmt: skip
    assert events[-1]["alerts"] == [OTHER, FP] and str(events[0]["ts"]).endswith("Z")


def test_a_journal_that_cannot_be_read_gives_no_history(tmp_path: Path) -> None:
    (tmp_path / "alerts.jsonl").write_bytes(b"damaged: " + FP.encode() + b"\n")
    events, source = asyncio.run(ah.alert_history(None, str(tmp_path), FP))
    assert (events, source) == ([], "unavailable")
