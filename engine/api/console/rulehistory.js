// One rule's last 24 hours, from the history index: a timeline of its alert
// episodes (GET /api/v1/history?rule=), one lane per alert instance, pending in
// amber, firing in red, a mark where it resolved (drawn from its first episode
// in that time to now, so that a short burst is not a hair at the right edge);
// and a chart of the values the
// journal recorded at its alerts' transitions (pending, firing, resolved ...),
// read from each instance's timeline (GET /api/v1/alerts/{fp}/timeline). The
// journal keeps a value only when an alert changes, not every evaluation: the
// chart shows those points, joined.
import { api, enc } from "./api.js";
import { frame, label, svg, tick, tip, width } from "./chart.js";
import { el, num, when } from "./util.js";

const SPAN = 24 * 3600e3;
const LANES = 6; // alert instances drawn (the latest); the count says how many more
const MIN_SPAN = 60e3;
let W = 720;

export async function load(rule) {
  const to = Date.now();
  const from = to - SPAN;
  const h = await api("GET", `/api/v1/history?rule=${enc(rule)}&from=${new Date(from).toISOString()}&limit=500`);
  const fps = [...new Set(h.episodes.map((e) => e.fingerprint))];
  const lines = await Promise.all(
    fps.slice(0, LANES).map((fp) =>
      api("GET", `/api/v1/alerts/${enc(fp)}/timeline?limit=1000`).catch((e) => {
        if (e.status === 404) return null; // not indexed yet
        throw e;
      }),
    ),
  );
  // the time drawn: from a little before the first episode (at least a minute)
  const first = Math.min(to, ...h.episodes.map((e) => Date.parse(e.start)));
  const shown = Math.max(from, Math.min(to - MIN_SPAN, first - (to - first) * 0.1));
  return { from: shown, to, episodes: h.episodes, truncated: h.truncated, fps, lines: lines.filter(Boolean) };
}

const x = (t, d) => Math.max(0, Math.min(W, ((t - d.from) / (d.to - d.from)) * W));

function axis(out, d, y) {
  out.append(svg("line", { class: "axis", x1: 0, x2: W, y1: y, y2: y }));
  for (let i = 0; i <= 4; i++) {
    const t = d.from + ((d.to - d.from) * i) / 4;
    out.append(label(x(t, d), y + 12, i === 4 ? "now" : tick(t, d.to - d.from), i === 0 ? "start" : i === 4 ? "end" : "middle"));
  }
}

function timeline(d) {
  const lanes = d.fps.slice(0, LANES);
  const lane = 18, h = lanes.length * lane + 18;
  const out = frame(W, h, `alert episodes of the last 24 hours: ${d.episodes.length}`, "chart timeline");
  for (const ep of d.episodes) {
    const i = lanes.indexOf(ep.fingerprint);
    if (i < 0) continue;
    const y = i * lane + 3;
    const start = Date.parse(ep.start), end = ep.end ? Date.parse(ep.end) : d.to;
    const fired = ep.firing_at ? Date.parse(ep.firing_at) : null;
    const labels = Object.entries(ep.labels || {}).map(([k, v]) => `${k}=${v}`).join(" ");
    const what = `${labels}\n${when(ep.start)} → ${ep.end ? when(ep.end) + " (" + (ep.end_kind || "ended") + ")" : "now"}`;
    const pendEnd = fired ?? end;
    if (pendEnd > start) out.append(svg("rect", { class: "pend", x: x(start, d), y, height: lane - 6, width: Math.max(1, x(pendEnd, d) - x(start, d)) }, tip("pending " + what)));
    if (fired !== null) out.append(svg("rect", { class: "fire", x: x(fired, d), y, height: lane - 6, width: Math.max(1.5, x(end, d) - x(fired, d)) }, tip("firing " + what)));
    if (ep.end) out.append(svg("rect", { class: "end", x: x(end, d) - 1, y: y - 2, width: 2, height: lane - 2 }, tip((ep.end_kind || "ended") + " " + when(ep.end))));
  }
  axis(out, d, lanes.length * lane);
  return out;
}

function values(d) {
  const pts = [];
  for (const line of d.lines) {
    const own = line.events
      .filter((e) => typeof e.value === "number" && Number.isFinite(e.value) && Date.parse(e.ts) >= d.from)
      .map((e) => ({ t: Date.parse(e.ts), v: e.value, what: e.event }));
    if (own.length) pts.push(own);
  }
  if (!pts.length) return null;
  const all = pts.flat();
  let lo = Math.min(...all.map((p) => p.v)), hi = Math.max(...all.map((p) => p.v));
  if (lo === hi) (lo -= 1), (hi += 1);
  const h = 120, top = 14, bottom = h - 18;
  const y = (v) => bottom - ((v - lo) / (hi - lo)) * (bottom - top);
  const out = frame(W, h, `values recorded at transitions, from ${num(lo)} to ${num(hi)}`, "chart values");
  pts.forEach((own, i) => {
    const cls = "series s" + (i % 3);
    if (own.length > 1) out.append(svg("polyline", { class: cls, points: own.map((p) => `${x(p.t, d)},${y(p.v)}`).join(" ") }));
    for (const p of own) out.append(svg("circle", { class: cls, cx: x(p.t, d), cy: y(p.v), r: 3 }, tip(`${p.what} ${num(p.v)} at ${when(new Date(p.t).toISOString())}`)));
  });
  out.append(label(2, 10, "max " + num(hi)));
  out.append(label(2, bottom - 2, "min " + num(lo)));
  axis(out, d, bottom);
  return out;
}

function episodeLine(ep) {
  const how = ep.end ? ep.end_kind || "ended" : ep.firing_at ? "firing" : "pending";
  const steps = [`pending ${when(ep.start)}`];
  if (ep.firing_at) steps.push(`firing ${when(ep.firing_at)}`);
  if (ep.end) steps.push(`${ep.end_kind || "ended"} ${when(ep.end)}`);
  const labels = Object.entries(ep.labels || {}).map(([k, v]) => `${k}=${v}`).join(" ");
  return el("li", { "data-state": how }, el("span", { class: "state state-" + how, text: how }), ` ${steps.join(" → ")}`, labels ? el("span", { class: "muted", text: ` ${labels}` }) : null);
}

// the panel's content, `px` wide
export function render(d, px) {
  W = width(px);
  const more = d.fps.length > LANES ? ` (the latest ${LANES} of ${d.fps.length} alert instances)` : "";
  const chart = values(d);
  return [
    el("h3", { text: `Last 24 hours: ${d.episodes.length}${d.truncated ? "+" : ""} alert episodes${more}` }),
    d.episodes.length ? timeline(d) : el("p", { class: "empty", text: "No alerts in the last 24 hours." }),
    d.episodes.length
      ? el("p", { class: "legend" }, el("span", { class: "key pend" }), " pending ", el("span", { class: "key fire" }), " firing ", el("span", { class: "key end" }), " resolved")
      : null,
    chart ? el("h3", { text: "Values at its alerts' transitions (from the journal)" }) : null,
    chart,
    d.episodes.length ? el("ol", { class: "episodes" }, ...d.episodes.slice(0, 10).map(episodeLine)) : null,
  ];
}
