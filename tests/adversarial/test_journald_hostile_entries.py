"""Hostile journald entries (issue 16's journald source): any local user can write
to the journal (logger, systemd-cat), so its entries are as hostile as a web log's
lines. Against a real daemon reading a real systemd-journald: a 150 KB message
and a 150 KB binary one (journalctl prints it as a list of byte values, ~600 KB),
NUL, terminal escapes, invalid UTF-8 and a burst of 300 entries. /health answers
within 1 s throughout, each entry is counted once, the long ones are cut to
max_line_bytes (and counted in `truncated`), the collector never goes down, and
the attack at the start of a long entry still counts. The two long entries are
longer than what the source holds of one entry: it found that such an entry was
dropped, whole, whenever the reads brought it in pieces (tests/unit/collectors/
test_logtail_journald_stream.py pins every read size); and, earlier, the
missing --all (journalctl printed the long message as null).
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.adversarial._api_live import health_during, stop_clean
from tests.integration.journald_ns import Journald
from tests.integration.test_logtail_journald import daemon, failed, following, records
from tests.integration.test_logtail_journald import journald as journald  # the fixture

BURST = 300  # under any rate limit journald may apply (its default burst is 10,000 per 30 s)


def test_hostile_entries_are_cut_counted_and_never_down_the_source(
    tmp_path: Path,
    journald: Journald,
) -> None:
    d = daemon(tmp_path, journald, expected=10**9, save="100ms")
    cfg = tmp_path / "vigil.yaml"
    cfg.write_text(
        cfg.read_text().replace("type: logtail,", "type: logtail, max_line_bytes: 4KiB,")
    )
    try:
        d.start()
        warm = following(d, journald)
        with health_during(d):
            journald.send(failed("203.0.113.50") + " " + "A" * 150_000)
            journald.send(failed("203.0.113.50").encode() + b" \xff" + b"B" * 150_000)
            journald.send(failed("203.0.113.50") + "\x00\x1b]2;pwned\x07")
            journald.send(failed("203.0.113.50").encode() + b" \xff\xfe\xc3")
            for i in range(BURST):
                journald.send(f"Connection closed by authenticating user u{i} 10.0.0.1 port 1")
            total = warm + 4 + BURST
            d.wait_for(lambda evs: any(r["lines"] >= total for r in records(d)), 60, "all")
            time.sleep(1.0)  # more passes: nothing counted twice
        last = records(d)[-1]
        assert last["lines"] == total, last
        assert last["truncated"] == 2, last
        evs = d.events()
        assert not any(e.get("rule") == "collector_down" for e in evs)
        fired = [e for e in evs if e["event"] == "firing" and e.get("rule") == "ssh_bruteforce"]
        assert [e["labels"]["ip"] for e in fired] == ["203.0.113.50"]
        # sent first, so counted by the time the count reached 3: both cut lines, each
        # with its `sshd[4242]: ` (journalctl prints their MESSAGE before the identifier)
        evidence = fired[0]["annotations"]["evidence"]
        attack = "journald sshd[4242]: " + failed("203.0.113.50")
        assert attack + " AAAA" in evidence and attack + " \ufffdBBBB" in evidence, evidence[:300]
    finally:
        if d.proc is not None and d.proc.poll() is None:
            stop_clean(d)
