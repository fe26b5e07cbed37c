// Inline SVG charts (no library, no inline style: the CSP allows none). Colours
// come from the style sheet through class names, so dark mode follows.
const NS = "http://www.w3.org/2000/svg";

export function svg(tag, attrs, ...children) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) e.setAttribute(k, String(v));
  for (const c of children) if (c) e.append(c);
  return e;
}

export function tip(text) {
  const t = svg("title");
  t.textContent = text;
  return t;
}

export function label(x, y, text, anchor = "start") {
  const t = svg("text", { x, y, "text-anchor": anchor });
  t.textContent = text;
  return t;
}

// the width charts are drawn at: about the box's (`px`, else the window's), so that the chart's text,
// scaled with it, stays near its own size on a phone and on a large screen
export function width(px) {
  return Math.round(Math.max(280, Math.min(1360, px > 0 ? px : window.innerWidth - 50)));
}

// a chart box: a viewBox of w × h, scaled to the card's width (text keeps its shape)
export function frame(w, h, name, cls = "chart") {
  return svg("svg", { viewBox: `0 0 ${w} ${h}`, role: "img", "aria-label": name, class: cls });
}

const pad2 = (n) => String(n).padStart(2, "0");

// a short local time for an axis, as precise as the span shown needs:
// "14:05:30" under an hour, "14:05" under two days, "Nov 30 14:05" beyond
// (or when `dated`: the two ends of a day apart read the same without it)
export function tick(ms, span, dated = span > 2 * 86400e3) {
  const d = new Date(ms);
  const hm = pad2(d.getHours()) + ":" + pad2(d.getMinutes());
  if (span < 3600e3) return hm + ":" + pad2(d.getSeconds());
  return dated ? d.toLocaleDateString(undefined, { month: "short", day: "numeric" }) + " " + hm : hm;
}

// bars of counts per bucket: [{t, n, text}] oldest first
export function bars(box, rows, name) {
  const w = width(box.clientWidth), h = 130, n = Math.max(1, rows.length);
  const max = Math.max(1, ...rows.map((r) => r.n));
  const out = frame(w, h, `${name}, at most ${max}`);
  rows.forEach((r, i) => {
    const bh = Math.round((r.n / max) * (h - 32));
    out.append(
      svg("rect", { class: "bar", x: (i * w) / n + 0.5, width: Math.max(1, w / n - 1), y: h - 16 - bh, height: bh }, tip(r.text)),
    );
  });
  out.append(svg("line", { class: "axis", x1: 0, x2: w, y1: h - 16, y2: h - 16 }));
  out.append(label(2, 10, "max " + max));
  if (rows.length) {
    const span = Date.parse(rows[rows.length - 1].t) - Date.parse(rows[0].t);
    const dated = span >= 12 * 3600e3;
    out.append(label(2, h - 3, tick(Date.parse(rows[0].t), span, dated)));
    out.append(label(w - 2, h - 3, tick(Date.parse(rows[rows.length - 1].t), span, dated), "end"));
  }
  box.replaceChildren(out);
}
