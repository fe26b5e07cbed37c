"""The OpenAPI 3.1 document served at /openapi.json, written by hand.

It is kept next to the routes on purpose rather than generated from them: it is
documentation for people and client generators, and tests/unit/api/test_api.py
checks that it lists exactly the routes the server has.
"""

from __future__ import annotations

from typing import Any

from engine import __version__
from engine.api.daemon_routes import SCHEMAS as RULE_SCHEMAS
from engine.api.preview_routes import SCHEMAS


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "malformed JSON",
        401: "no token or an invalid token",
        403: "the token's role is too low",
        404: "no such object",
        413: "request body too large",
        422: "a field is wrong (the message names it)",
        502: "the channel could not deliver",
        503: "not ready",
    }
    return {str(c): _json(_ref("Error"), text[c]) for c in codes}


def _list(key: str, item: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": [key],
        "properties": {key: {"type": "array", "items": _ref(item)}},
    }


def _path(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": description,
    }


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _body(schema: dict[str, Any], *, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


_READ = _errors(401)
_WRITE = _errors(400, 401, 403, 413, 422)
_PUBLIC: list[dict[str, Any]] = []  # operations that need no token
_TIME = {"type": "string", "format": "date-time", "description": "RFC 3339, with a timezone"}
_DURATION = {"type": "string", "examples": ["30m", "2h", "1d"], "description": "from now"}
_EMPTY_BODY = _body({"type": "object", "maxProperties": 0}, required=False)
_WHEN = {"type": "string", "description": "RFC 3339, epoch seconds, or a duration ago (24h)"}
_HISTORY_Q = {
    "rule": _query("rule", {"type": "string"}, "rule id"),
    "match": _query(
        "match", {"type": "string"}, 'label matcher (team!=ops, host=~"web-.*"); repeat'
    ),
    "from": _query("from", _WHEN, "start of the window"),
    "to": _query("to", _WHEN, "end of the window"),
    "limit": _query("limit", {"type": "integer", "minimum": 1, "maximum": 10000}, "at most"),
}
_HISTORY_ERR = _errors(401, 422, 503)

_SCHEMAS: dict[str, Any] = {
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
            "acknowledged": _ref("Ack"),
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
                "description": "journal events of this alert, oldest first (GET alerts/{fp} only)",
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
            "matchers": {"type": "array", "items": _ref("Matcher")},
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
            "until": _TIME,
            "for": _DURATION,
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
                "items": _ref("Matcher"),
            },
            "starts": _TIME,
            "until": _TIME,
            "for": _DURATION,
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
        },
    },
}

_ALERT_FILTERS = [
    _query("state", {"enum": ["pending", "firing"]}, "alert state"),
    _query("severity", {"enum": ["info", "warning", "critical", "emergency"]}, "severity"),
    _query("rule", {"type": "string"}, "rule id"),
    {
        **_query("label", {"type": "array", "items": {"type": "string"}}, "name=value, repeatable"),
        "style": "form",
        "explode": True,
    },
    _query("silenced", {"type": "boolean"}, "only silenced (true) or unsilenced (false)"),
    _query("acknowledged", {"type": "boolean"}, "only acknowledged or unacknowledged"),
]

_PATHS: dict[str, Any] = {
    "/": {
        "get": {
            "summary": "web console (asks for a token in the page)",
            "security": _PUBLIC,
            "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}},
        }
    },
    "/console/{file}": {
        "get": {
            "summary": "a file of the web console (its scripts and style)",
            "security": _PUBLIC,
            "parameters": [_path("file", "file name, such as app.js")],
            "responses": {"200": {"description": "JavaScript, CSS or HTML"}, **_errors(404)},
        }
    },
    "/health": {
        "get": {
            "summary": "liveness",
            "security": _PUBLIC,
            "responses": {"200": _json({"type": "object"}, "the process is serving")},
        }
    },
    "/ready": {
        "get": {
            "summary": "readiness: configuration loaded and log replayed",
            "security": _PUBLIC,
            "responses": {"200": _json({"type": "object"}, "ready"), **_errors(503)},
        }
    },
    "/metrics": {
        "get": {
            "summary": "Prometheus exposition",
            "responses": {
                "200": {"description": "text format 0.0.4", "content": {"text/plain": {}}},
                **_READ,
            },
        }
    },
    "/openapi.json": {
        "get": {
            "summary": "this document",
            "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1"), **_READ},
        }
    },
    "/api/v1/alerts": {
        "get": {
            "summary": "active alerts, filtered",
            "parameters": _ALERT_FILTERS,
            "responses": {"200": _json(_list("alerts", "Alert"), "alerts"), **_errors(401, 422)},
        }
    },
    "/api/v1/alerts/{fp}": {
        "get": {
            "summary": "one alert with its history",
            "parameters": [_path("fp", "fingerprint")],
            "responses": {"200": _json(_ref("Alert"), "the alert"), **_errors(401, 404)},
        }
    },
    "/api/v1/alerts/{fp}/ack": {
        "post": {
            "summary": "acknowledge (operator)",
            "parameters": [_path("fp", "fingerprint")],
            "requestBody": _body(_ref("AckRequest")),
            "responses": {"200": _json(_ref("Alert"), "the alert"), **_WRITE, **_errors(404)},
        }
    },
    "/api/v1/alerts/{fp}/unack": {
        "post": {
            "summary": "remove the acknowledgement (operator)",
            "parameters": [_path("fp", "fingerprint")],
            "requestBody": _body(_ref("UnackRequest"), required=False),
            "responses": {"200": _json(_ref("Alert"), "the alert"), **_WRITE, **_errors(404)},
        }
    },
    "/api/v1/alerts/{fp}/timeline": {
        "get": {
            "summary": "every journal event of one alert and its episodes, from the history",
            "parameters": [_path("fp", "fingerprint"), _HISTORY_Q["limit"]],
            "responses": {
                "200": _json({"type": "object"}, "timeline"),
                **_HISTORY_ERR,
                **_errors(404),
            },
        }
    },
    "/api/v1/history": {
        "get": {
            "summary": "alert episodes overlapping [from, to], newest first",
            "parameters": list(_HISTORY_Q.values()),
            "responses": {"200": _json(_list("episodes", "Episode"), "episodes"), **_HISTORY_ERR},
        }
    },
    "/api/v1/history/counts": {
        "get": {
            "summary": "per hour or day: episodes started, firing starts, alerts firing",
            "parameters": [
                _query("by", {"enum": ["hour", "day"]}, "bucket width, UTC (default hour)"),
                _HISTORY_Q["from"],
                _HISTORY_Q["to"],
            ],
            "responses": {"200": _json({"type": "object"}, "buckets"), **_HISTORY_ERR},
        }
    },
    "/api/v1/history/at": {
        "get": {
            "summary": "the alerts pending or firing at time t",
            "parameters": [
                _query("t", _WHEN, "default: now"),
                _HISTORY_Q["rule"],
                _HISTORY_Q["match"],
            ],
            "responses": {"200": _json(_list("alerts", "Episode"), "alerts"), **_HISTORY_ERR},
        }
    },
    "/api/v1/silences": {
        "get": {
            "summary": "silences (from the log and from channel files)",
            "parameters": [
                _query(
                    "all", {"type": "boolean"}, "also expired silences (default: active, pending)"
                )
            ],
            "responses": {"200": _json(_list("silences", "Silence"), "silences"), **_READ},
        },
        "post": {
            "summary": "create a silence (operator)",
            "requestBody": _body(_ref("SilenceRequest")),
            "responses": {"201": _json(_ref("Silence"), "the new silence"), **_WRITE},
        },
    },
    "/api/v1/silences/{sid}": {
        "delete": {
            "summary": "expire a silence now (operator)",
            "parameters": [_path("sid", "silence id")],
            "requestBody": _EMPTY_BODY,
            "responses": {
                "200": _json(_ref("Silence"), "the expired silence"),
                **_WRITE,
                **_errors(404),
            },
        }
    },
    "/api/v1/rules": {
        "get": {
            "summary": "rules of the running configuration",
            "responses": {
                "200": _json(_list("rules", "Rule"), "rules"),
                **_READ,
            },
        }
    },
    "/api/v1/channels": {
        "get": {
            "summary": "channels, secrets shown as ***",
            "responses": {
                "200": _json(
                    {"type": "object", "properties": {"channels": {"type": "array"}}}, "channels"
                ),
                **_READ,
            },
        }
    },
    "/api/v1/status": {
        "get": {
            "summary": "version, config hash, last reload",
            "responses": {"200": _json(_ref("Status"), "status"), **_READ},
        }
    },
    "/api/v1/explain/{rule}": {
        "get": {
            "summary": "why a rule's alert is or is not firing, where it would be notified",
            "parameters": [
                _path("rule", "rule id"),
                _query("label", {"type": "string"}, "name=value; repeat to narrow to one alert"),
            ],
            "responses": {"200": _json({"type": "object"}, "explanation"), **_READ, **_errors(404)},
        }
    },
    "/api/v1/metrics": {
        "post": {
            "summary": "feed a push collector (operator)",
            "requestBody": _body(_ref("MetricsPush")),
            "responses": {
                "200": _json({"type": "object"}, "stored"),
                **_WRITE,
                **_errors(404),
            },
        }
    },
    "/api/v1/reload": {
        "post": {
            "summary": "reload the configuration (admin)",
            "requestBody": _EMPTY_BODY,
            "responses": {
                "200": _json(_ref("ReloadResult"), "reloaded"),
                **_WRITE,
                "422": _json(_ref("ReloadResult"), "configuration rejected; the old one stays"),
            },
        }
    },
    "/api/v1/bans": {
        "get": {
            "summary": "the ban channels' active bans",
            "responses": {
                "200": _json(
                    {"type": "object", "properties": {"bans": {"type": "array"}}}, "active bans"
                ),
                **_READ,
            },
        }
    },
    "/api/v1/bans/{address}/unban": {
        "post": {
            "summary": "lift a ban on every ban channel holding it (operator)",
            "parameters": [_path("address", "an IP address (any address of a banned /64)")],
            "requestBody": _EMPTY_BODY,
            "responses": {
                "200": _json({"type": "object"}, "lifted: per channel {channel, ok, error}"),
                **_WRITE,
                **_errors(404),
            },
        }
    },
    "/api/v1/channels/{name}/test": {
        "post": {
            "summary": "send a test notification (admin)",
            "parameters": [_path("name", "channel name")],
            "requestBody": _EMPTY_BODY,
            "responses": {
                "200": _json(_ref("ChannelTestResult"), "delivered"),
                **_WRITE,
                **_errors(404),
                "502": _json(_ref("ChannelTestResult"), "the channel could not deliver"),
            },
        }
    },
    "/api/v1/channels/{name}/preview": {
        "post": {
            "summary": "what the channel would send for an alert, sending nothing (operator)",
            "parameters": [_path("name", "channel name")],
            "requestBody": _body(_ref("ChannelPreviewRequest"), required=False),
            "responses": {
                "200": _json(_ref("ChannelPreview"), "the preview"),
                **_WRITE,
                **_errors(404),
            },
        }
    },
    "/api/v1/events/ticket": {
        "post": {
            "summary": "a single-use ticket (30 s) to open the event stream from a browser",
            "requestBody": _EMPTY_BODY,
            "responses": {
                "201": _json(
                    {
                        "type": "object",
                        "properties": {
                            "ticket": {"type": "string"},
                            "expires_in": {"type": "number"},
                        },
                    },
                    "the ticket for GET /api/v1/events?ticket=",
                ),
                **_WRITE,
            },
        }
    },
    "/api/v1/events": {
        "get": {
            "summary": "journaled events as server-sent events (viewer), as they happen",
            "description": "Authorization: Bearer, or ?ticket= from POST /api/v1/events/ticket "
            "(EventSource cannot send headers). Each `data:` line is a JSON summary "
            "(event, seq, ts, alert or id, rule, severity, action); a client that falls "
            "behind is sent `event: dropped` and the stream ends.",
            "security": _PUBLIC,
            "parameters": [_query("ticket", {"type": "string"}, "from POST /api/v1/events/ticket")],
            "responses": {
                "200": {"description": "the stream", "content": {"text/event-stream": {}}},
                **_errors(401, 422, 503),
            },
        }
    },
}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "vigil",
        "version": __version__,
        "description": "The vigil daemon's HTTP API. Bearer tokens with roles "
        "viewer < operator < admin; every write is audited in the log.",
    },
    "security": [{"bearer": []}],
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": _SCHEMAS,
    },
    "paths": _PATHS,
}
