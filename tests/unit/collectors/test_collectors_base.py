"""The collector contract: create(), metric_names(), plain data and frozen values."""

from __future__ import annotations

import asyncio
import copy
import json
import pickle
from typing import Any

import pytest

from engine.collectors import base
from engine.collectors.base import FrozenDict, FrozenList, check_plain, create, freeze
from engine.collectors.system import METRICS as SYSTEM_METRICS
from engine.common.secret import Secret
from engine.config.catalog import metric_names
from engine.config.model import CollectorConfig, frozen_map


def cfg(
    type_: str, name: str | None = None, timeout: float = 5.0, **settings: Any
) -> CollectorConfig:
    return CollectorConfig(name or type_, type_, None, timeout, frozen_map(settings))


@pytest.mark.parametrize(
    ("type_", "settings"),
    [
        ("system", {}),
        ("http", {"url": "http://127.0.0.1:9/"}),
        ("command", {"argv": ["true"]}),
        ("file", {"path": "/nonexistent.json"}),
        ("push", {}),
        ("static", {"values": {"a": 1}}),
    ],
)
def test_create_every_builtin(type_: str, settings: dict[str, Any]) -> None:
    c = create(CollectorConfig("x", type_, 30.0, 2.0, frozen_map(settings)))
    assert type(c).type_name == type_
    assert (c.name, c.interval, c.timeout) == ("x", 30.0, 2.0)
    asyncio.run(c.aclose())


def test_create_unknown_type() -> None:
    with pytest.raises(ValueError, match=r"unknown collector type 'nope'; installed: .*static"):
        create(cfg("nope"))


@pytest.mark.parametrize(
    ("type_", "settings", "message"),
    [
        (
            "system",
            {"procesess": ["nginx"]},
            "unknown setting 'procesess' for type system; known: ",
        ),
        ("system", {"processes": "nginx"}, "processes: expected a list of strings"),
        ("http", {}, "set either url or targets"),
        ("http", {"url": "ftp://x/"}, "expected an http:// or https:// URL"),
        ("http", {"url": "http://x/", "expect_status": 999}, "expect_status"),
        ("http", {"url": "http://x/", "json_path": "status"}, "must start with \\$"),
        ("http", {"url": "http://x/", "json_path": "$.a..b"}, "cannot read"),
        ("http", {"url": "http://x/", "body_regex": "("}, "body_regex: not a valid"),
        ("http", {"targets": [{"url": "http://x/"}, {"url": "http://x/"}]}, "same labels"),
        (
            "http",
            {"targets": [{"url": "http://x/", "labels": {"url": "y"}}]},
            "set by the collector",
        ),
        ("command", {"argv": []}, "argv: expected a non-empty list"),
        ("command", {"argv": ["x"], "parse": "yaml"}, "parse: expected one of number, json, lines"),
        ("file", {"path": "/x", "format": "csv"}, "format: expected one of json, prometheus"),
        ("push", {"ttl": "soon"}, "ttl: expected a duration"),
        ("static", {"values": [1, 2]}, "values: expected a mapping"),
    ],
)
def test_bad_settings_say_what_is_wrong(type_: str, settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create(cfg(type_, **settings))


def test_secret_url_is_never_in_messages() -> None:
    with pytest.raises(ValueError) as e:
        create(cfg("http", url=Secret("gopher://token-abc@x/")))
    assert "token-abc" not in str(e.value)
    assert "a secret" in str(e.value)


def test_metric_names() -> None:
    assert metric_names(cfg("static", values={"a": 1, "b": {"c": 2}})) == frozenset({"a", "b"})
    assert metric_names(cfg("system")) == SYSTEM_METRICS
    assert metric_names(cfg("command", argv=["x"], parse="number")) == frozenset(
        {"value", "exit_code", "stderr"}
    )
    assert metric_names(cfg("command", argv=["x"])) is None  # json: the program decides
    flat = metric_names(cfg("http", url="http://x/"))
    assert flat is not None and {"status", "ok", "latency_ms", "targets", "up_count"} <= flat
    many = metric_names(cfg("http", targets=["http://x/"]))
    assert many == frozenset({"targets", "up_count", "down_count", "ok_count"})
    assert metric_names(cfg("file", path="/x.json")) is None
    assert metric_names(cfg("push")) is None
    assert metric_names(cfg("no-such-type")) is None


def test_check_plain_accepts_plain_data() -> None:
    check_plain({"a": [1, 2.5, "x", None, True, {"labels": {"k": "v"}}]}, "values")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"a": {1, 2}}, r"values\.a: a set is not plain data"),
        ({"a": [1, object()]}, r"values\.a\[1\]: a object is not plain data"),
        ({"a": {1: "x"}}, r"values\.a: keys must be strings"),
        ({"a": Secret("s3cret")}, r"values\.a: secret references cannot be metric values"),
        ({"a": 2**70}, "64-bit"),
        ({"a": "x" * 70_000}, "longer than"),
    ],
)
def test_check_plain_rejects(value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_plain(value, "values")


def test_check_plain_limits_depth_and_size() -> None:
    deep: Any = 1
    for _ in range(40):
        deep = [deep]
    with pytest.raises(ValueError, match="nested deeper"):
        check_plain(deep, "v")
    with pytest.raises(ValueError, match="more than 10 values"):
        check_plain(list(range(20)), "v", max_items=10)


def test_freeze_is_deep_and_still_plain() -> None:
    original = {"a": [1, {"b": 2}], "c": "x"}
    frozen = freeze(original)
    original["a"].append(3)  # type: ignore[attr-defined]
    assert frozen == {"a": [1, {"b": 2}], "c": "x"}
    assert isinstance(frozen, dict) and isinstance(frozen["a"], list)
    assert json.loads(json.dumps(frozen)) == frozen
    for mutate in (
        lambda: frozen.__setitem__("d", 1),
        lambda: frozen.update(d=1),
        lambda: frozen.pop("a"),
        lambda: frozen["a"].append(1),
        lambda: frozen["a"][1].__setitem__("b", 3),
        lambda: frozen["a"].sort(),
    ):
        with pytest.raises(TypeError, match="read-only"):
            mutate()
    assert copy.deepcopy(frozen) is frozen
    again = pickle.loads(pickle.dumps(frozen))
    assert again == frozen and isinstance(again, FrozenDict)
    assert isinstance(again["a"], FrozenList)


def test_number() -> None:
    assert base.number(" 42\n") == 42 and isinstance(base.number("42"), int)
    assert base.number("4.5e1") == 45.0
    with pytest.raises(ValueError):
        base.number("forty")
