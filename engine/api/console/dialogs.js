// The console's dialogs: <dialog> elements opened modal (focus moves into them
// and stays there; Esc closes them natively), focus goes back to the opener.
import { api, enc } from "./api.js";
import * as M from "./matchers.js";
import { $, el } from "./util.js";

let opener = null;

export function open(dialog, first) {
  opener = document.activeElement;
  dialog.querySelectorAll(".dialog-error").forEach((p) => (p.textContent = ""));
  dialog.showModal();
  (first || dialog.querySelector("input, textarea, select, button")).focus();
}

export function setup(dialog) {
  // an error is about what was sent: editing the form clears it
  dialog.addEventListener("input", () => dialog.querySelectorAll(".dialog-error").forEach((p) => (p.textContent = "")));
  dialog.addEventListener("close", () => {
    // a live update may have redrawn the opener meanwhile: its successor has its data-key
    const key = opener && opener.dataset && opener.dataset.key;
    const back = opener && !opener.isConnected && key ? document.querySelector(`[data-key="${CSS.escape(key)}"]`) : opener;
    if (back && back.isConnected) back.focus();
    opener = null;
  });
  dialog.querySelectorAll("button.cancel").forEach((b) => b.addEventListener("click", () => dialog.close()));
}

async function submitting(dialog, errorLine, fn) {
  const buttons = dialog.querySelectorAll("button");
  buttons.forEach((b) => (b.disabled = true));
  try {
    await fn();
    dialog.close();
  } catch (e) {
    errorLine.textContent = e.message;
  } finally {
    buttons.forEach((b) => (b.disabled = false));
  }
}

// -- acknowledge --------------------------------------------------------------------------
let ackTarget = null;
let ackDone = () => {};

export function ack(alert, done) {
  ackTarget = alert;
  ackDone = done;
  $("ack-what").textContent = alert.rule + " " + labelText(alert.labels);
  $("ack-note").value = "";
  $("ack-for").value = "";
  open($("ack-dialog"), $("ack-note"));
}

function labelText(labels) {
  return Object.entries(labels || {}).map(([k, v]) => k + "=" + v).join(", ");
}

// -- silence editor -------------------------------------------------------------------------
let silenceCtx = null; // {alerts: () => [...], done, replaces: silence id or null}

export function silence({ matchers, alerts, done, replaces = null, reason = "", duration = "2h" }) {
  silenceCtx = { alerts, done, replaces };
  $("silence-title").textContent = replaces ? "Edit silence" : "New silence";
  $("silence-submit").textContent = replaces ? "Replace silence" : "Create silence";
  $("silence-note").hidden = !replaces;
  const rows = $("matcher-rows");
  rows.replaceChildren();
  for (const m of matchers) rows.append(matcherRow(m));
  if (!matchers.length) rows.append(matcherRow({ label: "", op: "=", value: "" }));
  $("silence-for").value = duration;
  $("silence-reason").value = reason;
  preview();
  open($("silence-dialog"), rows.querySelector("input"));
}

let rowIds = 0;

function matcherRow(m) {
  const n = ++rowIds;
  const op = el("select", { class: "m-op", "aria-label": "operator", id: "m-op-" + n });
  for (const o of M.OPS) op.append(el("option", { value: o, text: o, selected: o === m.op }));
  const row = el(
    "div",
    { class: "matcher-row" },
    el("input", { class: "m-label", value: m.label, "aria-label": "label", placeholder: "label", spellcheck: "false" }),
    op,
    el("input", { class: "m-value", value: m.value, "aria-label": "value", placeholder: "value", spellcheck: "false" }),
    el("button", {
      type: "button",
      class: "m-remove",
      "aria-label": "remove matcher",
      text: "✕",
      onclick: () => {
        row.remove();
        preview();
      },
    }),
  );
  row.addEventListener("input", preview);
  return row;
}

function editorMatchers() {
  const out = [];
  for (const row of $("matcher-rows").querySelectorAll(".matcher-row")) {
    const label = row.querySelector(".m-label").value.trim();
    const value = row.querySelector(".m-value").value;
    if (!label) continue;
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(label)) throw new Error(`${label}: not a label name`);
    out.push(M.make(label, row.querySelector(".m-op").value, value));
  }
  return out;
}

function preview() {
  const out = $("silence-preview"),
    list = $("silence-preview-list");
  list.replaceChildren();
  let ms;
  try {
    ms = editorMatchers();
  } catch (e) {
    out.textContent = e.message;
    return;
  }
  if (!ms.length) {
    out.textContent = "Add at least one matcher.";
    return;
  }
  const all = silenceCtx.alerts();
  const hit = all.filter((a) => M.matchesAll(ms, M.alertLabels(a)));
  out.textContent = `Matches ${hit.length} of ${all.length} active alert${all.length === 1 ? "" : "s"}.`;
  for (const a of hit.slice(0, 8)) list.append(el("li", { text: a.rule + " " + labelText(a.labels) }));
  if (hit.length > 8) list.append(el("li", { text: `… and ${hit.length - 8} more` }));
}

export function setupDialogs() {
  setup($("ack-dialog"));
  setup($("silence-dialog"));
  setup($("confirm-dialog"));
  $("ack-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const body = { note: $("ack-note").value.trim() };
    const dur = $("ack-for").value.trim();
    if (dur) body.for = dur;
    const a = ackTarget;
    submitting($("ack-dialog"), $("ack-error"), async () => {
      await api("POST", "/api/v1/alerts/" + enc(a.fingerprint) + "/ack", body);
      ackDone();
    });
  });
  $("matcher-add").addEventListener("click", () => {
    const row = matcherRow({ label: "", op: "=", value: "" });
    $("matcher-rows").append(row);
    row.querySelector("input").focus();
    preview();
  });
  $("silence-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const ctx = silenceCtx;
    submitting($("silence-dialog"), $("silence-error"), async () => {
      const ms = editorMatchers();
      if (!ms.length) throw new Error("matchers: add at least one");
      const body = { matchers: ms.map(M.toApi), for: $("silence-for").value.trim(), reason: $("silence-reason").value.trim() };
      // an edit is a new silence and the old one expired (as Alertmanager does),
      // in that order so the alerts are never unsilenced in between
      await api("POST", "/api/v1/silences", body);
      if (ctx.replaces) await api("DELETE", "/api/v1/silences/" + enc(ctx.replaces));
      ctx.done();
    });
  });
  $("confirm-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const fn = confirmFn;
    submitting($("confirm-dialog"), $("confirm-error"), fn);
  });
}

// -- confirm --------------------------------------------------------------------------------
let confirmFn = async () => {};

export function confirm(title, text, action, fn) {
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("confirm-ok").textContent = action;
  confirmFn = fn;
  open($("confirm-dialog"), $("confirm-ok"));
}
