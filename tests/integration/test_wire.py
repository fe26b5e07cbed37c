"""The notification HTTP client's connections (HttpClient over
engine/httpclient/transport.py, aiohttp) against real local servers: keep-alive,
framing, the body cap, servers that close or never answer, the per-origin
limit, the idle expiry, TLS, what is sent and what is refused unsent.

The server here is an asyncio one in the test's own loop, so that a test can
script each answer byte for byte (and break the rules on purpose); it reads
requests with httptools' request parser.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import ssl
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httptools
import pytest

from engine.errors import DeliveryError
from engine.httpclient import proxies, transport
from engine.httpclient.client import MAX_BODY, HttpClient, HttpOptions, NetworkPolicy

try:
    from tests.integration.test_http_collector import self_signed
except ImportError:  # pragma: no cover - tests/integration run without its __init__.py
    from test_http_collector import self_signed  # type: ignore[no-redef,import-not-found]

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@dataclass
class Request:
    conn: int  # which accepted connection (1, 2, ...)
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    transport: asyncio.Transport  # to answer it later


# what the server does with a request: bytes to write, None to stay silent, or a
# coroutine function that gets the connection's transport and does as it pleases
Answer = Callable[
    [Request], bytes | Callable[[asyncio.Transport], Coroutine[Any, Any, None]] | None
]


@dataclass
class Server:
    answer: Answer = lambda r: OK
    tls: ssl.SSLContext | None = None
    requests: list[Request] = field(default_factory=list)
    accepted: int = 0
    closed: int = 0  # connections that have ended, whoever closed them
    transports: list[asyncio.Transport] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def __aenter__(self) -> Server:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        for t in self.transports:
            t.abort()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def open(self) -> int:
        return self.accepted - self.closed

    def _protocol(self) -> asyncio.Protocol:
        self.accepted += 1
        return _Conn(self, self.accepted)

    def close_all(self) -> None:
        """Close every connection from the server's side (an idle timeout)."""
        for t in self.transports:
            t.close()

    async def wait_requests(self, n: int, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.requests) < n:
                self.arrived.clear()
                await self.arrived.wait()


class _Conn(asyncio.Protocol):
    def __init__(self, server: Server, number: int) -> None:
        self.server, self.number = server, number
        self.parser = httptools.HttpRequestParser(self)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.transports.append(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.closed += 1

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_begin(self) -> None:
        self.url, self.headers, self.body = b"", {}, b""

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode().lower()] = value.decode()

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        method = self.parser.get_method().decode()
        r = Request(self.number, method, self.url.decode(), self.headers, self.body, self.transport)
        self.server.requests.append(r)
        self.server.arrived.set()
        out = self.server.answer(r)
        if isinstance(out, bytes):
            self.transport.write(out)
        elif out is not None:
            asyncio.get_running_loop().create_task(out(self.transport))


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until `check()` holds: a close takes a few loop turns to reach the other side."""
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.005)


def client(timeout: float = 5.0) -> HttpClient:
    return HttpClient(HttpOptions(timeout=timeout))


def bare(
    resolve: transport.Resolve | None = None,
    tls: ssl.SSLContext | None = None,
    **limits: float,
) -> transport.Transport:
    """The transport under HttpClient, for what HttpClient does not set: limits, trust."""
    return transport.Transport(
        resolve or NetworkPolicy().resolve,
        tls or ssl.create_default_context(),
        proxies.Proxies("none"),
        **limits,
    )  # type: ignore[arg-type]


async def post(t: transport.Transport, url: str) -> transport.Response:
    target = transport.parse_url(url)
    return await t.send("POST", target, transport.check_headers("POST", []), b"", None, MAX_BODY)


# --- keep-alive and framing -----------------------------------------------------------


def test_sequential_requests_share_one_connection() -> None:
    async def main() -> None:
        async with Server() as s:
            c = client()
            for i in range(5):
                reply = await c.request("POST", f"{s.url}/hook", payload={"i": i})
                assert (reply.status, reply.body) == (200, b"ok")
            assert s.accepted == 1 and [r.conn for r in s.requests] == [1] * 5
            r = s.requests[0]
            assert r.headers["host"] == f"127.0.0.1:{s.port}"
            assert r.headers["accept-encoding"] == "identity"
            assert r.headers["content-type"] == "application/json"
            assert r.body == b'{"i":0}' and r.headers["content-length"] == "7"
            await c.aclose()
            await eventually(lambda: s.open == 0)  # aclose closed the pooled connection

    run(main())


def test_a_chunked_response_is_read_whole_and_the_connection_kept() -> None:
    async def chunked(t: asyncio.Transport) -> None:
        t.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Id: 7\r\n\r\n")
        for part in (b"hello ", b"chunked ", b"world"):
            await asyncio.sleep(0.01)  # in separate reads
            t.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
        t.write(b"0\r\nX-Trailer: t\r\n\r\n")

    async def main() -> None:
        async with Server(lambda r: chunked) as s:
            c = client()
            for _ in range(2):
                reply = await c.request("POST", f"{s.url}/x", content=b"x")
                assert reply.body == b"hello chunked world"
                assert reply.headers.get("x-id") == "7" and "x-trailer" not in reply.headers
            assert s.accepted == 1
            await c.aclose()

    run(main())


def test_a_body_without_length_ends_with_the_connection() -> None:
    async def until_close(t: asyncio.Transport) -> None:
        t.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of ")
        await asyncio.sleep(0.01)
        t.write(b"it")
        t.close()

    async def main() -> None:
        async with Server(lambda r: until_close) as s:
            c = client()
            assert (await c.request("POST", s.url)).body == b"all of it"
            assert (await c.request("POST", s.url)).body == b"all of it"
            assert s.accepted == 2
            await c.aclose()

    run(main())


def test_interim_responses_are_skipped() -> None:
    async def main() -> None:
        early = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
        async with Server(lambda r: early + OK) as s:
            c = client()
            reply = await c.request("POST", s.url)
            assert (reply.status, reply.body) == (200, b"ok") and "link" not in reply.headers
            await c.request("POST", s.url)
            assert s.accepted == 1
            await c.aclose()

    run(main())


def test_connection_close_is_honoured() -> None:
    async def main() -> None:
        close = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
        async with Server(lambda r: close) as s:
            c = client()
            for _ in range(3):
                assert (await c.request("POST", s.url)).body == b"ok"
            assert s.accepted == 3
            await eventually(lambda: s.open == 0)  # none kept
            await c.aclose()

    run(main())


def test_a_body_over_the_cap_is_cut_and_its_connection_closed() -> None:
    big = b"x" * (1024 * 1024)
    head = f"HTTP/1.1 500 Internal Server Error\r\nContent-Length: {len(big)}\r\n\r\n"

    async def main() -> None:
        async with Server(lambda r: head.encode() + big) as s:
            c = client()
            reply = await c.request("POST", s.url, check=False)
            assert reply.status == 500 and reply.body == big[:MAX_BODY]
            await eventually(lambda: s.open == 0)  # not read to the end: closed
            with pytest.raises(DeliveryError, match="HTTP 500") as info:
                await c.request("POST", s.url)
            assert info.value.retryable and len(str(info.value)) < 400
            assert s.accepted == 2
            await c.aclose()

    run(main())


def test_a_body_at_the_cap_keeps_the_connection() -> None:
    body = b"y" * MAX_BODY

    async def main() -> None:
        answer = f"HTTP/1.1 200 OK\r\nContent-Length: {MAX_BODY}\r\n\r\n".encode() + body
        async with Server(lambda r: answer) as s:
            c = client()
            assert (await c.request("POST", s.url)).body == body
            assert (await c.request("POST", s.url)).body == body
            assert s.accepted == 1
            await c.aclose()

    run(main())


# --- servers that close, and servers that never answer --------------------------------


def test_a_connection_the_server_closed_while_idle_is_not_used() -> None:
    async def main() -> None:
        async with Server() as s:
            c = client()
            await c.request("POST", s.url)
            s.close_all()  # the server's idle timeout
            # its FIN arrives: the pooled connection knows it is closed (no retry needed)
            await eventually(lambda: s.open == 0)
            await asyncio.sleep(0.05)
            assert (await c.request("POST", s.url)).body == b"ok"
            assert s.accepted == 2 and len(s.requests) == 2  # nothing sent twice
            await c.aclose()

    run(main())


def test_a_reused_connection_that_dies_unanswered_is_retried_once_on_a_fresh_one() -> None:
    # the server closes the connection as the second request arrives on it: the
    # close raced the reuse, which the client could not have seen coming
    seen: list[Request] = []

    async def hang_up(t: asyncio.Transport) -> None:
        t.close()

    def answer(r: Request) -> bytes | Callable[[asyncio.Transport], Coroutine[Any, Any, None]]:
        seen.append(r)
        return hang_up if len(seen) == 2 else OK

    async def main() -> None:
        async with Server(answer) as s:
            c = client()
            await c.request("POST", s.url, content=b"first")
            reply = await c.request("POST", s.url, content=b"second")
            assert reply.body == b"ok"
            assert [(r.conn, r.body) for r in s.requests] == [
                (1, b"first"),
                (1, b"second"),
                (2, b"second"),
            ]
            await c.aclose()

    run(main())


def test_a_fresh_connection_that_dies_unanswered_is_not_retried() -> None:
    async def hang_up(t: asyncio.Transport) -> None:
        t.close()

    async def main() -> None:
        async with Server(lambda r: hang_up) as s:
            c = client()
            with pytest.raises(DeliveryError) as info:
                await c.request("POST", f"{s.url}/hook")
            assert str(info.value) == (
                f"POST http://127.0.0.1:{s.port}/…: protocol error: "
                "server disconnected without sending a response"
            )
            assert info.value.retryable
            assert len(s.requests) == 1  # the retry stage decides about another try
            await c.aclose()

    run(main())


def test_a_server_that_never_answers_is_cut_off_and_its_connection_dropped() -> None:
    async def main() -> None:
        async with Server(lambda r: None) as s:
            c = client(timeout=0.3)
            loop = asyncio.get_running_loop()
            start = loop.time()
            with pytest.raises(DeliveryError, match=r"timed out after 0\.3s") as info:
                await c.request("POST", f"{s.url}/hook")
            assert info.value.retryable and 0.25 < loop.time() - start < 1.0
            await eventually(lambda: s.open == 0)  # closed, not kept for a later request
            s.answer = lambda r: OK
            assert (await c.request("POST", s.url)).body == b"ok"
            assert s.accepted == 2
            await c.aclose()

    run(main())


def test_a_response_cut_short_is_a_protocol_error() -> None:
    async def short(t: asyncio.Transport) -> None:
        t.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        t.close()

    async def main() -> None:
        async with Server(lambda r: short) as s:
            c = client()
            with pytest.raises(DeliveryError, match="protocol error: server disconnected before"):
                await c.request("POST", s.url)
            await c.aclose()

    run(main())


def test_garbage_is_a_protocol_error() -> None:
    async def main() -> None:
        async with Server(lambda r: b"SSH-2.0-OpenSSH_9.6\r\n\r\n") as s:
            c = client()
            with pytest.raises(DeliveryError, match="protocol error: ") as info:
                await c.request("POST", s.url)
            assert info.value.retryable
            await eventually(lambda: s.open == 0)  # not kept
            await c.aclose()

    run(main())


def test_connection_refused_is_a_retryable_connect_failure() -> None:
    async def main() -> None:
        async with Server() as s:
            port = s.port
        c = client()
        with pytest.raises(DeliveryError, match="connect failed: ") as info:
            await c.request("POST", f"http://127.0.0.1:{port}/x")
        assert info.value.retryable
        await c.aclose()

    run(main())


def test_idle_connections_expire() -> None:
    async def main() -> None:
        async with Server() as s:
            t = bare(idle_expiry=0.1)
            await post(t, s.url)
            await post(t, s.url)
            assert s.accepted == 1
            await asyncio.sleep(0.3)
            await post(t, s.url)
            assert s.accepted == 2
            await eventually(lambda: s.open == 1)  # the expired one was closed
            await t.aclose()

    run(main())


# --- the per-origin limit ---------------------------------------------------------------


def test_at_most_ten_connections_per_origin_and_waiters_served_in_order() -> None:
    async def main() -> None:
        async with Server(lambda r: None) as s:  # each answered below, when the test says
            c = client()
            tasks = []
            for i in range(15):
                tasks.append(asyncio.create_task(c.request("POST", s.url, content=b"%d" % i)))
                await asyncio.sleep(0)  # each queues in turn
            await s.wait_requests(10)
            await asyncio.sleep(0.1)
            assert s.accepted == 10 and len(s.requests) == 10  # five wait for a connection
            for n in range(10, 15):
                freed = s.requests[n - 10]
                freed.transport.write(OK)  # a connection comes free: the longest waiter gets it
                await s.wait_requests(n + 1)
                assert s.requests[-1].body == b"%d" % n and s.requests[-1].conn == freed.conn
            for r in s.requests[5:]:
                r.transport.write(OK)
            assert [x.status for x in await asyncio.gather(*tasks)] == [200] * 15
            assert s.accepted == 10
            await c.aclose()

    run(main())


def test_a_cancelled_waiter_gives_up_its_place() -> None:
    async def main() -> None:
        async with Server(lambda r: None) as s:
            t = bare(per_origin=1)
            first = asyncio.create_task(post(t, s.url))
            await s.wait_requests(1)
            second = asyncio.create_task(post(t, s.url))
            await asyncio.sleep(0.05)
            second.cancel()
            first.cancel()
            await asyncio.gather(first, second, return_exceptions=True)
            await eventually(lambda: s.open == 0)  # the cancelled request's connection closed
            s.answer = lambda r: OK
            assert (await post(t, s.url)).status == 200  # the one slot is free again
            assert len(s.requests) == 2
            await t.aclose()

    run(main())


# --- what is refused before anything is sent -------------------------------------------


def test_a_line_break_in_a_header_value_is_refused_unsent() -> None:
    async def main() -> None:
        async with Server() as s:
            c = client()
            with pytest.raises(DeliveryError) as info:
                await c.request("POST", s.url, headers={"X-Token": "t\r\nX-Admin: yes"})
            assert info.value.retryable is False
            assert "X-Token" in str(info.value) and "X-Admin" not in str(info.value)
            assert s.accepted == 0
            await c.aclose()

    run(main())


def test_a_metadata_address_is_refused_unconnected() -> None:
    async def main() -> None:
        c = client()
        with pytest.raises(DeliveryError, match=r"address refused: .*metadata") as info:
            await c.request("POST", "http://169.254.169.254/latest/meta-data/")
        assert info.value.retryable is False
        await c.aclose()

    run(main())


def test_urls_the_client_does_not_send_to() -> None:
    async def main() -> None:
        c = client()
        with pytest.raises(DeliveryError, match="only http:// and https:// URLs"):
            await c.request("POST", "ftp://h.example/x")
        with pytest.raises(DeliveryError, match="invalid URL"):
            await c.request("POST", "http://h.example:99999/x")
        await c.aclose()

    run(main())


def test_a_client_serves_one_loop_after_another() -> None:
    c = client()

    async def once() -> None:
        async with Server() as s:
            assert (await c.request("POST", s.url)).status == 200

    run(once())
    run(once())  # the first loop's connection is not used on the second
    run(c.aclose())


# --- TLS --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    made = self_signed(tmp_path_factory.mktemp("tls"), days=30)
    if made is None:
        pytest.skip("neither the cryptography package nor an openssl binary is available")
    return made


def server_tls(cert: tuple[Path, Path]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*cert)
    return ctx


def test_https_with_an_untrusted_certificate_is_refused(cert: tuple[Path, Path]) -> None:
    async def main() -> None:
        async with Server(tls=server_tls(cert)) as s:
            c = client()
            with pytest.raises(DeliveryError, match=r"connect failed: .*CERTIFICATE_VERIFY_FAILED"):
                await c.request("POST", f"{s.url}/hook")
            assert s.requests == []
            await c.aclose()

    run(main())


def test_https_with_a_trusted_certificate_and_keep_alive(cert: tuple[Path, Path]) -> None:
    trusting = ssl.create_default_context(cafile=str(cert[0]))
    sni: list[str | None] = []

    async def to_the_server(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]  # every name is the test server; the certificate says which fits

    async def main() -> None:
        tls = server_tls(cert)
        tls.sni_callback = lambda sock, name, ctx: sni.append(name)
        async with Server(tls=tls) as s:
            t = bare(to_the_server, trusting)
            for name in ("127.0.0.1", "localhost"):
                for _ in range(3):
                    response = await post(t, f"https://{name}:{s.port}/hook")
                    assert (response.status, response.body) == (200, b"ok")
            assert s.accepted == 2  # one connection per origin, kept alive
            assert sni == [None, "localhost"]  # the host name, not the address, as SNI
            # the name is checked, not only the chain: the certificate is for
            # localhost and 127.0.0.1, not for another name of the same address
            with pytest.raises(transport.ConnectError, match=r"match|mismatch"):
                await post(t, f"https://vigil.test:{s.port}/hook")
            await t.aclose()

    run(main())


def test_deny_networks_refuse_before_connecting() -> None:
    async def main() -> None:
        policy = NetworkPolicy(deny=(ipaddress.ip_network("127.0.0.0/8"),))
        c = HttpClient(HttpOptions(policy=policy))
        async with Server() as s:
            with pytest.raises(DeliveryError, match="deny_networks") as info:
                await c.request("POST", s.url)
            assert info.value.retryable is False and s.accepted == 0
        await c.aclose()

    run(main())


def test_a_literal_address_is_checked_although_aiohttp_skips_the_resolver() -> None:
    # aiohttp connects to an IP literal without asking the resolver hook: the
    # transport checks it itself (no TCP handshake reaches the server here)
    async def main() -> None:
        policy = NetworkPolicy(allow=(ipaddress.ip_network("10.0.0.0/8"),))
        async with Server() as s:
            for url in (
                s.url,
                f"http://[::ffff:127.0.0.1]:{s.port}/x",
                f"http://localhost:{s.port}",
            ):
                c = HttpClient(HttpOptions(policy=policy))
                with pytest.raises(DeliveryError, match="not in allow_networks"):
                    await c.request("POST", url)
                await c.aclose()
            assert s.accepted == 0

    run(main())


# --- what is sent -----------------------------------------------------------------------


def test_headers_later_replace_earlier_in_any_case_and_the_length_is_ours() -> None:
    async def main() -> None:
        async with Server() as s:
            c = client()
            await c.request(
                "PUT",
                f"{s.url}/a b/\u00fc?q=\u00e4 b&k=%2F",
                content=b"abc",
                headers={
                    "Content-Type": "application/json",
                    "content-type": "text/plain",
                    "Content-Length": "999",  # never the caller's: the body's own length
                    "Transfer-Encoding": "chunked",
                    "user-agent": "mine",
                },
            )
            r = s.requests[0]
            assert r.method == "PUT" and r.body == b"abc"
            assert r.path == "/a%20b/%C3%BC?q=%C3%A4%20b&k=%2F"  # existing escapes stay
            assert r.headers["content-type"] == "text/plain"
            assert r.headers["content-length"] == "3" and "transfer-encoding" not in r.headers
            assert r.headers["user-agent"] == "mine" and r.headers["accept-encoding"] == "identity"
            await c.request("POST", s.url, content=b"raw")
            assert "content-type" not in s.requests[1].headers  # no type we were not given
            await c.aclose()

    run(main())


def test_basic_auth_from_the_url_or_the_caller_and_empty_bodies() -> None:
    async def main() -> None:
        async with Server() as s:
            c = client()
            await c.request("POST", f"http://AC1:p%40ss@127.0.0.1:{s.port}/x")
            await c.request("POST", s.url, auth=("AC123", "tok:en"))
            await c.request("GET", s.url)
            first, second, get = s.requests
            assert base64.b64decode(first.headers["authorization"][6:]) == b"AC1:p@ss"
            assert base64.b64decode(second.headers["authorization"][6:]) == b"AC123:tok:en"
            assert first.headers["content-length"] == "0" and first.body == b""
            assert "content-length" not in get.headers
            await c.aclose()

    run(main())
