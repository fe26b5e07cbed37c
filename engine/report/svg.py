"""Inline SVG charts for the HTML report: drawn here, no library, no script."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

__all__ = ["bars", "hbars"]

W, H, PAD = 420, 170, 28


def _nice_max(v: int) -> int:
    for m in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        if v <= m:
            return m
    return v


def bars(values: Sequence[int], caption: str, what: str, first: str, last: str) -> str:
    """A column chart of `values` (one per bucket of the period)."""
    top = _nice_max(max(values, default=0))
    n = max(1, len(values))
    inner_w, inner_h = W - PAD - 8, H - 2 * PAD
    bw = inner_w / n
    cols = []
    for i, v in enumerate(values):
        if v <= 0:
            continue
        h = inner_h * v / top
        x, y = PAD + i * bw, PAD + inner_h - h
        cols.append(
            f'<rect class="bar" x="{x:.2f}" y="{y:.2f}" width="{max(bw * 0.85, 0.6):.2f}" '
            f'height="{h:.2f}"><title>{i + 1}: {v} {escape(what)}</title></rect>'
        )
    axis = (
        f'<line class="axis" x1="{PAD}" y1="{PAD + inner_h}" x2="{W - 8}" y2="{PAD + inner_h}"/>'
        f'<line class="axis" x1="{PAD}" y1="{PAD}" x2="{W - 8}" y2="{PAD}"/>'
        f'<text x="{PAD - 4}" y="{PAD + 4}" text-anchor="end">{top}</text>'
        f'<text x="{PAD - 4}" y="{PAD + inner_h + 4}" text-anchor="end">0</text>'
        f'<text x="{PAD}" y="{H - 8}">{escape(first)}</text>'
        f'<text x="{W - 8}" y="{H - 8}" text-anchor="end">{escape(last)}</text>'
    )
    return (
        f'<figure><svg viewBox="0 0 {W} {H}" role="img" aria-label="{escape(caption)}">'
        f"{axis}{''.join(cols)}</svg><figcaption>{escape(caption)}</figcaption></figure>"
    )


def hbars(items: Sequence[tuple[str, int, int]], caption: str) -> str:
    """Horizontal bars: (name, this period, previous period) each."""
    if not items:
        return f'<figure><p class="muted">no incidents</p><figcaption>{escape(caption)}</figcaption></figure>'
    row, label_w = 22, 150
    h = row * len(items) + 10
    top = _nice_max(max(max(a, b) for _, a, b in items))
    inner = W - label_w - 40
    out = []
    for i, (name, now, before) in enumerate(items):
        y = 5 + i * row
        short = name if len(name) <= 22 else name[:21] + "…"
        out.append(f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{escape(short)}</text>')
        out.append(
            f'<rect class="prev" x="{label_w}" y="{y + 12}" width="{inner * before / top:.2f}" height="6">'
            f"<title>previous: {before}</title></rect>"
        )
        out.append(
            f'<rect class="bar" x="{label_w}" y="{y + 2}" width="{inner * now / top:.2f}" height="10">'
            f"<title>{escape(name)}: {now}</title></rect>"
        )
        out.append(f'<text x="{label_w + inner * now / top + 4:.2f}" y="{y + 11}">{now}</text>')
    return (
        f'<figure><svg viewBox="0 0 {W} {h}" role="img" aria-label="{escape(caption)}">'
        f"{''.join(out)}</svg><figcaption>{escape(caption)}</figcaption></figure>"
    )
