"""What the API answers: JSON bodies and errors.

ApiError is the one way a handler says anything but success; encode() is the
one JSON encoding (secrets as ***, times as RFC 3339, NaN as null), shared with
the control socket; large bodies are written a piece at a time, within the
loop's time budget. Kept apart from request parsing and from the endpoints so
every side of the API answers alike.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from starlette.responses import Response

from engine.api.facade import matcher_view, rfc3339
from engine.common.json_text import make_fast_encoder
from engine.config.model import Matcher
from engine.config.secrets import RedactingEncoder
from engine.errors import VigilError
from engine.runtime.budget import Budget

# API responses are data, never pages: no sniffing, no caching of alert state
API_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


class ApiError(VigilError):
    """An answer other than success, with a message the client may show as is."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None):
        self.status = status
        self.message = message
        self.headers = dict(headers or {})
        super().__init__(message)


class ApiEncoder(RedactingEncoder):
    """Secrets as ***, times as RFC 3339, read-only mappings and sets as JSON."""

    def default(self, o: Any) -> Any:
        if isinstance(o, datetime):
            return rfc3339(o.timestamp()) if o.tzinfo is not None else o.isoformat()
        if isinstance(o, Mapping):
            return dict(o)
        if isinstance(o, set | frozenset):
            return sorted(o, key=str)
        if isinstance(o, Matcher):
            return matcher_view(o)
        if isinstance(o, re.Pattern):
            return o.pattern
        return super().default(o)


def _finite(value: Any) -> Any:
    """NaN and infinities are not JSON (browsers reject them): they become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _encode_json(content: Any) -> bytes:
    def dumps(c: Any) -> str:
        return json.dumps(
            c, cls=ApiEncoder, ensure_ascii=False, allow_nan=False, separators=(",", ":")
        )

    try:
        return dumps(content).encode("utf-8")
    except ValueError:
        # rare (a NaN value), so the common case pays for no scan
        return dumps(_finite(content)).encode("utf-8")


# orjson with json's exact bytes (json_text.make_fast_encoder); like _encode_json it
# writes NaN as null. Times and Matchers (dataclasses) go to ApiEncoder.default.
encode: Callable[[Any], bytes] = make_fast_encoder(
    _encode_json, ApiEncoder().default, nan_is_null=True
)


class JSON(Response):
    media_type = "application/json"

    def __init__(
        self, content: Any, status_code: int = 200, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(content, status_code, {**API_HEADERS, **(headers or {})})

    def render(self, content: Any) -> bytes:
        return encode(content)


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSON:
    return JSON({"error": message}, status, headers)


PIECE = 128 * 1024  # bytes per write of a large body


class PiecewiseResponse(Response):
    """A large body written a piece at a time.

    Handed to the server whole, 5 MB (10,000 alerts) would sit in the socket's
    send buffer and be shifted down after every partial send, a few ms of the
    event loop per client at a time. In pieces, each write is short and the
    server's flow control waits for a slow reader between them; when the loop's
    time budget is spent, other clients' pieces and the ticks take turns."""

    def __init__(self, body: bytes, budget: Budget) -> None:
        super().__init__(body, headers=API_HEADERS, media_type="application/json")
        self.budget = budget

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        view = memoryview(self.body)
        self.budget.start()
        for at in range(0, len(view), PIECE):
            if at:
                await self.budget.yield_if_spent()
            more = at + PIECE < len(view)
            await send(
                {"type": "http.response.body", "body": view[at : at + PIECE], "more_body": more}
            )


def json_bytes(body: bytes, budget: Budget) -> Response:
    """A JSON response of encoded bytes; large ones are written piecewise."""
    if len(body) > PIECE:
        return PiecewiseResponse(body, budget)
    return Response(body, headers=API_HEADERS, media_type="application/json")
