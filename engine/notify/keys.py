"""Group keys and Idempotency-Keys: the names a group and each of its
notifications go by, pinned byte for byte (receivers deduplicate on them, and a
restart must give a retried notification the key it had). Separate because the
format is a contract of its own, shared by groups, resume and the tests.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

from engine.common.json_text import compact_json, compact_json_ascii
from engine.common.json_text import quote_ascii as _quote
from engine.notify.base import AlertView, iso

__all__ = [
    "group_key",
    "group_key_from_json",
    "hash_key",
    "idempotency_key",
    "key_item",
    "key_prefix",
    "labels_json",
]


def group_key(channel: str, route_index: int, labels: Mapping[str, str]) -> str:
    """`<channel>|<route index>|{"label":"value",...}` with labels sorted."""
    return group_key_from_json(channel, route_index, labels_json(labels))


def group_key_from_json(channel: str, route_index: int, labels_json: str) -> str:
    """group_key() with the labels' JSON made already (once for all channels)."""
    return f"{channel}|{route_index}|{labels_json}"


def labels_json(labels: Mapping[str, str]) -> str:
    return compact_json(dict(sorted(labels.items())))


def idempotency_key(
    channel: str, gkey: str, alerts: Iterable[AlertView], previous: str | None = None
) -> str:
    """SHA-256 of the ASCII JSON `[channel, group key, items]`, items being each
    alert's [fingerprint, status, starts_at] sorted (by fingerprint: unique in a
    notification); an acknowledged alert adds "ack" (so an acknowledgement is a
    new message to receivers that deduplicate). After the group's first delivered
    notification, `previous` (that group's last delivered key) is appended:
    `[channel, group key, items, previous]`, so every occasion (a change, a
    reminder with the same alerts, a resolve) has a key of its own, while a retry
    of the same occasion, also after a crash, carries the same key."""
    items = (key_item(a) for a in sorted(alerts, key=lambda a: a.fingerprint))
    return hash_key(key_prefix(channel, gkey), items, previous)


def key_item(a: AlertView) -> str:
    """One alert's item of idempotency_key(), as JSON."""
    item = [a.fingerprint, a.status, iso(a.starts_at), *(["ack"] if a.acknowledged else [])]
    return compact_json_ascii(item)


def key_prefix(channel: str, gkey: str) -> str:
    """idempotency_key()'s JSON up to its items (json's own string quoting)."""
    return f"[{_quote(channel)},{_quote(gkey)},["


def hash_key(prefix: str, items: Iterable[str], previous: str | None = None) -> str:
    """idempotency_key() from its pieces: the prefix, the items' JSON in order."""
    tail = "]]" if previous is None else f"],{_quote(previous)}]"
    return hashlib.sha256(f"{prefix}{','.join(items)}{tail}".encode()).hexdigest()
