"""Real HTTP receivers for channel tests: a Starlette app under uvicorn on
127.0.0.1, on a free port, in a background thread with its own event loop.

The receiver records every request (method, path, query, headers, body, and the
status it answered) and answers from a programmable script: `push()` queues the
next replies (status, body, headers, a delay, or a hang until the test moves
on); when the queue is empty it answers with `default`. A reply body may
contain `{path}`, replaced by the request's path and query, to play a service
that echoes the URL (and so any token in it) in its error messages.

    with Receiver() as rx:
        rx.push(Reply(500), Reply(429, headers={"Retry-After": "7"}))
        ... point a channel at rx.url ...
        assert rx.requests[0].json() == {...}
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
MAX_HANG = 30.0


@dataclass(frozen=True)
class Reply:
    """One scripted answer. `body` may be bytes, text or JSON-able data."""

    status: int = 200
    body: Any = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    hang: bool = False  # never answer (until the receiver is reset or stopped)

    def render(self, path: str) -> tuple[bytes, dict[str, str]]:
        headers = dict(self.headers)
        if isinstance(self.body, bytes):
            body = self.body
        elif isinstance(self.body, str):
            body = self.body.replace("{path}", path).encode()
            headers.setdefault("content-type", "text/plain; charset=utf-8")
        else:
            body = json.dumps(self.body).encode()
            headers.setdefault("content-type", "application/json")
        return body, headers


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    status: int  # what the receiver answered; 0 for a hang

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class Receiver:
    def __init__(self, default: Reply | None = None) -> None:
        self.default = default or Reply()
        self._queue: deque[Reply] = deque()
        self._requests: list[Recorded] = []
        self._cond = threading.Condition()
        self._generation = 0  # bumped by reset/stop: hanging replies end
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # --- scripting -------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def push(self, *replies: Reply) -> None:
        with self._cond:
            self._queue.extend(replies)

    def reset(self, default: Reply | None = None) -> None:
        with self._cond:
            self._queue.clear()
            self._requests.clear()
            self._generation += 1
            self.default = default or Reply()

    @property
    def requests(self) -> list[Recorded]:
        with self._cond:
            return list(self._requests)

    def wait_for(
        self, predicate: Callable[[list[Recorded]], bool], timeout: float
    ) -> list[Recorded]:
        """Block until predicate(requests) holds; AssertionError after `timeout`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self._requests):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"receiver: condition not met in {timeout}s; got {self._requests!r}"
                    )
                self._cond.wait(left)
            return list(self._requests)

    # --- the app ---------------------------------------------------------------

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        with self._cond:
            reply = self._queue.popleft() if self._queue else self.default
            generation = self._generation
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        record = Recorded(
            request.method,
            request.url.path,
            request.url.query,
            {k.lower(): v for k, v in request.headers.items()},
            body,
            0 if reply.hang else reply.status,
        )
        with self._cond:
            self._requests.append(record)
            self._cond.notify_all()
        if reply.hang:
            end = time.monotonic() + MAX_HANG
            while self._generation == generation and time.monotonic() < end:
                await asyncio.sleep(0.02)
            return Response(status_code=503)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        content, headers = reply.render(path)
        return Response(content, status_code=reply.status, headers=headers)

    # --- lifecycle -------------------------------------------------------------

    def start(self) -> Receiver:
        app = Starlette(routes=[Route("/{path:path}", self._handle, methods=METHODS)])
        config = uvicorn.Config(
            app,
            log_config=None,
            log_level="warning",
            access_log=False,  # the access log would show tokens in paths
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="receiver", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the receiver did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        with self._cond:
            self._generation += 1
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        self._server = self._thread = None

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on (for a process that binds it itself)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
