// The alerts view's "resolved of the last N hours": alert episodes that ended in
// that span, from the history index (GET /api/v1/history), newest first. They are
// listed apart from the active alerts, greyed and marked "resolved", with how
// long they lasted; the label filter applies to them too.
import { api, enc } from "./api.js";
import * as M from "./matchers.js";
import { ago, el } from "./util.js";

export const HOURS = [1, 6, 24, 72];
const LIMIT = 500;
let found = { episodes: [], truncated: false };

export async function load(hours) {
  const r = await api("GET", `/api/v1/history?from=${enc(hours + "h")}&limit=${LIMIT}`);
  // an episode that is still on is in the active list already
  found = { episodes: r.episodes.filter((e) => e.end), truncated: r.truncated };
}

function lasted(ep) {
  const s = Math.max(0, (Date.parse(ep.end) - Date.parse(ep.start)) / 1000);
  if (s < 90) return Math.round(s) + "s";
  if (s < 5400) return Math.round(s / 60) + "m";
  return (s / 3600).toFixed(1) + "h";
}

function item(ep) {
  const how = ep.end_kind === "resolved" ? "resolved" : ep.firing_at ? "ended" : "never fired";
  return el(
    "li",
    { class: "alert resolved-alert sev-" + ep.severity, "data-fp": ep.fingerprint, "data-episode": ep.id },
    el(
      "div",
      { class: "head" },
      el("span", { class: "sev", text: ep.severity }),
      el("span", { class: "state state-resolved", text: how }),
      el("strong", { class: "rule", text: ep.rule }),
      el("span", { class: "since", title: ep.end, text: ago(ep.end) + " ago" }),
    ),
    el("ul", { class: "labels", "aria-label": "labels" }, ...Object.entries(ep.labels || {}).map(([k, v]) => el("li", {}, el("span", { class: "chip", text: `${k}=${v}` })))),
    el(
      "p",
      { class: "meta" },
      `${ep.firing_at ? "fired" : "pending"} for ${lasted(ep)}` + (ep.acked_by ? ` · acked by ${ep.acked_by}` : "") + " · ",
      el("code", { class: "fp", text: ep.fingerprint }),
    ),
  );
}

// the section, filtered by the view's matchers
export function section(hours, matchers) {
  const shown = found.episodes.filter((e) => M.matchesAll(matchers, M.alertLabels(e)));
  const more = found.truncated ? ` — the latest ${LIMIT} only` : "";
  return el(
    "section",
    { class: "group resolved", id: "resolved", "aria-label": "resolved alerts" },
    el("h2", { id: "resolved-count", text: `Resolved in the last ${hours} h (${shown.length})${more}` }),
    shown.length ? el("ul", { class: "alerts" }, ...shown.map(item)) : el("p", { class: "empty", text: "None resolved in that time." }),
  );
}
