"""Non-regular files where vigil expects files: a FIFO among the rule files (or as a
`${file:...}` secret) once hung `vigil validate` forever and, in the daemon, the
reload thread while it held the reload lock, so later edits, POST /api/v1/reload
and SIGTERM stopped working. Only regular files are read; each of these is one
line naming the file and what it is."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.adversarial._api_live import HealthProbe
from tests.integration.daemon import VIGIL, Daemon

pytestmark = pytest.mark.slow

RULES = """
group: app
interval: 100ms
rules:
  - id: queue_deep
    expr: app.queue > fixed.limit
"""
TOKEN = "fifo-test-admin-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def validate(root: Path, *paths: str, timeout: float = 30.0) -> tuple[int, str]:
    out = subprocess.run(
        [VIGIL, "validate", "-c", str(root / "vigil.yaml"), *paths],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=timeout,  # the old code never returned
    )
    return out.returncode, out.stdout + out.stderr


def test_validate_names_a_fifo_among_rule_files(tmp_path: Path) -> None:
    Daemon(tmp_path, RULES)
    os.mkfifo(tmp_path / "rules" / "pipe.yaml")
    code, out = validate(tmp_path)
    assert code != 0, out
    assert "Traceback" not in out, out
    assert "pipe.yaml" in out and "not a regular file (a FIFO)" in out, out


def test_validate_refuses_a_socket_and_a_fifo_given_by_name(tmp_path: Path) -> None:
    Daemon(tmp_path, RULES)
    os.mkfifo(tmp_path / "named.yaml")
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(tmp_path / "rules" / "sock.yaml"))
        code, out = validate(tmp_path, str(tmp_path / "named.yaml"), str(tmp_path / "rules"))
    assert code != 0 and "Traceback" not in out, out
    assert "named.yaml" in out and "a FIFO" in out, out
    assert "sock.yaml" in out and "a socket" in out, out


def test_a_fifo_secret_file_is_refused_not_waited_for(tmp_path: Path) -> None:
    channels = (
        "channels:\n  - name: out\n    type: file\n    path: ${file:" + str(tmp_path / "p") + "}\n"
    )
    Daemon(tmp_path, RULES, channels)
    os.mkfifo(tmp_path / "p")
    code, out = validate(tmp_path)
    assert code != 0 and "Traceback" not in out, out
    assert "not a regular file (a FIFO)" in out, out


def wait(cond: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if cond():
                return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_fifo_in_the_rules_folder_blocks_no_reload_and_no_stop(tmp_path: Path) -> None:
    d = Daemon(tmp_path, RULES, tokens={"deployer": (TOKEN, "admin")})
    d.start()
    stopped = False
    try:
        with httpx.Client(base_url=d.url, timeout=10) as c:
            wait(lambda: c.get("/ready").status_code == 200, "ready")
            with HealthProbe(d) as health:  # /health within 1 s throughout the attack
                os.mkfifo(tmp_path / "rules" / "pipe.yaml")  # the watcher sees it: a reload
                evs = d.wait_for(
                    lambda evs: any(e["event"] == "config_rejected" for e in evs),
                    what="the reload rejected",
                )
                rejected = next(e for e in evs if e["event"] == "config_rejected")
                assert any("pipe.yaml" in e and "a FIFO" in e for e in rejected["errors"]), rejected
                # the reload lock is free: the API answers at once, with the same error
                t0 = time.monotonic()
                r = c.post("/api/v1/reload", headers=ADMIN)
                assert time.monotonic() - t0 < 5.0
                assert r.status_code == 422 and "a FIFO" in r.text, r.text
                # and later edits are seen again
                (tmp_path / "rules" / "pipe.yaml").unlink()
                (tmp_path / "rules" / "r.yaml").write_text(
                    RULES.replace("queue_deep", "queue_deeper")
                )
                d.wait_for(
                    lambda evs: (
                        any(e["event"] == "config_loaded" and e.get("rules") for e in evs[-20:])
                        and any(
                            e.get("rule") == "config_invalid" and e["event"] == "resolved"
                            for e in evs
                        )
                    ),
                    what="the fixed configuration loaded",
                )
            health.check()
        assert d.proc is not None
        t0 = time.monotonic()
        code = d.stop(signal.SIGTERM, timeout=20)
        stopped = True
        assert code == 0 and time.monotonic() - t0 < 20
    finally:
        if not stopped:
            d.stop()
    assert "Traceback" not in d.log(), d.log()[-3000:]


def test_a_load_stuck_in_a_read_is_given_up_in_time() -> None:
    # what no file type check can catch (a hung network mount): the daemon's load
    # runs in a thread it never waits for beyond the bound, nor joins at exit
    import asyncio
    import threading

    from engine.runtime.reload_thread import LoadTimeout, run_bounded

    release = threading.Event()

    async def main() -> float:
        t0 = time.monotonic()
        with pytest.raises(LoadTimeout, match=r"over 0\.3 s"):
            await run_bounded(lambda: release.wait(30), timeout=0.3)
        with pytest.raises(ValueError, match="bad"):
            await run_bounded(lambda: int("bad"), timeout=5)
        assert await run_bounded(lambda: 42, timeout=5) == 42
        return time.monotonic() - t0

    try:
        assert asyncio.run(main()) < 5.0  # asyncio.run did not join the stuck thread
    finally:
        release.set()
