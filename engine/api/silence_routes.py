"""The silence endpoints: list, create (matchers, start, expiry, reason) and expire.

Separate from the alert endpoints: silences are their own objects, with their
own body (matchers) and their own audit actions.
"""

from __future__ import annotations

import time

from starlette.responses import Response

from engine.api.facade import rfc3339
from engine.api.request import MAX_NAME, Call, parse_matchers, query_bool
from engine.api.responses import JSON, ApiError


async def list_silences(call: Call) -> Response:
    q = call.request.query_params
    for k in q:
        if k != "all":
            raise ApiError(422, f"{k[:MAX_NAME]}: unknown query parameter")
    expired = query_bool("all", q.get("all")) or False
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
