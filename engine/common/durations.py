"""Durations as operators write them: `30s`, `5m`, `1h30m`, `2d`, `250ms`, `0`."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
DURATION_RE = re.compile(r"^(?:0|(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+)$")


def parse_duration(text: str | int | float) -> float:
    """Seconds for a duration string; a bare number counts as seconds.

    Raises ValueError with a message that says what is expected.
    """
    if isinstance(text, bool):
        raise ValueError("expected a duration such as 30s, 5m, 1h30m")
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError("a duration cannot be negative")
        return float(text)
    s = text.strip()
    if not DURATION_RE.match(s):
        raise ValueError(f"{text!r} is not a duration; expected e.g. 30s, 5m, 1h30m, 2d")
    if s == "0":
        return 0.0
    return sum(float(n) * _UNITS[u] for n, u in _PART.findall(s))


def parse_size(text: str | int) -> int:
    """Bytes for `64MiB`, `1GB`, `512k` or a plain integer."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    m = re.fullmatch(r"\s*(\d+)\s*([KMGT]?)(i?B?)\s*", str(text), re.IGNORECASE)
    if not m:
        raise ValueError(f"{text!r} is not a size; expected e.g. 64MiB, 1GB, 1048576")
    n, unit, suffix = int(m.group(1)), m.group(2).upper(), m.group(3).lower()
    base = 1024 if suffix.startswith("i") or suffix == "" else 1000
    return int(n * base ** " KMGT".index(unit or " "))


def format_duration(seconds: float) -> str:
    if seconds == 0:
        return "0s"
    out, rest = [], seconds
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if rest >= size:
            n = int(rest // size)
            out.append(f"{n}{unit}")
            rest -= n * size
    if rest or not out:
        out.append(f"{rest:g}s")
    return "".join(out)
