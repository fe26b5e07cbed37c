"""POST /api/v1/channels/{name}/preview: what a channel would send, sending nothing.

The body chooses the alert (engine/channels/preview_build.py): `{"alert": FP}`,
an active alert; `{"rule": ID, "labels": {...}, "value": V}`, the alert that
rule would raise; `{}`, the test alert of POST /api/v1/channels/{name}/test.
`"resolved": true` previews the resolve. The answer is the rendered
notification and each request, mail or command the channel would make, its
secrets as ***.

Role operator: nothing is sent (the test send, which pages someone, is admin),
but the answer shows more of a channel than a viewer sees (recipients, hosts,
the rendered text), and it is what whoever writes templates and silences needs.
Audited like every POST, so who looked at which channel is on record.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from engine.api.request import MAX_NAME, Call
from engine.api.responses import JSON, ApiError
from engine.channels.preview_build import Choice

MAX_LABELS = 64

# the OpenAPI schemas of this endpoint (engine/api/openapi.py lists them)
_WIRE = {
    "type": "object",
    "description": "one request, mail or command; secrets as ***",
    "properties": {
        "kind": {"enum": ["http", "smtp", "exec", "file", "log", "memory", "nft"]},
        "target": {"type": "string", "description": "POST https://host/..., smtp://host:port"},
        "headers": {"type": "array", "items": {"type": "array", "items": {"type": "string"}}},
        "body": {"type": "string", "description": "the bytes sent, as text"},
        "argv": {"type": "array", "items": {"type": "string"}},
    },
}
SCHEMAS: dict[str, Any] = {
    "ChannelPreviewRequest": {
        "type": "object",
        "additionalProperties": False,
        "description": "alert, or rule (with labels and value), or neither: the test alert",
        "properties": {
            "alert": {"type": "string", "description": "an active alert's fingerprint"},
            "rule": {"type": "string", "description": "a rule id of the running config"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "value": {"type": ["number", "string", "boolean", "null"]},
            "resolved": {"type": "boolean", "description": "preview the resolve"},
        },
    },
    "ChannelPreview": {
        "type": "object",
        "properties": {
            "channel": {"type": "string"},
            "type": {"type": "string"},
            "notification": {
                "type": "object",
                "description": "kind, status, group_key, key, title, body, html, alerts",
            },
            "wire": {"type": "array", "items": _WIRE},
        },
    },
}


async def preview_channel(call: Call) -> Response:
    name = call.param("name")
    f = await call.fields()
    alert = f.text("alert", max_len=MAX_NAME)
    rule = f.text("rule", max_len=MAX_NAME)
    labels = _labels(f.get("labels"))
    value: Any = f.get("value")
    resolved = f.get("resolved")
    f.done()
    if alert is not None and rule is not None:
        raise ApiError(422, "alert, rule: give one of them, not both")
    if rule is None and (labels or value is not None):
        raise ApiError(422, "labels, value: they describe the alert of a rule; give rule too")
    if not isinstance(value, str | int | float | bool | None):
        raise ApiError(422, "value: expected a number, a string, true, false or null")
    if resolved is not None and not isinstance(resolved, bool):
        raise ApiError(422, "resolved: expected true or false")
    choice = Choice(alert=alert, rule=rule, labels=labels, value=value, resolved=bool(resolved))
    result = await call.write(
        "channel_preview",
        {"channel": name, "alert": alert, "rule": rule},
        lambda: call.facade.preview_channel(name, choice),
        f"no channel {name[:64]}" if alert is None else f"no channel {name[:64]} or alert {alert}",
    )
    return JSON(result)


def _labels(v: Any) -> dict[str, str]:
    if v is None:
        return {}
    if not isinstance(v, dict) or len(v) > MAX_LABELS:
        raise ApiError(422, f"labels: expected an object of at most {MAX_LABELS} name: value")
    for k, val in v.items():
        if not isinstance(val, str) or len(k) > MAX_NAME or len(val) > MAX_NAME:
            raise ApiError(422, f"labels.{str(k)[:MAX_NAME]}: expected a short string")
    return {str(k): val for k, val in v.items()}
