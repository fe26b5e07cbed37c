// The overview: what is going on now (counts of the active alerts) and, from the
// daemon's history index, alert volume per hour over 24 h or 7 d
// (GET /api/v1/history/counts) and the noisiest rules over the same span: those
// with most alert episodes (GET /api/v1/history). A daemon without the history
// endpoints does not list them in /openapi.json (asked once: a 404 each time
// would be an error line in the browser's console): the overview then shows
// the rules with most active alerts instead, and no chart.
import { api } from "./api.js";
import { bars } from "./chart.js";
import { $, el } from "./util.js";

const ui = { span: 24 };
const NOISY = 10000; // episodes read for the noisy rules (the API's largest page)
let ctx = null;
let history = null; // {buckets, episodes, truncated} | "absent" | null (not asked yet)
let served = null; // whether the daemon serves the history

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
  const from = new Date(to.getTime() - ui.span * 3600e3).toISOString();
  try {
    const [counts, eps] = await Promise.all([
      api("GET", `/api/v1/history/counts?by=hour&from=${from}&to=${to.toISOString()}`),
      api("GET", `/api/v1/history?from=${from}&limit=${NOISY}`),
    ]);
    history = { buckets: counts.buckets || [], episodes: eps.episodes || [], truncated: eps.truncated };
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
      await ctx.refresh();
    });
    spans.append(b);
  }
  root.replaceChildren(
    el("section", { class: "tiles", id: "tiles", "aria-label": "now" }),
    el("section", { class: "card", id: "volume", hidden: true }, el("div", { class: "card-head" }, el("h2", { text: "Alert volume per hour" }), spans), el("div", { id: "volume-chart" })),
    el("section", { class: "card", id: "noisy" }, el("h2", { id: "noisy-title", text: "Noisiest rules" }), el("ol", { id: "noisy-list" })),
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
  const span = ui.span === 24 ? "24 h" : "7 d";
  const absent = history === "absent" || history === null;
  $("volume").hidden = absent;
  if (absent) noisyNow(alerts);
  else {
    noisy(history.episodes, span, history.truncated);
    const rows = history.buckets.map((b) => ({
      t: b.t,
      n: b.started || 0,
      text: `${new Date(b.t).toLocaleString()}: ${b.started || 0} started, ${b.fired || 0} started firing, ${b.firing || 0} firing`,
    }));
    bars($("volume-chart"), rows, `alerts started per hour over ${span}`);
  }
}

function ranked(list, key) {
  const per = {};
  for (const x of list) (per[x[key]] ||= []).push(x);
  return Object.entries(per).sort((a, b) => b[1].length - a[1].length || a[0].localeCompare(b[0])).slice(0, 10);
}

function noisy(episodes, span, truncated) {
  $("noisy-title").textContent = `Noisiest rules, last ${span}` + (truncated ? ` (the latest ${episodes.length} alerts)` : "");
  const top = ranked(episodes, "rule");
  $("noisy-list").replaceChildren(
    ...top.map(([r, eps]) => {
      const fired = eps.filter((e) => e.firing_at).length;
      return el("li", { "data-rule": r }, el("a", { href: "#/rules?rule=" + encodeURIComponent(r), text: r }), ` ${eps.length} ${eps.length === 1 ? "alert" : "alerts"}, ${fired} fired`);
    }),
  );
  if (!top.length) $("noisy-list").replaceChildren(el("li", { class: "empty", text: `No alerts in the last ${span}.` }));
}

function noisyNow(alerts) {
  $("noisy-title").textContent = "Rules with most active alerts";
  const top = ranked(alerts, "rule");
  $("noisy-list").replaceChildren(...top.map(([r, a]) => el("li", { "data-rule": r }, el("strong", { text: r }), ` ${a.length}`)));
  if (!top.length) $("noisy-list").replaceChildren(el("li", { class: "empty", text: "No active alerts." }));
}
