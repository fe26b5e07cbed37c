// The alerts view: label matcher filter, facets (state, severity, muted),
// grouping by any label (collapsible groups with counts), actions in dialogs.
// Filtering is done here over /api/v1/alerts, which the live stream refreshes;
// resolved alerts of the last hours come from the history (resolved.js).
import { api, enc } from "./api.js";
import * as dialogs from "./dialogs.js";
import * as M from "./matchers.js";
import * as P from "./preview.js";
import * as R from "./resolved.js";
import { $, ago, el, keepingFocus, mayAct, num, safeUrl } from "./util.js";

const SEVERITIES = ["emergency", "critical", "warning", "info"];
const STATES = ["firing", "pending"];
const ui = {
  filter: "",
  matchers: [],
  group: "",
  states: new Set(STATES),
  severities: new Set(SEVERITIES),
  muted: true, // show silenced and inhibited alerts
  collapsed: new Set(),
  resolved: 0, // hours of resolved alerts shown below the active ones; 0: none
};
let ctx = null;

// the filter and grouping live in the address too (#/alerts?filter=...&group=...),
// so a filtered view can be shared as a link and survives a reload
function fromAddress() {
  const q = new URLSearchParams(location.hash.split("?")[1] || "");
  if (q.has("filter")) {
    ui.filter = q.get("filter");
    try {
      ui.matchers = M.parse(ui.filter);
    } catch {
      ui.matchers = [];
    }
  }
  if (q.has("group")) ui.group = q.get("group");
  const h = Number(q.get("resolved"));
  ui.resolved = R.HOURS.includes(h) ? h : 0;
}

export async function load() {
  fromAddress(); // before mount: a link may ask for the resolved ones
  if (ui.resolved) await R.load(ui.resolved);
}

function toAddress() {
  const q = new URLSearchParams();
  if (ui.filter.trim()) q.set("filter", ui.filter.trim());
  if (ui.group) q.set("group", ui.group);
  if (ui.resolved) q.set("resolved", ui.resolved);
  const s = q.toString();
  history.replaceState(null, "", "#/alerts" + (s ? "?" + s : ""));
}

export function mount(root, context) {
  ctx = context;
  fromAddress();
  const filter = el("input", {
    id: "filter",
    type: "search",
    value: ui.filter,
    placeholder: '{team="infra", severity=~"crit.*"}',
    spellcheck: "false",
    autocomplete: "off",
    "aria-describedby": "filter-help filter-error",
  });
  filter.addEventListener("input", () => setFilter(filter.value));
  const group = el("select", { id: "group-by" });
  group.addEventListener("change", () => {
    ui.group = group.value;
    toAddress();
    render();
  });
  const muted = el("input", { type: "checkbox", id: "show-muted", checked: ui.muted });
  muted.addEventListener("change", () => {
    ui.muted = muted.checked;
    render();
  });
  const resolved = el("input", { type: "checkbox", id: "show-resolved", checked: ui.resolved > 0 });
  const hours = el("select", { id: "resolved-hours", "aria-label": "resolved of the last" });
  for (const h of R.HOURS) hours.append(el("option", { value: h, text: h + " h", selected: (ui.resolved || 24) === h }));
  const resolvedChanged = () => {
    ui.resolved = resolved.checked ? Number(hours.value) : 0;
    toAddress();
    ctx.refresh(); // reads them, then renders
  };
  resolved.addEventListener("change", resolvedChanged);
  hours.addEventListener("change", resolvedChanged);
  root.replaceChildren(
    el(
      "section",
      { class: "toolbar", "aria-label": "filters" },
      el(
        "div",
        { class: "field grow" },
        el("label", { for: "filter", text: "Filter by labels" }),
        filter,
        el("small", { id: "filter-help", class: "muted", text: "Matchers as in Alertmanager: = != =~ !~" }),
        el("small", { id: "filter-error", class: "error", role: "alert" }),
      ),
      el("div", { class: "field" }, el("label", { for: "group-by", text: "Group by" }), group),
      el("fieldset", { class: "facets", id: "facet-state" }, el("legend", { text: "State" })),
      el("fieldset", { class: "facets", id: "facet-severity" }, el("legend", { text: "Severity" })),
      el("fieldset", { class: "facets" }, el("legend", { text: "Show" }), el("label", { class: "check" }, muted, " silenced, inhibited")),
      el("fieldset", { class: "facets" }, el("legend", { text: "Resolved" }), el("label", { class: "check", for: "show-resolved" }, resolved, " of the last"), hours),
    ),
    el("h2", { id: "count", text: "Alerts" }),
    el("div", { id: "groups" }),
  );
  toAddress();
  render();
}

function setFilter(text) {
  ui.filter = text;
  try {
    ui.matchers = M.parse(text);
    $("filter-error").textContent = "";
    $("filter").removeAttribute("aria-invalid");
  } catch (e) {
    $("filter-error").textContent = e.message;
    $("filter").setAttribute("aria-invalid", "true");
    return; // keep the last good filter
  }
  toAddress();
  render();
}

function addMatcher(label, value) {
  const m = label + "=" + JSON.stringify(value);
  const text = ui.filter.trim().replace(/^\{|\}$/g, "").trim();
  const next = text ? text + ", " + m : m;
  $("filter").value = next;
  setFilter(next);
}

function facet(id, name, values, chosen, counts) {
  const box = $(id);
  box.querySelectorAll("label").forEach((l) => l.remove());
  for (const v of values) {
    const cb = el("input", { type: "checkbox", value: v, checked: chosen.has(v), name });
    cb.addEventListener("change", () => {
      if (cb.checked) chosen.add(v);
      else chosen.delete(v);
      render();
    });
    box.append(el("label", { class: "check" }, cb, ` ${v} `, el("span", { class: "n", text: counts[v] || 0 })));
  }
}

function groupOptions(alerts) {
  const sel = $("group-by");
  const names = new Set(["rule", "severity", "state"]);
  for (const a of alerts) for (const k of Object.keys(a.labels || {})) names.add(k);
  if (ui.group) names.add(ui.group);
  const want = ["", ...[...names].sort()];
  const have = [...sel.options].map((o) => o.value);
  if (want.join("\n") !== have.join("\n")) {
    sel.replaceChildren(...want.map((n) => el("option", { value: n, text: n || "(none)" })));
  }
  sel.value = ui.group;
}

function groupKey(a) {
  if (!ui.group) return "";
  if (ui.group === "state") return a.state;
  return M.alertLabels(a)[ui.group] ?? "";
}

export function render() {
  if (!ctx || !$("groups")) return;
  const all = ctx.store.alerts;
  groupOptions(all);
  const byLabels = all.filter((a) => M.matchesAll(ui.matchers, M.alertLabels(a)));
  const count = (key) => byLabels.reduce((c, a) => ((c[a[key]] = (c[a[key]] || 0) + 1), c), {});
  facet("facet-state", "state", STATES, ui.states, count("state"));
  facet("facet-severity", "severity", SEVERITIES, ui.severities, count("severity"));
  const shown = byLabels.filter(
    (a) => ui.states.has(a.state) && ui.severities.has(a.severity) && (ui.muted || !(a.silenced || a.inhibited)),
  );
  const order = Object.fromEntries(SEVERITIES.map((s, i) => [s, i]));
  shown.sort(
    (a, b) => (order[a.severity] ?? 9) - (order[b.severity] ?? 9) || String(a.starts_at).localeCompare(String(b.starts_at)),
  );
  $("count").textContent = `Alerts (${shown.length} of ${all.length})`;
  const groups = new Map();
  for (const a of shown) {
    const k = groupKey(a);
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k).push(a);
  }
  const keys = [...groups.keys()].sort();
  const out = keys.map((k) => groupSection(k, groups.get(k)));
  if (!shown.length) out.push(el("p", { class: "empty", text: all.length ? "No alert matches the filter." : "No active alerts." }));
  if (ui.resolved) out.push(R.section(ui.resolved, ui.matchers));
  keepingFocus($("groups"), () => $("groups").replaceChildren(...out));
}

function groupSection(key, alerts) {
  const list = el("ul", { class: "alerts" }, ...alerts.slice(0, 500).map(alertItem));
  if (alerts.length > 500) list.append(el("li", { class: "more", text: `… and ${alerts.length - 500} more` }));
  if (!ui.group) return el("section", { class: "group" }, list);
  const id = "g-" + ui.group + "=" + key;
  const open = !ui.collapsed.has(id);
  list.hidden = !open;
  const toggle = el(
    "button",
    { type: "button", class: "group-toggle", "aria-expanded": String(open), "data-key": id },
    el("span", { class: "caret", "aria-hidden": "true", text: open ? "▾" : "▸" }),
    ` ${ui.group}=${key === "" ? '""' : key} `,
    el("span", { class: "n", text: alerts.length }),
  );
  toggle.addEventListener("click", () => {
    if (ui.collapsed.has(id)) ui.collapsed.delete(id);
    else ui.collapsed.add(id);
    render();
  });
  return el("section", { class: "group" }, el("h3", {}, toggle), list);
}

function alertItem(a) {
  const ann = a.annotations || {};
  const marks = [];
  if (a.acknowledged) {
    const u = a.acknowledged.until ? ` (until ${new Date(a.acknowledged.until).toLocaleString()})` : "";
    marks.push(`acked by ${a.acknowledged.by}: ${a.acknowledged.note}${u}`);
  }
  if (a.silenced) marks.push("silenced");
  if (a.inhibited) marks.push("inhibited");
  if (a.flapping) marks.push("flapping");
  if (a.stale) marks.push("stale");
  const chips = Object.entries(a.labels || {}).map(([k, v]) =>
    el(
      "li",
      {},
      el("button", {
        type: "button",
        class: "chip",
        "data-key": `${a.fingerprint}:label:${k}`,
        title: `filter on ${k}="${v}"`,
        text: `${k}=${v}`,
        onclick: () => addMatcher(k, v),
      }),
    ),
  );
  const runbook = safeUrl(ann.runbook_url || ann.runbook || "");
  const actions = el("div", { class: "actions" });
  if (runbook) actions.append(el("a", { href: runbook, target: "_blank", rel: "noopener noreferrer", class: "runbook", text: "Runbook" }));
  // a viewer's token may not act (the endpoints are operator-only): no buttons
  if (mayAct(ctx.store)) {
    if (a.acknowledged) {
      actions.append(
        el("button", {
          type: "button",
          text: "Unack",
          "data-key": a.fingerprint + ":ack",
          onclick: () => ctx.act(() => api("POST", "/api/v1/alerts/" + enc(a.fingerprint) + "/unack", {})),
        }),
      );
    } else {
      actions.append(
        el("button", { type: "button", text: "Ack", "data-key": a.fingerprint + ":ack", onclick: () => dialogs.ack(a, ctx.refresh) }),
      );
    }
    actions.append(
      el("button", {
        type: "button",
        text: "Silence",
        "data-key": a.fingerprint + ":silence",
        onclick: () =>
          dialogs.silence({
            matchers: [M.make("rule", "=", a.rule), ...Object.entries(a.labels || {}).map(([k, v]) => M.make(k, "=", v))],
            alerts: () => ctx.store.alerts,
            done: ctx.refresh,
          }),
      }),
      el("button", {
        type: "button",
        text: "Preview",
        title: "Preview notification: what a channel would send for this alert (nothing is sent)",
        "data-key": a.fingerprint + ":preview",
        onclick: () => P.preview({ alerts: ctx.store.alerts, alert: a.fingerprint }),
      }),
    );
  }
  return el(
    "li",
    { class: "alert sev-" + a.severity + (a.silenced || a.inhibited ? " muted-alert" : ""), "data-fp": a.fingerprint },
    el(
      "div",
      { class: "head" },
      el("span", { class: "sev", text: a.severity }),
      el("span", { class: "state state-" + a.state, text: a.state }),
      el("strong", { class: "rule", text: a.rule }),
      el("span", { class: "since", title: a.starts_at, text: ago(a.starts_at) }),
    ),
    ann.summary ? el("p", { class: "summary", text: ann.summary }) : null,
    el("ul", { class: "labels", "aria-label": "labels" }, ...chips),
    el("p", { class: "meta" }, "value ", el("span", { class: "value", text: num(a.value) }), " · ", el("code", { class: "fp", text: a.fingerprint })),
    marks.length ? el("p", { class: "marks", text: marks.join("; ") }) : null,
    actions,
  );
}
