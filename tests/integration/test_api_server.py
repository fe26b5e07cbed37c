"""The API served by real uvicorn inside a running event loop, over real sockets."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from engine.api.server import bound_address, create_app, serve, stop
from engine.daemon.metrics import Metrics
from tests.unit.api.test_api_fakes import FakeFacade, api_config, bearer


def test_serves_in_the_callers_loop_and_leaves_signals_alone() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        sigterm = asyncio.Event()
        # the daemon's own handler: uvicorn must not replace it
        loop.add_signal_handler(signal.SIGTERM, sigterm.set)
        try:
            facade = FakeFacade()
            fp = facade.add_alert("cpu", {"host": "web-1"}, severity="critical")
            metrics = Metrics()
            app = create_app(facade, api_config(max_body_bytes=1000), registry=metrics.registry)
            server, task = await serve(app, "127.0.0.1", 0)
            host, port = bound_address(server)
            assert host == "127.0.0.1" and port > 0

            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
                assert (await c.get("/health")).json() == {"status": "ok"}
                r = await c.get("/api/v1/alerts", headers=bearer("viewer"))
                assert [a["fingerprint"] for a in r.json()["alerts"]] == [fp]
                assert r.headers["content-type"] == "application/json"
                r = await c.post(
                    f"/api/v1/alerts/{fp}/ack",
                    json={"note": "on it", "for": "30m"},
                    headers=bearer("operator"),
                )
                assert r.status_code == 200 and r.json()["acknowledged"]["note"] == "on it"
                assert facade.audits[-1][:2] == ("ack", "oncall")
                assert "server" not in r.headers  # no version banner

                async def big() -> AsyncIterator[bytes]:
                    for _ in range(50):
                        yield b"x" * 100

                r = await c.post("/api/v1/silences", content=big(), headers=bearer("operator"))
                assert r.status_code == 413
                r = await c.get("/metrics", headers=bearer("viewer"))
                assert "vigil_build_info" in r.text

            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.wait_for(sigterm.wait(), 2.0)
            assert not server.should_exit  # uvicorn did not see the signal

            t0 = time.monotonic()
            await stop(server, task)
            assert task.done() and time.monotonic() - t0 < 3.0
            with pytest.raises(httpx.ConnectError):
                async with httpx.AsyncClient() as c:
                    await c.get(f"http://127.0.0.1:{port}/health")
        finally:
            loop.remove_signal_handler(signal.SIGTERM)

    asyncio.run(main())


def test_stop_does_not_wait_for_idle_keep_alive_connections() -> None:
    async def main() -> None:
        app = create_app(FakeFacade(), api_config(), registry=Metrics().registry)
        server, task = await serve(app, "127.0.0.1", 0)
        _, port = bound_address(server)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
            assert (await c.get("/ready")).status_code == 200  # the connection stays open
            t0 = time.monotonic()
            await stop(server, task)
            assert time.monotonic() - t0 < 3.0

    asyncio.run(main())


def test_connections_send_small_writes_at_once() -> None:
    """TCP_NODELAY on every accepted connection: a response's body is a write of
    its own after the headers, and with Nagle's algorithm a small one waited for
    the client's delayed ACK (~40 ms per request on a kept-alive connection)."""

    async def main() -> None:
        app = create_app(FakeFacade(), api_config(), registry=Metrics().registry)
        server, task = await serve(app, "127.0.0.1", 0)
        _, port = bound_address(server)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
                for _ in range(2):  # the second on the kept-alive connection
                    r = await c.get("/api/v1/status", headers=bearer("viewer"))
                    assert r.status_code == 200
                conns = list(server.server_state.connections)
                assert conns
                for conn in conns:
                    sock = conn.transport.get_extra_info("socket")
                    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        finally:
            await stop(server, task)

    asyncio.run(main())


def test_busy_port_is_an_oserror_not_an_exit() -> None:
    async def main() -> None:
        with socket.socket() as blocker:
            blocker.bind(("127.0.0.1", 0))
            blocker.listen()
            port = blocker.getsockname()[1]
            app = create_app(FakeFacade(), api_config(), registry=Metrics().registry)
            with pytest.raises(OSError):
                await serve(app, "127.0.0.1", port)

    asyncio.run(main())


def test_a_large_listing_arrives_whole_over_a_slow_reader() -> None:
    """Bodies over PIECE bytes are written piecewise; the client sees one body
    of the declared length, also when it reads slowly (flow control)."""
    from engine.api.responses import PIECE

    async def main() -> None:
        facade = FakeFacade()
        for i in range(3000):
            facade.add_alert("cpu", {"host": f"web-{i:05d}", "pad": "x" * 60})
        app = create_app(facade, api_config(), registry=Metrics().registry)
        server, task = await serve(app, "127.0.0.1", 0)
        port = bound_address(server)[1]
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            token = bearer("viewer")["Authorization"]
            writer.write(
                f"GET /api/v1/alerts HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            assert length > 2 * PIECE and b"transfer-encoding" not in head.lower()
            body = b""
            while chunk := await reader.read(16 * 1024):
                body += chunk
                await asyncio.sleep(0.001)  # a slow reader
            writer.close()
            assert len(body) == length
            assert len(json.loads(body)["alerts"]) == 3000
        finally:
            await stop(server, task)

    asyncio.run(main())
