"""The API's route table: each endpoint declared once with the role it needs.

`endpoint()` wraps a handler with authentication, the role check and error
rendering, so a handler only deals with its own fields. Writes are audited
through the facade with the calling token's *name*. Errors are always
`{"error": "<one line>"}`. The handlers live by concept: alert_routes,
silence_routes, daemon_routes and service_routes; requests are parsed in
request.py and answered in responses.py.

Status codes: 400 malformed JSON, 401 no/invalid token, 403 role too low,
404 unknown object, 413 body too large, 422 wrong fields (the field is named),
502 a channel test that could not deliver.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from engine.api.alert_routes import ack, explain_rule, get_alert, list_alerts, unack
from engine.api.auth import Unauthorized, authenticate
from engine.api.ban_routes import list_bans, unban
from engine.api.console_routes import console_file, ui
from engine.api.daemon_routes import (
    list_channels,
    list_rules,
    push_metrics,
    reload,
    status,
    test_channel,
)
from engine.api.history_routes import history, history_at, history_counts, timeline
from engine.api.preview_routes import preview_channel
from engine.api.request import Call, ServerState
from engine.api.responses import ApiError, error_response
from engine.api.service_routes import health, metrics, openapi, ready
from engine.api.silence_routes import create_silence, expire_silence, list_silences
from engine.api.stream_routes import events, events_ticket
from engine.config.model import Role

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
    ("GET", "/console/{file}", None, console_file),
    ("GET", "/health", None, health),
    ("GET", "/ready", None, ready),
    ("GET", "/metrics", "viewer", metrics),
    ("GET", "/openapi.json", "viewer", openapi),
    ("GET", "/api/v1/alerts", "viewer", list_alerts),
    ("GET", "/api/v1/alerts/{fp}", "viewer", get_alert),
    ("POST", "/api/v1/alerts/{fp}/ack", "operator", ack),
    ("POST", "/api/v1/alerts/{fp}/unack", "operator", unack),
    ("GET", "/api/v1/alerts/{fp}/timeline", "viewer", timeline),
    ("GET", "/api/v1/history", "viewer", history),
    ("GET", "/api/v1/history/counts", "viewer", history_counts),
    ("GET", "/api/v1/history/at", "viewer", history_at),
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
    ("POST", "/api/v1/channels/{name}/preview", "operator", preview_channel),
    ("GET", "/api/v1/bans", "viewer", list_bans),
    ("POST", "/api/v1/bans/{address}/unban", "operator", unban),
    ("POST", "/api/v1/events/ticket", "viewer", events_ticket),
    ("GET", "/api/v1/events", None, events),  # its own auth: bearer or ?ticket= (stream_routes)
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
