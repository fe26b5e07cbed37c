"""The API's endpoints: parse and check the request, call the facade, answer JSON.

Each endpoint is declared once in ENDPOINTS with the role it needs; `endpoint()`
wraps it with authentication, the role check and error rendering, so a handler
only deals with its own fields. Writes are audited through the facade with the
calling token's *name*. Errors are always `{"error": "<one line>"}`.

Status codes: 400 malformed JSON, 401 no/invalid token, 403 role too low,
404 unknown object, 413 body too large, 422 wrong fields (the field is named),
502 a channel test that could not deliver.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import logging
import math
import re
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from engine.api.auth import Principal, Unauthorized, authenticate
from engine.api.facade import DaemonFacade, matcher_view, rfc3339
from engine.common import json_bounded, matchers
from engine.common.boundary import clean
from engine.common.durations import parse_duration
from engine.config.model import SEVERITIES, ApiConfig, Matcher, Role
from engine.config.secrets import RedactingEncoder
from engine.runtime import slices

log = logging.getLogger("vigil.api")

T = TypeVar("T")

MAX_TEXT = 1000  # note, reason: a sentence or two, not a document
MAX_NAME = 200  # by, label names, names echoed in messages
MAX_MATCHERS = 64
MAX_DURATION = 10 * 365 * 86400.0  # acks and silences: "forever" is a config file's job
ALERT_STATES = ("pending", "firing")
ALERT_QUERY = ("state", "severity", "rule", "label", "silenced", "acknowledged")
_BOOLS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
# API responses are data, never pages: no sniffing, no caching of alert state
_API_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


# -- state, errors, encoding -------------------------------------------------------------


@dataclass
class ServerState:
    """What every endpoint reads; `api` is replaced on reload (update_api_config)."""

    facade: DaemonFacade
    api: ApiConfig
    registry: CollectorRegistry
    # the last alert list and its encoding: comparing two lists costs a tenth of
    # encoding one, and between evaluations pollers keep asking for the same list
    last_alerts: tuple[list[dict[str, Any]], bytes] | None = None


class ApiError(Exception):
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


def encode(content: Any) -> bytes:
    def dumps(c: Any) -> str:
        return json.dumps(
            c, cls=ApiEncoder, ensure_ascii=False, allow_nan=False, separators=(",", ":")
        )

    try:
        return dumps(content).encode("utf-8")
    except ValueError:
        # rare (a NaN value), so the common case pays for no scan
        return dumps(_finite(content)).encode("utf-8")


class JSON(Response):
    media_type = "application/json"

    def __init__(
        self, content: Any, status_code: int = 200, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(content, status_code, {**_API_HEADERS, **(headers or {})})

    def render(self, content: Any) -> bytes:
        return encode(content)


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSON:
    return JSON({"error": message}, status, headers)


# -- one call: who, body, fields ---------------------------------------------------------


@dataclass
class Call:
    request: Request
    state: ServerState
    who: Principal | None

    @property
    def facade(self) -> DaemonFacade:
        return self.state.facade

    @property
    def name(self) -> str:
        """The caller's token name, for `by` and audits."""
        return self.who.name if self.who is not None else "anonymous"

    def param(self, name: str) -> str:
        value: str = self.request.path_params[name]
        return value

    async def body(self) -> dict[str, Any]:
        """The JSON object body ({} when empty), within api.max_body_bytes."""
        limit = self.state.api.max_body_bytes
        declared = self.request.headers.get("content-length")
        if declared is not None:
            try:
                n = int(declared)
            except ValueError:
                raise ApiError(400, f"Content-Length {declared[:40]!r} is not a number") from None
            if n > limit:  # refuse before reading a byte of it
                raise ApiError(413, f"request body is {n} bytes; the limit is {limit}")
        chunks: list[bytes] = []
        size = 0
        async for chunk in self.request.stream():
            size += len(chunk)
            if size > limit:  # chunked or lying Content-Length: stop reading
                raise ApiError(413, f"request body is larger than the limit of {limit} bytes")
            chunks.append(chunk)
        raw = b"".join(chunks)
        if not raw.strip():
            return {}
        data = parse_json(raw)
        if not isinstance(data, dict):
            raise ApiError(422, f"expected a JSON object, got {_json_type(data)}")
        cleaned, _cut = clean(
            data
        )  # valid text (no lone surrogate), bounded: engine/common/boundary.py
        return cleaned  # type: ignore[no-any-return]

    async def fields(self) -> Fields:
        return Fields(await self.body())

    async def audit(self, action: str, details: Mapping[str, Any]) -> None:
        await self.facade.audit(action, by=self.name, details=details)

    async def write(
        self,
        action: str,
        details: Mapping[str, Any],
        op: Callable[[], Awaitable[T]],
        not_found: str,
    ) -> T:
        """Run a facade write and audit it with its outcome; KeyError → 404,
        ValueError → 422 (its message is meant for the client)."""
        try:
            result = await op()
        except KeyError:
            await self.audit(action, {**details, "result": "not_found"})
            raise ApiError(404, not_found) from None
        except ValueError as e:
            await self.audit(action, {**details, "result": "rejected", "error": str(e)})
            raise ApiError(422, str(e)) from None
        await self.audit(action, {**details, "result": "ok"})
        return result


def parse_json(raw: bytes) -> Any:
    """A request body's JSON, or ApiError 400 saying what is wrong with it. Every
    way json.loads can fail is a client's mistake, never a 500 with a traceback."""
    try:
        # a value nested past the boundary's depth is null (cut there), not a 400
        data = json_bounded.loads(raw)
    except UnicodeDecodeError:
        raise ApiError(400, "malformed JSON: the body is not UTF-8") from None
    except json.JSONDecodeError as e:
        raise ApiError(
            400, f"malformed JSON: {e.msg} at line {e.lineno} column {e.colno}"
        ) from None
    except ValueError:  # the only other: an integer past Python's conversion limit
        digits = sys.get_int_max_str_digits()
        raise ApiError(400, f"malformed JSON: a number has more than {digits} digits") from None
    return data


def _json_type(v: Any) -> str:
    if isinstance(v, list):
        return "an array"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int | float):
        return "a number"
    if v is None:
        return "null"
    return "an object"


class Fields:
    """The fields of a JSON body, taken one by one; `done()` refuses the rest."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.taken: list[str] = []

    def get(self, name: str) -> Any:
        self.taken.append(name)
        return self.data.get(name)

    def text(self, name: str, *, required: bool = False, max_len: int = MAX_TEXT) -> str | None:
        v = self.get(name)
        if v is None:
            if required:
                raise ApiError(422, f"{name}: required")
            return None
        if not isinstance(v, str):
            raise ApiError(422, f"{name}: expected a string, got {_json_type(v)}")
        if required and not v.strip():
            raise ApiError(422, f"{name}: must not be empty")
        if len(v) > max_len:
            raise ApiError(422, f"{name}: longer than {max_len} characters")
        return v

    def time(self, name: str) -> float | None:
        v = self.get(name)
        return None if v is None else parse_time(name, v)

    def duration(self, name: str) -> float | None:
        v = self.get(name)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, str | int | float):
            raise ApiError(422, f"{name}: expected a duration such as 30m or 2h")
        try:
            d = parse_duration(v)
        except ValueError as e:
            raise ApiError(422, f"{name}: {e}") from None
        if d <= 0:
            raise ApiError(422, f"{name}: must be longer than 0s")
        if d > MAX_DURATION:  # also keeps now + d a representable time
            raise ApiError(422, f"{name}: at most {MAX_DURATION // 86400:.0f}d")
        return d

    def expiry(self, now: float, *, required: bool) -> float | None:
        """`until` (RFC 3339) or `for` (duration from now), not both."""
        if self.data.get("until") is not None and self.data.get("for") is not None:
            raise ApiError(422, "until, for: give one of them, not both")
        until, dur = self.time("until"), self.duration("for")
        if dur is not None:
            return now + dur
        if until is not None:
            if until <= now:
                raise ApiError(422, f"until: {self.data['until']} is in the past")
            return until
        if required:
            raise ApiError(422, 'until or for: required (for example "for": "2h")')
        return None

    def done(self) -> None:
        extra = [k for k in self.data if k not in self.taken]
        if extra:
            known = ", ".join(self.taken) or "none"
            raise ApiError(422, f"{str(extra[0])[:MAX_NAME]}: unknown field (expected: {known})")


def parse_time(name: str, value: Any) -> float:
    """Epoch seconds of an RFC 3339 time with a timezone."""
    example = "an RFC 3339 time such as 2026-12-01T00:00:00Z"
    if not isinstance(value, str):
        raise ApiError(422, f"{name}: expected {example}")
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ApiError(422, f"{name}: {value[:60]!r} is not {example}") from None
    if dt.tzinfo is None:  # a time without a zone means different things to client and server
        raise ApiError(422, f"{name}: {value[:60]!r} has no timezone; add Z or an offset")
    return dt.timestamp()


def parse_matchers(value: Any) -> list[dict[str, Any]]:
    """API matchers, checked and in record form: each is {"label", "value"} or
    {"label", "regex"}, with "negate": true for != and !~, or an Alertmanager-style
    string ("team!=ops", 'service=~"db.*"'). Regexes are RE2 (linear time)."""
    shape = 'a non-empty list of {"label", "value"|"regex", "negate"?} or "label!=value" strings'
    if not isinstance(value, list) or not value:
        raise ApiError(422, f"matchers: expected {shape}")
    if len(value) > MAX_MATCHERS:
        raise ApiError(422, f"matchers: at most {MAX_MATCHERS}")
    out: list[dict[str, Any]] = []
    for i, m in enumerate(value):
        where = f"matchers[{i}]"
        if isinstance(m, str):
            if len(m) > MAX_TEXT:
                raise ApiError(422, f"{where}: longer than {MAX_TEXT} characters")
        elif isinstance(m, dict):
            for k in m:
                if k not in ("label", "value", "regex", "negate"):
                    raise ApiError(422, f"{where}.{str(k)[:MAX_NAME]}: unknown field")
            label = m.get("label")
            if not isinstance(label, str) or not label or len(label) > MAX_NAME:
                raise ApiError(422, f"{where}.label: expected a label name")
            if ("value" in m) == ("regex" in m):
                raise ApiError(422, f"{where}: give either value or regex")
            key = "value" if "value" in m else "regex"
            if not isinstance(m[key], str) or len(m[key]) > MAX_TEXT:
                raise ApiError(422, f"{where}.{key}: expected a string")
        else:
            raise ApiError(422, f"{where}: expected an object or a string, got {_json_type(m)}")
        try:
            out.append(matchers.to_record(matchers.from_record(m)))
        except matchers.MatcherError as e:
            raise ApiError(422, f"{where}: {e}") from None
    return out


# -- endpoints ---------------------------------------------------------------------------


async def health(call: Call) -> Response:
    # alive (200) even when degraded: a restart would not bring the disk back
    degraded = call.facade.degraded
    if degraded:
        return JSON({"status": "degraded", "degraded": degraded})
    return JSON({"status": "ok"})


async def ready(call: Call) -> Response:
    degraded = call.facade.degraded
    if call.facade.ready and not degraded:
        return JSON({"status": "ready"})
    if degraded:
        return JSON({"status": "degraded", "error": f"not ready: {degraded}"}, 503)
    return JSON({"status": "starting", "error": "not ready: configuration or log replay"}, 503)


async def metrics(call: Call) -> Response:
    return Response(
        generate_latest(call.state.registry),
        headers={"Cache-Control": "no-store"},
        media_type=CONTENT_TYPE_LATEST,
    )


async def openapi(call: Call) -> Response:
    from engine.api.openapi import OPENAPI

    return JSON(OPENAPI)


_UI_FILE = Path(__file__).with_name("ui.html")


@functools.cache
def _ui_page() -> tuple[bytes, str]:
    """The page and its Content-Security-Policy. Inline script and style are
    allowed by their hashes, so nothing else (an injected tag) can run."""
    try:
        page = _UI_FILE.read_text("utf-8")
    except OSError:
        page = "<!doctype html><title>vigil</title><p>The web UI is not installed; see /api/v1."

    def hashes(tag: str) -> str:
        found = re.findall(rf"<{tag}>(.*?)</{tag}>", page, re.DOTALL)
        digests = [base64.b64encode(hashlib.sha256(b.encode()).digest()).decode() for b in found]
        return " ".join(f"'sha256-{d}'" for d in digests) or "'none'"

    csp = (
        f"default-src 'none'; script-src {hashes('script')}; "
        f"style-src {hashes('style')}; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return page.encode("utf-8"), csp


async def ui(call: Call) -> Response:
    page, csp = _ui_page()
    return Response(
        page,
        media_type="text/html; charset=utf-8",
        headers={
            "Content-Security-Policy": csp,
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache",
        },
    )


def _query_bool(name: str, raw: str | None) -> bool | None:
    if raw is None:
        return None
    v = _BOOLS.get(raw.lower())
    if v is None:
        raise ApiError(422, f"{name}: expected true or false, got {raw[:40]!r}")
    return v


def _one_of(name: str, raw: str | None, allowed: tuple[str, ...]) -> str | None:
    if raw is not None and raw not in allowed:
        raise ApiError(422, f"{name}: expected one of {', '.join(allowed)}, got {raw[:40]!r}")
    return raw


async def list_alerts(call: Call) -> Response:
    q = call.request.query_params
    for k in q:
        if k not in ALERT_QUERY:
            raise ApiError(422, f"{k[:MAX_NAME]}: unknown query parameter")
    labels: dict[str, str] = {}
    for item in q.getlist("label"):
        k, sep, v = item.partition("=")
        if not sep or not k:
            raise ApiError(422, f"label: expected name=value, got {item[:60]!r}")
        labels[k] = v
    await call.facade.prepare_alerts()
    alerts = call.facade.list_alerts(
        state=_one_of("state", q.get("state"), ALERT_STATES),
        severity=_one_of("severity", q.get("severity"), SEVERITIES),
        rule=q.get("rule"),
        labels=labels,
        silenced=_query_bool("silenced", q.get("silenced")),
        acknowledged=_query_bool("acknowledged", q.get("acknowledged")),
    )
    ready = getattr(alerts, "json", None)
    if isinstance(ready, bytes):  # an AlertList: the facade encoded it
        return json_bytes(ready)
    last = call.state.last_alerts
    # equal lists encode alike (1 == 1.0 is one JSON number; a NaN never equals itself,
    # so such a list is encoded afresh). Safe because the facade never changes dicts it
    # has returned (see DaemonFacade.list_alerts).
    if last is not None and last[0] == alerts:
        body = last[1]
    else:
        body = encode({"alerts": alerts})
        call.state.last_alerts = (alerts, body)
    return json_bytes(body)


PIECE = 128 * 1024  # bytes per write of a large body


class PiecewiseResponse(Response):
    """A large body written a piece at a time.

    Handed to the server whole, 5 MB (10,000 alerts) would sit in the socket's
    send buffer and be shifted down after every partial send, a few ms of the
    event loop per client at a time. In pieces, each write is short and the
    server's flow control waits for a slow reader between them."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        view = memoryview(self.body)
        for at in range(0, len(view), PIECE):
            if at:
                await slices.check()  # other clients' pieces and the ticks take turns
            more = at + PIECE < len(view)
            await send(
                {"type": "http.response.body", "body": view[at : at + PIECE], "more_body": more}
            )


def json_bytes(body: bytes) -> Response:
    """A JSON response of encoded bytes; large ones are written piecewise."""
    kind = PiecewiseResponse if len(body) > PIECE else Response
    return kind(body, headers=_API_HEADERS, media_type="application/json")


async def explain_rule(call: Call) -> Response:
    """Why a rule's alert is or is not firing, and where its notification would go."""
    from engine.explain.result import UnknownRule

    labels: dict[str, str] = {}
    for item in call.request.query_params.getlist("label"):
        k, sep, v = item.partition("=")
        if not sep or not k:
            raise ApiError(422, f"label: expected name=value, got {item[:60]!r}")
        labels[k] = v
    try:
        return JSON(call.facade.explain(call.param("rule"), labels))
    except UnknownRule as e:
        raise ApiError(404, str(e)) from None


async def get_alert(call: Call) -> Response:
    fp = call.param("fp")
    alert = call.facade.get_alert(fp)
    if alert is None:
        raise ApiError(404, f"no alert {fp[:64]}")
    return JSON(alert)


async def ack(call: Call) -> Response:
    fp = call.param("fp")
    f = await call.fields()
    note = f.text("note", required=True)
    assert note is not None
    by = f.text("by", max_len=MAX_NAME) or call.name
    until = f.expiry(time.time(), required=False)
    f.done()
    alert = await call.write(
        "ack",
        {"alert": fp, "as": by, "note": note, "until": rfc3339(until)},
        lambda: call.facade.ack(fp, by=by, note=note, until=until),
        f"no alert {fp[:64]}",
    )
    return JSON(alert)


async def unack(call: Call) -> Response:
    fp = call.param("fp")
    f = await call.fields()
    by = f.text("by", max_len=MAX_NAME) or call.name
    f.done()
    alert = await call.write(
        "unack",
        {"alert": fp, "as": by},
        lambda: call.facade.unack(fp, by=by),
        f"no alert {fp[:64]}",
    )
    return JSON(alert)


async def list_silences(call: Call) -> Response:
    q = call.request.query_params
    for k in q:
        if k != "all":
            raise ApiError(422, f"{k[:MAX_NAME]}: unknown query parameter")
    expired = _query_bool("all", q.get("all")) or False
    return JSON({"silences": call.facade.list_silences(expired=expired)})


async def create_silence(call: Call) -> Response:
    now = time.time()
    f = await call.fields()
    matchers = parse_matchers(f.get("matchers"))
    starts = f.time("starts")
    until = f.expiry(now, required=True)
    assert until is not None
    if starts is not None and starts >= until:
        raise ApiError(422, "starts: must be before until")
    reason = f.text("reason", required=True)
    assert reason is not None
    by = f.text("by", max_len=MAX_NAME) or call.name
    f.done()
    silence = await call.write(
        "silence_create",
        {
            "matchers": matchers,
            "starts": rfc3339(starts),
            "until": rfc3339(until),
            "reason": reason,
            "as": by,
        },
        lambda: call.facade.create_silence(
            matchers=matchers, starts=starts, until=until, reason=reason, by=by
        ),
        "no such silence",
    )
    return JSON(silence, 201)


async def expire_silence(call: Call) -> Response:
    sid = call.param("sid")
    f = await call.fields()
    f.done()
    silence = await call.write(
        "silence_expire",
        {"silence": sid},
        lambda: call.facade.expire_silence(sid, by=call.name),
        f"no silence {sid[:64]}",
    )
    return JSON(silence)


async def list_rules(call: Call) -> Response:
    return JSON({"rules": call.facade.list_rules()})


async def list_channels(call: Call) -> Response:
    return JSON({"channels": call.facade.list_channels()})


async def status(call: Call) -> Response:
    return JSON(call.facade.status())


async def push_metrics(call: Call) -> Response:
    f = await call.fields()
    collector = f.text("collector", required=True, max_len=MAX_NAME)
    assert collector is not None
    values = f.get("values")
    if not isinstance(values, dict):
        raise ApiError(422, "values: expected an object of metric name -> value")
    f.done()
    await call.write(
        "metrics_push",
        # the values themselves are data, not an action: only their count is audited
        {"collector": collector, "metrics": len(values)},
        lambda: call.facade.push_metrics(collector, values, by=call.name),
        f"no push collector {collector[:64]}",
    )
    return JSON({"ok": True, "collector": collector, "metrics": len(values)})


async def reload(call: Call) -> Response:
    f = await call.fields()
    f.done()
    result = await call.write(
        "reload", {}, lambda: call.facade.reload(by=call.name), "no configuration"
    )
    if result.get("ok"):
        return JSON(result)
    errors = result.get("errors") or []
    return JSON(
        {
            **result,
            "error": f"configuration rejected ({len(errors)} problem(s)); "
            "the previous configuration stays active",
        },
        422,
    )


async def test_channel(call: Call) -> Response:
    name = call.param("name")
    f = await call.fields()
    f.done()
    result = await call.write(
        "channel_test",
        {"channel": name},
        lambda: call.facade.test_channel(name, by=call.name),
        f"no channel {name[:64]}",
    )
    if result.get("ok"):
        return JSON(result)
    return JSON({**result, "error": str(result.get("message") or "delivery failed")}, 502)


# -- the table ---------------------------------------------------------------------------

Handler = Callable[[Call], Awaitable[Response]]


def endpoint(role: Role | None, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Authenticate (unless `role` is None), check the role, run, render ApiError."""

    async def run(request: Request) -> Response:
        state: ServerState = request.app.state.vigil
        try:
            who = None
            if role is not None:
                try:
                    who = authenticate(request.headers.get("authorization"), state.api.tokens)
                except Unauthorized as e:
                    raise ApiError(401, e.message, {"WWW-Authenticate": e.challenge}) from None
                if not who.allows(role):
                    await state.facade.audit(
                        "denied",
                        by=who.name,
                        details={
                            "method": request.method,
                            "path": request.url.path,
                            "role": who.role,
                            "needed": role,
                        },
                    )
                    raise ApiError(
                        403, f"token {who.name!r} has role {who.role}; this needs {role} or higher"
                    )
            return await handler(Call(request, state, who))
        except ApiError as e:
            return error_response(e.status, e.message, e.headers)

    run.__name__ = handler.__name__
    run.__doc__ = handler.__doc__
    return run


# (method, path, role or None for no token, handler); the OpenAPI document lists the same
ENDPOINTS: tuple[tuple[str, str, Role | None, Handler], ...] = (
    ("GET", "/", None, ui),
    ("GET", "/health", None, health),
    ("GET", "/ready", None, ready),
    ("GET", "/metrics", "viewer", metrics),
    ("GET", "/openapi.json", "viewer", openapi),
    ("GET", "/api/v1/alerts", "viewer", list_alerts),
    ("GET", "/api/v1/alerts/{fp}", "viewer", get_alert),
    ("POST", "/api/v1/alerts/{fp}/ack", "operator", ack),
    ("POST", "/api/v1/alerts/{fp}/unack", "operator", unack),
    ("GET", "/api/v1/silences", "viewer", list_silences),
    ("POST", "/api/v1/silences", "operator", create_silence),
    ("DELETE", "/api/v1/silences/{sid}", "operator", expire_silence),
    ("GET", "/api/v1/rules", "viewer", list_rules),
    ("GET", "/api/v1/channels", "viewer", list_channels),
    ("GET", "/api/v1/status", "viewer", status),
    ("GET", "/api/v1/explain/{rule}", "viewer", explain_rule),
    ("POST", "/api/v1/metrics", "operator", push_metrics),
    ("POST", "/api/v1/reload", "admin", reload),
    ("POST", "/api/v1/channels/{name}/test", "admin", test_channel),
)


def routes() -> list[Route]:
    # one Route per path, so a wrong method is a 405 rather than a 404
    by_path: dict[str, dict[str, Callable[[Request], Awaitable[Response]]]] = {}
    for method, path, role, handler in ENDPOINTS:
        by_path.setdefault(path, {})[method] = endpoint(role, handler)
    out: list[Route] = []
    for path, methods in by_path.items():
        if len(methods) == 1:
            ((method, fn),) = methods.items()
            out.append(Route(path, fn, methods=[method]))
        else:
            out.append(Route(path, _dispatch(methods), methods=list(methods)))
    return out


def _dispatch(
    methods: Mapping[str, Callable[[Request], Awaitable[Response]]],
) -> Callable[[Request], Awaitable[Response]]:
    async def run(request: Request) -> Response:
        return await methods[request.method if request.method != "HEAD" else "GET"](request)

    return run
