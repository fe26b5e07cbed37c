"""aiohttp's hooks for transport.py, in their own module so that aiohttp is
imported only when a channel sends its first request (transport.py's docstring).

    PolicyResolver  the connector's resolver: only the addresses the address
                    policy lets through (engine/common/address_policy.py), so the
                    connector never opens a TCP connection to a refused one
    Connector       sets REUSED: whether the request's connection was used before
    new_session     the session a Transport uses in one event loop
"""

from __future__ import annotations

import contextvars
import socket
import ssl
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.client_reqrep import ClientRequest
from aiohttp.connector import Connection
from aiohttp.tracing import Trace

Resolve = Callable[[str, int], Awaitable[list[str]]]  # host, port -> addresses to try

# set by Connector.connect in the requesting task's own context (a TraceConfig
# would say the same at a fifth of the client's CPU per request)
REUSED: contextvars.ContextVar[bool] = contextvars.ContextVar("vigil_reused", default=False)


class PolicyResolver(AbstractResolver):
    """Only the addresses `resolve` lets through (it raises AddressRefused, which
    aiohttp passes on untouched, or an OSError for a name that does not resolve,
    which it reports as a connect failure)."""

    def __init__(self, resolve: Resolve) -> None:
        self._resolve = resolve

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_UNSPEC
    ) -> list[ResolveResult]:
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for address in await self._resolve(host, port)
        ]

    async def close(self) -> None:
        pass


class Connector(aiohttp.TCPConnector):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._used: weakref.WeakSet[object] = weakref.WeakSet()

    async def connect(
        self, req: ClientRequest, traces: list[Trace], timeout: aiohttp.ClientTimeout
    ) -> Connection:
        conn = await super().connect(req, traces, timeout)
        proto = conn.protocol
        REUSED.set(proto is not None and proto in self._used)
        if proto is not None:
            self._used.add(proto)
        return conn


def new_session(
    resolve: Resolve, tls: ssl.SSLContext, per_origin: int, idle_expiry: float
) -> aiohttp.ClientSession:
    connector = Connector(
        resolver=PolicyResolver(resolve),
        ssl=tls,
        limit=0,
        limit_per_host=per_origin,
        keepalive_timeout=idle_expiry,
        use_dns_cache=False,  # resolved and checked for every new connection
    )
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,  # we ask for identity; never inflate past the cap
        skip_auto_headers=("Content-Type",),
        timeout=aiohttp.ClientTimeout(total=None),  # HttpClient's deadline rules
    )
