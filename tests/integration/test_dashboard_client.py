"""The dashboard's API client (http.client) against a real API server: the same
answers and the same one-line errors as the CLI's httpx client, a write sent
once, and a kept connection the server closed replaced without an error."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from engine.cli.connection import Client
from engine.cli.dashboard_feed import Feed
from engine.cli.dashboard_http import IDLE_REUSE, DashboardClient
from engine.errors import ClientError
from tests.integration.test_cli_client import ServerThread
from tests.unit.api.test_api_fakes import TOKENS, FakeFacade

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def server() -> Iterator[ServerThread]:
    f = FakeFacade()
    f.add_alert("host_cpu_high", {"host": "web-1"}, severity="critical", value=97.25)
    with ServerThread(f) as s:
        yield s


def error(client: Client, method: str, path: str, **kw: object) -> str:
    with pytest.raises(ClientError) as e:
        client.call(method, path, **kw)  # type: ignore[arg-type]
    return str(e.value)


def test_same_answers_and_errors_as_the_cli_client(server: ServerThread) -> None:
    for token in (None, "wrong", TOKENS["viewer"]):
        ours, cli = DashboardClient(server.url, token), Client(server.url, token)
        with ours, cli:
            for method, path, body in (
                ("GET", "/api/v1/alerts", None),
                ("GET", "/api/v1/alerts/nope", None),
                ("POST", "/api/v1/alerts/nope/ack", {"note": "x"}),  # viewer: 403
                ("GET", "/api/v1/status", None),
            ):
                try:
                    want: object = cli.call(method, path, body=body)
                except ClientError as e:
                    want = f"error: {e}"
                try:
                    got: object = ours.call(method, path, body=body)
                except ClientError as e:
                    got = f"error: {e}"
                assert got == want, (token, method, path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = f"http://127.0.0.1:{port}"
    assert error(DashboardClient(down, None), "GET", "/api/v1/alerts") == error(
        Client(down, None), "GET", "/api/v1/alerts"
    )
    assert "connection refused" in error(DashboardClient(down, None), "GET", "/")
    with pytest.raises(ClientError, match="not a usable daemon URL"):
        DashboardClient("ftp://x", None)


def test_ack_is_sent_once_and_idle_connections_are_replaced(server: ServerThread) -> None:
    c = DashboardClient(server.url, TOKENS["operator"])
    feed = Feed(c)
    snap = feed.snapshot()
    assert snap.error is None and [a.rule for a in snap.alerts] == ["host_cpu_high"]
    first = c._conn
    assert first is not None
    assert feed.snapshot().alerts == snap.alerts and c._conn is first  # kept alive
    c._used = time.monotonic() - IDLE_REUSE - 1  # as if idle for a while
    acked = feed.ack(snap.alerts[0].fp, "on it", "2h")
    assert c._conn is not first
    assert acked["acknowledged"]["note"] == "on it"
    acks = [e for e in server.facade.history[snap.alerts[0].fp] if e["event"] == "acknowledged"]
    assert acks == [{"event": "acknowledged", "alert": snap.alerts[0].fp, "by": "oncall"}]
    after = feed.snapshot()
    assert after.alerts[0].ack is not None and after.alerts[0].marks == "A"
