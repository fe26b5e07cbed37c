"""Property: whatever a collector's or channel's own settings hold, loading the
configuration answers with problems (each `file:line:col`) or a configuration,
never an exception (issue 13 B.13). The keys are each built-in type's own, from
the shipped schemas; the values are drawn from what breaks parsers: regex and
template syntax, JSON paths, odd URLs, wrong types, nesting."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.config.build import ConfigLoader

ROOT = Path(__file__).resolve().parents[3]
_CONFIG = json.loads((ROOT / "schemas" / "config.schema.json").read_text())["definitions"]
_CHANNELS = json.loads((ROOT / "schemas" / "channels.schema.json").read_text())["definitions"]
_COMMON = {"name", "type", "interval", "timeout", "enabled", "rate_limit", "templates"}

COLLECTOR_TYPES = sorted(
    k.removeprefix("collector_") for k in _CONFIG if k.startswith("collector_")
)
CHANNEL_TYPES = sorted(k.removeprefix("channel_") for k in _CHANNELS if k.startswith("channel_"))

scalars = st.one_of(
    st.sampled_from(
        [
            "(unclosed", "$.[[[", "$.a", "{{ x | nofilter }}", "{{ unclosed", "{% for %}",
            "http://127.0.0.1:9/x", "https://", "ftp://x/", "http://[::1", "not a url",
            "/bin/echo", "", " ", "a\nb", "*", "[a-", "5m", "0s", "-1s", "1e999", "x@y",
            "${env:VIGIL_FUZZ_UNSET}", "${file:/nonexistent}", "json", "number", "GET",
        ]
    ),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
    st.text(max_size=12),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def _keys(definition: dict[str, Any]) -> list[str]:
    return sorted(set(definition.get("properties", {})) - _COMMON) or ["x"]


def _load(tmp: Path, config: dict[str, Any], channels: dict[str, Any] | None) -> None:
    (tmp / "rules").mkdir(exist_ok=True)
    (tmp / "channels").mkdir(exist_ok=True)
    (tmp / "rules" / "r.yaml").write_text("group: g\nrules:\n  - {id: a, expr: 1 > 0}\n")
    (tmp / "vigil.yaml").write_text(json.dumps(config))  # JSON is YAML
    if channels is not None:
        (tmp / "channels" / "c.yaml").write_text(json.dumps(channels))
    result = ConfigLoader().load(str(tmp / "vigil.yaml"))
    for p in result.problems:
        assert re.match(r".+:\d+:\d+: ", p.format()) or p.line == 0, p.format()
        assert "\n" not in p.format()


@pytest.mark.parametrize("kind", COLLECTOR_TYPES)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_collector_settings_never_raise(tmp_path: Path, kind: str, data: st.DataObject) -> None:
    keys = _keys(_CONFIG[f"collector_{kind}"])
    entry = data.draw(st.dictionaries(st.sampled_from(keys), values, max_size=4))
    config = {
        "rules": ["rules"],
        "channels": [],
        "collectors": [{"name": "c", "type": kind, **entry}],
    }
    _load(tmp_path, config, None)


@pytest.mark.parametrize("kind", CHANNEL_TYPES)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_channel_settings_never_raise(tmp_path: Path, kind: str, data: st.DataObject) -> None:
    keys = _keys(_CHANNELS[f"channel_{kind}"])
    entry = data.draw(st.dictionaries(st.sampled_from(keys), values, max_size=4))
    channels = {"channels": [{"name": "c", "type": kind, **entry}], "routes": [{"channels": ["c"]}]}
    _load(tmp_path, {"rules": ["rules"], "channels": ["channels"]}, channels)
