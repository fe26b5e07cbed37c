// The overview: what is going on now (counts of the active alerts, the noisiest
// rules now) and, where the daemon keeps a history index, alert volume per hour
// over 24 h or 7 d (GET /api/v1/history/counts). A daemon without that endpoint
// does not list it in /openapi.json (asked once: a 404 each time would be an
// error line in the browser's console) or answers 404: the chart is left out.
import { api } from "./api.js";
import { $, el } from "./util.js";

const ui = { span: 24 };
let ctx = null;
let history = null; // {buckets} | "absent" | null (not asked yet)
let served = null; // whether the daemon serves the history counts

export async function load() {
  if (served === null) {
    const doc = await api("GET", "/openapi.json");
    served = "/api/v1/history/counts" in (doc.paths || {});
  }
  if (!served) {
    history = "absent";
    return;
  }
  const to = new Date();
  const from = new Date(to.getTime() - ui.span * 3600e3);
  try {
    history = await api("GET", `/api/v1/history/counts?by=hour&from=${from.toISOString()}&to=${to.toISOString()}`);
  } catch (e) {
    if (e.status === 404) history = "absent";
    else throw e;
  }
}

export function mount(root, context) {
  ctx = context;
  const spans = el("div", { class: "seg", role: "group", "aria-label": "period" });
  for (const [h, text] of [[24, "24 h"], [168, "7 d"]]) {
    const b = el("button", { type: "button", "aria-pressed": String(ui.span === h), text });
    b.addEventListener("click", async () => {
      ui.span = h;
      spans.querySelectorAll("button").forEach((x) => x.setAttribute("aria-pressed", String(x === b)));
      await ctx.act(load);
    });
    spans.append(b);
  }
  root.replaceChildren(
    el("section", { class: "tiles", id: "tiles", "aria-label": "now" }),
    el("section", { class: "card", id: "volume", hidden: true }, el("div", { class: "card-head" }, el("h2", { text: "Alert volume per hour" }), spans), el("div", { id: "volume-chart" })),
    el("section", { class: "card", id: "noisy" }, el("h2", { text: "Rules with most active alerts" }), el("ol", { id: "noisy-list" })),
  );
  render();
}

function tile(label, n, href) {
  return el("a", { class: "tile", href, "data-tile": label }, el("span", { class: "tile-n", text: n }), el("span", { class: "tile-label", text: label }));
}

export function render() {
  if (!ctx || !$("tiles")) return;
  const alerts = ctx.store.alerts;
  const st = ctx.store.status || {};
  const n = (f) => alerts.filter(f).length;
  const down = Object.values(st.collectors || {}).filter((c) => !c.up).length;
  $("tiles").replaceChildren(
    tile("firing", n((a) => a.state === "firing"), "#/alerts"),
    tile("pending", n((a) => a.state === "pending"), "#/alerts"),
    tile("unacknowledged", n((a) => a.state === "firing" && !a.acknowledged && !a.silenced), "#/alerts"),
    tile("silences", ctx.store.silences.filter((s) => s.state === "active").length, "#/silences"),
    tile("rule problems", (st.rule_problems || []).length, "#/rules"),
    tile("collectors down", down, "#/system"),
  );
  const per = {};
  for (const a of alerts) per[a.rule] = (per[a.rule] || 0) + 1;
  const top = Object.entries(per).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, 10);
  $("noisy-list").replaceChildren(...top.map(([r, c]) => el("li", {}, el("strong", { text: r }), ` ${c}`)));
  if (!top.length) $("noisy-list").replaceChildren(el("li", { class: "empty", text: "No active alerts." }));
  const absent = history === "absent" || history === null;
  $("volume").hidden = absent;
  if (!absent) chart($("volume-chart"), history.buckets || []);
}

function chart(box, buckets) {
  const ns = "http://www.w3.org/2000/svg";
  const w = 720, h = 120, n = Math.max(1, buckets.length);
  const max = Math.max(1, ...buckets.map((b) => b.started || 0));
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `alerts started per hour, at most ${max}`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("class", "chart");
  buckets.forEach((b, i) => {
    const bh = Math.round(((b.started || 0) / max) * (h - 20));
    const r = document.createElementNS(ns, "rect");
    r.setAttribute("class", "bar");
    r.setAttribute("x", (i * w) / n + 1);
    r.setAttribute("width", Math.max(1, w / n - 2));
    r.setAttribute("y", h - 12 - bh);
    r.setAttribute("height", bh);
    const tip = document.createElementNS(ns, "title");
    tip.textContent = `${new Date(b.t).toLocaleString()}: ${b.started || 0} started, ${b.firing || 0} firing`;
    r.append(tip);
    svg.append(r);
  });
  const label = document.createElementNS(ns, "text");
  label.setAttribute("x", 2);
  label.setAttribute("y", 10);
  label.textContent = "max " + max;
  svg.append(label);
  box.replaceChildren(svg);
}
