"""A ban channel's settings, read from its YAML (schema-checked before) into one
frozen object; a wrong value is a ValueError naming the key, which the loader
turns into `file:line:col: key: message`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.channels.ban.book import BookSettings
from engine.channels.ban.nft import NAME, NftSettings
from engine.channels.ban.policy import Network
from engine.common.address_policy import parse_networks
from engine.config.settings import SettingsReader

COMMON = frozenset({"timeout"})
LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


@dataclass(frozen=True, slots=True)
class BanSettings:
    key_label: str
    book: BookSettings
    nft: NftSettings
    allowlist: tuple[Network, ...]
    dry_run: bool
    redact: tuple[re.Pattern[str], ...]


def _positive(r: SettingsReader, key: str, default: float) -> float:
    v = r.duration(key, default)
    if v <= 0:
        raise ValueError(f"{key}: must be more than 0")
    return v


def _count(r: SettingsReader, key: str, default: int, low: int, high: int) -> int:
    v = r.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
        raise ValueError(f"{key}: expected a whole number from {low} to {high}")
    return v


def _name(r: SettingsReader, key: str, default: str) -> str:
    v = r.string(key, default)
    if not NAME.match(v):
        raise ValueError(f"{key}: expected an nftables name (letters, digits, _), got {v!r}")
    return v


def parse(raw: Mapping[str, Any]) -> BanSettings:
    r = SettingsReader("a ban channel", raw, COMMON)
    key_label = r.string("key_label", "ip")
    if not LABEL.match(key_label):
        raise ValueError(f"key_label: expected a label name, got {key_label!r}")
    factor = r.get("bantime_factor", 2.0)
    if isinstance(factor, bool) or not isinstance(factor, int | float) or not 1 <= factor <= 100:
        raise ValueError("bantime_factor: expected a number from 1 to 100")
    bantime = _positive(r, "bantime", 600.0)
    bantime_max = _positive(r, "bantime_max", 7 * 86400.0)
    if bantime_max < bantime:
        raise ValueError("bantime_max: must not be less than bantime")
    book = BookSettings(
        bantime=bantime,
        factor=float(factor),
        bantime_max=bantime_max,
        forget_after=_positive(r, "forget_after", 86400.0),
        max_active=_count(r, "max_active", 10_000, 1, 1_000_000),
        max_per_minute=_count(r, "max_per_minute", 120, 1, 1_000_000),
        v4_prefix=_count(r, "ipv4_prefix", 32, 8, 32),
        v6_prefix=_count(r, "ipv6_prefix", 64, 16, 128),
    )
    command = r.get("nft_command", ["nft"])
    if (
        not isinstance(command, list | tuple)
        or not command
        or not all(isinstance(c, str) and c for c in command)
    ):
        raise ValueError("nft_command: expected a non-empty list of strings such as [nft]")
    nft = NftSettings(
        command=tuple(command),
        table=_name(r, "table", "vigil"),
        chain=_name(r, "chain", "input"),
        set4=_name(r, "set4", "banned4"),
        set6=_name(r, "set6", "banned6"),
        priority=_count(r, "priority", -10, -1000, 1000),
        timeout=_positive(r, "timeout", 10.0),
    )
    redact = r.get("redact", [])
    if not isinstance(redact, list | tuple) or not all(isinstance(x, str) for x in redact):
        raise ValueError("redact: expected a list of regular expressions")
    patterns = []
    for i, x in enumerate(redact):
        try:
            patterns.append(re.compile(x))
        except re.error as e:
            raise ValueError(f"redact[{i}]: not a regular expression: {e}") from None
    out = BanSettings(
        key_label=key_label,
        book=book,
        nft=nft,
        allowlist=parse_networks(r.get("allowlist", []), "allowlist"),
        dry_run=r.flag("dry_run", False),
        redact=tuple(patterns),
    )
    r.done()
    return out
