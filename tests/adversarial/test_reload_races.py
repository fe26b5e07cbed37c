"""Reload races (issue 14.F): edits, SIGHUP and POST /api/v1/reload all at once.

A real `vigil run`. While one thread saves the rule file 30 times (alternately
in place and by rename, a few ms apart), two others send SIGHUP and ask the API
to reload as fast as they get answers. However the reloads interleave with the
saves, the configuration the daemon ends with is the last one saved (a reload
that read an older file never lands after one that read the newer), no reload
is ever answered late or with a 5xx, the daemon never stops, and /health answers
within 1 s throughout.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.adversarial._api_live import (
    ADMIN,
    HealthProbe,
    make_daemon,
    rule_expr,
    rules,
    wait_ready,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

SAVES = 30


def test_edits_signals_and_api_reloads_at_once_end_on_the_last_save(tmp_path: Path) -> None:
    d = make_daemon(tmp_path, rules(0))
    d.start()
    stop = threading.Event()
    answers: list[tuple[int, float]] = []
    signals = 0
    try:
        wait_ready(d)
        assert d.proc is not None
        proc = d.proc
        path = tmp_path / "rules" / "r.yaml"

        def hup() -> None:
            nonlocal signals
            while not stop.wait(0.03):
                proc.send_signal(signal.SIGHUP)
                signals += 1

        def api() -> None:
            auth = {"Authorization": f"Bearer {ADMIN}"}
            with httpx.Client(base_url=d.url, timeout=30, trust_env=False, headers=auth) as c:
                while not stop.is_set():
                    t0 = time.monotonic()
                    r = c.post("/api/v1/reload")
                    answers.append((r.status_code, time.monotonic() - t0))

        threads = [threading.Thread(target=f, daemon=True) for f in (hup, api)]
        with HealthProbe(d) as health:
            for t in threads:
                t.start()
            for limit in range(1, SAVES + 1):
                text = rules(limit)
                if limit % 2:
                    path.write_text(text)  # in place: a reload may read it half-written
                else:
                    tmp = path.with_suffix(".tmp")
                    tmp.write_text(text)
                    os.replace(tmp, path)
                time.sleep(0.02 + 0.01 * (limit % 3))
            time.sleep(1.0)  # the storm goes on a little after the last save
            stop.set()
            for t in threads:
                t.join(35)
            # the watcher's debounce, then the reload the last save asked for
            deadline = time.monotonic() + 15
            while rule_expr(d, "queue_deep") != f"app.queue > {SAVES}":
                assert time.monotonic() < deadline, rule_expr(d, "queue_deep")
                time.sleep(0.1)
            time.sleep(1.0)  # and it stays so: no older reload lands after it
            assert rule_expr(d, "queue_deep") == f"app.queue > {SAVES}"
        health.check()
        assert proc.poll() is None
    finally:
        stop.set()
        code = d.stop()
    assert code == 0
    assert signals > 10 and len(answers) > 5, (signals, len(answers))
    # a reload may be refused (a half-written file is invalid YAML), never fail or hang
    assert {s for s, _ in answers} <= {200, 422}, answers
    assert max(t for _, t in answers) < 10.0, answers
    assert "Traceback" not in d.log(), d.log()[-3000:]
    # every reload was journaled as loaded or rejected, and the last word is loaded
    evs = [e for e in d.events() if e["event"] in ("config_loaded", "config_rejected")]
    assert evs[-1]["event"] == "config_loaded"
