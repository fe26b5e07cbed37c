"""The pieces of the OpenAPI document (engine/api/openapi.py): its builders, the shared
parameters and responses, and the component schemas, the shapes the API returns and takes.
"""

from __future__ import annotations

from typing import Any

from engine.api.daemon_routes import SCHEMAS as RULE_SCHEMAS
from engine.api.preview_routes import SCHEMAS


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_response(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "malformed JSON",
        401: "no token or an invalid token",
        403: "the token's role is too low",
        404: "no such object",
        413: "request body too large",
        422: "a field is wrong (the message names it)",
        429: "too many at once for this token",
        502: "the channel could not deliver",
        503: "not ready",
    }
    return {str(c): json_response(ref("Error"), text[c]) for c in codes}


def list_of(key: str, item: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": [key],
        "properties": {key: {"type": "array", "items": ref(item)}},
    }


def path_param(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": description,
    }


def query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def body(schema: dict[str, Any], *, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


READ = errors(401)
WRITE = errors(400, 401, 403, 413, 422)
PUBLIC: list[dict[str, Any]] = []  # operations that need no token
TIME = {"type": "string", "format": "date-time", "description": "RFC 3339, with a timezone"}
DURATION = {"type": "string", "examples": ["30m", "2h", "1d"], "description": "from now"}
EMPTY_BODY = body({"type": "object", "maxProperties": 0}, required=False)
WHEN = {"type": "string", "description": "RFC 3339, epoch seconds, or a duration ago (24h)"}
HISTORY_Q = {
    "rule": query("rule", {"type": "string"}, "rule id"),
    "match": query(
        "match", {"type": "string"}, 'label matcher (team!=ops, host=~"web-.*"); repeat'
    ),
    "from": query("from", WHEN, "start of the window"),
    "to": query("to", WHEN, "end of the window"),
    "limit": query("limit", {"type": "integer", "minimum": 1, "maximum": 10000}, "at most"),
}
HISTORY_ERR = errors(401, 422, 503)

COMPONENT_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string", "description": "one line for a person"}},
    },
    "Ack": {
        "type": ["object", "null"],
        "properties": {
            "by": {"type": "string"},
            "note": {"type": "string"},
            "at": {"type": ["string", "null"], "format": "date-time"},
            "until": {"type": ["string", "null"], "format": "date-time"},
        },
    },
    "Alert": {
        "type": "object",
        "properties": {
            "fingerprint": {"type": "string"},
            "rule": {"type": "string"},
            "state": {"enum": ["pending", "firing"]},
            "severity": {"enum": ["info", "warning", "critical", "emergency"]},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
            "value": {},
            "starts_at": {"type": ["string", "null"], "format": "date-time"},
            "pending_since": {"type": ["string", "null"], "format": "date-time"},
            "firing_since": {"type": ["string", "null"], "format": "date-time"},
            "acknowledged": ref("Ack"),
            "silenced": {"type": "boolean"},
            "silenced_by": {"type": "array", "items": {"type": "string"}},
            "inhibited": {"type": "boolean"},
            "escalation": {"type": "integer"},
            "flapping": {"type": "boolean"},
            "stale": {
                "type": "boolean",
                "description": "A collector its rule reads is down: the state is the last one known.",
            },
            "history": {
                "type": "array",
                "items": {"type": "object"},
                "description": "this alert's latest journal events (at most 100), oldest first "
                "(GET alerts/{fp} only; alerts/{fp}/timeline has them all)",
            },
            "history_source": {
                "enum": ["index", "journal_tail", "unavailable"],
                "description": "where history comes from (GET alerts/{fp} only): the history "
                "index; while it is not ready, the journal's last 20,000 lines; unavailable: "
                "the journal could not be read",
            },
        },
    },
    "Episode": {
        "type": "object",
        "description": "one alert episode from the history index: pending or firing until "
        "ended; times RFC 3339, null when not (yet) reached",
        "properties": {
            **{k: {"type": "string"} for k in ("fingerprint", "rule", "severity")},
            "id": {"type": "integer"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            **{
                k: {"type": ["string", "null"], "format": "date-time"}
                for k in ("start", "pending_at", "firing_at", "end", "acked_at")
            },
            "end_kind": {"enum": ["resolved", "inactive", "pending", None]},
            "acked_by": {"type": ["string", "null"]},
            "notified": {"type": "integer"},
            "notify_failed": {"type": "integer"},
            "state": {"enum": ["pending", "firing"], "description": "history/at only"},
        },
    },
    "Matcher": {
        "description": "missing labels match as the empty string; regexes are RE2, fully "
        "anchored; negate: true makes = into != and =~ into !~",
        "oneOf": [
            {
                "type": "object",
                "required": ["label", "value"],
                "additionalProperties": False,
                "properties": {
                    "label": {"type": "string"},
                    "value": {"type": "string"},
                    "negate": {"type": "boolean", "default": False},
                },
            },
            {
                "type": "object",
                "required": ["label", "regex"],
                "additionalProperties": False,
                "properties": {
                    "label": {"type": "string"},
                    "regex": {"type": "string", "description": "RE2, anchored (full match)"},
                    "negate": {"type": "boolean", "default": False},
                },
            },
            {
                "type": "string",
                "description": "requests only: Alertmanager's form, label=value, label!=value, "
                'label=~regex or label!~regex (value optionally "quoted")',
                "examples": ["team!=ops", 'service=~"db.*"'],
            },
        ],
    },
    "Silence": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "matchers": {"type": "array", "items": ref("Matcher")},
            "starts": {"type": ["string", "null"], "format": "date-time"},
            "until": {"type": "string", "format": "date-time"},
            "reason": {"type": "string"},
            "created_by": {"type": "string"},
            "state": {"enum": ["active", "pending", "expired"]},
        },
    },
    "AckRequest": {
        "type": "object",
        "required": ["note"],
        "additionalProperties": False,
        "properties": {
            "note": {"type": "string", "minLength": 1, "maxLength": 1000},
            "by": {"type": "string", "description": "default: the token's name"},
            "until": TIME,
            "for": DURATION,
        },
    },
    "UnackRequest": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"by": {"type": "string"}},
    },
    "SilenceRequest": {
        "type": "object",
        "required": ["matchers", "reason"],
        "additionalProperties": False,
        "description": "exactly one of until and for",
        "properties": {
            "matchers": {
                "type": "array",
                "minItems": 1,
                "maxItems": 64,
                "items": ref("Matcher"),
            },
            "starts": TIME,
            "until": TIME,
            "for": DURATION,
            "reason": {"type": "string", "minLength": 1, "maxLength": 1000},
            "by": {"type": "string"},
        },
    },
    "MetricsPush": {
        "type": "object",
        "required": ["collector", "values"],
        "additionalProperties": False,
        "properties": {
            "collector": {"type": "string", "description": "a collector of type push"},
            "values": {"type": "object", "description": "metric name -> number, bool, string"},
        },
    },
    "ReloadResult": {
        "type": "object",
        "properties": {
            "ok": {"type": "boolean"},
            "errors": {"type": "array", "items": {"type": "string"}},
            "error": {"type": "string"},
        },
    },
    "ChannelTestResult": {
        "type": "object",
        "properties": {
            "ok": {"type": "boolean"},
            "message": {"type": "string"},
            "error": {"type": "string"},
        },
    },
    **SCHEMAS,  # ChannelPreviewRequest, ChannelPreview (preview_routes.py)
    **RULE_SCHEMAS,  # Rule (daemon_routes.py)
    "Status": {
        "type": "object",
        "properties": {
            "version": {"type": "string"},
            "config_hash": {"type": "string"},
            "started": {"type": "string", "format": "date-time"},
            "last_reload": {
                "type": "object",
                "properties": {
                    "ok": {"type": "boolean"},
                    "at": {"type": ["string", "null"], "format": "date-time"},
                    "errors": {"type": "array", "items": {"type": "string"}},
                },
            },
            "caller": {
                "type": "object",
                "description": "the token asking: its name and role",
                "properties": {
                    "name": {"type": "string"},
                    "role": {"enum": ["viewer", "operator", "admin"]},
                },
            },
        },
    },
}

ALERT_FILTERS = [
    query("state", {"enum": ["pending", "firing"]}, "alert state"),
    query("severity", {"enum": ["info", "warning", "critical", "emergency"]}, "severity"),
    query("rule", {"type": "string"}, "rule id"),
    {
        **query("label", {"type": "array", "items": {"type": "string"}}, "name=value, repeatable"),
        "style": "form",
        "explode": True,
    },
    query("silenced", {"type": "boolean"}, "only silenced (true) or unsilenced (false)"),
    query("acknowledged", {"type": "boolean"}, "only acknowledged or unacknowledged"),
]
