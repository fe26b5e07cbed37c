"""The endpoints around the API: health, readiness, /metrics and the OpenAPI
document (the web console is console_routes.py).

Probes rather than data about alerts: mostly without a token, so kept apart.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from engine.api.request import Call
from engine.api.responses import JSON


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
