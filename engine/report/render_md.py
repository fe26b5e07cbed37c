"""The report as Markdown (GitHub-flavoured tables)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.report.blocks import Heading, Para, blocks

__all__ = ["render_md"]


def _esc(s: str) -> str:
    return s.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def render_md(report: Mapping[str, Any]) -> str:
    p = report["period"]
    lines = [f"# vigil report: {p['since']} – {p['until']}", ""]
    for b in blocks(report):
        if isinstance(b, Heading):
            if lines[-1]:
                lines.append("")
            lines += [f"## {b.text}", ""]
        elif isinstance(b, Para):
            lines.append(f"- {b.text}" if b.bullet else f"{b.text}\n")
        elif not b.rows:
            lines += ["_none_", ""]
        else:
            lines.append("| " + " | ".join(b.head) + " |")
            lines.append("|" + "---|" * len(b.head))
            lines += ["| " + " | ".join(_esc(c) for c in r) + " |" for r in b.rows]
            lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"
