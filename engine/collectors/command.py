"""`command`: run a program (argv, never a shell) and read its stdout as metrics.

parse: number  stdout is one number                  -> {"value": n}
       json    stdout is a JSON object               -> its keys
       lines   `key value` per line (# comments ok)  -> {key: number}

Every sample also holds `exit_code`, the program's exit status (it overrides a key
of that name in stdout). A non-zero exit is a result, not a failure of the
collector (a check script saying "bad", as Monit's `if status != 0`): the sample
has `exit_code`, `stderr` (its first line) and whatever of stdout parses. The
collector fails (collector_down) only when the program cannot run, times out,
is killed by a signal, writes too much, or exits 0 with stdout that does not parse.

The program runs in its own session so that a timeout kills the whole process
group, grandchildren included. It gets a small environment (PATH, HOME, locale,
TZ, TMPDIR) plus the configured `env`, not the daemon's: the daemon's
environment holds the secrets its channels use.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from engine.collectors._util import Settings, seconds
from engine.collectors.base import Sample, number
from engine.common import json_bounded
from engine.common.secret import Secret
from engine.config.catalog import check_declared
from engine.config.model import CollectorConfig
from engine.config.secrets import reveal
from engine.errors import CollectorError
from engine.runtime.process import kill_group

MAX_OUTPUT = 1024 * 1024
MAX_STDERR = 64 * 1024  # only its first line is shown; the rest is drained and dropped
MAX_MESSAGE = 200
PASS_ENV = ("PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "USER", "LOGNAME")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True, slots=True)
class CommandSettings:
    argv: tuple[str | Secret, ...]
    parse: str = "json"  # number | json | lines
    env: Mapping[str, str | Secret] | None = None
    cwd: str | None = None


class CommandCollector:
    type_name: ClassVar[str] = "command"

    def __init__(self, config: CollectorConfig, settings: CommandSettings) -> None:
        self.name = config.name
        self.interval = config.interval
        self.timeout = config.timeout
        self.settings = settings
        self._running: set[asyncio.subprocess.Process] = set()

    @classmethod
    def from_config(cls, config: CollectorConfig) -> Self:
        s = Settings(cls.type_name, config.settings)
        argv = s.get("argv")
        if not isinstance(argv, list | tuple) or not argv:
            raise ValueError(
                "argv: expected a non-empty list such as [/usr/bin/queue-depth, --json]"
            )
        for i, a in enumerate(argv):
            if not isinstance(a, str | Secret):
                raise ValueError(f"argv[{i}]: expected a string; quote numbers like '5'")
        env: dict[str, str | Secret] | None = None
        if s.has("env"):
            env = {}
            for k, v in s.mapping("env").items():
                if not isinstance(v, str | Secret):
                    raise ValueError(f"env.{k}: expected a string; quote numbers like '5'")
                env[str(k)] = v
        settings = CommandSettings(
            argv=tuple(argv),
            parse=s.choice("parse", ("number", "json", "lines"), "json"),
            env=env,
            cwd=s.string("cwd") if s.has("cwd") else None,
        )
        check_declared(s.get("metrics", []))  # names (and kinds) for the validator
        s.done()
        return cls(config, settings)

    @classmethod
    def metric_names(cls, config: CollectorConfig) -> frozenset[str] | None:
        declared = config.settings.get("metrics")
        if isinstance(declared, list | tuple | Mapping):
            return frozenset(declared) | {"exit_code", "stderr"}
        parse = config.settings.get("parse", "json")
        return frozenset({"value", "exit_code", "stderr"}) if parse == "number" else None

    async def collect(self, now: float) -> Sample:
        out, code, err = await self._run()
        if code == 0:
            return {**_parse(self.settings.parse, out), "exit_code": 0}
        try:
            values = _parse(self.settings.parse, out) if out.strip() else {}
        except CollectorError:
            values = {}  # a failing check's stdout need not follow the format
        return {**values, "exit_code": code, "stderr": _first_line(err)}

    async def aclose(self) -> None:
        for proc in list(self._running):
            await kill_group(proc)

    async def _run(self) -> tuple[bytes, int, bytes]:
        """stdout, exit status and stderr of one run; a run that did not end by
        itself (signal, timeout, too much output) raises CollectorError."""
        argv = [reveal(a) for a in self.settings.argv]
        shown = argv[0] if not isinstance(self.settings.argv[0], Secret) else "***"
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self._env(),
                cwd=self.settings.cwd,
                start_new_session=True,  # its own process group, so a kill gets them all
            )
        except OSError as e:
            raise CollectorError(f"cannot run {shown}: {e.strerror or e}") from None
        self._running.add(proc)
        assert proc.stdout is not None and proc.stderr is not None
        # stderr is read alongside stdout: a child blocked on a full stderr pipe
        # would otherwise never finish its stdout
        err_task = asyncio.create_task(_read(proc.stderr, MAX_STDERR, drain=True))
        try:
            async with asyncio.timeout(self.timeout):
                out = await _read(proc.stdout, MAX_OUTPUT)
                if out is None:
                    raise CollectorError(f"output larger than {MAX_OUTPUT} bytes")
                err = await err_task
                code = await proc.wait()
        except TimeoutError:
            raise CollectorError(f"timed out after {seconds(self.timeout)}") from None
        finally:
            # on timeout, too much output or cancellation: nothing of it may survive
            if proc.returncode is None:
                await kill_group(proc)
            if not err_task.done():
                err_task.cancel()
                await asyncio.gather(err_task, return_exceptions=True)
            self._running.discard(proc)
        if code < 0:
            raise CollectorError(_exit_message(code, err or b""))
        return out, code, err or b""

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k in PASS_ENV or k.startswith("LC_")}
        env.setdefault("PATH", DEFAULT_PATH)
        for k, v in (self.settings.env or {}).items():
            env[k] = reveal(v)
        return env


async def _read(stream: asyncio.StreamReader, limit: int, *, drain: bool = False) -> bytes | None:
    """Everything up to EOF; past `limit`, None, or with `drain` the first `limit`
    bytes while the rest is read and dropped (so the child never blocks on a pipe)."""
    buf = bytearray()
    while chunk := await stream.read(65536):
        if len(buf) + len(chunk) > limit:
            if not drain:
                return None
            buf += chunk[: max(0, limit - len(buf))]
            continue
        buf += chunk
    return bytes(buf)


def _first_line(stderr: bytes) -> str:
    line = stderr.decode("utf-8", "replace").strip().split("\n", 1)[0].strip()
    return line[:MAX_MESSAGE] + "…" if len(line) > MAX_MESSAGE else line


def _exit_message(code: int, stderr: bytes) -> str:
    what = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
    line = _first_line(stderr)
    return f"{what}: {line}" if line else what


def _parse(kind: str, out: bytes) -> dict[str, Any]:
    text = out.decode("utf-8", "replace")
    if kind == "number":
        try:
            return {"value": number(text)}
        except ValueError:
            raise CollectorError(f"stdout is not a number: {_clip(text)!r}") from None
    if kind == "json":
        try:
            data = json_bounded.loads(text)  # deep parts null, not an error
        except ValueError as e:
            raise CollectorError(f"stdout is not JSON: {e}") from None
        if not isinstance(data, dict):
            raise CollectorError(f"stdout is JSON {_json_kind(data)}, expected an object")
        # JSON is plain data; what is too deep, long or large is cut at the boundary
        # (engine/common/boundary.py), not refused: one value never downs the collector
        return data
    values: dict[str, Any] = {}
    for i, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        try:
            if len(parts) != 2:
                raise ValueError
            values[parts[0]] = number(parts[1])
        except ValueError:
            raise CollectorError(
                f"stdout line {i}: expected `name number`, got {_clip(line)!r}"
            ) from None
    return values


def _clip(text: str) -> str:
    text = text.strip()
    return text if len(text) <= 60 else text[:60] + "…"


def _json_kind(v: Any) -> str:
    return {list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(v), "a number"
    )
