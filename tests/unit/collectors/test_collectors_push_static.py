"""push (values posted through the API, with a ttl) and static (values from config)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from engine.collectors.push import MAX_METRICS, PushCollector
from engine.collectors.static import StaticCollector
from engine.common.secret import Secret
from engine.config.model import CollectorConfig, frozen_map


def push_collector(**settings: Any) -> PushCollector:
    return PushCollector.from_config(
        CollectorConfig("biz", "push", None, 5.0, frozen_map(settings))
    )


def at(c: PushCollector | StaticCollector, now: float) -> dict[str, Any]:
    return dict(asyncio.run(c.collect(now)))


def test_push_ttl_default_and_duration() -> None:
    assert push_collector().ttl == 300.0
    assert push_collector(ttl="5m").ttl == 300.0
    assert push_collector(ttl="90s").ttl == 90.0
    with pytest.raises(ValueError, match="ttl: must be longer than 0s"):
        push_collector(ttl=0)


def test_push_metrics_expire_one_by_one() -> None:
    c = push_collector(ttl="5m")
    assert at(c, 1000.0) == {}
    c.push({"orders": 12, "ok": True}, now=1000.0)
    c.push({"orders": 15}, now=1100.0)  # refreshed; `ok` keeps its own arrival time
    assert at(c, 1299.0) == {"orders": 15, "ok": True}
    assert at(c, 1300.0) == {"orders": 15}  # ok is 300 s old: gone, so rules see no_data
    assert at(c, 1400.0) == {}


def test_pushed_values_are_frozen_copies() -> None:
    c = push_collector()
    sent = {"queues": [{"labels": {"q": "a"}, "depth": 1}]}
    c.push(sent, now=0.0)
    sent["queues"][0]["depth"] = 99
    got = at(c, 1.0)
    assert got == {"queues": [{"labels": {"q": "a"}, "depth": 1}]}
    with pytest.raises(TypeError):
        got["queues"][0]["depth"] = 2
    assert json.loads(json.dumps(got)) == got


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"a b": 1}, "metric name 'a b'"),
        ({"1st": 1}, "metric name '1st'"),
        ({"x" * 201: 1}, "at most 200"),
        ({"a": {1, 2}}, r"metrics\.a: a set is not plain data"),
        ({"a": [0] * 200_000}, "more than 100000 values"),
        ([1, 2], "expected an object"),
    ],
)
def test_push_validates_and_stores_nothing_on_error(values: Any, message: str) -> None:
    c = push_collector()
    with pytest.raises(ValueError, match=message):
        c.push({"fine": 1, **values} if isinstance(values, dict) else values, now=0.0)
    assert at(c, 1.0) == {}


def test_push_bounds_the_number_of_metrics() -> None:
    c = push_collector(ttl="1m")
    c.push({f"m{i}": i for i in range(MAX_METRICS)}, now=0.0)
    with pytest.raises(ValueError, match="more than 10000 metrics"):
        c.push({"one_more": 1}, now=1.0)
    c.push({"m0": 5}, now=1.0)  # replacing is fine
    c.push({"one_more": 1}, now=60.0)  # the others pushed at 0 have expired
    assert at(c, 60.5) == {"m0": 5, "one_more": 1}


def static(values: Any) -> StaticCollector:
    return StaticCollector.from_config(
        CollectorConfig("fixed", "static", None, 5.0, frozen_map({"values": values}))
    )


def test_static_returns_its_values() -> None:
    values = {"answer": 42, "ok": True, "hosts": [{"labels": {"host": "a"}, "weight": 0.5}]}
    c = static(values)
    assert at(c, 0.0) == values
    assert at(c, 99.0) == values


def test_static_values_are_deep_frozen() -> None:
    raw = {"hosts": [{"w": 1}]}
    c = static(raw)
    raw["hosts"][0]["w"] = 2
    s = at(c, 0.0)
    assert s == {"hosts": [{"w": 1}]}
    with pytest.raises(TypeError):
        s["hosts"].append({})


@pytest.mark.parametrize(
    ("values", "message"),
    [({"token": Secret("x")}, "secret references"), ({"a": object()}, "not plain data")],
)
def test_static_validates_at_load(values: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        static(values)
