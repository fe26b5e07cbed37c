"""The HTTP API, /metrics and web UI of the daemon (Starlette, served by uvicorn).

server.py   create_app(), serve() in the daemon's loop, stop()
routes.py   the endpoints, request checks, JSON errors
auth.py     bearer tokens (SHA-256 digests in the config) and roles
facade.py   DaemonFacade: what the API needs from the daemon
openapi.py  the OpenAPI document served at /openapi.json
ui.html     the page at /
"""
