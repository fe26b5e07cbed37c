"""Hostile receivers (issue 14.F): the servers vigil notifies are not trusted to
answer, to answer quickly, or to answer HTTP. A real daemon notifies one good
webhook receiver and four hostile ones on a raw socket server this test scripts
byte by byte:

- trickle: a status line, then one header line every 0.2 s, never the end;
- endless: a chunked body that never ends (64 KiB chunks as fast as vigil reads);
- garbage: bytes that are not HTTP, then the connection closed;
- hang: reads the request and never answers.

Each hostile attempt must end within the channel's `timeout` (one deadline for
the whole request, not per read: a trickle of header lines does not extend it),
the endless body is cut (the daemon does not grow), the good channel gets its
firing and resolve as if nothing happened, and /health answers within 1 s
throughout. (The failures are journaled as `notify_failed` once the retries are
spent, up to ~40 s later: not waited for here.)
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from tests.adversarial._api_live import HealthProbe, wait_ready
from tests.integration.daemon import Daemon
from tests.integration.receivers import Receiver

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

TIMEOUT = 2.0  # each hostile channel's `timeout`
HOSTILE = ("trickle", "endless", "garbage", "hang")

RULES = """
group: app
interval: 100ms
rules:
  - id: queue_deep
    expr: app.queue > fixed.limit
    severity: critical
"""

CHANNELS = """
channels:
  - {{name: good, type: webhook, url: "{good}/hook"}}
  - {{name: trickle, type: webhook, url: "{bad}/trickle", timeout: 2s}}
  - {{name: endless, type: webhook, url: "{bad}/endless", timeout: 2s}}
  - {{name: garbage, type: webhook, url: "{bad}/garbage", timeout: 2s}}
  - {{name: hang, type: webhook, url: "{bad}/hang", timeout: 2s}}
routes:
  - channels: [good, trickle, endless, garbage, hang]
    group_by: [rule]
    group_wait: 0s
    group_interval: 500ms
    repeat_interval: 1h
"""


class HostileServer:
    """A threaded raw TCP server; the request path picks the misbehaviour. For each
    connection it records (path, seconds until vigil hung up, bytes sent)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.done: list[tuple[str, float, int]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        t0 = time.monotonic()
        sent = 0
        path = "?"
        with conn, contextlib.suppress(OSError):
            conn.settimeout(30)
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65536:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                head += chunk
            path = head.split(b" ", 2)[1].decode() if head.count(b" ") >= 2 else "?"
            try:
                if path == "/trickle":
                    conn.sendall(b"HTTP/1.1 200 OK\r\n")
                    while not self._stop.wait(0.2):
                        sent += conn.send(b"X-Slow: 1\r\n")
                elif path == "/endless":
                    conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                    chunk = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"
                    while not self._stop.is_set():
                        sent += conn.send(chunk)
                elif path == "/garbage":
                    conn.sendall(b"\x00\xffNOT HTTP AT ALL\r\n\r\n" * 64)
                elif path == "/hang":
                    while not self._stop.is_set() and conn.recv(65536):
                        pass  # until vigil hangs up (recv returns b"")
            except OSError:
                pass  # vigil hung up: what this records
        with self._lock:
            self.done.append((path, time.monotonic() - t0, sent))

    def close(self) -> None:
        self._stop.set()
        self.sock.close()


def paths_all(bad: HostileServer) -> list[str]:
    return [p for p, _, _ in bad.done]


def wait_until(cond: Callable[[], bool], timeout: float, bad: HostileServer) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"hostile server saw only {bad.done}"
        time.sleep(0.1)


def test_hostile_receivers_cost_their_own_channel_only(tmp_path: Path) -> None:
    bad = HostileServer()
    try:
        with Receiver() as good:
            d = Daemon(tmp_path, RULES, CHANNELS.format(good=good.url, bad=bad.url))
            d.set_values({"queue": 1})
            d.start()
            try:
                wait_ready(d)
                assert d.proc is not None
                proc = psutil.Process(d.proc.pid)
                rss0 = proc.memory_info().rss
                peak = rss0
                with HealthProbe(d) as health:
                    d.set_values({"queue": 50})
                    good.wait_for(lambda rs: len(rs) >= 1, 15)  # not held up by the others
                    # the hanging receiver is cut off and tried again (retries, backoff)
                    wait_until(lambda: Counter(paths_all(bad))["/hang"] >= 2, 30, bad)
                    deadline = time.monotonic() + 4  # retries go on against them
                    while time.monotonic() < deadline:
                        peak = max(peak, proc.memory_info().rss)
                        time.sleep(0.1)
                    d.set_values({"queue": 1})
                    good.wait_for(lambda rs: len(rs) >= 2, 15)
                health.check()
            finally:
                assert d.stop() == 0
            statuses = [r.json()["status"] for r in good.requests]
            assert statuses == ["firing", "resolved"], statuses
            log = d.log()
            assert "Traceback" not in log, log[-3000:]
    finally:
        bad.close()
    assert set(paths_all(bad)) >= {f"/{k}" for k in HOSTILE}, bad.done
    # one deadline for the whole request: a trickle of bytes does not extend it
    slowest = max(t for p, t, _ in bad.done if p in ("/trickle", "/endless", "/hang"))
    assert slowest < TIMEOUT + 3.0, bad.done  # + a margin for a loaded machine
    assert peak - rss0 < 100 * 1024 * 1024, (peak - rss0) // 2**20
