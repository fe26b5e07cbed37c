"""Log formats: one line of text in, a flat mapping of field name to text out.

A format is built once from its settings and then called on every line, so each
one does the least work that gives its fields: the web formats run one compiled
regex (written by us, no nested quantifiers, so it cannot backtrack badly) and
split the request with `str` methods; sshd checks for its tag before its regex;
JSON is one `orjson.loads` and a walk down precomputed dotted paths; the generic
format runs the operator's patterns through RE2, which is linear in the line, so
no pattern in a config file can stall the reader thread.

`parse(line)` returns None for a line the format does not recognise and never
raises: a malformed line is counted by the caller, not an error.

Field values are text (`status` is "404", not 404): rules and allowlists compare
what the log says, and `int()` on every line would cost time for nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
import re2  # type: ignore[import-untyped]

Fields = dict[str, str]

WEB_FIELDS = (
    "ip",
    "user",
    "time",
    "method",
    "path",
    "query",
    "status",
    "bytes",
    "referer",
    "ua",
)
SSHD_FIELDS = ("ip", "user", "outcome", "method")
OUTCOMES = ("failed", "invalid_user", "accepted")


class Format(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def fields(self) -> frozenset[str]:
        """The field names parse() can return."""
        ...

    def parse(self, line: str) -> Fields | None: ...


# a quoted field of nginx (which writes `"` as \x22) or apache (which writes \"):
# the unrolled form [^"\\]*(?:\\.[^"\\]*)* matches in one pass without backtracking
_Q = r'"([^"\\]*(?:\\.[^"\\]*)*)"'
# the request is split by the regex in the common case ("GET /a?b HTTP/1.1"): fewer
# Python steps per line; anything else lands whole in the fallback group
_REQUEST = r'"(?:([A-Z]+) ([^ "?]*)(?:\?([^ "]*))? HTTP/[0-9.]+|([^"\\]*(?:\\.[^"\\]*)*))"'
_COMBINED = re.compile(
    r"(\S+) \S+ (\S+) \[([^\]]*)\] " + _REQUEST + r" (\d{3}) (\d+|-)(?: " + _Q + " " + _Q + ")?"
)


@dataclass(frozen=True)
class Combined:
    """nginx `combined` and Apache `combined` (and `common`: referer and ua empty)."""

    name: str = "combined"
    fields: frozenset[str] = frozenset(WEB_FIELDS)

    def parse(self, line: str) -> Fields | None:
        m = _COMBINED.match(line)
        if m is None:
            return None
        ip, user, time, method, path, query, other, status, size, referer, ua = m.groups()
        if method is None:
            method, path, query = _odd_request(other)
        return {
            "ip": ip,
            "user": user,
            "time": time,
            "method": method,
            "path": path,
            "query": query or "",
            "status": status,
            "bytes": size,
            "referer": referer or "",
            "ua": ua or "",
        }


def _odd_request(request: str) -> tuple[str, str, str]:
    """Method, path and query of a request line the regex's common case missed: a raw
    space inside the target (an attack, or a bad client), no protocol, or junk."""
    parts = request.split(" ")
    if len(parts) >= 3 and parts[-1].startswith("HTTP/"):
        method, target = parts[0], " ".join(parts[1:-1])
    elif len(parts) == 2:
        method, target = parts
    else:
        method, target = "", request
    path, _, query = target.partition("?")
    return method, path, query


_SSHD = re.compile(
    r"sshd(?:-session)?\[\d+\]: (?:"
    r"(Failed|Accepted) (\S+) for (invalid user )?(.*?) from (\S+) port \d+"
    r"|Invalid user (.*?) from (\S+)"
    r"|pam_unix\(sshd:auth\): authentication failure;.*? rhost=(\S+)(?:\s+user=(\S+))?)"
)


@dataclass(frozen=True)
class Sshd:
    """OpenSSH's auth lines from syslog or journald text.

    outcome `failed` is a failed password or key (also for an invalid user, and a
    PAM authentication failure), `invalid_user` the separate "Invalid user" line
    sshd writes before it (count one or the other, not both, for attempts), and
    `accepted` a login."""

    name: str = "sshd"
    fields: frozenset[str] = frozenset(SSHD_FIELDS)

    def parse(self, line: str) -> Fields | None:
        if "sshd" not in line:
            return None
        m = _SSHD.search(line)
        if m is None:
            return None
        g = m.groups()
        if g[0] is not None:
            return {
                "ip": g[4],
                "user": g[3],
                "outcome": "failed" if g[0] == "Failed" else "accepted",
                "method": g[1],
            }
        if g[6] is not None:
            return {"ip": g[6], "user": g[5], "outcome": "invalid_user", "method": ""}
        return {"ip": g[7], "user": g[8] or "", "outcome": "failed", "method": "pam"}


@dataclass(frozen=True)
class JsonLines:
    """One JSON object per line; `paths` maps a field name to a dotted path in it
    (`http.request.path`). Scalars become text; objects, lists and null are absent."""

    paths: tuple[tuple[str, tuple[str, ...]], ...]
    name: str = "json"

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(f for f, _ in self.paths)

    def parse(self, line: str) -> Fields | None:
        if not line.lstrip().startswith("{"):
            return None
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(doc, dict):
            return None
        out: Fields = {}
        for field, steps in self.paths:
            v: Any = doc
            for step in steps:
                if not isinstance(v, dict):
                    v = None
                    break
                v = v.get(step)
            text = _scalar_text(v)
            if text is not None:
                out[field] = text
        return out


def _scalar_text(v: Any) -> str | None:
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    return None


# fail2ban's tags: <HOST> (and <ADDR>) is the address, <F-NAME>...</F-NAME> a named field
_HOST = r"(?P<ip>[0-9A-Fa-f.:]*[0-9A-Fa-f])"
_TAG = re.compile(r"<F-([A-Za-z][A-Za-z0-9_]*)>(.*?)</F-\1>")
_GROUP = re.compile(r"\(\?P<([A-Za-z_][A-Za-z0-9_]*)>")
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False
MAX_PATTERN = 4096


@dataclass(frozen=True)
class Generic:
    """fail2ban-style patterns: the first that matches gives the fields, from its
    named groups; `<HOST>` stands for the address (field `ip`)."""

    patterns: tuple[Any, ...]  # compiled RE2 regexes
    fields: frozenset[str]
    name: str = "pattern"

    def parse(self, line: str) -> Fields | None:
        for rx in self.patterns:
            m = rx.search(line)
            if m is not None:
                return {k: v for k, v in m.groupdict().items() if v is not None}
        return None


def generic(patterns: list[str] | tuple[str, ...], where: str = "patterns") -> Generic:
    """Compile fail2ban-style patterns; ValueError naming the pattern when one is bad."""
    compiled = []
    names: set[str] = set()
    if not patterns:
        raise ValueError(f"{where}: expected at least one pattern")
    for i, text in enumerate(patterns):
        if not isinstance(text, str) or not text:
            raise ValueError(f"{where}[{i}]: expected a non-empty string")
        if len(text) > MAX_PATTERN:
            raise ValueError(f"{where}[{i}]: longer than {MAX_PATTERN} characters")
        rx_text = _TAG.sub(lambda m: f"(?P<{m.group(1).lower()}>{m.group(2)})", text)
        rx_text = rx_text.replace("<HOST>", _HOST).replace("<ADDR>", _HOST)
        groups = _GROUP.findall(rx_text)
        if not groups:
            raise ValueError(f"{where}[{i}]: has no <HOST> and no named group (?P<name>...)")
        try:
            compiled.append(re2.compile(rx_text, _RE2_OPTIONS))
        except re2.error as e:
            raise ValueError(f"{where}[{i}]: not an RE2 regex: {re2_message(e)}") from None
        names.update(groups)
    return Generic(tuple(compiled), frozenset(names))


def re2_message(e: Exception) -> str:
    arg = e.args[0] if e.args else e
    return arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)


BUILTIN: Mapping[str, Format] = {
    "combined": Combined(),
    "nginx": Combined(name="nginx"),
    "apache": Combined(name="apache"),
    "sshd": Sshd(),
}


def from_setting(value: Any, where: str = "format") -> Format:
    """`format:` as written: a built-in name, `{type: json, fields: {name: dotted.path}}`
    or `{type: pattern, patterns: [...]}`."""
    if isinstance(value, str):
        if value in BUILTIN:
            return BUILTIN[value]
        raise ValueError(
            f"{where}: unknown format {value!r}; expected one of "
            f"{', '.join(sorted(BUILTIN))}, or a mapping with type json or pattern"
        )
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected a format name or a mapping")
    kind = value.get("type")
    extra = sorted(set(value) - {"type", "fields", "patterns"})
    if extra:
        raise ValueError(f"{where}: unknown setting {extra[0]!r}")
    if kind == "json":
        fields = value.get("fields")
        if not isinstance(fields, Mapping) or not fields:
            raise ValueError(f"{where}.fields: expected a mapping of field name to dotted path")
        paths = []
        for name, path in fields.items():
            if not isinstance(path, str) or not path or "" in path.split("."):
                raise ValueError(f"{where}.fields.{name}: expected a dotted path such as a.b")
            paths.append((str(name), tuple(path.split("."))))
        return JsonLines(tuple(paths))
    if kind == "pattern":
        pats = value.get("patterns")
        if not isinstance(pats, list):
            raise ValueError(f"{where}.patterns: expected a list of regexes")
        return generic(pats, f"{where}.patterns")
    raise ValueError(f"{where}.type: expected json or pattern, got {kind!r}")
