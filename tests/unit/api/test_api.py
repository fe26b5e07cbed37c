"""The HTTP API against an in-memory facade: auth, roles, bodies, audits, routes."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from starlette.routing import Route

from engine.api.openapi import OPENAPI
from engine.api.routes import ENDPOINTS
from engine.api.server import create_app, update_api_config
from engine.config.model import ApiConfig, ApiToken
from engine.daemon.metrics import Metrics
from tests.unit.api.test_api_fakes import NAMES, TOKENS, AsgiClient, FakeFacade, api_config, bearer

WRITES: list[tuple[str, str, str | None]] = [(m, p, r) for m, p, r, _ in ENDPOINTS if m != "GET"]
READS: list[tuple[str, str, str | None]] = [
    (m, p, r) for m, p, r, _ in ENDPOINTS if m == "GET" and r is not None
]
LOWER = {"operator": "viewer", "admin": "operator"}


@pytest.fixture
def facade() -> FakeFacade:
    f = FakeFacade()
    f.add_alert("host_cpu_high", {"host": "web-1"}, severity="critical")
    f.add_alert("host_cpu_high", {"host": "web-2"}, state="pending")
    f.add_alert("disk_full", {"host": "db-1", "mount": "/"})
    return f


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def client(facade: FakeFacade, metrics: Metrics) -> Iterator[AsgiClient]:
    c = AsgiClient(create_app(facade, api_config(), registry=metrics.registry))
    yield c
    c.close()


def fp_of(facade: FakeFacade, host: str) -> str:
    return next(str(fp) for fp, a in facade.alerts.items() if a["labels"].get("host") == host)


def concrete(path: str, facade: FakeFacade) -> str:
    """A path with its parameters filled in with existing objects."""
    return (
        path.replace("{fp}", fp_of(facade, "web-1"))
        .replace("{sid}", "s-none")
        .replace("{name}", "hook")
        .replace("{address}", "203.0.113.7")
    )


def valid_body(path: str) -> dict[str, Any]:
    if path.endswith("/ack"):
        return {"note": "looking", "for": "1h"}
    if path == "/api/v1/silences":
        return {"matchers": [{"label": "host", "value": "web-1"}], "for": "2h", "reason": "deploy"}
    if path == "/api/v1/metrics":
        return {"collector": "biz", "values": {"orders": 3}}
    return {}


# -- public endpoints -----------------------------------------------------------------------


def test_health_and_ready_need_no_token(client: AsgiClient, facade: FakeFacade) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").status_code == 200
    facade.ready = False
    r = client.get("/ready")
    assert r.status_code == 503 and "not ready" in r.json()["error"]


def test_console_is_public_and_locked_down(client: AsgiClient) -> None:
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    # scripts and styles come from files, never inline: the policy needs no hash
    assert '<script type="module" src="/console/app.js">' in page
    assert "<script>" not in page and "<style>" not in page and " on" + "click=" not in page
    csp = r.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "style-src 'self';" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    js = client.get("/console/app.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert "/api/v1/alerts" in client.get("/console/alerts.js").text
    assert client.get("/console/style.css").headers["content-type"].startswith("text/css")
    for bad in ("nope.js", "..%2fapi%2fauth.py", "%2e%2e", "app.js.map", ".hidden.js"):
        r = client.get("/console/" + bad)
        assert r.status_code == 404, bad
        assert "error" in r.json()


# -- authentication and roles ----------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "role"), READS + WRITES)
def test_no_token_is_401_with_challenge(
    client: AsgiClient, facade: FakeFacade, method: str, path: str, role: str
) -> None:
    r = client.request(method, concrete(path, facade))
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith('Bearer realm="vigil"')
    assert "bearer token is required" in r.json()["error"]


@pytest.mark.parametrize(("method", "path", "role"), READS + WRITES)
def test_wrong_token_is_401(
    client: AsgiClient, facade: FakeFacade, method: str, path: str, role: str
) -> None:
    r = client.request(
        method, concrete(path, facade), headers={"Authorization": "Bearer not-a-token"}
    )
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    assert r.json() == {"error": "invalid token"}


@pytest.mark.parametrize(
    ("method", "path", "role"), [w for w in WRITES if w[2] != "viewer"]
)  # a viewer's write (the event stream's ticket) has no role below it
def test_role_below_the_needed_one_is_403_and_audited(
    client: AsgiClient, facade: FakeFacade, method: str, path: str, role: str
) -> None:
    lower = LOWER[role]
    r = client.request(
        method, concrete(path, facade), json=valid_body(path) or None, headers=bearer(lower)
    )
    assert r.status_code == 403, r.text
    assert f"has role {lower}; this needs {role}" in r.json()["error"]
    action, by, details = facade.audits[-1]
    assert (action, by, details["needed"]) == ("denied", NAMES[lower], role)


@pytest.mark.parametrize(("method", "path", "role"), READS)
def test_viewer_reads_everything(
    client: AsgiClient, facade: FakeFacade, method: str, path: str, role: str
) -> None:
    assert role == "viewer"
    r = client.get(concrete(path, facade), headers=bearer("viewer"))
    assert r.status_code == 200, r.text


def test_malformed_authorization_header(client: AsgiClient) -> None:
    for value in ("Basic dXNlcjpwYXNz", "Bearer", "Bearer    ", TOKENS["admin"]):
        r = client.get("/api/v1/alerts", headers={"Authorization": value})
        assert r.status_code == 401, value
    r = client.get("/api/v1/alerts", headers={"Authorization": f"bearer  {TOKENS['viewer']} "})
    assert r.status_code == 200  # scheme is case-insensitive, spaces tolerated


def test_no_configured_tokens_says_so(facade: FakeFacade) -> None:
    c = AsgiClient(create_app(facade, ApiConfig(), registry=Metrics().registry))
    r = c.get("/api/v1/alerts")
    assert r.status_code == 401 and "api.tokens" in r.json()["error"]


def test_reloaded_tokens_take_effect(facade: FakeFacade) -> None:
    app = create_app(facade, api_config(), registry=Metrics().registry)
    c = AsgiClient(app)
    assert c.get("/api/v1/alerts", headers=bearer("viewer")).status_code == 200
    update_api_config(app, api_config(ci="viewer"))
    assert c.get("/api/v1/alerts", headers={"Authorization": "Bearer ci-secret"}).is_success
    update_api_config(app, ApiConfig(tokens=(ApiToken("x", "0" * 64, "admin"),)))
    assert c.get("/api/v1/alerts", headers=bearer("viewer")).status_code == 401


def test_operator_acks_and_silences_admin_reloads(client: AsgiClient, facade: FakeFacade) -> None:
    fp = fp_of(facade, "web-1")
    r = client.post(f"/api/v1/alerts/{fp}/ack", json={"note": "on it"}, headers=bearer("operator"))
    assert r.status_code == 200 and r.json()["acknowledged"]["by"] == NAMES["operator"]
    r = client.post(
        "/api/v1/silences", json=valid_body("/api/v1/silences"), headers=bearer("operator")
    )
    assert r.status_code == 201
    assert client.post("/api/v1/reload", headers=bearer("operator")).status_code == 403
    r = client.post("/api/v1/reload", headers=bearer("admin"))
    assert r.status_code == 200 and r.json() == {"ok": True, "errors": []}
    # a higher role may do what a lower one may
    r = client.post(f"/api/v1/alerts/{fp}/unack", headers=bearer("admin"))
    assert r.status_code == 200 and r.json()["acknowledged"] is None


# -- audits ------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "role"), WRITES)
def test_every_write_is_audited_with_the_token_name(
    client: AsgiClient, facade: FakeFacade, method: str, path: str, role: str
) -> None:
    if "{sid}" in path:
        sid = client.post(
            "/api/v1/silences", json=valid_body("/api/v1/silences"), headers=bearer("operator")
        ).json()["id"]
        path = path.replace("{sid}", sid)
        facade.audits.clear()
    r = client.request(
        method, concrete(path, facade), json=valid_body(path) or None, headers=bearer(role)
    )
    assert r.is_success, r.text
    assert len(facade.audits) == 1
    action, by, details = facade.audits[0]
    assert by == NAMES[role] and details["result"] == "ok"
    assert action in {
        "ack",
        "unack",
        "silence_create",
        "silence_expire",
        "metrics_push",
        "reload",
        "channel_test",
        "channel_preview",
        "unban",
        "events_ticket",
    }
    dumped = json.dumps(facade.audits)
    assert all(t not in dumped for t in TOKENS.values())


def test_failed_write_is_audited_with_its_outcome(client: AsgiClient, facade: FakeFacade) -> None:
    r = client.post("/api/v1/alerts/deadbeef/ack", json={"note": "x"}, headers=bearer("operator"))
    assert r.status_code == 404 and r.json() == {"error": "no alert deadbeef"}
    assert facade.audits == [
        (
            "ack",
            "oncall",
            {
                "alert": "deadbeef",
                "as": "oncall",
                "note": "x",
                "until": None,
                "result": "not_found",
            },
        )
    ]


def test_ack_by_someone_else_keeps_the_token_name_in_the_audit(
    client: AsgiClient, facade: FakeFacade
) -> None:
    fp = fp_of(facade, "web-1")
    r = client.post(
        f"/api/v1/alerts/{fp}/ack", json={"note": "n", "by": "alice"}, headers=bearer("operator")
    )
    assert r.json()["acknowledged"]["by"] == "alice"
    _, by, details = facade.audits[-1]
    assert by == "oncall" and details["as"] == "alice"


# -- bodies ------------------------------------------------------------------------------


def test_oversized_body_by_content_length_is_413(client: AsgiClient, facade: FakeFacade) -> None:
    fp = fp_of(facade, "web-1")
    r = client.post(
        f"/api/v1/alerts/{fp}/ack",
        content=json.dumps({"note": "x" * 5000}),
        headers={**bearer("operator"), "Content-Type": "application/json"},
    )
    assert r.status_code == 413
    assert r.json()["error"].endswith("bytes; the limit is 4096")
    assert facade.alerts[fp]["ack"] is None and facade.audits == []


def test_oversized_streamed_body_is_413(client: AsgiClient, facade: FakeFacade) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"note": "'
        for _ in range(100):
            yield b"x" * 100
        yield b'"}'

    r = client.post("/api/v1/silences", content=chunks(), headers=bearer("operator"))
    assert r.status_code == 413
    assert r.json() == {"error": "request body is larger than the limit of 4096 bytes"}


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (
            b"{not json",
            400,
            "malformed JSON: Expecting property name enclosed in double quotes at line 1 column 2",
        ),
        (b'{"note": "a"', 400, "malformed JSON: Expecting ',' delimiter at line 1 column 13"),
        (b"\xff\xfe\x00", 400, "malformed JSON"),
        # deep nesting is cut at the boundary (engine/common/json_bounded.py), not refused
        (b"[" * 2000 + b"]" * 2000, 422, "expected a JSON object, got an array"),
        (b"[" * 2000, 400, "malformed JSON"),
        (b'["note"]', 422, "expected a JSON object, got an array"),
        (b'"x"', 422, "expected a JSON object, got a string"),
        (b"{}", 422, "note: required"),
        (b'{"note": ""}', 422, "note: must not be empty"),
        (b'{"note": 5}', 422, "note: expected a string, got a number"),
        (
            b'{"note": "n", "colour": 1}',
            422,
            "colour: unknown field (expected: note, by, until, for)",
        ),
        (
            b'{"note": "n", "for": "2x"}',
            422,
            "for: '2x' is not a duration; expected e.g. 30s, 5m, 1h30m, 2d",
        ),
        (b'{"note": "n", "for": "0"}', 422, "for: must be longer than 0s"),
        (b'{"note": "n", "for": true}', 422, "for: expected a duration such as 30m or 2h"),
        (b'{"note": "n", "for": "99999999d"}', 422, "for: at most 3650d"),
        (
            b'{"note": "n", "until": "2001-01-01T00:00:00Z"}',
            422,
            "until: 2001-01-01T00:00:00Z is in the past",
        ),
        (
            b'{"note": "n", "until": "2099-01-01T00:00:00"}',
            422,
            "until: '2099-01-01T00:00:00' has no timezone; add Z or an offset",
        ),
        (
            b'{"note": "n", "until": "tomorrow"}',
            422,
            "until: 'tomorrow' is not an RFC 3339 time such as 2026-12-01T00:00:00Z",
        ),
        (
            b'{"note": "n", "until": "2099-01-01T00:00:00Z", "for": "1h"}',
            422,
            "until, for: give one of them, not both",
        ),
    ],
)
def test_ack_body_errors(
    client: AsgiClient, facade: FakeFacade, body: bytes, status: int, message: str
) -> None:
    fp = fp_of(facade, "web-1")
    r = client.post(f"/api/v1/alerts/{fp}/ack", content=body, headers=bearer("operator"))
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err.startswith(message) if status == 400 else err == message
    assert "\n" not in err
    assert facade.alerts[fp]["ack"] is None


def test_ack_until_and_for(client: AsgiClient, facade: FakeFacade) -> None:
    fp = fp_of(facade, "web-1")
    t0 = time.time()
    r = client.post(
        f"/api/v1/alerts/{fp}/ack", json={"note": "n", "for": "2h"}, headers=bearer("operator")
    )
    assert r.status_code == 200
    assert abs(facade.alerts[fp]["ack"]["until"] - (t0 + 7200)) < 5
    r = client.post(
        f"/api/v1/alerts/{fp}/ack",
        json={"note": "n", "until": "2099-01-01T01:00:00+01:00"},
        headers=bearer("operator"),
    )
    assert r.json()["acknowledged"]["until"] == "2099-01-01T00:00:00.000Z"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"for": "1h", "reason": "r"}, "matchers: expected a non-empty list"),
        ({"matchers": [], "for": "1h", "reason": "r"}, "matchers: expected a non-empty list"),
        (
            {"matchers": ["host"], "for": "1h", "reason": "r"},
            "matchers[0]: bad matcher 'host': expected label=value",
        ),
        (
            {"matchers": [{"label": "a"}], "for": "1h", "reason": "r"},
            "matchers[0]: give either value or regex",
        ),
        (
            {"matchers": [{"label": "a", "value": "b", "regex": "c"}], "for": "1h", "reason": "r"},
            "matchers[0]: give either value or regex",
        ),
        (
            {
                "matchers": [{"label": "a", "value": "b"}, {"label": "h", "regex": "web-("}],
                "for": "1h",
                "reason": "r",
            },
            "matchers[1]: invalid regex 'web-(': missing ): web-(",
        ),
        (
            {"matchers": [{"label": "", "value": "b"}], "for": "1h", "reason": "r"},
            "matchers[0].label: expected a label name",
        ),
        (
            {"matchers": [{"label": "a", "value": 1}], "for": "1h", "reason": "r"},
            "matchers[0].value: expected a string",
        ),
        (
            {"matchers": [{"label": "a", "op": "="}], "for": "1h", "reason": "r"},
            "matchers[0].op: unknown field",
        ),
        (
            {"matchers": [{"label": "a", "value": "b"}], "reason": "r"},
            'until or for: required (for example "for": "2h")',
        ),
        ({"matchers": [{"label": "a", "value": "b"}], "for": "1h"}, "reason: required"),
        (
            {
                "matchers": [{"label": "a", "value": "b"}],
                "for": "1h",
                "reason": "r",
                "starts": "2099-01-01T00:00:00Z",
            },
            "starts: must be before until",
        ),
    ],
)
def test_silence_body_errors(
    client: AsgiClient, facade: FakeFacade, body: Any, message: str
) -> None:
    r = client.post("/api/v1/silences", json=body, headers=bearer("operator"))
    assert r.status_code == 422, r.text
    assert r.json()["error"].startswith(message)
    assert facade.silences == {}


def test_empty_body_routes_refuse_fields(client: AsgiClient) -> None:
    r = client.post("/api/v1/reload", json={"force": True}, headers=bearer("admin"))
    assert r.status_code == 422 and r.json()["error"] == "force: unknown field (expected: none)"


# -- behaviour ---------------------------------------------------------------------------


def test_silence_lifecycle(client: AsgiClient, facade: FakeFacade) -> None:
    body = {"matchers": [{"label": "host", "regex": "web-.*"}], "for": "2h", "reason": "deploy"}
    r = client.post("/api/v1/silences", json=body, headers=bearer("operator"))
    s = r.json()
    assert r.status_code == 201 and s["state"] == "active" and s["created_by"] == "oncall"
    assert s["until"].endswith("Z")
    silenced = client.get("/api/v1/alerts?silenced=true", headers=bearer("viewer")).json()["alerts"]
    assert sorted(a["labels"]["host"] for a in silenced) == ["web-1", "web-2"]
    assert all(a["silenced_by"] == [s["id"]] for a in silenced)
    listed = client.get("/api/v1/silences", headers=bearer("viewer")).json()["silences"]
    assert [x["id"] for x in listed] == [s["id"]]
    r = client.delete(f"/api/v1/silences/{s['id']}", headers=bearer("operator"))
    assert r.status_code == 200 and r.json()["state"] == "expired"
    assert (
        client.get("/api/v1/alerts?silenced=true", headers=bearer("viewer")).json()["alerts"] == []
    )
    r = client.delete("/api/v1/silences/nope", headers=bearer("operator"))
    assert r.status_code == 404 and r.json() == {"error": "no silence nope"}


@pytest.mark.parametrize(
    ("query", "hosts"),
    [
        ("", ["db-1", "web-1", "web-2"]),
        ("?state=pending", ["web-2"]),
        ("?severity=critical", ["web-1"]),
        ("?rule=disk_full", ["db-1"]),
        ("?label=host=web-1", ["web-1"]),
        ("?label=host=db-1&label=mount=/", ["db-1"]),
        ("?label=host=db-1&label=mount=/x", []),
        ("?acknowledged=false&silenced=no", ["db-1", "web-1", "web-2"]),
        ("?acknowledged=true", []),
    ],
)
def test_alert_filters(client: AsgiClient, query: str, hosts: list[str]) -> None:
    r = client.get("/api/v1/alerts" + query, headers=bearer("viewer"))
    assert r.status_code == 200
    assert sorted(a["labels"]["host"] for a in r.json()["alerts"]) == hosts


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("?state=resolved", "state: expected one of pending, firing, got 'resolved'"),
        (
            "?severity=high",
            "severity: expected one of info, warning, critical, emergency, got 'high'",
        ),
        ("?silenced=maybe", "silenced: expected true or false, got 'maybe'"),
        ("?label=host", "label: expected name=value, got 'host'"),
        ("?sate=firing", "sate: unknown query parameter"),
    ],
)
def test_alert_filter_errors(client: AsgiClient, query: str, message: str) -> None:
    r = client.get("/api/v1/alerts" + query, headers=bearer("viewer"))
    assert r.status_code == 422 and r.json() == {"error": message}


def test_get_alert_with_history_and_404(client: AsgiClient, facade: FakeFacade) -> None:
    fp = fp_of(facade, "web-1")
    a = client.get(f"/api/v1/alerts/{fp}", headers=bearer("viewer")).json()
    assert a["fingerprint"] == fp and a["history"][0]["event"] == "firing"
    r = client.get("/api/v1/alerts/0123", headers=bearer("viewer"))
    assert r.status_code == 404 and r.json() == {"error": "no alert 0123"}


def test_channels_are_redacted(client: AsgiClient) -> None:
    r = client.get("/api/v1/channels", headers=bearer("viewer"))
    assert r.status_code == 200
    assert "T0KEN" not in r.text and r.json()["channels"][0]["settings"]["url"] == "***"


def test_push_metrics(client: AsgiClient, facade: FakeFacade) -> None:
    body = {"collector": "biz", "values": {"orders": 3, "ok": True}}
    r = client.post("/api/v1/metrics", json=body, headers=bearer("operator"))
    assert r.json() == {"ok": True, "collector": "biz", "metrics": 2}
    assert facade.pushed["biz"] == {"orders": 3, "ok": True}
    assert facade.audits[-1] == (
        "metrics_push",
        "oncall",
        {"collector": "biz", "metrics": 2, "result": "ok"},
    )
    r = client.post(
        "/api/v1/metrics", json={"collector": "nope", "values": {}}, headers=bearer("operator")
    )
    assert r.status_code == 404 and r.json() == {"error": "no push collector nope"}
    r = client.post(
        "/api/v1/metrics",
        json={"collector": "biz", "values": {"a-b": 1}},
        headers=bearer("operator"),
    )
    assert r.status_code == 422 and "metric name 'a-b'" in r.json()["error"]
    r = client.post(
        "/api/v1/metrics", json={"collector": "biz", "values": [1]}, headers=bearer("operator")
    )
    assert r.status_code == 422 and r.json()["error"].startswith("values: expected an object")


def test_failed_reload_and_channel_test(client: AsgiClient, facade: FakeFacade) -> None:
    facade.reload_errors = ["rules/a.yaml:3:5: rules[0].expr: unknown name"]
    r = client.post("/api/v1/reload", headers=bearer("admin"))
    assert r.status_code == 422
    assert (
        r.json()["errors"] == facade.reload_errors and "previous configuration" in r.json()["error"]
    )
    facade.channel_ok = False
    r = client.post("/api/v1/channels/hook/test", headers=bearer("admin"))
    assert r.status_code == 502 and "HTTP 500" in r.json()["error"]
    r = client.post("/api/v1/channels/nope/test", headers=bearer("admin"))
    assert r.status_code == 404 and r.json() == {"error": "no channel nope"}


def test_non_finite_values_are_null(client: AsgiClient, facade: FakeFacade) -> None:
    facade.add_alert("nan", {"host": "n"}, value=float("nan"))
    r = client.get("/api/v1/alerts?rule=nan", headers=bearer("viewer"))
    data = json.loads(r.text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert data["alerts"][0]["value"] is None


def test_unknown_route_method_and_crash_are_json(client: AsgiClient, facade: FakeFacade) -> None:
    r = client.get("/api/v1/nope")
    assert r.status_code == 404 and r.json() == {"error": "no such endpoint: GET /api/v1/nope"}
    r = client.put("/api/v1/alerts", headers=bearer("viewer"))
    assert r.status_code == 405 and r.json()["error"] == "method PUT not allowed on /api/v1/alerts"

    def boom() -> dict[str, Any]:
        raise RuntimeError("secret internals")

    facade.status = boom  # type: ignore[method-assign,unused-ignore]
    r = client.get("/api/v1/status", headers=bearer("viewer"))
    assert r.status_code == 500 and r.json() == {"error": "internal error; see the daemon's log"}


def test_status_says_who_is_asking(client: AsgiClient) -> None:
    """The console offers an operator's actions (the notification preview) only
    to a token that may use them: the status names the caller and its role."""
    for role in ("viewer", "operator", "admin"):
        r = client.get("/api/v1/status", headers=bearer(role))
        assert r.status_code == 200 and r.json()["caller"] == {"name": NAMES[role], "role": role}


# -- /metrics and the OpenAPI document -----------------------------------------------------


def test_metrics_exposition(client: AsgiClient, metrics: Metrics) -> None:
    metrics.observe_evaluation("host", 0.01)
    metrics.reload(ok=True, at=1.0)
    assert client.get("/metrics").status_code == 401
    r = client.get("/metrics", headers=bearer("viewer"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    for name in (
        "vigil_evaluation_duration_seconds_bucket",
        "vigil_alerts{",
        "vigil_reloads_total",
        "vigil_config_last_reload_successful",
        "vigil_build_info{",
    ):
        assert name in r.text


def test_openapi_lists_exactly_the_routes(client: AsgiClient) -> None:
    served = client.get("/openapi.json", headers=bearer("viewer")).json()
    assert served == json.loads(json.dumps(OPENAPI))
    documented = {(m.upper(), p) for p, ops in OPENAPI["paths"].items() for m in ops}
    app_routes = client.app.routes
    implemented = {
        (m, r.path)
        for r in app_routes
        if isinstance(r, Route)
        for m in (r.methods or ())
        if m != "HEAD"
    }
    assert documented == implemented
    for path, ops in OPENAPI["paths"].items():
        for m, op in ops.items():
            role = next(r for mm, p, r, _ in ENDPOINTS if p == path and mm == m.upper())
            assert (op.get("security") == []) == (role is None), (m, path)
            params = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert params == set(re.findall(r"{(\w+)}", path)), (m, path)
