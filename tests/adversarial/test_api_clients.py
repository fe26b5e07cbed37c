"""Hostile clients of the API (issue 14, D.10-D.13), against a real daemon.

Most of the API needs no token, so each attack here comes from a client that has
none, or only a valid token and a bad body. During every attack a probe opens a
fresh connection and asks GET /health every 0.2 s: each must answer 200 within 1 s.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import psutil
import pytest

from engine.api.guard import MAX_HEADER_BYTES, MAX_HEADERS, PER_CLIENT, REQUEST_SECONDS
from tests.adversarial._api_live import (
    ADMIN,
    HealthProbe,
    health_during,
    make_daemon,
    rules,
    stop_clean,
    wait_ready,
)
from tests.integration.daemon import Daemon

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    d = make_daemon(tmp_path_factory.mktemp("api-clients"), rules(10))
    d.start()
    wait_ready(d)
    try:
        yield d
    finally:
        stop_clean(d)


@pytest.fixture(autouse=True)
def health_throughout(live: Daemon) -> Iterator[None]:
    """Every attack here: /health answers 200 within 1 s while it runs."""
    with health_during(live):
        yield


def connect(d: Daemon) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    return s


def closed_by_server(s: socket.socket) -> bool:
    """The server ended the connection (EOF or reset, possibly after a reply)."""
    s.setblocking(False)
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return True
    except BlockingIOError:
        return False
    except OSError:  # reset
        return True


def raw_request(d: Daemon, request: bytes) -> bytes:
    with connect(d) as s:
        s.sendall(request)
        out = b""
        with contextlib.suppress(OSError):
            while chunk := s.recv(65536):
                out += chunk
    return out


# -- D.10: idle and half-sent connections ----------------------------------------------------


def test_idle_and_half_sent_connections_do_not_starve_health(live: Daemon) -> None:
    idle = [connect(live) for _ in range(150)]
    slow = [connect(live) for _ in range(150)]
    for s in slow:
        with contextlib.suppress(OSError):
            s.sendall(b"GET /api/v1/alerts HTTP/1.1\r\nHost: vigil\r\n")
    stop = threading.Event()

    def trickle() -> None:  # slowloris: one more header line now and then, never the end
        while not stop.wait(0.5):
            for s in slow:
                with contextlib.suppress(OSError):
                    s.sendall(b"X-Slow: 1\r\n")

    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    started = time.monotonic()
    try:
        with HealthProbe(live) as health, HealthProbe(live, "/ready") as ready:
            time.sleep(4)
        health.check()
        ready.check()
        # the server hangs up on each of them: evicted for newer ones, or out of time
        deadline = started + REQUEST_SECONDS + 10
        sockets = idle + slow
        while time.monotonic() < deadline and not all(closed_by_server(s) for s in sockets):
            time.sleep(0.5)
        still = sum(not closed_by_server(s) for s in sockets)
        assert still == 0, f"{still} of 300 idle or half-sent connections still open"
    finally:
        stop.set()
        t.join(5)
        for s in idle + slow:
            s.close()


def connect_from(d: Daemon, ip: str) -> socket.socket:
    """A connection from another loopback address: another client to the daemon."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.settimeout(5)
    s.bind((ip, 0))
    s.connect(("127.0.0.1", d.port))
    return s


def test_one_client_holds_at_most_per_client_connections(live: Daemon) -> None:
    """14.D10: a client opening more than PER_CLIENT idle connections loses its own
    oldest ones at once (long before any idle or request deadline), and another
    client's connections are left alone."""
    other = [connect_from(live, "127.0.0.2") for _ in range(10)]
    started = time.monotonic()
    flood = [connect_from(live, "127.0.0.3") for _ in range(PER_CLIENT + 86)]
    try:
        while time.monotonic() - started < 3.0:
            if sum(not closed_by_server(s) for s in flood) <= PER_CLIENT:
                break
            time.sleep(0.1)
        # well inside the request deadline: evicted, not timed out
        assert time.monotonic() - started < REQUEST_SECONDS / 2
        still = [i for i, s in enumerate(flood) if not closed_by_server(s)]
        assert len(still) == PER_CLIENT, f"{len(still)} of {len(flood)} still open"
        assert still == list(range(len(flood) - PER_CLIENT, len(flood)))  # the oldest went
        assert not any(closed_by_server(s) for s in other)  # the other client lost nothing
        with connect_from(live, "127.0.0.2") as s:  # and is answered
            s.sendall(b"GET /health HTTP/1.1\r\nHost: vigil\r\nConnection: close\r\n\r\n")
            assert s.recv(65536).startswith(b"HTTP/1.1 200"), "the other client was not answered"
    finally:
        for s in other + flood:
            s.close()


def test_a_half_sent_request_gets_408_in_time(live: Daemon) -> None:
    with connect(live) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: vigil\r\n")
        s.settimeout(REQUEST_SECONDS + 5)
        t0 = time.monotonic()
        reply = s.recv(65536)
        assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
        assert time.monotonic() - t0 <= REQUEST_SECONDS + 2


# -- D.11: huge headers ----------------------------------------------------------------------


def test_huge_headers_are_refused_without_memory_growth(live: Daemon) -> None:
    assert live.proc is not None
    proc = psutil.Process(live.proc.pid)
    before = proc.memory_info().rss
    peak = [before]
    outcomes: list[bytes] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.02):
            peak[0] = max(peak[0], proc.memory_info().rss)

    def send_32mb() -> None:
        reply = b""
        with connect(live) as s:
            try:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: vigil\r\nX-Big: ")
                chunk = b"a" * (1024 * 1024)
                for _ in range(32):
                    s.sendall(chunk)
            except OSError:
                pass  # the server hung up: what it said first is in the socket
            with contextlib.suppress(OSError):
                s.settimeout(5)
                reply = s.recv(65536)
        outcomes.append(reply)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with HealthProbe(live) as health:
        senders = [threading.Thread(target=send_32mb) for _ in range(4)]
        for t in senders:
            t.start()
        for t in senders:
            t.join(120)
        time.sleep(0.5)
    stop.set()
    sampler.join(5)
    health.check()
    grown = (peak[0] - before) / 2**20
    print(
        f"RSS {before / 2**20:.0f} MB, peak +{grown:.1f} MB; replies {[o[:12] for o in outcomes]}"
    )
    assert grown < 25, f"the daemon grew by {grown:.0f} MB"
    # refused with 431, or the connection closed (reset before the reply was read)
    assert len(outcomes) == 4
    assert all(o.startswith(b"HTTP/1.1 431") or o == b"" for o in outcomes), outcomes
    assert any(o.startswith(b"HTTP/1.1 431") for o in outcomes), outcomes


def test_header_size_and_count_limits(live: Daemon) -> None:
    many = b"".join(b"X-H%d: 1\r\n" % i for i in range(MAX_HEADERS + 1))
    reply = raw_request(live, b"GET /health HTTP/1.1\r\nHost: vigil\r\n" + many + b"\r\n")
    assert reply.startswith(b"HTTP/1.1 431"), reply[:200]
    big = b"X-Big: " + b"a" * (MAX_HEADER_BYTES + 1) + b"\r\n"
    reply = raw_request(live, b"GET /health HTTP/1.1\r\nHost: vigil\r\n" + big + b"\r\n")
    assert reply.startswith(b"HTTP/1.1 431"), reply[:200]
    # an ordinary request with a few headers and a 4 KB cookie still works
    r = httpx.get(
        live.url + "/health", headers={"Cookie": "c=" + "x" * 4096, "X-A": "1"}, trust_env=False
    )
    assert r.status_code == 200


# -- D.12: the Host header ----------------------------------------------------------------------

EVIL = b"evil.example"


@pytest.mark.parametrize(
    "target",
    [b"/api/v1/alerts/", b"/api/v1/rules/", b"/health/", b"/api/v1/silences/?x=1",
     b"http://evil.example/api/v1/alerts/", b"//evil.example/api/v1/alerts/"],
)  # fmt: skip
def test_no_redirect_names_the_client_host(live: Daemon, target: bytes) -> None:
    request = b"GET " + target + b" HTTP/1.1\r\nHost: " + EVIL + b"\r\nConnection: close\r\n\r\n"
    reply = raw_request(live, request)
    head = reply.split(b"\r\n\r\n", 1)[0]
    assert EVIL not in head.lower(), head
    status = int(head.split(b" ", 2)[1])
    if 300 <= status < 400:
        location = next(
            line.split(b":", 1)[1].strip()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"location:")
        )
        assert location.startswith(b"/") and not location.startswith(b"//"), location


def test_the_relative_redirect_leads_to_the_endpoint(live: Daemon) -> None:
    auth = {"Authorization": f"Bearer {ADMIN}"}
    r = httpx.get(live.url + "/api/v1/alerts/?state=firing", headers=auth, trust_env=False)
    assert r.status_code == 307 and r.headers["location"] == "/api/v1/alerts?state=firing"
    r = httpx.get(
        live.url + "/api/v1/alerts/", headers=auth, follow_redirects=True, trust_env=False
    )
    assert r.status_code == 200 and "alerts" in r.json()


# -- D.13: malformed JSON -------------------------------------------------------------------

SILENCE = b'{"matchers": [{"label": "rule", "value": "x"}], "for": "1h", "reason": %s}'
BODIES = {
    "4301-digit integer": SILENCE % (b"1" * 4301),
    "truncated": b'{"matchers": [',
    "not UTF-8": b'{"reason": "\xff\xfe"}',
    "nested 100,000 deep": b"[" * 100_000,
}


@pytest.mark.parametrize("name", list(BODIES))
@pytest.mark.parametrize("path", ["/api/v1/silences", "/api/v1/metrics", "/api/v1/alerts/x/ack"])
def test_malformed_json_is_a_clear_400(live: Daemon, name: str, path: str) -> None:
    before = live.log()
    r = httpx.post(
        live.url + path,
        content=BODIES[name],
        headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"},
        timeout=10,
        trust_env=False,
    )
    assert r.status_code in (400, 422), (r.status_code, r.text)
    message = r.json()["error"]
    assert message.startswith("malformed JSON: "), message
    added = live.log()[len(before) :]
    assert "Traceback" not in added and "failed" not in added, added


def test_a_lone_surrogate_is_made_a_replacement_character(live: Daemon) -> None:
    """Valid JSON but no character: made valid at the boundary (issue 14 A.1's doctrine,
    engine/common/boundary.py), as collector text is, rather than refused."""
    r = httpx.post(
        live.url + "/api/v1/silences",
        content=SILENCE % b'"deploy \\ud800 now"',
        headers={"Authorization": f"Bearer {ADMIN}"},
        trust_env=False,
    )
    assert r.status_code == 201, r.text
    assert r.json()["reason"] == "deploy \ufffd now"


def test_a_valid_surrogate_pair_is_fine(live: Daemon) -> None:
    r = httpx.post(
        live.url + "/api/v1/silences",
        content=SILENCE % b'"deploy \\ud83d\\ude80"',
        headers={"Authorization": f"Bearer {ADMIN}"},
        trust_env=False,
    )
    assert r.status_code == 201, r.text
    assert r.json()["reason"] == "deploy \U0001f680"
