"""The report as one self-contained HTML file: inline CSS and SVG charts, no
script, no external resource; print CSS so that it reads on paper too."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from engine.report.blocks import Heading, Para, Table, blocks
from engine.report.svg import bars, hbars
from engine.report.tables import duration, pct, summary_lines

__all__ = ["render_html"]

_CSS = """
:root{--fg:#1d2330;--muted:#5b6475;--line:#d9dde5;--bg:#fff;--accent:#2f6fdf;--prev:#b7c2d6}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);
 background:var(--bg);margin:0 auto;padding:24px;max-width:1400px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}
.muted{color:var(--muted)}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(150px,100%),1fr));gap:10px;margin:16px 0}
.card{border:1px solid var(--line);border-radius:6px;padding:10px 12px}
.card b{display:block;font-size:20px}
.card span{color:var(--muted);font-size:12px}
.wrap{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid var(--line);padding:4px 6px;text-align:right;white-space:nowrap}
th{background:#f3f5f9;font-weight:600;white-space:normal;vertical-align:bottom}
th:first-child,td:first-child{text-align:left;white-space:normal}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(340px,100%),1fr));gap:16px}
figure{margin:0}figcaption{font-size:12px;color:var(--muted)}
svg{width:100%;height:auto}
svg text{font:11px system-ui,sans-serif;fill:var(--muted)}
svg .bar{fill:var(--accent)}svg .prev{fill:var(--prev)}svg .axis{stroke:var(--line)}
@media (max-width:480px){body{padding:12px}}
@media print{
 body{padding:0;max-width:none;font-size:10pt}
 .wrap{overflow:visible}
 table{font-size:8pt}th,td{padding:2px 4px}
 tr,figure,.card{break-inside:avoid}
 h2{break-after:avoid}
 th{background:none}
}
"""


def _table(b: Table) -> str:
    if not b.rows:
        return '<p class="muted">none</p>'
    th = "".join(f"<th>{escape(h)}</th>" for h in b.head)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in b.rows)
    return (
        f'<div class="wrap"><table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table></div>'
    )


def _cards(report: Mapping[str, Any]) -> str:
    t = report["totals"]
    rate = t["actionable_rate"]
    i = report["interruptions"]
    items = [
        (str(t["incidents"]), "incidents"),
        (_dur(t["mtta"]), "MTTA (median)"),
        (_dur(t["mttr"]), "MTTR (median)"),
        ("–" if rate is None else f"{100 * rate:.0f}%", "actionable"),
        (pct(t["time_firing_pct"], 2), "time firing"),
        (str(t["notifications"]), "notifications"),
        (str(t["notification_failures"]), "failed notifications"),
        (str(i["off_hours"]["count"] if i["off_hours"]["count"] is not None else "–"), "off-hours"),
        (
            str(i["sleep_hours"]["count"] if i["sleep_hours"]["count"] is not None else "–"),
            "sleep-hours",
        ),
    ]
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><b>{escape(v)}</b><span>{escape(k)}</span></div>' for v, k in items
        )
        + "</div>"
    )


def _dur(st: Mapping[str, float] | None) -> str:
    return duration(st["median"] if st else None)


def render_html(report: Mapping[str, Any]) -> str:
    p = report["period"]
    s = report["series"]
    unit = "day" if s["bucket_seconds"] >= 86400 else "hour"
    title = f"vigil report: {p['since']} – {p['until']}"
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="muted">{escape(" · ".join(summary_lines(report, 0)[1:]))}</p>',
        _cards(report),
        '<div class="charts">',
        bars(
            s["incidents"], f"Incidents per {unit}", "incidents", p["since"][:10], p["until"][:10]
        ),
        bars(
            s["notifications"],
            f"Notifications per {unit}",
            "notifications",
            p["since"][:10],
            p["until"][:10],
        ),
        hbars(
            [(n["rule"], n["incidents"], n["previous"]) for n in report["noisiest"]],
            "Noisiest rules: incidents, this period (blue) and the previous one (grey)",
        ),
        "</div>",
    ]
    body = False  # the summary before the first heading is in the line under the title
    for b in blocks(report):
        if isinstance(b, Heading):
            body = True
            parts.append(f"<h2>{escape(b.text)}</h2>")
        elif isinstance(b, Para):
            if body:
                parts.append(f'<p class="{"" if b.bullet else "muted"}">{escape(b.text)}</p>')
        else:
            parts.append(_table(b))
    parts.append("</body></html>\n")
    return "\n".join(parts)
