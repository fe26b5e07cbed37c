"""The event stream's authentication: POST /api/v1/events/ticket gives a
single-use, short-lived ticket for GET /api/v1/events (EventSource cannot send
an Authorization header). The stream itself is followed against a real daemon
in tests/integration/test_event_stream.py."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator

import httpx
import pytest

from engine.api.server import bound_address, create_app, serve, stop
from engine.api.tickets import MAX_PER_TOKEN, MAX_TICKETS, Tickets
from engine.daemon.metrics import Metrics
from tests.unit.api.test_api_fakes import AsgiClient, FakeFacade, api_config, bearer

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
def client() -> Iterator[AsgiClient]:
    c = AsgiClient(create_app(FakeFacade(), api_config(), registry=Metrics().registry))
    yield c
    c.close()


def test_a_ticket_is_single_use_and_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    t = Tickets(seconds=30)
    a, b = t.issue("d1"), t.issue("d2")
    assert a != b and len(a) >= 32
    assert t.redeem(a) == "d1" and t.redeem(a) is None
    assert t.redeem("made-up") is None
    later = time.monotonic() + 31
    monkeypatch.setattr(time, "monotonic", lambda: later)
    assert t.redeem(b) is None


def test_tickets_are_bounded_per_token_and_in_all() -> None:
    """A token asking in a loop pushes out its own oldest tickets, never another
    token's; all tokens together hold at most MAX_TICKETS."""
    t = Tickets(seconds=30)
    other = t.issue("d-other")
    mine = [t.issue("d-loop") for _ in range(MAX_TICKETS + 50)]
    assert t.redeem(other) == "d-other"
    assert t.redeem(mine[-MAX_PER_TOKEN - 1]) is None
    assert all(t.redeem(x) == "d-loop" for x in mine[-MAX_PER_TOKEN:])
    many = [t.issue(f"d{i}") for i in range(MAX_TICKETS + 50)]  # as many tokens
    assert sum(t.redeem(x) is not None for x in many) == MAX_TICKETS


def test_ticket_needs_a_token_and_a_bad_ticket_is_401(client: AsgiClient) -> None:
    assert client.post("/api/v1/events/ticket").status_code == 401
    r = client.get("/api/v1/events", params={"ticket": "not-a-ticket"})
    assert r.status_code == 401 and "ticket unknown" in r.json()["error"]
    r = client.get("/api/v1/events")
    assert r.status_code == 401 and "bearer token is required" in r.json()["error"]
    r = client.get("/api/v1/events", params={"since": "1"}, headers=bearer("viewer"))
    assert r.status_code == 422 and r.json()["error"] == "since: unknown query parameter"


def test_a_viewer_gets_a_ticket_that_is_refused_once_its_token_is_gone(
    client: AsgiClient,
) -> None:
    r = client.post("/api/v1/events/ticket", headers=bearer("viewer"))
    assert r.status_code == 201 and r.json()["expires_in"] == 30
    state = client.app.state.vigil
    ticket = r.json()["ticket"]
    kept = state.api
    state.api = dataclasses.replace(kept, tokens=())  # a reload removed every token
    try:
        r = client.get("/api/v1/events", params={"ticket": ticket})
        assert r.status_code == 401
    finally:
        state.api = kept


def test_a_client_that_goes_away_gives_its_subscription_back() -> None:
    """Served by uvicorn for real: a stream closed by its client unsubscribes,
    so MAX_SUBSCRIBERS is never used up by browsers long gone."""

    async def main() -> None:
        facade = FakeFacade()
        app = create_app(facade, api_config(), registry=Metrics().registry)
        server, task = await serve(app, "127.0.0.1", 0)
        host, port = bound_address(server)
        try:
            async with httpx.AsyncClient(timeout=5) as c:
                for _ in range(3):
                    async with c.stream(
                        "GET", f"http://{host}:{port}/api/v1/events", headers=bearer("viewer")
                    ) as r:
                        assert r.status_code == 200
                        lines = r.aiter_lines()
                        assert (await anext(lines)).startswith("retry:")
                        assert len(facade.stream) == 1
                        facade.stream.publish([{"event": "firing", "seq": 1, "alert": "a"}])
                        got = [await anext(lines) for _ in range(5)]
                        assert 'data: {"event":"firing","seq":1,"alert":"a"}' in got, got
                    for _ in range(100):  # the server sees the close on its next read
                        if len(facade.stream) == 0:
                            break
                        await asyncio.sleep(0.02)
                    assert len(facade.stream) == 0
        finally:
            facade.stream.close()
            await stop(server, task)

    asyncio.run(main())


def test_an_event_is_encoded_once_for_every_stream() -> None:
    """The fan-out hands each stream the same summary dict: its frame is encoded
    once (the same bytes object for the next stream), and an equal but distinct
    event gets its own frame."""
    from engine.api.stream_routes import _frame

    ev = {"event": "firing", "seq": 7, "alert": "abc"}
    first = _frame(ev)
    assert first == b'id: 7\ndata: {"event":"firing","seq":7,"alert":"abc"}\n\n'
    assert _frame(ev) is first
    other = {"event": "resolved", "alert": "abc"}
    assert _frame(other) == b'data: {"event":"resolved","alert":"abc"}\n\n'
