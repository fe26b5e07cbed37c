"""The endpoints around the API: health, readiness, /metrics, the OpenAPI
document and the web UI page.

Probes and pages rather than data about alerts: mostly without a token, with
their own headers (the UI page's Content-Security-Policy), so kept apart.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from pathlib import Path

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
