"""How expected and actual alerts and notifications are shown in a failure:
the fields compared, as one-line YAML flow, in a -/+ diff.

Separate because it is presentation only; matching decides, this shows."""

from __future__ import annotations

import json
import re
from typing import Any

from engine.config.load import resolve_plain
from engine.notify.base import Notification
from engine.ruletest.clock import offset
from engine.ruletest.model import ALERT_FIELDS, NOTE_FIELDS, AlertExpect, NoteExpect
from engine.ruletest.simulation import ActualAlert

_NOT_PLAIN = re.compile(r"[{}\[\],#&*!|>'\"`\n\t]|: |:$|^[-?:%@ ]| $")


def _flow(v: Any) -> str:
    """A value as one line of YAML flow style."""
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_flow(k)}: {_flow(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_flow(x) for x in v) + "]"
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    s = str(v)
    if s and not _NOT_PLAIN.search(s) and resolve_plain(s) == s:
        return s  # reads back as this very string
    return json.dumps(s, ensure_ascii=False)


def expected_alert(e: AlertExpect) -> dict[str, Any]:
    out = {"rule": e.rule, "state": e.state}
    for f in ALERT_FIELDS[2:]:
        if f in e.raw:
            out[f] = e.raw[f]
    return out


def actual_alert(a: ActualAlert, like: AlertExpect | None = None) -> dict[str, Any]:
    """An actual alert with the fields an expected item gives (all the identity
    otherwise); annotations only those the expected item names."""
    out: dict[str, Any] = {"rule": a.rule, "state": a.state}
    labels = dict(sorted(a.labels.items()))
    if like is None:
        out["labels"] = labels
        out["value"] = a.value
        if "summary" in a.annotations:
            out["annotations"] = {"summary": a.annotations["summary"]}
        for f in ("no_data", "error", "flapping"):
            if getattr(a, f):
                out[f] = True
        return out
    if like.labels is not None:
        shown = {k: a.labels[k] for k in like.labels if k in a.labels}
        out["labels"] = shown if shown == like.labels else labels
    for key in ("annotations", "annotations_regex"):
        names = like.raw.get(key)
        if names is not None:
            out[key] = {k: a.annotations.get(k) for k in names}
    if like.has_value:
        out["value"] = a.value
    if like.severity is not None:
        out["severity"] = a.severity
    for f in like.flags:
        out[f] = getattr(a, f)
    return out


def expected_note(e: NoteExpect) -> dict[str, Any]:
    return {f: e.raw[f] for f in NOTE_FIELDS if f in e.raw}


def actual_note(at: float, n: Notification, like: NoteExpect | None = None) -> dict[str, Any]:
    full: dict[str, Any] = {
        "channel": n.channel,
        "status": n.status,
        "alerts": sorted(a.rule for a in n.alerts),
        "kind": n.kind,
        "level": n.escalation_level,
        "sent_at": offset(at),
        "title": n.title,
        "body": n.body.rstrip("\n"),
    }
    if like is None:
        keys = ["channel", "status", "alerts", "sent_at", "title"]
        if n.kind != "alerts":
            keys.insert(3, "kind")
        if n.escalation_level:
            keys.insert(4, "level")
    else:
        # a regex is shown against the text it was matched with
        keys = [f.removesuffix("_regex") for f in NOTE_FIELDS if f in like.raw]
        keys = list(dict.fromkeys(keys))
    return {k: full[k] for k in keys}


def diff_lines(
    expected: list[dict[str, Any]],
    matched: dict[int, int],
    shown_with: dict[int, dict[str, Any]],
    extra: list[dict[str, Any]],
) -> list[str]:
    """Lines of the diff: `  ` both, `- ` expected only, `+ ` actual only; an
    expected item is followed by the actual item it most resembles."""
    lines: list[str] = []
    for i, e in enumerate(expected):
        if i in matched:
            lines.append("  " + _flow(e))
            continue
        lines.append("- " + _flow(e))
        if i in shown_with:
            lines.append("+ " + _flow(shown_with[i]))
    lines += ["+ " + _flow(a) for a in extra]
    return lines
