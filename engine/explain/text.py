"""The terminal form of an explanation: render_text(d) turns the dict form
(Explanation.to_dict(), or the JSON a running daemon returned) into the lines
`vigil explain` prints. Separate because it reads only the dict, never the
dataclasses, so the CLI's online mode can print a daemon's answer with it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.explain.wording import duration_text, labels_text, one_line


def render_text(d: Mapping[str, Any]) -> str:
    """The terminal form of an Explanation's dict (also of one from the daemon)."""
    lines: list[str] = []
    s = d.get("settings") or {}
    lines.append(
        f"rule {d.get('rule')} (group {d.get('group')}, {d.get('severity')}) at {d.get('source')}"
    )
    lines.append(f"  expr: {one_line(str(d.get('expr', '')))}")
    opts = []
    if s.get("each"):
        opts.append(f"each {s['each']}")
    if s.get("for"):
        opts.append(f"for {duration_text(float(s['for']))}")
    if s.get("consecutive"):
        opts.append(f"consecutive {s['consecutive']}")
    if s.get("keep_firing_for"):
        opts.append(f"keep_firing_for {duration_text(float(s['keep_firing_for']))}")
    if s.get("resolve_expr"):
        opts.append(f"resolve_expr {one_line(str(s['resolve_expr']))}")
    opts.append(f"no_data {s.get('no_data')}")
    opts.append(f"on_error {s.get('on_error')}")
    lines.append("  " + " · ".join(opts))
    lines.append(f"  as of {d.get('at')}")
    for n in d.get("notes") or []:
        lines.append(f"  note: {n}")
    instances = d.get("instances") or []
    if not instances:
        lines.append("")
        lines.append("no alert to explain")
    for inst in instances:
        lines.append("")
        labels = inst.get("labels") or {}
        lines.append(
            f"alert {labels_text(labels) if labels else '{}'}  "
            f"(fingerprint {inst.get('fingerprint')})"
        )
        lines.append(f"  {inst.get('summary')}")
        for n in inst.get("notes") or []:
            lines.append(f"  note: {n}")
        cond = inst.get("condition") or {}
        check = cond.get("check")
        if check:
            lines.append("  why:")
            _render_check(check, lines, 4)
        if cond.get("outcome") in ("no_data", "stale", "error", "gone", "unknown") and not check:
            lines.append(f"  why: {cond.get('message')}")
        _render_evidence(cond.get("evidence"), lines)
        resolve = cond.get("resolve")
        if resolve:
            lines.append("  resolve_expr:")
            _render_check(resolve, lines, 4)
        timer = inst.get("timer") or []
        if timer:
            lines.append("  timer:")
            lines.extend(f"    - {t}" for t in timer)
        dl = inst.get("delivery") or {}
        lines.append(f"  notification: {dl.get('summary')}")
        for r in dl.get("routes") or []:
            lines.append(f"    {r.get('text')}")
        for n in dl.get("notes") or []:
            lines.append(f"    note: {n}")
        for r in dl.get("withheld") or []:
            lines.append(f"    ✗ {r.get('text')}")
        for c in dl.get("channels") or []:
            state = "✓" if c.get("sends") else "✗"
            head = f"    {state} channel {c.get('name')} ({c.get('type')})"
            rest = "; ".join(c.get("lines") or [])
            lines.append(head + (f": {rest}" if rest else ""))
        esc = dl.get("escalation") or []
        if esc:
            lines.append("    escalation:")
            lines.extend(f"      - {e}" for e in esc)
    return "\n".join(lines) + "\n"


def _render_check(c: Mapping[str, Any], lines: list[str], indent: int, mark: str = "") -> None:
    text = str(c.get("text") or c.get("source"))
    tail = ""
    if c.get("op") in ("and", "or"):
        kids = c.get("children") or []
        decisive = [k for k in kids if k.get("decisive")]
        if decisive and len(decisive) < len(kids):
            tail = f"  — decided by {decisive[0].get('source')}"
        elif kids:
            word = "all" if c.get("op") == "and" else "none"
            tail = f"  — {word} of its {len(kids)} operands {'hold' if word == 'all' else 'holds'}"
    if mark and not c.get("reached", True):
        tail += "  (not reached)"
    lines.append(" " * indent + mark + text + tail)
    for k in c.get("children") or []:
        o = k.get("outcome")
        sym = {"true": "✓ ", "false": "✗ "}.get(str(o), "? ")
        if not k.get("reached", True):
            sym = "· "
        _render_check(k, lines, indent + 2, sym)


def _render_evidence(ev: Mapping[str, Any] | None, lines: list[str]) -> None:
    if not ev:
        return
    hits = ev.get("hits") or {}
    shown = ", ".join(f"{name} {n}" for name, n in hits.items())
    lines.append(
        f"  evidence, from {ev.get('source')}:" + (f" patterns hit: {shown}" if shown else "")
    )
    for e in ev.get("lines") or []:
        where = f"{e['path']}@{e['offset']}  " if e.get("path") and "offset" in e else ""
        pats = f"[{', '.join(e.get('patterns') or [])}] " if e.get("patterns") else ""
        lines.append(f"    {where}{pats}{e.get('line')}")
