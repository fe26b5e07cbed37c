// The silences view: active (and pending) or expired, each with its matchers,
// reason, author and expiry; create, edit (a new silence replaces the old one,
// as in Alertmanager) and expire.
import { api, enc } from "./api.js";
import * as dialogs from "./dialogs.js";
import * as M from "./matchers.js";
import { $, el, mayAct, until, when } from "./util.js";

const ui = { show: "active" };
let ctx = null;

export function mount(root, context) {
  ctx = context;
  const tabs = el("div", { class: "seg", role: "group", "aria-label": "which silences" });
  for (const [v, text] of [["active", "Active"], ["expired", "Expired"]]) {
    const b = el("button", { type: "button", "data-show": v, "aria-pressed": String(ui.show === v), text });
    b.addEventListener("click", () => {
      ui.show = v;
      tabs.querySelectorAll("button").forEach((x) => x.setAttribute("aria-pressed", String(x === b)));
      render();
    });
    tabs.append(b);
  }
  const create = el("button", {
    type: "button",
    class: "primary",
    id: "new-silence",
    text: "New silence",
    onclick: () => dialogs.silence({ matchers: [], alerts: () => ctx.store.alerts, done: ctx.refresh }),
  });
  root.replaceChildren(
    el("section", { class: "toolbar" }, tabs, el("span", { class: "grow" }), create),
    el("h2", { id: "silence-count", text: "Silences" }),
    el("ul", { id: "silences", class: "silences" }),
  );
  render();
}

export function render() {
  if (!ctx || !$("silences")) return;
  $("new-silence").hidden = !mayAct(ctx.store);
  const all = ctx.store.silences;
  const shown = all.filter((s) => (ui.show === "expired" ? s.state === "expired" : s.state !== "expired"));
  shown.sort((a, b) => String(b.until).localeCompare(String(a.until)));
  $("silence-count").textContent = `${ui.show === "expired" ? "Expired" : "Active"} silences (${shown.length})`;
  const items = shown.map(item);
  if (!shown.length) items.push(el("li", { class: "empty", text: `No ${ui.show} silences.` }));
  $("silences").replaceChildren(...items);
}

function item(s) {
  const ms = (s.matchers || []).map(M.fromApi);
  const hits = ctx.store.alerts.filter((a) => M.matchesAll(ms, M.alertLabels(a))).length;
  const actions = el("div", { class: "actions" });
  if (s.state !== "expired" && mayAct(ctx.store)) {
    actions.append(
      el("button", {
        type: "button",
        text: "Edit",
        onclick: () =>
          dialogs.silence({
            matchers: ms,
            alerts: () => ctx.store.alerts,
            done: ctx.refresh,
            replaces: s.id,
            reason: s.reason || "",
            duration: remaining(s.until),
          }),
      }),
      el("button", {
        type: "button",
        class: "danger",
        text: "Expire",
        onclick: () =>
          dialogs.confirm("Expire silence", `Expire the silence "${s.reason}"? Its alerts notify again.`, "Expire", async () => {
            await api("DELETE", "/api/v1/silences/" + enc(s.id));
            ctx.refresh();
          }),
      }),
    );
  }
  return el(
    "li",
    { class: "silence state-" + s.state, "data-id": s.id },
    el(
      "div",
      { class: "head" },
      el("span", { class: "badge", text: s.state }),
      el("strong", { class: "reason", text: s.reason || "(no reason)" }),
    ),
    el("ul", { class: "labels", "aria-label": "matchers" }, ...ms.map((m) => el("li", {}, el("code", { class: "chip", text: M.format(m) })))),
    el(
      "p",
      { class: "meta" },
      `by ${s.created_by || "?"} · `,
      s.state === "pending" ? `starts ${when(s.starts)} · ` : "",
      el("span", { class: "until", title: when(s.until), text: (s.state === "expired" ? "expired " : "expires ") + until(s.until) }),
      s.state !== "expired" ? ` · matches ${hits} active alert${hits === 1 ? "" : "s"}` : "",
    ),
    el("p", { class: "meta" }, el("code", { class: "fp", text: s.id })),
    actions,
  );
}

function remaining(iso) {
  // the edit keeps the old expiry: the time left, in whole minutes
  const m = Math.max(1, Math.round((Date.parse(iso) - Date.now()) / 60000));
  return m % 60 === 0 ? m / 60 + "h" : m + "m";
}
