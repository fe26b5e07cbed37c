"""The file collector: JSON objects and node_exporter-style textfiles, real files."""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import pytest

from engine.collectors.file import FileCollector
from engine.common.secret import Secret
from engine.config.model import CollectorConfig, frozen_map
from engine.errors import CollectorError

TEXTFILE = """\
# HELP backup_last_success_timestamp_seconds When the last backup finished.
# TYPE backup_last_success_timestamp_seconds gauge
backup_last_success_timestamp_seconds 1.7320896e+09
# HELP app_queue_depth Jobs waiting.
# TYPE app_queue_depth gauge
app_queue_depth 17
# HELP http_requests_total Requests handled.
# TYPE http_requests_total counter
http_requests_total{method="get",code="200"} 1027 1395066363000
http_requests_total{method="post",code="500"} 3
# TYPE raid_degraded gauge
raid_degraded{md="md0"} 0
raid_degraded{md="md1"} 1
# TYPE job_seconds histogram
job_seconds_bucket{le="1"} 2
job_seconds_bucket{le="+Inf"} 3
job_seconds_sum 4.5
job_seconds_count 3
untyped_nan NaN
"""


def make(path: str | Secret, **settings: Any) -> FileCollector:
    return FileCollector.from_config(
        CollectorConfig("app", "file", None, 5.0, frozen_map({"path": path, **settings}))
    )


def collect(c: FileCollector) -> dict[str, Any]:
    return dict(asyncio.run(c.collect(0)))


def test_json_object_keys_are_metrics(tmp_path: Path) -> None:
    f = tmp_path / "metrics.json"
    f.write_text(
        json.dumps(
            {"queue_depth": 3, "ok": True, "workers": [{"labels": {"w": "1"}, "busy": False}]}
        )
    )
    c = make(str(f))
    assert c.settings.format == "json"
    assert collect(c) == {
        "queue_depth": 3,
        "ok": True,
        "workers": [{"labels": {"w": "1"}, "busy": False}],
    }
    f.write_text('{"queue_depth": 4}')  # re-read every collect
    assert collect(c) == {"queue_depth": 4}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1, 2]", "top level is a list, expected a JSON object"),
        ("null", "top level is a null"),
        ('{"a": ', "not valid JSON"),
    ],
)
def test_json_must_be_an_object(tmp_path: Path, content: str, message: str) -> None:
    f = tmp_path / "m.json"
    f.write_text(content)
    with pytest.raises(CollectorError, match=message):
        collect(make(str(f)))


def test_prometheus_textfile(tmp_path: Path) -> None:
    f = tmp_path / "app.prom"
    f.write_text(TEXTFILE)
    c = make(str(f))
    assert c.settings.format == "prometheus"  # from the .prom suffix
    s = collect(c)
    assert s["backup_last_success_timestamp_seconds"] == 1732089600.0
    assert s["app_queue_depth"] == 17
    assert s["http_requests_total"] == [
        {"labels": {"method": "get", "code": "200"}, "value": 1027},
        {"labels": {"method": "post", "code": "500"}, "value": 3},
    ]
    assert s["raid_degraded"] == [
        {"labels": {"md": "md0"}, "value": 0},
        {"labels": {"md": "md1"}, "value": 1},
    ]
    assert [b["labels"]["le"] for b in s["job_seconds_bucket"]] == ["1", "+Inf"]
    assert s["job_seconds_sum"] == 4.5 and s["job_seconds_count"] == 3
    assert math.isnan(s["untyped_nan"])
    assert "http_requests" not in s  # sample names, not family names


def test_prometheus_format_can_be_set_explicitly(tmp_path: Path) -> None:
    f = tmp_path / "metrics.txt"
    f.write_text("up 1\n")
    assert collect(make(str(f), format="prometheus")) == {"up": 1}


def test_prometheus_bad_text(tmp_path: Path) -> None:
    f = tmp_path / "bad.prom"
    f.write_text("this is not { the format\n")
    with pytest.raises(CollectorError, match="not valid Prometheus text format"):
        collect(make(str(f)))


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(CollectorError, match=f"^{missing} not found$"):
        collect(make(str(missing)))


def test_secret_path_is_not_shown(tmp_path: Path) -> None:
    with pytest.raises(CollectorError) as e:
        collect(make(Secret(str(tmp_path / "hidden-name.json"))))
    assert str(e.value) == "*** not found"


def test_unreadable_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CollectorError, match="cannot read"):
        collect(make(str(tmp_path)))  # a directory


def test_max_age_flags_a_stale_file(tmp_path: Path) -> None:
    f = tmp_path / "m.json"
    f.write_text('{"a": 1}')
    c = make(str(f), max_age="10m")
    assert collect(c) == {"a": 1}
    old = time.time() - 3600
    os.utime(f, (old, old))
    with pytest.raises(
        CollectorError, match=r"is stale: last written 1h(\d+s)? ago \(max_age 10m\)"
    ):
        collect(c)


def test_size_cap(tmp_path: Path) -> None:
    f = tmp_path / "big.json"
    with open(f, "wb") as out:
        out.truncate(16 * 1024 * 1024 + 1)
    with pytest.raises(CollectorError, match="larger than 16 MiB"):
        collect(make(str(f)))
