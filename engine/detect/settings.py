"""The detection settings of a `logtail` collector, read into frozen, typed values.

The keys below sit beside the follower's own (`paths`, `start`, ...) in the
collector's mapping; `DETECT_KEYS` names them so the collector can hand exactly
these to `parse` (config.schema.json's definitions.detect_settings is their JSON
Schema, also merged into collector_logtail):

    format: nginx                 # nginx | apache | combined | sshd
                                  # | {type: json, fields: {ip: client.ip, path: http.path}}
                                  # | {type: pattern, patterns: ["Login failed for <F-USER>\\S+</F-USER> from <HOST>"]}
    key: ip                       # the field that names a key (default ip)
    packs: [sqli, xss, traversal, cmdi, scanners]   # or {name: scanners, allow: {path: [^/wp-admin/]}}
    patterns:                     # your own, beside the packs
      - {name: admin_probe, field: path, regex: "^/admin", any: [/admin]}
    window: 10m                   # the window of `hits` (default 10m)
    windows:                      # per key, by metric name
      requests_1m: {kind: count, window: 1m}
      errors_5m: {kind: count, window: 5m, where: {status: ["401", "403", "404"]}}
      paths_5m: {kind: distinct, field: path, window: 5m}
      probes: {kind: bucket, capacity: 20, leak: 0.2, lines: hit}
    allow_networks: [10.0.0.0/8]  # keys (ips) in these networks are skipped entirely
    allow: {ua: ["^UptimeRobot/"]}  # lines whose field matches a regex are skipped
    max_keys: 10000               # keys tracked at most; least recently seen dropped first
    idle: 30m                     # a key unseen this long is forgotten (default: longest window)
    max_distinct: 256             # values kept per distinct window and key (counts saturate there)
    evidence: 5                   # last matching lines kept per key
    max_reported: 500             # keys listed in the sample, most hits first
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.common.address_policy import IPNetwork, parse_networks
from engine.config.settings import SettingsReader, kind
from engine.detect import formats
from engine.detect.packs import pack
from engine.detect.patterns import Pattern, allow_from_setting, pattern_from_setting
from engine.detect.windows import KINDS, WindowSpec

DETECT_KEYS = frozenset(
    {
        "format",
        "key",
        "packs",
        "patterns",
        "window",
        "windows",
        "allow_networks",
        "allow",
        "max_keys",
        "idle",
        "max_distinct",
        "evidence",
        "max_reported",
    }
)
# names a key's element already uses: a window may not take them
RESERVED = frozenset({"labels", "hits", "patterns", "evidence", "last_seen", "lines"})
MAX_KEYS = 1_000_000


@dataclass(frozen=True)
class DetectSettings:
    format: formats.Format
    key: str
    patterns: tuple[Pattern, ...]
    packs: tuple[str, ...]  # every pack name a pattern belongs to, in order
    window: float
    windows: tuple[WindowSpec, ...]
    allow_networks: tuple[IPNetwork, ...]
    allow: tuple[tuple[str, str], ...]
    max_keys: int = 10_000
    idle: float = 600.0
    max_distinct: int = 256
    evidence: int = 5
    max_reported: int = 500


def span(settings: DetectSettings) -> float:
    """Seconds of lines the per-key values reflect: the longest window (the hits
    window, count/rate/distinct windows, a full bucket's time to drain). After a
    start the values have seen less than this and may undercount."""
    spans = [settings.window]
    for w in settings.windows:
        if w.kind == "bucket":
            spans.append(w.capacity / w.leak if w.leak > 0 else 0.0)
        else:
            spans.append(w.window)
    return max(spans)


def parse(raw: Mapping[str, Any]) -> DetectSettings:
    """ValueError whose message starts with the setting's path, for bad settings."""
    mine = {k: _plain(v) for k, v in raw.items() if k in DETECT_KEYS}
    s = SettingsReader("detection", mine, frozenset())
    fmt = formats.from_setting(s.get("format", "combined"))
    key = s.string("key", "ip")
    patterns: list[Pattern] = []
    packs = s.get("packs", [])
    if not isinstance(packs, list):
        raise ValueError(f"packs: expected a list of pack names, got {kind(packs)}")
    for i, entry in enumerate(packs):
        name, allow = _pack_entry(entry, f"packs[{i}]")
        try:
            got = pack(name)
        except ValueError as e:
            raise ValueError(f"packs[{i}]: {e}") from None
        patterns.extend(
            Pattern(p.name, p.pack, p.field, p.regex, p.any, p.allow + allow) for p in got
        )
    custom = s.get("patterns", [])
    if not isinstance(custom, list):
        raise ValueError(f"patterns: expected a list, got {kind(custom)}")
    patterns.extend(pattern_from_setting(p, f"patterns[{i}]") for i, p in enumerate(custom))
    seen: set[str] = set()
    for p in patterns:
        if p.name in seen:
            raise ValueError(f"patterns: {p.name!r} is defined twice")
        seen.add(p.name)
        _check_field(fmt, p.field, f"patterns.{p.name}.field", extra=("url", "line"))
    names = seen | {p.pack for p in patterns}
    windows = _windows(s.get("windows", {}), fmt, names, key)
    window = s.duration("window", 600.0)
    longest = max([window, *(w.window for w in windows if w.kind != "bucket")])
    settings = DetectSettings(
        format=fmt,
        key=key,
        patterns=tuple(patterns),
        packs=tuple(dict.fromkeys(p.pack for p in patterns)),
        window=window,
        windows=windows,
        allow_networks=parse_networks(s.get("allow_networks", []), "allow_networks"),
        allow=allow_from_setting(s.get("allow", {}), "allow"),
        max_keys=_count(s, "max_keys", 10_000, MAX_KEYS),
        idle=s.duration("idle", longest),
        max_distinct=_count(s, "max_distinct", 256, 100_000),
        evidence=_count(s, "evidence", 5, 100, low=0),
        max_reported=_count(s, "max_reported", 500, 10_000),
    )
    _check_field(fmt, key, "key")
    s.done()
    return settings


def _plain(v: Any) -> Any:
    """The loaded config's settings are frozen (tuples, read-only mappings): back to
    the lists and dicts YAML gave, which is what the readers below check for."""
    if isinstance(v, Mapping):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    return v


def _pack_entry(entry: object, where: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    if isinstance(entry, str):
        return entry, ()
    if isinstance(entry, Mapping) and isinstance(entry.get("name"), str):
        extra = sorted(set(entry) - {"name", "allow"})
        if extra:
            raise ValueError(f"{where}: unknown setting {extra[0]!r}")
        return entry["name"], allow_from_setting(entry.get("allow", {}), f"{where}.allow")
    raise ValueError(f"{where}: expected a pack name or {{name, allow}}")


def _windows(raw: object, fmt: formats.Format, names: set[str], key: str) -> tuple[WindowSpec, ...]:
    if not isinstance(raw, Mapping):
        raise ValueError("windows: expected a mapping of metric name to {kind, ...}")
    out = []
    for name, spec in raw.items():
        where = f"windows.{name}"
        if not isinstance(name, str) or not name.isidentifier() or name != name.lower():
            raise ValueError(f"{where}: a window's name must be a lowercase identifier")
        if name in RESERVED or name == key or name.endswith("_full"):
            raise ValueError(f"{where}: the name is taken; choose another")
        if not isinstance(spec, Mapping):
            raise ValueError(f"{where}: expected a mapping with kind")
        try:
            w = _window(name, spec, fmt, names, where)
        except ValueError as e:
            msg = str(e)
            if not msg.startswith(where):
                msg = f"{where}: {msg}" if msg.startswith("unknown") else f"{where}.{msg}"
            raise ValueError(msg) from None
        out.append(w)
    return tuple(out)


def _window(
    name: str, spec: Mapping[str, Any], fmt: formats.Format, names: set[str], where: str
) -> WindowSpec:
    r = SettingsReader(where, spec, frozenset())
    k = r.choice("kind", KINDS, "count")
    w = WindowSpec(
        name=name,
        kind=k,
        window=r.duration("window", 300.0) if k != "bucket" else 0.0,
        field=r.string("field") if k == "distinct" else "",
        capacity=_positive(r, "capacity") if k == "bucket" else 0.0,
        leak=_positive(r, "leak") if k == "bucket" else 0.0,
        lines=_lines(r.get("lines", "all"), names, where),
        where=_where(r.get("where", {}), fmt, where),
    )
    if k == "distinct":
        _check_field(fmt, w.field, f"{where}.field")
    r.done()
    return w


def _lines(v: object, names: set[str], where: str) -> str | tuple[str, ...]:
    if v in ("all", "hit"):
        return str(v)
    if isinstance(v, list) and v and all(isinstance(n, str) for n in v):
        unknown = [n for n in v if n not in names]
        if unknown:
            raise ValueError(
                f"{where}.lines: {unknown[0]!r} is no pattern or pack of this collector"
            )
        return tuple(v)
    raise ValueError(f"{where}.lines: expected all, hit, or a list of pattern or pack names")


def _where(v: object, fmt: formats.Format, where: str) -> tuple[tuple[str, frozenset[str]], ...]:
    if not isinstance(v, Mapping):
        raise ValueError(f"{where}.where: expected a mapping of field to a list of values")
    out = []
    for field, values in v.items():
        _check_field(fmt, str(field), f"{where}.where.{field}")
        if isinstance(values, str | int) and not isinstance(values, bool):
            values = [values]
        if not isinstance(values, list) or not all(
            isinstance(x, str | int) and not isinstance(x, bool) for x in values
        ):
            raise ValueError(f"{where}.where.{field}: expected a list of values")
        out.append((str(field), frozenset(str(x) for x in values)))
    return tuple(out)


def _check_field(fmt: formats.Format, field: str, where: str, extra: tuple[str, ...] = ()) -> None:
    if field not in fmt.fields and field not in extra:
        known = ", ".join(sorted([*fmt.fields, *extra]))
        raise ValueError(f"{where}: format {fmt.name} has no field {field!r}; it has {known}")


def _positive(r: SettingsReader, key: str) -> float:
    v = r.get(key)
    if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0:
        raise ValueError(f"{r.what}.{key}: expected a number above 0")
    return float(v)


def _count(s: SettingsReader, key: str, default: int, high: int, low: int = 1) -> int:
    v = s.get(key, default)
    if type(v) is not int or not low <= v <= high:
        raise ValueError(f"{key}: expected a whole number from {low} to {high}")
    return v
