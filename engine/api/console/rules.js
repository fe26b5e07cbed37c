// The rules view: every rule with its state now, last value, last evaluation
// (its group's time and duration), failed evaluations and health (the daemon's
// rule problems), expression, timing, labels and source; and, opened with its
// History button, its last 24 hours (rulehistory.js).
import { api } from "./api.js";
import * as H from "./rulehistory.js";
import { $, ago, el, num, when } from "./util.js";

const ui = { text: "", only: "all", open: new Set() };
const histories = new Map(); // rule id -> what rulehistory.load() read
let ctx = null;

export async function load(store) {
  // #/rules?rule=ID (the overview's links) opens that rule's history
  const asked = new URLSearchParams(location.hash.split("?")[1] || "").get("rule");
  if (asked) ui.open.add(asked);
  const [r] = await Promise.all([api("GET", "/api/v1/rules"), ...[...ui.open].map(loadHistory)]);
  store.rules = r.rules;
}

async function loadHistory(rule) {
  histories.set(rule, await H.load(rule));
}

async function toggle(rule) {
  if (ui.open.has(rule)) {
    ui.open.delete(rule);
    history.replaceState(null, "", "#/rules");
    render();
    return;
  }
  ui.open.add(rule);
  await ctx.act(() => loadHistory(rule));
}

export function mount(root, context) {
  ctx = context;
  const find = el("input", { id: "rule-find", type: "search", value: ui.text, placeholder: "rule, group or expression", spellcheck: "false" });
  find.addEventListener("input", () => {
    ui.text = find.value.trim().toLowerCase();
    render();
  });
  const only = el("select", { id: "rule-only" });
  for (const [v, t] of [["all", "all rules"], ["active", "firing or pending"], ["problems", "with problems"], ["disabled", "disabled"]]) {
    only.append(el("option", { value: v, text: t, selected: ui.only === v }));
  }
  only.addEventListener("change", () => {
    ui.only = only.value;
    render();
  });
  root.replaceChildren(
    el(
      "section",
      { class: "toolbar", "aria-label": "filters" },
      el("div", { class: "field grow" }, el("label", { for: "rule-find", text: "Find" }), find),
      el("div", { class: "field" }, el("label", { for: "rule-only", text: "Show" }), only),
    ),
    el("h2", { id: "rule-count", text: "Rules" }),
    el("ul", { id: "rules", class: "rules" }),
  );
  render();
}

export function render() {
  if (!ctx || !$("rules")) return;
  const rules = ctx.store.rules || [];
  const counts = {};
  for (const a of ctx.store.alerts) {
    const c = (counts[a.rule] ||= { firing: 0, pending: 0 });
    c[a.state] = (c[a.state] || 0) + 1;
  }
  const problems = {};
  for (const p of (ctx.store.status && ctx.store.status.rule_problems) || []) (problems[p.rule] ||= []).push(p);
  const shown = rules.filter((r) => {
    const c = live(r, counts);
    if (ui.only === "active" && !(c.firing || c.pending)) return false;
    if (ui.only === "problems" && !problems[r.id]) return false;
    if (ui.only === "disabled" && r.enabled !== false) return false;
    if (!ui.text) return true;
    return [r.id, r.group, r.expr].some((s) => String(s || "").toLowerCase().includes(ui.text));
  });
  $("rule-count").textContent = `Rules (${shown.length} of ${rules.length})`;
  const card = $("rules").querySelector("li.rule-item"); // charts are drawn for its width
  const px = card ? card.clientWidth - 30 : 0;
  const items = shown.map((r) => item(r, live(r, counts), problems[r.id] || [], px));
  if (!shown.length) items.push(el("li", { class: "empty", text: "No rule matches." }));
  // a live update redraws the list: the focused button keeps the focus
  const focused = document.activeElement && document.activeElement.dataset.key;
  $("rules").replaceChildren(...items);
  if (focused) {
    const again = $("rules").querySelector(`[data-key="${CSS.escape(focused)}"]`);
    if (again) again.focus();
  }
}

// its alerts now: the daemon's counts, else (an older daemon) the active alerts'
function live(r, counts) {
  return r.firing !== undefined ? { firing: r.firing, pending: r.pending } : counts[r.id] || {};
}

function runtime(r) {
  if (r.enabled === false) return "not evaluated (disabled)";
  const parts = [];
  parts.push(
    r.evaluated_at
      ? `evaluated ${ago(r.evaluated_at)} ago (its group in ${num(+(r.evaluation_seconds * 1000).toFixed(2))} ms)`
      : "not evaluated yet",
  );
  parts.push(r.value === null || r.value === undefined ? "no live value" : `value ${num(r.value)}`);
  if (r.failures) parts.push(`${r.failures} failed evaluations`);
  return parts.join(" · ");
}

function item(r, c, probs, px) {
  let state = "ok";
  if (r.enabled === false) state = "disabled";
  else if (c.firing) state = "firing";
  else if (c.pending) state = "pending";
  const health = probs.length ? probs.map((p) => `${p.problem}: ${p.message}`).join("; ") : "healthy";
  const timing = [`every ${r.interval}`, r.for && r.for !== "0s" ? `for ${r.for}` : null, r.keep_firing_for && r.keep_firing_for !== "0s" ? `keep firing ${r.keep_firing_for}` : null]
    .filter(Boolean)
    .join(" · ");
  return el(
    "li",
    { class: "rule-item sev-" + r.severity, "data-rule": r.id },
    el(
      "div",
      { class: "head" },
      el("span", { class: "sev", text: r.severity }),
      el("span", { class: "state state-" + state, text: state + (c.firing ? ` ${c.firing}` : c.pending ? ` ${c.pending}` : "") }),
      el("strong", { class: "rule", text: r.id }),
      el("span", { class: "since", text: r.group }),
    ),
    el("pre", { class: "expr" }, el("code", { text: r.expr })),
    el("p", { class: "meta", text: timing + (r.channels ? " · to " + r.channels.join(", ") : "") }),
    el("p", { class: probs.length ? "health error" : "health muted", text: health }),
    el("ul", { class: "labels", "aria-label": "labels" }, ...Object.entries(r.labels || {}).map(([k, v]) => el("li", {}, el("span", { class: "chip", text: `${k}=${v}` })))),
    el("p", { class: "meta runtime", title: when(r.evaluated_at), text: runtime(r) }),
    el("p", { class: "meta" }, el("code", { class: "fp", text: r.source })),
    historyPart(r, px),
  );
}

function historyPart(r, px) {
  const open = ui.open.has(r.id);
  const id = "h-" + r.id;
  const button = el("button", {
    type: "button",
    class: "history-toggle",
    "aria-expanded": String(open),
    "aria-controls": id,
    "data-key": "history:" + r.id,
    text: open ? "Hide history" : "History",
    onclick: () => toggle(r.id),
  });
  const d = histories.get(r.id);
  const panel = el("div", { class: "rule-history", id, hidden: !open }, ...(open && d ? H.render(d, px) : []));
  return el("div", {}, button, panel);
}
