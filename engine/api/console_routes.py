"""The web console: a page at `/` and its files at /console/{file}.

Plain HTML, CSS and JavaScript modules shipped in the package (engine/api/console/),
nothing to build. The Content-Security-Policy allows scripts and styles from this
server only: no inline script, no eval, so text injected into the page (labels
and annotations come from collectors and configs) can never run. Only the files
of that folder are served, by their plain names, read once.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from starlette.responses import Response

from engine.api.request import Call
from engine.api.responses import ApiError

CONSOLE_DIR = Path(__file__).with_name("console")
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
_NAME = re.compile(r"[a-z][a-z0-9_-]*\.(?:js|css|html)")
_MISSING = b"<!doctype html><title>vigil</title><p>The web console is not installed; see /api/v1."


@functools.cache
def _files() -> dict[str, bytes]:
    """The console's files by name (read once: they ship with the package)."""
    try:
        found = sorted(CONSOLE_DIR.iterdir())
    except OSError:
        return {}
    return {p.name: p.read_bytes() for p in found if _NAME.fullmatch(p.name) and p.is_file()}


def _serve(name: str, body: bytes) -> Response:
    return Response(
        body,
        media_type=_TYPES[Path(name).suffix],
        headers={
            "Content-Security-Policy": CSP,
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache",  # a new version of vigil serves new files
        },
    )


async def ui(call: Call) -> Response:
    """The console's page; it asks for a token itself."""
    return _serve("index.html", _files().get("index.html", _MISSING))


async def console_file(call: Call) -> Response:
    name = call.param("file")
    body = _files().get(name) if _NAME.fullmatch(name) else None
    if body is None:
        raise ApiError(404, f"no console file {name[:60]!r}")
    return _serve(name, body)
