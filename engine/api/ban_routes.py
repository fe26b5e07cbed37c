"""The ban endpoints: the active bans of the `ban` channels, and lifting one
(`vigil unban ADDRESS`, operator). The channel itself lifts it, in the sender
process, and the daemon journals its `unban` event (engine/channels/ban/)."""

from __future__ import annotations

import ipaddress

from starlette.responses import Response

from engine.api.request import Call
from engine.api.responses import JSON, ApiError


async def list_bans(call: Call) -> Response:
    for k in call.request.query_params:
        raise ApiError(422, f"{k[:64]}: unknown query parameter")
    return JSON({"bans": call.facade.list_bans()})


async def unban(call: Call) -> Response:
    address = call.param("address")
    f = await call.fields()
    f.done()
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise ApiError(422, f"address: not an IP address: {address[:64]!r}") from None
    results = await call.write(
        "unban",
        {"address": address},
        lambda: call.facade.unban(address, by=call.name),
        f"{address} is not banned",
    )
    return JSON({"address": address, "channels": results})
