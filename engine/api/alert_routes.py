"""The alert endpoints: list, get, explain, acknowledge and unacknowledge.

The busiest reads of the API (pollers ask for the alert list every few
seconds), so the list keeps its last encoding; apart from silences and the
daemon's own endpoints because each of those reads a different part of the facade.
"""

from __future__ import annotations

import time

from starlette.responses import Response

from engine.api.facade import rfc3339
from engine.api.request import MAX_NAME, Call, one_of, query_bool
from engine.api.responses import JSON, ApiError, encode, json_bytes
from engine.config.model import SEVERITIES

ALERT_STATES = ("pending", "firing")
ALERT_QUERY = ("state", "severity", "rule", "label", "silenced", "acknowledged")


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
    # fifty pollers' listings read in one loop iteration would otherwise all run
    # in the next, a tick due meanwhile waiting behind them: they take turns
    # within the loop's time budget
    await call.state.budget.yield_if_spent()
    await call.facade.prepare_alerts()
    alerts = call.facade.list_alerts(
        state=one_of("state", q.get("state"), ALERT_STATES),
        severity=one_of("severity", q.get("severity"), SEVERITIES),
        rule=q.get("rule"),
        labels=labels,
        silenced=query_bool("silenced", q.get("silenced")),
        acknowledged=query_bool("acknowledged", q.get("acknowledged")),
    )
    ready = getattr(alerts, "json", None)
    if isinstance(ready, bytes):  # an AlertList: the facade encoded it
        return json_bytes(ready, call.state.budget)
    last = call.state.last_alerts
    # equal lists encode alike (1 == 1.0 is one JSON number; a NaN never equals itself,
    # so such a list is encoded afresh). Safe because the facade never changes dicts it
    # has returned (see DaemonFacade.list_alerts).
    if last is not None and last[0] == alerts:
        body = last[1]
    else:
        body = encode({"alerts": alerts})
        call.state.last_alerts = (alerts, body)
    return json_bytes(body, call.state.budget)


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
    alert = await call.facade.get_alert(fp)
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
