"""The daemon's own endpoints: status, rules, channels, pushed metrics, reload
and channel tests.

What an operator or admin asks of the daemon as a whole rather than of one
alert or silence; reload and channel tests are the admin-only writes.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from engine.api.request import MAX_NAME, Call
from engine.api.responses import JSON, ApiError

_WHEN = {"type": ["string", "null"], "format": "date-time"}
# one rule of GET /api/v1/rules (merged into /openapi.json by openapi.py)
SCHEMAS: dict[str, Any] = {
    "Rule": {
        "type": "object",
        "description": "a rule's configuration (id, group, expr, severity, for, labels, "
        "annotations, interval, source ...) and what it does at run time",
        "properties": {
            **{k: {"type": "string"} for k in ("id", "group", "expr", "severity", "source")},
            "enabled": {"type": "boolean"},
            "evaluated_at": {
                **_WHEN,
                "description": "when its group last ran (rules run a group at a time)",
            },
            "evaluation_seconds": {
                "type": ["number", "null"],
                "description": "how long its group's last run took, all its rules together",
            },
            "firing": {"type": "integer", "description": "its alerts firing now"},
            "pending": {"type": "integer", "description": "its alerts pending now"},
            "value": {
                "description": "the value of its live alert (a rule without `each`); "
                "null when quiet: a false condition's value is not computed"
            },
            "failures": {
                "type": "integer",
                "description": "its evaluations that raised an error since the daemon started",
            },
        },
    }
}


async def list_rules(call: Call) -> Response:
    return JSON({"rules": call.facade.list_rules()})


async def list_channels(call: Call) -> Response:
    return JSON({"channels": call.facade.list_channels()})


async def status(call: Call) -> Response:
    # `caller`: the console shows an operator's actions only to a token that may use them
    who = call.who
    caller = {"name": who.name, "role": who.role} if who is not None else None
    return JSON({**call.facade.status(), "caller": caller})


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
