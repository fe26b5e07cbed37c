"""A digest: one notification standing for many held back (by a channel's rate
limit, or by a full delivery queue). Separate because both the pipeline's rate
limit and the delivery senders make them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from engine.notify.alert_state import Status, view_order
from engine.notify.base import AlertView, Notification

__all__ = ["make_digest"]

DIGEST_LIST_MAX = 100  # alerts a digest's body lists by name


def make_digest(channel: str, held: Sequence[Notification], reason: str) -> Notification:
    """One notification standing for `held` ones (rate limit or queue overflow):
    how many and which alerts, each with its latest status."""
    count = sum(int(n.extra.get("held", 1)) if n.kind == "digest" else 1 for n in held)
    latest: dict[str, AlertView] = {}
    for n in held:
        for a in n.alerts:
            latest[a.fingerprint] = a
    alerts = tuple(sorted(latest.values(), key=view_order))
    status: Status = "firing" if any(a.status == "firing" for a in alerts) else "resolved"
    title = f"[DIGEST] {count} notifications held by {reason} on {channel}"
    lines = [f"{count} notifications were held by {reason}; their alerts now:"]
    for a in alerts[:DIGEST_LIST_MAX]:
        labels = ", ".join(f"{k}={v}" for k, v in view_order(a)[2])
        lines.append(f"- {a.status.upper()} {a.rule} [{a.severity}] {labels}"[:1000])
    if len(alerts) > DIGEST_LIST_MAX:
        lines.append(f"... and {len(alerts) - DIGEST_LIST_MAX} more (all are in the alert list)")
    key = hashlib.sha256(
        json.dumps(["digest", channel, sorted(n.key for n in held)]).encode()
    ).hexdigest()
    return Notification(
        channel=channel,
        group_key=f"digest|{channel}",
        status=status,
        alerts=alerts,
        key=key,
        title=title,
        body="\n".join(lines) + "\n",
        kind="digest",
        extra={"held": count, "reason": reason, "titles": [n.title for n in held][:50]},
    )
