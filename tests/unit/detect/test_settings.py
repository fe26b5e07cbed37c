"""Detection settings: the documented example loads; bad settings give one line naming
the setting; the JSON Schema (config.schema.json, definitions.detect_settings, whose
properties collector_logtail carries too) agrees with the parser on every case here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from engine.config.load import load_text
from engine.detect import settings as detect_settings
from engine.detect.settings import DETECT_KEYS, parse

ROOT = Path(__file__).resolve().parents[3]


def merged_validator() -> jsonschema.Draft7Validator:
    config = json.loads((ROOT / "schemas" / "config.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(config)
    schema = {"definitions": config["definitions"], "$ref": "#/definitions/detect_settings"}
    return jsonschema.Draft7Validator(schema)


def documented_example() -> dict[str, Any]:
    doc = detect_settings.__doc__ or ""
    block = doc[doc.index("    format:") : doc.index('"""') if '"""' in doc else None]
    loaded = load_text(block, "settings.py").data  # YAML 1.2, as vigil reads it
    assert isinstance(loaded, dict)
    return loaded


GOOD: list[dict[str, Any]] = [
    {},
    {"format": "sshd", "windows": {"fails": {"where": {"outcome": "failed"}}}},
    {
        "format": {"type": "json", "fields": {"ip": "client.ip", "user": "user.name"}},
        "key": "user",
        "windows": {"ips": {"kind": "distinct", "field": "ip", "window": "1h"}},
    },
    {
        "format": {"type": "pattern", "patterns": ["failed for <F-USER>\\S+</F-USER> from <HOST>"]},
        "windows": {"b": {"kind": "bucket", "capacity": 5, "leak": 0.5, "lines": "hit"}},
        "patterns": [{"name": "root", "field": "user", "regex": "^root$"}],
    },
    {"packs": [{"name": "scanners", "allow": {"path": ["^/wp-admin/"]}}], "evidence": 0},
]

BAD: list[tuple[dict[str, Any], str]] = [
    ({"packs": ["sqli", "nosuch"]}, r"packs\[1\]: unknown pack 'nosuch'"),
    ({"packs": "sqli"}, "packs: expected a list"),
    ({"format": "nginx", "key": "outcome"}, "key: format nginx has no field 'outcome'"),
    ({"windows": {"hits": {"kind": "count"}}}, "windows.hits: the name is taken"),
    ({"windows": {"Bad": {}}}, "windows.Bad: a window's name must be a lowercase"),
    ({"windows": {"n": {"kind": "median"}}}, "windows.n.kind: expected one of"),
    ({"windows": {"n": {"window": "soon"}}}, "windows.n.window: expected a duration"),
    ({"windows": {"n": {"kind": "distinct"}}}, "windows.n.field: required"),
    ({"windows": {"n": {"kind": "distinct", "field": "colour"}}}, "windows.n.field: format"),
    ({"windows": {"n": {"kind": "bucket", "capacity": 0, "leak": 1}}}, "windows.n.capacity"),
    ({"windows": {"n": {"where": {"colour": ["red"]}}}}, r"windows.n.where.colour: format"),
    ({"windows": {"n": {"lines": ["nosuch"]}}}, "windows.n.lines: 'nosuch' is no pattern"),
    ({"windows": {"n": {"size": 3}}}, "windows.n: unknown setting 'size'"),
    ({"max_keys": 0}, "max_keys: expected a whole number from 1"),
    ({"evidence": 1000}, "evidence: expected a whole number from 0 to 100"),
    ({"allow_networks": ["10.0.0.300/8"]}, r"allow_networks\[0\]: '10.0.0.300/8' is not a network"),
    ({"allow": {"ua": ["(?=x)"]}}, r"allow.ua\[0\]: not an RE2 regex"),
    ({"patterns": [{"name": "x", "field": "colour", "any": ["a"]}]}, "patterns.x.field: format"),
    (
        {"packs": ["sqli"], "patterns": [{"name": "sqli_union", "any": ["a"]}]},
        "patterns: 'sqli_union' is defined twice",
    ),
]


def test_the_documented_example_loads() -> None:
    example = documented_example()
    assert set(example) <= DETECT_KEYS
    s = parse(example)
    assert [w.name for w in s.windows] == ["requests_1m", "errors_5m", "paths_5m", "probes"]
    assert s.packs[:5] == ("sqli", "xss", "traversal", "cmdi", "scanners")
    assert s.idle == 1800.0
    assert not list(merged_validator().iter_errors(example))


@pytest.mark.parametrize("raw", GOOD)
def test_good_settings_pass_parser_and_schema(raw: dict[str, Any]) -> None:
    parse(raw)
    assert not list(merged_validator().iter_errors(raw))


@pytest.mark.parametrize(("raw", "message"), BAD)
def test_bad_settings_give_one_line_naming_the_setting(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match="^" + message) as e:
        parse(raw)
    assert "\n" not in str(e.value)


# what the schema alone can tell (the rest needs the format's fields or RE2)
SCHEMA_CATCHES = [
    {"packs": ["sqli", "nosuch"]},
    {"packs": "sqli"},
    {"windows": {"hits": {"kind": "count"}}},
    {"windows": {"Bad": {}}},
    {"windows": {"n": {"kind": "median"}}},
    {"windows": {"n": {"window": "soon"}}},
    {"windows": {"n": {"kind": "distinct"}}},
    {"windows": {"n": {"kind": "bucket", "capacity": 0, "leak": 1}}},
    {"windows": {"n": {"size": 3}}},
    {"max_keys": 0},
    {"evidence": 1000},
    {"format": {"type": "json", "fields": {"ip": "a..b"}}},
    {"patterns": [{"name": "x"}]},
]


@pytest.mark.parametrize("raw", SCHEMA_CATCHES)
def test_the_schema_refuses_what_it_can_see(raw: dict[str, Any]) -> None:
    assert list(merged_validator().iter_errors(raw))
    with pytest.raises(ValueError):
        parse(raw)


def test_other_keys_are_left_to_the_follower() -> None:
    # the collector hands its whole mapping; its own keys are not ours to refuse
    s = parse({"paths": ["/var/log/x"], "start": "end", "format": "sshd"})
    assert s.format.name == "sshd"


def test_the_logtail_collector_schema_carries_every_detection_key() -> None:
    definitions = json.loads((ROOT / "schemas" / "config.schema.json").read_text())["definitions"]
    detect = set(definitions["detect_settings"]["properties"])
    assert detect == DETECT_KEYS
    assert detect <= set(definitions["collector_logtail"]["properties"])
