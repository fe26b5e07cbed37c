"""The channels that need no server: log, file (a real temp file) and memory."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.channels.file_channel import FileChannel
from engine.channels.log import LogChannel
from engine.channels.memory import MemoryChannel
from engine.common.secret import Secret
from engine.config.model import Channel as ChannelConfig
from engine.config.model import frozen_map
from engine.errors import DeliveryError
from engine.notify.base import AlertView, Notification
from engine.plugins import registry

T0 = 1_790_000_000.0


def alert(rule: str = "host_cpu_high", **kw: Any) -> AlertView:
    base: dict[str, Any] = {
        "fingerprint": "fp-" + rule,
        "rule": rule,
        "status": "firing",
        "severity": "warning",
        "labels": {"host": "build-7", "team": "infra"},
        "annotations": {"summary": "CPU at 93.2% on build-7"},
        "value": 93.2,
        "starts_at": T0,
    }
    base.update(kw)
    return AlertView(**base)


def notification(*alerts: AlertView, channel: str = "c", **kw: Any) -> Notification:
    alerts = alerts or (alert(),)
    base: dict[str, Any] = {
        "channel": channel,
        "group_key": "g1",
        "status": "firing" if any(a.status == "firing" for a in alerts) else "resolved",
        "alerts": alerts,
        "key": "k-123",
        "title": "[WARNING] CPU at 93.2% on build-7",
        "body": "body",
    }
    base.update(kw)
    return Notification(**base)


def config(type_: str, name: str = "c", **settings: Any) -> ChannelConfig:
    return ChannelConfig(name, type_, frozen_map(settings))


@pytest.mark.parametrize(
    ("name", "cls"), [("log", LogChannel), ("file", FileChannel), ("memory", MemoryChannel)]
)
def test_entry_point_and_type_name(name: str, cls: type) -> None:
    assert registry.load("vigil.channels", name) is cls
    assert cls.type_name == name


# -- log ---------------------------------------------------------------------------


def test_log_one_line_per_alert_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    ch = LogChannel.from_config(config("log", "ops-log"))
    n = notification(
        alert(),
        alert("disk_full", status="resolved", severity="critical", ends_at=T0 + 60),
    )
    asyncio.run(ch.send(n))
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert len(lines) == 2
    first, second = lines
    assert first.startswith("ts=")
    for part in (
        "level=warning",
        "channel=ops-log",
        "status=firing",
        "severity=warning",
        "rule=host_cpu_high",
        'labels="host=build-7,team=infra"',
        "value=93.2",
        'summary="CPU at 93.2% on build-7"',
    ):
        assert part in first, (part, first)
    # a resolved alert is good news, whatever its severity
    assert "level=info" in second and "status=resolved" in second
    assert "severity=critical" in second and "rule=disk_full" in second


def test_log_quotes_and_keeps_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    ch = LogChannel.from_config(config("log", stream="stderr"))
    a = alert(annotations={"summary": 'line one\nline "two"'}, labels={"path": "/a b"})
    asyncio.run(ch.send(notification(a)))
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert 'summary="line one\\nline \\"two\\""' in err
    assert 'labels="path=/a b"' in err


def test_log_level_by_severity(capsys: pytest.CaptureFixture[str]) -> None:
    ch = LogChannel.from_config(config("log"))
    levels = [
        ch.lines(notification(alert(severity=s)))[0][0]
        for s in ("info", "warning", "critical", "emergency")
    ]
    assert levels == ["info", "warning", "error", "error"]


def test_log_through_python_logging(caplog: pytest.LogCaptureFixture) -> None:
    ch = LogChannel.from_config(config("log", level="error"))
    with caplog.at_level(logging.INFO, logger="vigil.notify.log"):
        asyncio.run(ch.send(notification(alert(severity="info"))))
    [rec] = caplog.records
    assert rec.levelno == logging.ERROR  # the configured level wins over severity
    assert "rule=host_cpu_high" in rec.getMessage()
    assert "ts=" not in rec.getMessage()  # logging stamps its own time


def test_log_notification_without_alerts(capsys: pytest.CaptureFixture[str]) -> None:
    ch = LogChannel.from_config(config("log"))
    n = Notification("c", "g", "firing", (), "k", "vigil test notification", "", kind="test")
    asyncio.run(ch.send(n))
    out = capsys.readouterr().out
    assert "kind=test" in out and 'title="vigil test notification"' in out


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"level": "debug"}, "level: expected one of"),
        ({"stream": "syslog"}, "stream: expected stdout or stderr"),
        ({"colour": True}, "unknown setting 'colour'"),
    ],
)
def test_log_bad_settings(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LogChannel.from_config(config("log", **settings))


# -- file --------------------------------------------------------------------------


def test_file_appends_json_lines_creating_dirs(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "notify.jsonl"
    ch = FileChannel.from_config(config("file", "audit", path=str(path)))
    asyncio.run(ch.send(notification(channel="audit")))
    asyncio.run(ch.send(notification(alert(status="resolved", ends_at=T0 + 5), key="k-456")))
    lines = path.read_text("utf-8").splitlines()
    assert len(lines) == 2
    first, second = (json.loads(x) for x in lines)
    assert list(first)[:2] == ["ts", "key"]
    assert first["key"] == "k-123" and second["key"] == "k-456"
    assert first["ts"].endswith("Z")
    assert first["version"] == 1 and first["channel"] == "audit" and first["status"] == "firing"
    assert first["alerts"][0]["labels"] == {"host": "build-7", "team": "infra"}
    assert first["alerts"][0]["starts_at"] == "2026-09-21T14:13:20.000Z"
    assert second["alerts"][0]["ends_at"] == "2026-09-21T14:13:25.000Z"
    assert os.stat(path).st_mode & 0o777 == 0o640


def test_file_lines_stay_whole_under_concurrency(tmp_path: Path) -> None:
    path = tmp_path / "n.jsonl"
    chans = [FileChannel.from_config(config("file", f"c{i}", path=str(path))) for i in range(2)]
    big = alert(annotations={"summary": "x" * 20_000})

    async def main() -> None:
        await asyncio.gather(
            *(chans[i % 2].send(notification(big, key=f"k{i}")) for i in range(40))
        )

    asyncio.run(main())
    keys = sorted(json.loads(line)["key"] for line in path.read_text("utf-8").splitlines())
    assert keys == sorted(f"k{i}" for i in range(40))


def test_file_non_finite_value_is_still_json(tmp_path: Path) -> None:
    path = tmp_path / "n.jsonl"
    ch = FileChannel.from_config(config("file", path=str(path)))
    asyncio.run(ch.send(notification(alert(value=math.nan))))
    assert json.loads(path.read_text("utf-8"))["alerts"][0]["value"] == "nan"


def test_file_oserror_is_retryable_and_hides_secret_path(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    ch = FileChannel.from_config(config("file", path=str(blocker / "n.jsonl")))
    with pytest.raises(DeliveryError, match=r"cannot append to .*not-a-dir/n\.jsonl") as ei:
        asyncio.run(ch.send(notification()))
    assert ei.value.retryable is True

    secret = FileChannel.from_config(config("file", path=Secret(str(tmp_path))))  # a directory
    with pytest.raises(DeliveryError) as ei:
        asyncio.run(secret.send(notification()))
    assert ei.value.retryable is True
    assert str(tmp_path) not in str(ei.value) and "***" in str(ei.value)


def test_file_does_not_block_the_loop(tmp_path: Path) -> None:
    ch = FileChannel.from_config(config("file", path=str(tmp_path / "n.jsonl")))

    async def main() -> bool:
        ticked = False

        async def tick() -> None:
            nonlocal ticked
            ticked = True

        t = asyncio.create_task(tick())
        await ch.send(notification())
        await t
        return ticked

    assert asyncio.run(main())


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "path: required"),
        ({"path": ""}, "path: required"),
        ({"path": "x", "mode": 1}, "'mode'"),
    ],
)
def test_file_bad_settings(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FileChannel.from_config(config("file", **settings))


# -- memory ------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _clean_memory() -> Iterator[None]:
    MemoryChannel.reset()
    yield
    MemoryChannel.reset()


def test_memory_records_by_name_across_instances() -> None:
    ch = MemoryChannel.from_config(config("memory", "mem"))
    n1, n2 = notification(key="a"), notification(key="b")
    asyncio.run(ch.send(n1))
    reloaded = MemoryChannel.from_config(config("memory", "mem"))  # as after a reload
    asyncio.run(reloaded.send(n2))
    assert MemoryChannel.sent("mem") == [n1, n2]
    assert MemoryChannel.get("mem") is reloaded
    assert MemoryChannel.sent("other") == []
    asyncio.run(reloaded.aclose())
    assert reloaded.closed


def test_memory_fail_next() -> None:
    ch = MemoryChannel.from_config(config("memory", "mem"))
    MemoryChannel.get("mem").fail_next(2, retryable=False, retry_after=7.0)
    for _ in range(2):
        with pytest.raises(DeliveryError) as ei:
            asyncio.run(ch.send(notification()))
        assert ei.value.retryable is False and ei.value.retry_after == 7.0
    asyncio.run(ch.send(notification()))
    assert len(MemoryChannel.sent("mem")) == 1
    assert len(MemoryChannel.attempts("mem")) == 3

    ch.fail_next()
    with pytest.raises(DeliveryError) as ei:
        asyncio.run(ch.send(notification()))
    assert ei.value.retryable is True and ei.value.retry_after is None


def test_memory_hang_then_recover() -> None:
    ch = MemoryChannel.from_config(config("memory", "mem"))
    ch.hang(0.05)
    t = time.monotonic()
    asyncio.run(ch.send(notification()))
    assert time.monotonic() - t >= 0.05

    ch.hang(math.inf)

    async def bounded() -> None:
        await asyncio.wait_for(ch.send(notification()), 0.05)

    with pytest.raises(TimeoutError):
        asyncio.run(bounded())
    assert len(MemoryChannel.sent("mem")) == 1  # the hung one never arrived
    assert len(MemoryChannel.attempts("mem")) == 2

    ch.hang(0)
    asyncio.run(ch.send(notification()))
    assert len(MemoryChannel.sent("mem")) == 2


def test_memory_bad_settings() -> None:
    with pytest.raises(ValueError, match="unknown setting 'url'"):
        MemoryChannel.from_config(config("memory", url="x"))
    ch = MemoryChannel.from_config(config("memory", timeout="5s"))  # common key: allowed
    with pytest.raises(ValueError):
        ch.fail_next(-1)
    with pytest.raises(ValueError):
        ch.hang(-1)
