"""`${env:NAME}` and `${file:/path}` references, and the Secret type that hides them.

A string holding a reference becomes a Secret once resolved: its value leaves
only through `reveal()`, and every other way of printing it shows `***`.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from engine.common.secret import Secret
from engine.config.load import open_regular

REF = re.compile(r"\$\{(env|file):([^}]*)\}")
# what `vigil test` puts in for an unset ${env:NAME} (nothing is sent there): a
# value that is not the real one, which a plugin's own checks must not judge
PLACEHOLDER = "vigil-test-placeholder"
MAX_SECRET_FILE = 64 * 1024


def has_ref(value: str) -> bool:
    return "${" in value and REF.search(value) is not None


def resolve(value: str, env: dict[str, str] | None = None) -> str | Secret:
    """Resolve every reference in `value`; a string that had one becomes a Secret.

    Raises ValueError naming the reference (never its value) when one cannot be read.
    """
    if "${" not in value:
        return value
    environ = os.environ if env is None else env

    def sub(m: re.Match[str]) -> str:
        kind, arg = m.group(1), m.group(2).strip()
        if not arg:
            raise ValueError(f"${{{kind}:}} needs a name")
        if kind == "env":
            if arg not in environ:
                raise ValueError(
                    f"environment variable {arg} is not set (referenced as ${{env:{arg}}})"
                )
            return environ[arg]
        try:
            with open_regular(arg) as f:  # a FIFO must not hang a reload
                data = f.read(MAX_SECRET_FILE + 1)
        except OSError as e:
            raise ValueError(f"cannot read secret file {arg}: {e.strerror}") from None
        if len(data) > MAX_SECRET_FILE:
            raise ValueError(f"secret file {arg} is larger than {MAX_SECRET_FILE} bytes")
        # a trailing newline is almost never part of a token
        return data.decode("utf-8", "replace").rstrip("\r\n")

    resolved = REF.sub(sub, value)
    return Secret(resolved) if REF.search(value) else resolved


def reveal(value: str | Secret) -> str:
    return value.reveal() if isinstance(value, Secret) else value


class RedactingEncoder(json.JSONEncoder):
    """json.dumps(..., cls=RedactingEncoder) writes Secrets as ***."""

    def default(self, o: Any) -> Any:
        if isinstance(o, Secret):
            return "***"
        return super().default(o)


SECRET_KEYS = re.compile(
    r"(pass(word)?|secret|token|api_?key|routing_?key|auth|credential|sha256|webhook_url|^url$)",
    re.IGNORECASE,
)


def redact_value(key: str | int | None, value: Any) -> Any:
    """The value as an error message may show it: references are shown as written,
    keys that usually hold secrets are hidden."""
    if isinstance(value, Secret):
        return "***"
    if isinstance(key, str) and SECRET_KEYS.search(key) and isinstance(value, str):
        if has_ref(value) and REF.fullmatch(value):
            return value
        return "***"
    return value


def redact_deep(key: str | int | None, value: Any) -> Any:
    """redact_value applied through mappings and lists."""
    if isinstance(value, dict):
        return {k: redact_deep(k, v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_deep(key, v) for v in value]
    return redact_value(key, value)
