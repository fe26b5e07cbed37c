// The collectors and channels view: the daemon itself (uptime, journal, last
// reload), each collector up or down with its last good collection and error, each channel's breaker,
// queue and sent/failed counts.
import { api } from "./api.js";
import * as P from "./preview.js";
import { $, ago, el, keepingFocus, mayAct, when } from "./util.js";

let ctx = null;
const NUMERIC = new Set(["queued", "sent", "failed"]);

export async function load(store) {
  store.channels = (await api("GET", "/api/v1/channels")).channels;
}

export function mount(root, context) {
  ctx = context;
  root.replaceChildren(el("div", { id: "system" }));
  render();
}

function table(caption, head, rows) {
  return el(
    "div",
    { class: "table-wrap" },
    el(
      "table",
      {},
      el("caption", { text: caption }),
      el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col", class: NUMERIC.has(h) ? "num" : null, text: h })))),
      el("tbody", {}, ...rows),
    ),
  );
}

export function render() {
  if (!ctx || !$("system")) return;
  const st = ctx.store.status || {};
  const last = st.last_reload || {};
  const daemon = el(
    "section",
    { class: "card", id: "daemon" },
    el("h2", { text: "Daemon" }),
    el(
      "dl",
      { class: "facts" },
      el("dt", { text: "summary" }), el("dd", { text: st.summary || "" }),
      el("dt", { text: "version" }), el("dd", { text: st.version || "" }),
      el("dt", { text: "up since" }), el("dd", { text: `${when(st.started)} (${ago(st.started)})` }),
      el("dt", { text: "health" }), el("dd", { class: st.degraded ? "error" : "", text: st.degraded ? "degraded: " + st.degraded : st.ready ? "ready" : "starting" }),
      el("dt", { text: "last reload" }), el("dd", { class: last.ok === false ? "error" : "", text: `${last.ok === false ? "rejected" : "ok"} ${when(last.at)}${(last.errors || []).length ? ": " + last.errors.join("; ") : ""}` }),
      el("dt", { text: "configuration" }), el("dd", {}, el("code", { text: `${st.config_file || ""} ${String(st.config_hash || "").slice(0, 12)}` })),
      el("dt", { text: "journal" }), el("dd", { text: `seq ${(st.journal || {}).last_seq ?? "?"} in ${(st.journal || {}).data_dir || "?"}` }),
    ),
  );
  const collectors = Object.entries(st.collectors || {}).map(([name, c]) =>
    el(
      "tr",
      { "data-collector": name },
      el("th", { scope: "row", text: name }),
      el("td", {}, el("span", { class: "badge " + (c.up ? "up" : "down"), text: c.up ? "up" : "down" })),
      el("td", { class: "last", title: when(c.last), text: c.last ? ago(c.last) + " ago" : "never" }),
      el("td", { class: "error", text: c.error || "" }),
    ),
  );
  // an operator's endpoint; next to the name, so it is in sight at 360 px too
  const canPreview = mayAct(ctx.store);
  const channels = (ctx.store.channels || []).map((ch) => {
    const s = ch.status || {};
    const breaker = s.breaker || "closed";
    return el(
      "tr",
      { "data-channel": ch.name },
      el("th", { scope: "row", text: ch.name }),
      el("td", { text: ch.type }),
      canPreview
        ? el(
            "td",
            {},
            el("button", {
              type: "button",
              class: "preview-channel",
              "data-key": "channel:" + ch.name + ":preview", // focus comes back here (dialogs.js)
              text: "Preview",
              "aria-label": "Preview " + ch.name,
              title: "Preview notification: what this channel would send (nothing is sent)",
              onclick: () => P.preview({ alerts: ctx.store.alerts, channel: ch.name }),
            }),
          )
        : null,
      el("td", {}, el("span", { class: "badge " + (breaker === "closed" ? "up" : "down"), text: breaker })),
      el("td", { class: "num", text: s.queued ?? 0 }),
      el("td", { class: "num", text: s.sent ?? 0 }),
      el("td", { class: "num", text: s.failed ?? 0 }),
      el("td", { class: "error", text: s.error || "" }),
    );
  });
  keepingFocus($("system"), () => $("system").replaceChildren(
    daemon,
    table(`Collectors (${collectors.length})`, ["collector", "state", "last collection", "error"], collectors),
    table(`Channels (${channels.length})`, ["channel", "type", ...(canPreview ? ["notification"] : []), "breaker", "queued", "sent", "failed", "last error"], channels),
  ));
}
