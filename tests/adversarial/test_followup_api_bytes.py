"""Hostile request bytes and slow readers against a real daemon.

Paths and query strings with invalid UTF-8 or percent-encoded lone surrogates
answer 4xx (or 200 with nothing found), never 500 or a traceback; three clients
reading a 3 MB alert list one byte a second do not delay /health (under 1 s),
and stopping the daemon meanwhile ends with one line, not a traceback each."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.daemon import Daemon

pytestmark = pytest.mark.slow

RULES = """
group: fleet
interval: 1s
rules:
  - id: disk_full
    each: app.disks
    expr: it.percent > 90
"""
TOKEN = "tok-bytes-0b7e"
AUTH = b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
SURROGATE = b"%ED%A0%80"

REQUESTS = [
    (b"GET", b"/api/v1/alerts?x=" + SURROGATE),
    (b"GET", b"/api/v1/alerts?rule=" + SURROGATE),
    (b"GET", b"/api/v1/alerts?label=" + SURROGATE + b"=%ff"),
    (b"GET", b"/api/v1/alerts?state=%ff"),
    (b"GET", b"/api/v1/alerts?%ff=1"),
    (b"GET", b"/api/v1/alerts/%ff"),
    (b"GET", b"/api/v1/alerts/" + SURROGATE),
    (b"POST", b"/api/v1/alerts/%ff/ack"),
    (b"POST", b"/api/v1/alerts/" + SURROGATE + b"/unack"),
    (b"DELETE", b"/api/v1/silences/" + SURROGATE),
    (b"GET", b"/api/v1/silences?all=%ff"),
    (b"GET", b"/api/v1/explain/" + SURROGATE),
    (b"GET", b"/api/v1/explain/disk_full?label=%ff=" + SURROGATE),
    (b"POST", b"/api/v1/channels/%ff/test"),
    (b"GET", b"/" + SURROGATE),
    (b"GET", b"/api/v1/alerts/\xff"),  # a raw byte, not even percent-encoded
    (b"GET", b"/api/v1/alerts?rule=\xed\xa0\x80"),
]


def raw(port: int, method: bytes, target: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(
            method + b" " + target + b" HTTP/1.1\r\nHost: x\r\n" + AUTH
            + b"Content-Length: 0\r\nConnection: close\r\n\r\n"
        )  # fmt: skip
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


def test_bad_bytes_in_paths_and_queries_and_slow_readers(tmp_path: Path) -> None:
    d = Daemon(tmp_path, RULES, tokens={"admin": (TOKEN, "admin")})
    disks = [
        {"labels": {"mountpoint": f"/m{i}", "pad": "x" * 200}, "percent": 95} for i in range(5000)
    ]
    d.set_values({"disks": disks})
    d.start()
    slow: list[socket.socket] = []
    try:
        with httpx.Client(base_url=d.url, timeout=10) as c:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                try:  # the API may not listen yet
                    r = c.get("/api/v1/alerts", headers={"Authorization": f"Bearer {TOKEN}"})
                except httpx.TransportError:
                    r = None
                if r is not None and r.status_code == 200 and len(r.json()["alerts"]) >= 5000:
                    break
                time.sleep(0.5)
            else:
                raise AssertionError("5,000 alerts never listed")
            assert r is not None and len(r.content) > 2_000_000

            for method, target in REQUESTS:
                out = raw(d.port, method, target)
                status = int(out.split(b" ", 2)[1])
                assert status in (200, 400, 404, 422), (target, out[:300])

            for _ in range(3):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.connect(("127.0.0.1", d.port))
                s.sendall(b"GET /api/v1/alerts HTTP/1.1\r\nHost: x\r\n" + AUTH + b"\r\n")
                slow.append(s)
            worst = 0.0
            for _ in range(8):  # one byte a second from each
                for s in slow:
                    assert s.recv(1)
                t0 = time.monotonic()
                assert c.get("/health", timeout=5).status_code == 200
                worst = max(worst, time.monotonic() - t0)
                time.sleep(1)
            assert worst < 1.0, worst
        t0 = time.monotonic()
        code = d.stop(timeout=30)  # the slow readers still connected
        assert code == 0
        assert time.monotonic() - t0 < 20
    finally:
        for s in slow:
            s.close()
        if d.proc is not None and d.proc.poll() is None:
            d.stop()
    log = d.log()
    assert "Traceback" not in log and " 500 " not in log, log[-3000:]
