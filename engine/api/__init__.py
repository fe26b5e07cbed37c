"""The HTTP API, /metrics and web UI of the daemon (Starlette, served by uvicorn).

server.py   create_app(), serve() in the daemon's loop, stop()
routes.py   the route table: each endpoint with its role, auth and error rendering
alert_routes.py, silence_routes.py, daemon_routes.py, service_routes.py   the handlers
stream_routes.py  GET /api/v1/events: journaled events as server-sent events
tickets.py  single-use tickets for the stream (EventSource sends no headers)
console_routes.py  the web console's page and files (console/: HTML, CSS, JS modules)
history_routes.py  history of alerts, from the index beside the journal (journal/history.py)
request.py  ServerState, Call, Fields: request bodies, fields and queries checked
responses.py  ApiError, encode(), JSON responses, piecewise large bodies
auth.py     bearer tokens (SHA-256 digests in the config) and roles
facade.py   DaemonFacade: what the API needs from the daemon
openapi.py  the OpenAPI document served at /openapi.json: its paths
openapi_schemas.py  ... its component schemas, shared parameters and builders
"""
