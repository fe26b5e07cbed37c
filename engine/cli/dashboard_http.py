"""The API client of `vigil dashboard`: engine.cli.client.Client over the
standard library's http.client instead of httpx.

Why: httpx costs ~80 ms of CPU to import, a third of the dashboard's budget
for its first frame (300 ms); http.client is already loaded by Python's own
modules the dashboard needs. Everything else is the CLI client's: where the
daemon is and the token (from_args), and the one-line errors (Client.error).
One keep-alive connection, made again when the daemon closed it; a request on
a connection idle for longer than the server keeps one is never sent (uvicorn
closes idle connections after 5 s), so a write is sent once. An HTTP proxy
from the environment is not used: the dashboard talks to the daemon directly.
"""

from __future__ import annotations

import http.client
import json
import ssl
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from engine.cli.connection import Client, reason
from engine.errors import ClientError

IDLE_REUSE = 2.0  # seconds: an older idle connection is replaced, not reused


class DashboardClient(Client):
    def __init__(self, url: str, token: str | None, timeout: float = 10.0) -> None:
        self.url = url
        self.token = token
        self.timeout = timeout
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as e:
            raise ClientError(f"{url!r} is not a usable daemon URL: {e}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ClientError(f"{url!r} is not a usable daemon URL: expected http(s)://host:port")
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, port
        self._prefix = parts.path.rstrip("/")
        self._headers = {"Accept": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._conn: http.client.HTTPConnection | None = None
        self._used = 0.0

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        """The connection, and whether it was used before (it may have been closed)."""
        if self._conn is not None and time.monotonic() - self._used > IDLE_REUSE:
            self._drop()
        if self._conn is not None:
            return self._conn, True
        if self._https:
            self._conn = http.client.HTTPSConnection(
                self._host, self._port, timeout=self.timeout, context=ssl.create_default_context()
            )
        else:
            self._conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        return self._conn, False

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        body: Mapping[str, Any] | None = None,
    ) -> Any:
        target = self._prefix + path + (f"?{urlencode(params, doseq=True)}" if params else "")
        data = None if body is None else json.dumps(body).encode()
        headers = dict(self._headers)
        if data is not None:
            headers["Content-Type"] = "application/json"
        while True:
            conn, reused = self._connection()
            try:
                conn.request(method, target, body=data, headers=headers)
                r = conn.getresponse()
                raw = r.read()
                break
            except TimeoutError:
                self._drop()
                raise ClientError(
                    f"vigil at {self.url} did not answer within {self.timeout:g}s"
                ) from None
            except (http.client.HTTPException, OSError) as e:
                self._drop()
                # a kept connection the daemon closed meanwhile: once more on a new one,
                # for reads only (a write may have been done before the close)
                if reused and method == "GET":
                    continue
                raise ClientError(f"cannot reach vigil at {self.url}: {reason(e)}") from None
        self._used = time.monotonic()
        if r.will_close:
            self._drop()
        text = raw.decode("utf-8", "replace")
        try:
            answer = json.loads(text) if raw else None
        except ValueError:
            answer = None
        return self.answer(r.status, answer, text)

    def close(self) -> None:
        self._drop()
