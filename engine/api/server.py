"""The API server: a Starlette app, run by uvicorn inside the daemon's event loop.

    app = create_app(facade, config.api, registry=metrics.registry)
    server, task = await serve(app, config.api.host, config.api.port)
    host, port = bound_address(server)          # the real port when 0 was asked for
    ...
    update_api_config(app, new_config.api)      # on reload: tokens, body limit
    await stop(server, task)                    # on shutdown

The daemon owns the process signals (SIGTERM, SIGHUP), so uvicorn installs none;
the socket is bound here, before uvicorn starts, so a busy port is an OSError the
daemon can report instead of uvicorn's sys.exit inside a task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Generator
from urllib.parse import quote

import uvicorn
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from engine.api.facade import DaemonFacade
from engine.api.guard import GuardedHttpTools
from engine.api.request import ServerState
from engine.api.responses import error_response
from engine.api.routes import routes
from engine.config.model import ApiConfig
from engine.runtime.budget import Budget

log = logging.getLogger("vigil.api")

STARTUP_TIMEOUT = 10.0


class QuietShutdown:
    """uvicorn cancels what is still being written at the end of its graceful
    shutdown (a slow reader of a large list): one line, not a traceback per
    client; the task ends here either way."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except asyncio.CancelledError:
            if scope["type"] != "http":
                raise
            log.warning("a response to a slow client was cut short at shutdown")


def create_app(
    facade: DaemonFacade,
    api: ApiConfig,
    *,
    registry: CollectorRegistry,
    budget: Budget | None = None,
) -> Starlette:
    """The ASGI app of the API, UI and /metrics (from `registry`). `budget` is the
    daemon loop's time budget: large listings are written within it."""

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = str(exc.detail)
        if exc.status_code == 404:
            twin = _slash_twin(app, request.scope)
            if twin is not None:
                return _relative_redirect(twin, request.scope)
            message = f"no such endpoint: {request.method} {request.url.path[:200]}"
        elif exc.status_code == 405:
            message = f"method {request.method} not allowed on {request.url.path[:200]}"
        return error_response(exc.status_code, message, exc.headers)

    async def server_error(request: Request, exc: Exception) -> Response:
        # the traceback goes to the daemon's log, never to the client
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal error; see the daemon's log")

    app = Starlette(
        routes=routes(),
        middleware=[Middleware(QuietShutdown)],
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )
    # Starlette's own trailing-slash redirect names the host from the request's
    # Host header (`Location: http://evil.example/...`); http_error redirects
    # with a path instead
    app.router.redirect_slashes = False
    app.state.vigil = ServerState(facade, api, registry, budget or Budget())
    return app


def _slash_twin(app: Starlette, scope: Scope) -> str | None:
    """The path with its trailing slash removed or added, if an endpoint has it."""
    path: str = scope["path"]
    twin = path.rstrip("/") if path.endswith("/") else path + "/"
    if not twin or twin == path or twin.startswith("//"):  # "//host/..." is a host
        return None
    alt = {**scope, "path": twin}
    if any(route.matches(alt)[0] != Match.NONE for route in app.router.routes):
        return twin
    return None


def _relative_redirect(path: str, scope: Scope) -> Response:
    """307 to `path` on the same server: a Location without scheme or host, so no
    client-supplied Host can end up in it (RFC 9110 allows relative references)."""
    query = scope.get("query_string", b"").decode("latin-1")
    location = quote(path, safe="/:@!$&'()*+,;=-._~") + (
        f"?{quote(query, safe='=&%+')}" if query else ""
    )
    return Response(status_code=307, headers={"Location": location})


def update_api_config(app: Starlette, api: ApiConfig) -> None:
    """Use new tokens and body limit from now on (a changed listen address needs
    a restart of the server: stop() then serve())."""
    state: ServerState = app.state.vigil
    state.api = api


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the daemon's loop owns them."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:  # uvicorn >= 0.29.1
        yield

    def install_signal_handlers(self) -> None:  # older uvicorn
        return None


def _bind(host: str, port: int) -> socket.socket:
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, addr = infos[0]
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say so,
    # and without it a small answer on a kept-alive connection (its body written
    # after its headers) waited ~40 ms for the client's delayed ACK
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and host in ("::", ""):
            # "[::]:9595" means every interface, IPv4 too, where the system allows
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(addr)
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


async def serve(app: Starlette, host: str, port: int) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    """Start serving `app` on host:port in the running loop; returns once it accepts.

    Raises OSError when the address cannot be bound (in use, not local, no
    permission). Port 0 picks a free port: see bound_address().
    """
    sock = _bind(host, port)
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,  # nothing forwards to us; never trust X-Forwarded-For
        # httptools (C parser: a fraction of h11's CPU per request) with limits on
        # slow, idle and oversized clients (guard.py); those limits replace
        # limit_concurrency, which counted idle sockets and answered 503 to all
        http=GuardedHttpTools,
        ws="none",
        timeout_keep_alive=5,
        timeout_graceful_shutdown=5,
        limit_concurrency=None,
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="vigil-api")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STARTUP_TIMEOUT
    while not server.started:
        if task.done():
            sock.close()
            task.result()  # raises what uvicorn raised
            raise OSError(f"the API server on {host}:{port} stopped while starting")
        if loop.time() > deadline:
            task.cancel()
            sock.close()
            raise OSError(f"the API server on {host}:{port} did not start")
        await asyncio.sleep(0.005)
    return server, task


def bound_address(server: uvicorn.Server) -> tuple[str, int]:
    """The host and port the server listens on (useful after asking for port 0)."""
    name = server.servers[0].sockets[0].getsockname()
    return str(name[0]), int(name[1])


async def stop(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    """Stop accepting, let requests in flight finish (up to 5 s), then return."""
    server.should_exit = True
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout=10.0)
    except TimeoutError:
        server.force_exit = True
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
