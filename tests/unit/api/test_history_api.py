"""17.1: the history endpoints over the real index of a real journal (the fake facade
journals the alerts it is given): shapes, filters, and one-line 422s for bad input."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from engine.api.server import create_app
from engine.daemon.metrics import Metrics
from tests.unit.api.test_api_fakes import AsgiClient, FakeFacade, api_config, bearer

T0 = datetime(2026, 9, 21, 13, 33, 20, tzinfo=UTC).timestamp()


@pytest.fixture
def facade() -> FakeFacade:
    f = FakeFacade()
    f.add_alert("cpu_high", {"host": "web-1", "team": "ops"}, starts_at=T0)
    f.add_alert("cpu_high", {"host": "web-2", "team": "web"}, state="pending", starts_at=T0 + 60)
    f.add_alert("disk_full", {"host": "db-1"}, starts_at=T0 + 7200)
    return f


@pytest.fixture
def client(facade: FakeFacade) -> Iterator[AsgiClient]:
    c = AsgiClient(create_app(facade, api_config(), registry=Metrics().registry))
    yield c
    c.close()


def get(client: AsgiClient, path: str, **params: object) -> dict:
    r = client.get(path, params=params, headers=bearer("viewer"))
    assert r.status_code == 200, r.text
    return r.json()


def test_episodes_filtered_by_rule_and_matchers(client: AsgiClient) -> None:
    body = get(client, "/api/v1/history")
    assert [e["rule"] for e in body["episodes"]] == ["disk_full", "cpu_high", "cpu_high"]
    assert body["episodes"][0]["start"] == "2026-09-21T15:33:20.000Z"
    assert body["indexed"]["seq"] == 3
    hosts = [
        e["labels"]["host"]
        for e in get(client, "/api/v1/history", rule="cpu_high", match="team!=ops")["episodes"]
    ]
    assert hosts == ["web-2"]
    both = get(client, "/api/v1/history", match=['host=~"web-.*"', "alertname=cpu_high"])
    assert len(both["episodes"]) == 2
    window = get(
        client, "/api/v1/history", **{"from": "2026-09-21T14:00:00Z", "to": str(T0 + 7000)}
    )
    assert [e["labels"]["host"] for e in window["episodes"]] == ["web-2", "web-1"]  # still open
    one = get(client, "/api/v1/history", limit="1")
    assert (len(one["episodes"]), one["truncated"]) == (1, True)


def test_state_at_a_time_and_counts(client: AsgiClient) -> None:
    at = get(client, "/api/v1/history/at", t="2026-09-21T13:33:50Z")["alerts"]
    assert [(a["labels"]["host"], a["state"]) for a in at] == [("web-1", "firing")]
    counts = get(
        client, "/api/v1/history/counts", by="hour", **{"from": str(T0), "to": str(T0 + 7200)}
    )
    assert counts["by"] == "hour"
    assert [(b["t"], b["started"], b["firing"]) for b in counts["buckets"]] == [
        ("2026-09-21T13:00:00.000Z", 2, 1),
        ("2026-09-21T14:00:00.000Z", 0, 1),
        ("2026-09-21T15:00:00.000Z", 1, 2),
    ]


def test_timeline_of_one_alert(client: AsgiClient, facade: FakeFacade) -> None:
    fp = next(fp for fp, a in facade.alerts.items() if a["labels"]["host"] == "web-1")
    body = get(client, f"/api/v1/alerts/{fp}/timeline")
    assert (body["fingerprint"], body["rule"]) == (fp, "cpu_high")
    assert [(e["event"], e["ts"]) for e in body["events"]] == [
        ("firing", "2026-09-21T13:33:20.000Z")
    ]
    assert [e["end"] for e in body["episodes"]] == [None]
    r = client.get("/api/v1/alerts/0123456789abcdef/timeline", headers=bearer("viewer"))
    assert r.status_code == 404
    assert r.json() == {"error": "no history for alert 0123456789abcdef"}


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("/api/v1/history", {"match": 'team=~"("'}, "match: invalid regex"),
        ("/api/v1/history", {"match": "nonsense"}, "match: bad matcher 'nonsense'"),
        ("/api/v1/history", {"from": "yesterday"}, "from: 'yesterday' is not an RFC 3339"),
        ("/api/v1/history", {"from": "2026-09-21T14:00:00"}, "has no timezone"),
        ("/api/v1/history", {"from": "2h", "to": "3h"}, "from: later than to"),
        ("/api/v1/history", {"limit": "0"}, "limit: expected a whole number from 1 to 10000"),
        ("/api/v1/history", {"state": "firing"}, "state: unknown query parameter"),
        ("/api/v1/history/counts", {"by": "week"}, "by: expected hour or day"),
        ("/api/v1/history/counts", {"from": "0"}, "from: at most 10000 buckets"),
    ],
)
def test_bad_input_is_one_line_422(
    client: AsgiClient, path: str, params: dict, message: str
) -> None:
    r = client.get(path, params=params, headers=bearer("viewer"))
    assert r.status_code == 422, r.text
    assert message in r.json()["error"]
    assert "\n" not in r.json()["error"]
