"""The OpenAPI 3.1 document served at /openapi.json, written by hand.

It is kept next to the routes on purpose rather than generated from them: it is
documentation for people and client generators, and tests/unit/api/test_api.py
checks that it lists exactly the routes the server has. The paths are here; the
component schemas and the builders are in engine/api/openapi_schemas.py.
"""

from __future__ import annotations

from typing import Any

from engine import __version__
from engine.api.openapi_schemas import (
    ALERT_FILTERS,
    COMPONENT_SCHEMAS,
    EMPTY_BODY,
    HISTORY_ERR,
    HISTORY_Q,
    PUBLIC,
    READ,
    WHEN,
    WRITE,
    body,
    errors,
    json_response,
    list_of,
    path_param,
    query,
    ref,
)

_PATHS: dict[str, Any] = {
    "/": {
        "get": {
            "summary": "web console (asks for a token in the page)",
            "security": PUBLIC,
            "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}},
        }
    },
    "/console/{file}": {
        "get": {
            "summary": "a file of the web console (its scripts and style)",
            "security": PUBLIC,
            "parameters": [path_param("file", "file name, such as app.js")],
            "responses": {"200": {"description": "JavaScript, CSS or HTML"}, **errors(404)},
        }
    },
    "/health": {
        "get": {
            "summary": "liveness",
            "security": PUBLIC,
            "responses": {"200": json_response({"type": "object"}, "the process is serving")},
        }
    },
    "/ready": {
        "get": {
            "summary": "readiness: configuration loaded and log replayed",
            "security": PUBLIC,
            "responses": {"200": json_response({"type": "object"}, "ready"), **errors(503)},
        }
    },
    "/metrics": {
        "get": {
            "summary": "Prometheus exposition",
            "responses": {
                "200": {"description": "text format 0.0.4", "content": {"text/plain": {}}},
                **READ,
            },
        }
    },
    "/openapi.json": {
        "get": {
            "summary": "this document",
            "responses": {"200": json_response({"type": "object"}, "OpenAPI 3.1"), **READ},
        }
    },
    "/api/v1/alerts": {
        "get": {
            "summary": "active alerts, filtered",
            "parameters": ALERT_FILTERS,
            "responses": {
                "200": json_response(list_of("alerts", "Alert"), "alerts"),
                **errors(401, 422),
            },
        }
    },
    "/api/v1/alerts/{fp}": {
        "get": {
            "summary": "one alert with its history",
            "parameters": [path_param("fp", "fingerprint")],
            "responses": {"200": json_response(ref("Alert"), "the alert"), **errors(401, 404)},
        }
    },
    "/api/v1/alerts/{fp}/ack": {
        "post": {
            "summary": "acknowledge (operator)",
            "parameters": [path_param("fp", "fingerprint")],
            "requestBody": body(ref("AckRequest")),
            "responses": {"200": json_response(ref("Alert"), "the alert"), **WRITE, **errors(404)},
        }
    },
    "/api/v1/alerts/{fp}/unack": {
        "post": {
            "summary": "remove the acknowledgement (operator)",
            "parameters": [path_param("fp", "fingerprint")],
            "requestBody": body(ref("UnackRequest"), required=False),
            "responses": {"200": json_response(ref("Alert"), "the alert"), **WRITE, **errors(404)},
        }
    },
    "/api/v1/alerts/{fp}/timeline": {
        "get": {
            "summary": "every journal event of one alert and its episodes, from the history",
            "parameters": [path_param("fp", "fingerprint"), HISTORY_Q["limit"]],
            "responses": {
                "200": json_response({"type": "object"}, "timeline"),
                **HISTORY_ERR,
                **errors(404),
            },
        }
    },
    "/api/v1/history": {
        "get": {
            "summary": "alert episodes overlapping [from, to], newest first",
            "parameters": list(HISTORY_Q.values()),
            "responses": {
                "200": json_response(list_of("episodes", "Episode"), "episodes"),
                **HISTORY_ERR,
            },
        }
    },
    "/api/v1/history/counts": {
        "get": {
            "summary": "per hour or day: episodes started, firing starts, alerts firing",
            "parameters": [
                query("by", {"enum": ["hour", "day"]}, "bucket width, UTC (default hour)"),
                HISTORY_Q["from"],
                HISTORY_Q["to"],
            ],
            "responses": {"200": json_response({"type": "object"}, "buckets"), **HISTORY_ERR},
        }
    },
    "/api/v1/history/at": {
        "get": {
            "summary": "the alerts pending or firing at time t",
            "parameters": [
                query("t", WHEN, "default: now"),
                HISTORY_Q["rule"],
                HISTORY_Q["match"],
            ],
            "responses": {
                "200": json_response(list_of("alerts", "Episode"), "alerts"),
                **HISTORY_ERR,
            },
        }
    },
    "/api/v1/silences": {
        "get": {
            "summary": "silences (from the log and from channel files)",
            "parameters": [
                query(
                    "all", {"type": "boolean"}, "also expired silences (default: active, pending)"
                )
            ],
            "responses": {"200": json_response(list_of("silences", "Silence"), "silences"), **READ},
        },
        "post": {
            "summary": "create a silence (operator)",
            "requestBody": body(ref("SilenceRequest")),
            "responses": {"201": json_response(ref("Silence"), "the new silence"), **WRITE},
        },
    },
    "/api/v1/silences/{sid}": {
        "delete": {
            "summary": "expire a silence now (operator)",
            "parameters": [path_param("sid", "silence id")],
            "requestBody": EMPTY_BODY,
            "responses": {
                "200": json_response(ref("Silence"), "the expired silence"),
                **WRITE,
                **errors(404),
            },
        }
    },
    "/api/v1/rules": {
        "get": {
            "summary": "rules of the running configuration",
            "responses": {
                "200": json_response(list_of("rules", "Rule"), "rules"),
                **READ,
            },
        }
    },
    "/api/v1/channels": {
        "get": {
            "summary": "channels, secrets shown as ***",
            "responses": {
                "200": json_response(
                    {"type": "object", "properties": {"channels": {"type": "array"}}}, "channels"
                ),
                **READ,
            },
        }
    },
    "/api/v1/status": {
        "get": {
            "summary": "version, config hash, last reload",
            "responses": {"200": json_response(ref("Status"), "status"), **READ},
        }
    },
    "/api/v1/explain/{rule}": {
        "get": {
            "summary": "why a rule's alert is or is not firing, where it would be notified",
            "parameters": [
                path_param("rule", "rule id"),
                query("label", {"type": "string"}, "name=value; repeat to narrow to one alert"),
            ],
            "responses": {
                "200": json_response({"type": "object"}, "explanation"),
                **READ,
                **errors(404),
            },
        }
    },
    "/api/v1/metrics": {
        "post": {
            "summary": "feed a push collector (operator)",
            "requestBody": body(ref("MetricsPush")),
            "responses": {
                "200": json_response({"type": "object"}, "stored"),
                **WRITE,
                **errors(404),
            },
        }
    },
    "/api/v1/reload": {
        "post": {
            "summary": "reload the configuration (admin)",
            "requestBody": EMPTY_BODY,
            "responses": {
                "200": json_response(ref("ReloadResult"), "reloaded"),
                **WRITE,
                "422": json_response(
                    ref("ReloadResult"), "configuration rejected; the old one stays"
                ),
            },
        }
    },
    "/api/v1/bans": {
        "get": {
            "summary": "the ban channels' active bans",
            "responses": {
                "200": json_response(
                    {"type": "object", "properties": {"bans": {"type": "array"}}}, "active bans"
                ),
                **READ,
            },
        }
    },
    "/api/v1/bans/{address}/unban": {
        "post": {
            "summary": "lift a ban on every ban channel holding it (operator)",
            "parameters": [path_param("address", "an IP address (any address of a banned /64)")],
            "requestBody": EMPTY_BODY,
            "responses": {
                "200": json_response(
                    {"type": "object"}, "lifted: per channel {channel, ok, error}"
                ),
                **WRITE,
                **errors(404),
            },
        }
    },
    "/api/v1/channels/{name}/test": {
        "post": {
            "summary": "send a test notification (admin)",
            "parameters": [path_param("name", "channel name")],
            "requestBody": EMPTY_BODY,
            "responses": {
                "200": json_response(ref("ChannelTestResult"), "delivered"),
                **WRITE,
                **errors(404),
                "502": json_response(ref("ChannelTestResult"), "the channel could not deliver"),
            },
        }
    },
    "/api/v1/channels/{name}/preview": {
        "post": {
            "summary": "what the channel would send for an alert, sending nothing (operator)",
            "parameters": [path_param("name", "channel name")],
            "requestBody": body(ref("ChannelPreviewRequest"), required=False),
            "responses": {
                "200": json_response(ref("ChannelPreview"), "the preview"),
                **WRITE,
                **errors(404),
            },
        }
    },
    "/api/v1/events/ticket": {
        "post": {
            "summary": "a single-use ticket (30 s) to open the event stream from a browser",
            "requestBody": EMPTY_BODY,
            "responses": {
                "201": json_response(
                    {
                        "type": "object",
                        "properties": {
                            "ticket": {"type": "string"},
                            "expires_in": {"type": "number"},
                        },
                    },
                    "the ticket for GET /api/v1/events?ticket=",
                ),
                **WRITE,
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
            "security": PUBLIC,
            "parameters": [query("ticket", {"type": "string"}, "from POST /api/v1/events/ticket")],
            "responses": {
                "200": {"description": "the stream", "content": {"text/event-stream": {}}},
                **errors(401, 422, 429, 503),
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
        "schemas": COMPONENT_SCHEMAS,
    },
    "paths": _PATHS,
}
