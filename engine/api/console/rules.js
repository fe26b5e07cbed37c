// The rules view: every rule with its state now (from the active alerts), its
// health (the daemon's rule problems), expression, timing, labels and source.
import { api } from "./api.js";
import { $, el } from "./util.js";

const ui = { text: "", only: "all" };
let ctx = null;

export async function load(store) {
  store.rules = (await api("GET", "/api/v1/rules")).rules;
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
    const c = counts[r.id] || {};
    if (ui.only === "active" && !(c.firing || c.pending)) return false;
    if (ui.only === "problems" && !problems[r.id]) return false;
    if (ui.only === "disabled" && r.enabled !== false) return false;
    if (!ui.text) return true;
    return [r.id, r.group, r.expr].some((s) => String(s || "").toLowerCase().includes(ui.text));
  });
  $("rule-count").textContent = `Rules (${shown.length} of ${rules.length})`;
  const items = shown.map((r) => item(r, counts[r.id] || {}, problems[r.id] || []));
  if (!shown.length) items.push(el("li", { class: "empty", text: "No rule matches." }));
  $("rules").replaceChildren(...items);
}

function item(r, c, probs) {
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
    el("p", { class: "meta" }, el("code", { class: "fp", text: r.source })),
  );
}
