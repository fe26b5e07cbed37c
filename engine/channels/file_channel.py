"""`file`: append each notification to a JSONL file, one line per notification.

A line is the webhook body of SPEC.md (`Notification.as_dict()`) preceded by `ts`
(when it was written) and `key` (the idempotency key, so a reader can drop a
re-sent duplicate). The file is opened per send with O_APPEND and the line goes
out in one write: lines from concurrent writers stay whole, and logrotate may
move the file at any time. The blocking I/O runs in a worker thread so a slow
disk never stalls the event loop.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from engine.channels import preview as wire
from engine.common.secret import Secret
from engine.config.model import Channel as ChannelConfig
from engine.config.secrets import reveal
from engine.errors import DeliveryError
from engine.notify.base import Notification, iso

_KNOWN = frozenset({"path", "timeout"})
MODE = 0o640  # alerts can name hosts and users: not world-readable


@dataclass(frozen=True, slots=True)
class FileSettings:
    path: str | Secret


class FileChannel:
    type_name: ClassVar[str] = "file"

    def __init__(self, name: str, settings: FileSettings) -> None:
        self.name = name
        self.settings = settings
        self._path = os.path.expanduser(reveal(settings.path))
        # a path written as ${env:..} is shown as *** like every other reference
        self._shown = "***" if isinstance(settings.path, Secret) else self._path

    @classmethod
    def from_config(cls, config: ChannelConfig) -> Self:
        s = config.settings
        unknown = sorted(set(s) - _KNOWN)
        if unknown:
            raise ValueError(f"unknown setting {unknown[0]!r} for a file channel")
        path = s.get("path")
        if not isinstance(path, str | Secret) or not reveal(path):
            raise ValueError("path: required, a file name such as /var/log/vigil/notify.jsonl")
        return cls(config.name, FileSettings(path))

    def line(self, n: Notification) -> bytes:
        record: dict[str, Any] = {"ts": iso(time.time()), "key": n.key, **n.as_dict()}
        return (strict_json(record) + "\n").encode("utf-8")

    def preview(self, n: Notification) -> list[wire.Wire]:
        return [wire.Wire("file", self._shown, body=self.line(n).decode("utf-8"))]

    async def send(self, n: Notification) -> None:
        data = self.line(n)
        try:
            await asyncio.to_thread(self._append, data)
        except OSError as e:
            raise DeliveryError(
                f"cannot append to {self._shown}: {e.strerror or e}", retryable=True
            ) from None

    def _append(self, data: bytes) -> None:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        try:
            fd = os.open(self._path, flags, MODE)
        except FileNotFoundError:
            parent = os.path.dirname(self._path)
            if not parent:
                raise
            os.makedirs(parent, exist_ok=True)
            fd = os.open(self._path, flags, MODE)
        try:
            view = memoryview(data)
            while view:  # a regular file takes it in one write; loop only if it did not
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)

    async def aclose(self) -> None:
        pass


def strict_json(obj: Any) -> str:
    """JSON every parser reads (jq too): NaN and inf become strings, odd types str()."""
    try:
        return json.dumps(obj, ensure_ascii=False, allow_nan=False, default=str)
    except ValueError:  # NaN or inf somewhere (a value): JSON has no spelling for it
        return json.dumps(_finite(obj), ensure_ascii=False, default=str)


def _finite(v: Any) -> Any:
    """`v` with every NaN/inf float turned into its string, such as "nan"."""
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_finite(x) for x in v]
    return v
