"""`exec`: run a program per notification (argv, never a shell), e.g. to block an IP.

Each argv element may be a sandboxed Jinja2 template, rendered into exactly one
argument: a label such as `1.2.3.4; rm -rf /` arrives as that literal string,
since no shell ever parses it. The template context is that of every
notification template (`status`, `alerts`, `common_labels`, ... and the first
alert's `labels`, `annotations`, `value`, `rule`, `severity`, `fingerprint`)
plus the notification's `key` and `title`.

The program gets a small environment: PATH and locale basics (never the
daemon's own, which holds channel secrets), the configured `env`, then
VIGIL_STATUS, VIGIL_RULE, VIGIL_SEVERITY, VIGIL_FINGERPRINT, VIGIL_LABELS_JSON
and VIGIL_ALERTS_JSON (the notification as JSON). A JSON variable past 64 KiB
is left out (Linux refuses one over 128 KiB); the notification's JSON is always
on stdin as well.

Exit 0 is delivered; exit 75 (EX_TEMPFAIL) asks for a retry; any other exit is
a non-retryable failure with the first line of stderr. On timeout the whole
process group (it runs in its own session) is killed and the failure is
retryable.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from engine.channels import preview as wire
from engine.channels.file_channel import strict_json
from engine.common.durations import parse_duration
from engine.common.secret import Secret
from engine.config.model import Channel as ChannelConfig
from engine.config.model import frozen_map
from engine.config.secrets import reveal
from engine.errors import DeliveryError
from engine.notify.base import Notification
from engine.runtime.process import kill_group
from engine.templates import renderer as templates

_KNOWN = frozenset({"argv", "env", "cwd", "timeout"})
DEFAULT_TIMEOUT = 30.0
MAX_OUTPUT = 64 * 1024  # read and dropped past this, so the child never blocks on a pipe
MAX_ENV_JSON = 64 * 1024
MAX_MESSAGE = 200
EX_TEMPFAIL = 75
PASS_ENV = ("PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "USER", "LOGNAME")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_ENV: SandboxedEnvironment = templates.make_env()


@dataclass(frozen=True, slots=True)
class ExecSettings:
    argv: tuple[jinja2.Template | str | Secret, ...]  # Template: rendered per send
    env: Mapping[str, str | Secret]
    cwd: str | None
    timeout: float


class ExecChannel:
    type_name: ClassVar[str] = "exec"

    def __init__(self, name: str, settings: ExecSettings) -> None:
        self.name = name
        self.settings = settings
        self._running: set[asyncio.subprocess.Process] = set()
        self._secrets = [
            s.reveal() for s in (*settings.argv, *settings.env.values()) if isinstance(s, Secret)
        ]

    @classmethod
    def from_config(cls, config: ChannelConfig) -> Self:
        s = config.settings
        unknown = sorted(set(s) - _KNOWN)
        if unknown:
            raise ValueError(f"unknown setting {unknown[0]!r} for an exec channel")
        raw = s.get("argv")
        if not isinstance(raw, list | tuple) or not raw:
            raise ValueError("argv: expected a non-empty list such as [/usr/local/bin/block-ip]")
        argv: list[jinja2.Template | str | Secret] = []
        for i, a in enumerate(raw):
            if isinstance(a, Secret):  # a secret is passed as it is, never rendered
                argv.append(a)
            elif not isinstance(a, str):
                raise ValueError(f"argv[{i}]: expected a string; quote numbers like '5'")
            elif templates.is_template(a):
                try:
                    argv.append(_ENV.from_string(a))
                except jinja2.TemplateSyntaxError as e:
                    raise ValueError(f"argv[{i}]: template syntax error: {e.message}") from None
            else:
                argv.append(a)
        env = s.get("env") or {}
        if not isinstance(env, Mapping):
            raise ValueError("env: expected a mapping of NAME: value")
        for k, v in env.items():
            if not isinstance(v, str | Secret):
                raise ValueError(f"env.{k}: expected a string; quote numbers like '5'")
        cwd = s.get("cwd")
        if cwd is not None and not isinstance(cwd, str):
            raise ValueError("cwd: expected a directory name")
        try:
            timeout = parse_duration(s.get("timeout", DEFAULT_TIMEOUT))
        except (ValueError, TypeError):
            raise ValueError("timeout: expected a duration such as 10s") from None
        if timeout <= 0:
            raise ValueError("timeout: must be more than 0")
        return cls(config.name, ExecSettings(tuple(argv), frozen_map(env), cwd, timeout))

    def render(self, n: Notification) -> list[str]:
        """The argv for `n`; DeliveryError(retryable=False) if a template fails."""
        ctx = _context(n)
        out = []
        for i, a in enumerate(self.settings.argv):
            if isinstance(a, jinja2.Template):
                try:  # under the sandbox's step, time and size caps
                    out.append(templates.render(a, ctx))
                except templates.RENDER_ERRORS as e:  # the same alert fails the same way
                    raise DeliveryError(
                        f"argv[{i}]: {templates.error_text(e)}", retryable=False
                    ) from None
            else:
                out.append(reveal(a))
        return out

    def environ(self, n: Notification, payload: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k in PASS_ENV or k.startswith("LC_")}
        env.setdefault("PATH", DEFAULT_PATH)
        env.update({k: reveal(v) for k, v in self.settings.env.items()})
        first = n.alerts[0] if n.alerts else None
        env["VIGIL_STATUS"] = n.status
        env["VIGIL_RULE"] = first.rule if first else ""
        env["VIGIL_SEVERITY"] = first.severity if first else ""
        env["VIGIL_FINGERPRINT"] = first.fingerprint if first else ""
        labels = json.dumps(dict(first.labels) if first else {})
        for key, value in (("VIGIL_LABELS_JSON", labels), ("VIGIL_ALERTS_JSON", payload)):
            if len(value) <= MAX_ENV_JSON:  # larger: exec fails with E2BIG; stdin has it all
                env[key] = value
        return env

    def preview(self, n: Notification) -> list[wire.Wire]:
        """The command line, stdin and the environment vigil sets (not the
        variables passed through from its own)."""
        argv = self.render(n)
        payload = strict_json(n.as_dict())
        scrub = wire.scrubber(self._secrets)
        env = self.environ(n, payload)
        ours = [
            (k, "(the stdin below)" if v == payload else scrub(v))
            for k, v in env.items()
            if k in self.settings.env or k[:6] == "VIGIL_"
        ]
        shown = tuple(scrub(a) for a in argv)
        return [wire.Wire("exec", shown[0], tuple(ours), scrub(payload), shown)]

    async def send(self, n: Notification) -> None:
        argv = self.render(n)
        payload = strict_json(n.as_dict())
        shown = "***" if isinstance(self.settings.argv[0], Secret) else argv[0]
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self.environ(n, payload),
                cwd=self.settings.cwd,
                start_new_session=True,  # its own process group, so a kill gets them all
            )
        except (FileNotFoundError, PermissionError, NotADirectoryError) as e:
            raise DeliveryError(f"cannot run {shown}: {e.strerror}", retryable=False) from None
        except OSError as e:
            # E2BIG: this notification's arguments are too long, again on a retry;
            # EAGAIN, ENOMEM, EMFILE: the host is short of something that may return
            raise DeliveryError(
                f"cannot run {shown}: {e.strerror or e}", retryable=e.errno != errno.E2BIG
            ) from None
        self._running.add(proc)
        assert proc.stdin and proc.stdout and proc.stderr
        # all three pipes at once: a child blocked writing stderr, or one that never
        # reads its stdin, must not deadlock us
        io = asyncio.gather(
            _feed(proc.stdin, payload.encode()), _drain(proc.stdout), _drain(proc.stderr)
        )
        try:
            async with asyncio.timeout(self.settings.timeout):
                _, _, err = await io
                code = await proc.wait()
        except TimeoutError:
            raise DeliveryError(
                f"{shown} timed out after {self.settings.timeout:g}s; killed", retryable=True
            ) from None
        finally:
            if proc.returncode is None:  # timeout or cancellation: leave nothing behind
                await kill_group(proc)
            if not io.done():
                io.cancel()
                await asyncio.gather(io, return_exceptions=True)
            self._running.discard(proc)
        if code != 0:
            raise DeliveryError(self._exit_message(shown, code, err), retryable=code == EX_TEMPFAIL)

    def _exit_message(self, shown: str, code: int, stderr: bytes) -> str:
        what = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
        line = stderr.decode("utf-8", "replace").strip().split("\n", 1)[0].strip()
        for secret in self._secrets:  # a script may echo what it was given
            if secret:
                line = line.replace(secret, "***")
        if len(line) > MAX_MESSAGE:
            line = line[:MAX_MESSAGE] + "…"
        return f"{shown}: {what}: {line}" if line else f"{shown}: {what}"

    async def aclose(self) -> None:
        for proc in list(self._running):
            await kill_group(proc)


def _context(n: Notification) -> dict[str, Any]:
    # what every notification template sees, so an argv reads like a title template
    ctx = templates.notification_context(
        channel=n.channel,
        channel_type=ExecChannel.type_name,
        status=n.status,
        alerts=n.alerts,
        group_key=n.group_key,
        kind=n.kind,
        escalation_level=n.escalation_level,
    )
    ctx.update(key=n.key, title=n.title)
    return ctx


async def _feed(stdin: asyncio.StreamWriter, data: bytes) -> None:
    try:
        stdin.write(data)
        await stdin.drain()
        stdin.close()
    except (BrokenPipeError, ConnectionResetError):
        pass  # the program does not read its stdin: that is its choice


async def _drain(stream: asyncio.StreamReader) -> bytes:
    """The first MAX_OUTPUT bytes; the rest is read and dropped."""
    buf = bytearray()
    while chunk := await stream.read(65536):
        if len(buf) < MAX_OUTPUT:
            buf += chunk[: MAX_OUTPUT - len(buf)]
    return bytes(buf)
