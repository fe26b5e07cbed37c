"""POST /api/v1/channels/{name}/preview against the in-memory facade: the body's
choice of alert, its checks, the role (operator) and the audit. The real
rendering is tests/unit/channels/test_preview.py's; a real daemon answering it,
tests/integration/test_notify_preview.py's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine.api.server import create_app
from engine.daemon.metrics import Metrics
from tests.unit.api.test_api_fakes import NAMES, AsgiClient, FakeFacade, api_config, bearer

PATH = "/api/v1/channels/hook/preview"


@pytest.fixture
def facade() -> FakeFacade:
    f = FakeFacade()
    f.add_alert("host_cpu_high", {"host": "web-1"}, severity="critical")
    return f


@pytest.fixture
def client(facade: FakeFacade) -> Iterator[AsgiClient]:
    c = AsgiClient(create_app(facade, api_config(), registry=Metrics().registry))
    yield c
    c.close()


def test_an_operator_previews_an_alert_and_it_is_audited(
    client: AsgiClient, facade: FakeFacade
) -> None:
    fp = next(iter(facade.alerts))
    r = client.post(PATH, json={"alert": fp, "resolved": True}, headers=bearer("operator"))
    assert r.status_code == 200, r.text
    assert r.json()["channel"] == "hook"
    ((name, choice),) = facade.previews
    assert (name, choice.alert, choice.rule, choice.resolved) == ("hook", fp, None, True)
    action, by, details = facade.audits[-1]
    assert (action, by, details["result"]) == ("channel_preview", NAMES["operator"], "ok")


def test_a_viewer_may_not_preview(client: AsgiClient, facade: FakeFacade) -> None:
    r = client.post(PATH, json={}, headers=bearer("viewer"))
    assert r.status_code == 403 and facade.previews == []


def test_a_rule_with_labels_and_value(client: AsgiClient, facade: FakeFacade) -> None:
    body = {"rule": "host_cpu_high", "labels": {"host": "web-9"}, "value": 97.5}
    assert client.post(PATH, json=body, headers=bearer("admin")).status_code == 200
    ((_, choice),) = facade.previews
    assert (choice.rule, dict(choice.labels), choice.value) == (
        "host_cpu_high",
        {"host": "web-9"},
        97.5,
    )
    assert choice.alert is None and not choice.resolved


def test_no_body_is_the_test_alert(client: AsgiClient, facade: FakeFacade) -> None:
    assert client.post(PATH, headers=bearer("operator")).status_code == 200
    ((_, choice),) = facade.previews
    assert (choice.alert, choice.rule, choice.stored) == (None, None, None)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"alert": "x", "rule": "host_cpu_high"}, "alert, rule: give one of them"),
        ({"labels": {"host": "a"}}, "give rule too"),
        ({"rule": "host_cpu_high", "labels": {"host": 3}}, "labels.host: expected a short string"),
        ({"rule": "host_cpu_high", "labels": ["host"]}, "labels: expected an object"),
        ({"rule": "host_cpu_high", "value": {"a": 1}}, "value: expected a number"),
        ({"resolved": "yes"}, "resolved: expected true or false"),
        ({"channel": "other"}, "channel: unknown field"),
        ({"rule": "nope"}, "unknown rule 'nope'"),
    ],
)
def test_bad_bodies_are_422_naming_the_field(
    client: AsgiClient, body: dict[str, object], message: str
) -> None:
    r = client.post(PATH, json=body, headers=bearer("operator"))
    assert r.status_code == 422 and message in r.json()["error"], r.text


def test_unknown_channel_or_alert_is_404(client: AsgiClient) -> None:
    r = client.post("/api/v1/channels/nope/preview", json={}, headers=bearer("operator"))
    assert r.status_code == 404 and r.json()["error"] == "no channel nope"
    r = client.post(PATH, json={"alert": "0000"}, headers=bearer("operator"))
    assert r.status_code == 404 and "alert 0000" in r.json()["error"]
