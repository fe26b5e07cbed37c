"""`log`: one logfmt line per alert, on stdout/stderr or through Python logging.

    stream: stdout | stderr   write lines there (the default: stdout, which
                              journald captures under systemd)
    level: info|warning|error with no `stream`: hand lines to the `vigil.notify.log`
                              logger at this level instead

The line carries the level, status, severity, rule, fingerprint, labels, value
and summary; never settings, so never a secret. Without `level`, the level
follows severity (info → info, warning → warning, critical and emergency →
error) and a resolved alert is info: it is good news.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self

from engine.channels import preview as wire
from engine.config.model import Channel as ChannelConfig
from engine.errors import DeliveryError
from engine.notify.base import AlertView, Notification, iso

Level = Literal["info", "warning", "error"]
LEVELS: Mapping[str, int] = {
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
BY_SEVERITY: Mapping[str, Level] = {
    "info": "info",
    "warning": "warning",
    "critical": "error",
    "emergency": "error",
}
_KNOWN = frozenset({"level", "stream", "timeout"})
_BARE = re.compile(r"[^\s\"=\\]+")  # a logfmt value that needs no quotes
MAX_VALUE = 500  # one label or summary cannot turn a line into a page

logger = logging.getLogger("vigil.notify.log")


@dataclass(frozen=True, slots=True)
class LogSettings:
    stream: Literal["stdout", "stderr"] | None = "stdout"  # None: Python logging
    level: Level | None = None  # None: by severity


class LogChannel:
    type_name: ClassVar[str] = "log"

    def __init__(self, name: str, settings: LogSettings) -> None:
        self.name = name
        self.settings = settings

    @classmethod
    def from_config(cls, config: ChannelConfig) -> Self:
        s = config.settings
        unknown = sorted(set(s) - _KNOWN)
        if unknown:
            raise ValueError(f"unknown setting {unknown[0]!r} for a log channel")
        level = s.get("level")
        if level is not None and level not in LEVELS:
            raise ValueError(f"level: expected one of info, warning, error; got {level!r}")
        stream = s.get("stream")
        if stream is not None and stream not in ("stdout", "stderr"):
            raise ValueError(f"stream: expected stdout or stderr; got {stream!r}")
        if stream is None and level is None:
            stream = "stdout"
        return cls(config.name, LogSettings(stream=stream, level=level))

    def lines(self, n: Notification) -> list[tuple[Level, str]]:
        """(level, line) for each alert; one line for a notification without alerts."""
        ts = iso(time.time()) if self.settings.stream else None  # logging stamps its own
        if not n.alerts:
            level = self.settings.level or "info"
            return [(level, _logfmt([*self._head(ts, level, n), ("title", n.title)]))]
        out = []
        for a in n.alerts:
            level = self.settings.level or _level(a)
            out.append((level, _logfmt(self._head(ts, level, n) + _alert_fields(a))))
        return out

    def _head(self, ts: str | None, level: Level, n: Notification) -> list[tuple[str, Any]]:
        head: list[tuple[str, Any]] = [("ts", ts)] if ts else []
        head += [("level", level), ("channel", self.name)]
        if n.kind != "alerts":
            head.append(("kind", n.kind))
        if n.escalation_level:
            head.append(("escalation", n.escalation_level))
        return head

    def preview(self, n: Notification) -> list[wire.Wire]:
        lines = self.lines(n)
        if self.settings.stream is not None:  # the exact text written
            return [
                wire.Wire("log", self.settings.stream, body="".join(f"{x}\n" for _, x in lines))
            ]
        body = "".join(f"{level.upper()} {x}\n" for level, x in lines)  # the record's level
        return [wire.Wire("log", f"logger {logger.name}", body=body)]

    async def send(self, n: Notification) -> None:
        lines = self.lines(n)
        if self.settings.stream is None:
            for level, line in lines:
                logger.log(LEVELS[level], "%s", line)
            return
        # looked up per send, so a redirected sys.stdout (tests, the CLI) is honoured
        stream = sys.stdout if self.settings.stream == "stdout" else sys.stderr
        try:
            stream.write("".join(line + "\n" for _, line in lines))  # one write: lines stay whole
            stream.flush()
        except OSError as e:
            raise DeliveryError(
                f"cannot write to {self.settings.stream}: {e.strerror or e}", retryable=True
            ) from None

    async def aclose(self) -> None:
        pass


def _level(a: AlertView) -> Level:
    return "info" if a.status == "resolved" else BY_SEVERITY.get(a.severity, "warning")


def _alert_fields(a: AlertView) -> list[tuple[str, Any]]:
    fields: list[tuple[str, Any]] = [
        ("status", a.status),
        ("severity", a.severity),
        ("rule", a.rule),
        ("fingerprint", a.fingerprint),
        ("labels", ",".join(f"{k}={v}" for k, v in sorted(a.labels.items()))),
    ]
    if a.value is not None:
        fields.append(("value", a.value))
    fields.append(("summary", a.annotations.get("summary", "")))
    return fields


def _logfmt(fields: list[tuple[str, Any]]) -> str:
    parts = []
    for k, v in fields:
        text = str(v)
        if len(text) > MAX_VALUE:
            text = text[:MAX_VALUE] + "…"
        if not _BARE.fullmatch(text):
            # quote, escape, and keep it on one line whatever the annotation holds
            text = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
            text = text.replace("\n", "\\n").replace("\r", "\\r")
        parts.append(f"{k}={text}")
    return " ".join(parts)
