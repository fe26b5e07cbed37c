// The "Preview notification" dialog: what a channel would send for an alert,
// rendered by the daemon from the channel's real templates (POST
// /api/v1/channels/{name}/preview), nothing sent. The endpoint wants an
// operator token: a viewer is not offered the dialog (util.js, mayAct).
import { api, enc } from "./api.js";
import { open, setup } from "./dialogs.js";
import { $, el } from "./util.js";

const MAX_OPTIONS = 300; // alerts in the chooser; the chosen one is always among them
const KINDS = {
  http: "HTTP request",
  smtp: "Mail",
  exec: "Command",
  file: "Line appended to a file",
  log: "Log line",
  memory: "Kept in memory",
  nft: "Firewall rule",
};
let asked = 0; // an answer to an earlier choice that arrives late is dropped


function labelText(labels) {
  return Object.entries(labels || {}).map(([k, v]) => k + "=" + v).join(", ");
}

// open the dialog on `channel` (else the first) and the alert of fingerprint
// `alert` (else the test notification); the focus goes to what is left to choose
export async function preview({ alerts, channel = "", alert = "" }) {
  const chSel = $("preview-channel");
  const alSel = $("preview-alert");
  let channels;
  try {
    channels = (await api("GET", "/api/v1/channels")).channels;
  } catch (e) {
    $("error").textContent = e.message;
    return;
  }
  chSel.replaceChildren(
    ...channels.map((c) => el("option", { value: c.name, text: `${c.name} (${c.type})`, selected: c.name === channel })),
  );
  const shown = alerts.slice(0, MAX_OPTIONS);
  const chosen = alerts.find((a) => a.fingerprint === alert);
  if (chosen && !shown.includes(chosen)) shown.unshift(chosen);
  alSel.replaceChildren(
    el("option", { value: "", text: "the test notification (no alert)" }),
    ...shown.map((a) =>
      el("option", { value: a.fingerprint, text: `${a.rule} ${labelText(a.labels)} (${a.state})`, selected: a === chosen }),
    ),
  );
  $("preview-resolved").checked = false;
  $("preview-out").replaceChildren();
  open($("preview-dialog"), alert ? chSel : alSel);
  if (!channels.length) {
    $("preview-error").textContent = "No channel is configured.";
    return;
  }
  show();
}

async function show() {
  const n = ++asked;
  const channel = $("preview-channel").value;
  const body = {};
  if ($("preview-alert").value) body.alert = $("preview-alert").value;
  if ($("preview-resolved").checked) body.resolved = true;
  const out = $("preview-out");
  out.setAttribute("aria-busy", "true");
  try {
    const got = await api("POST", "/api/v1/channels/" + enc(channel) + "/preview", body);
    if (n === asked) out.replaceChildren(...draw(got));
  } catch (e) {
    if (n !== asked) return;
    out.replaceChildren();
    $("preview-error").textContent = e.message;
  } finally {
    if (n === asked) out.removeAttribute("aria-busy");
  }
}

function block(name, cls, text, tag = "h3") {
  return [el(tag, { text: name }), el("pre", { class: "out " + cls, text })];
}

function draw(got) {
  const n = got.notification;
  const what = n.kind === "test" ? "the test notification" : `${n.alerts.length} alert${n.alerts.length === 1 ? "" : "s"}, ${n.status}`;
  const out = [el("p", { id: "preview-what" }, `${got.channel} (${got.type}): `, what)];
  if (n.title || n.body) {
    out.push(...block("Subject / title", "p-title", n.title), ...block("Body", "p-body", n.body));
    if (n.html) out.push(...block("HTML part (source)", "p-html", n.html));
  } else {
    out.push(el("p", { class: "muted", text: "This channel sends no rendered title or body: what it sends is below." }));
  }
  for (const w of got.wire) {
    const parts = [el("h3", { text: KINDS[w.kind] || w.kind }), el("p", {}, el("code", { class: "w-target", text: w.target || "" }))];
    if (w.headers && w.headers.length) parts.push(...block("Headers", "w-headers", w.headers.map(([k, v]) => k + ": " + v).join("\n"), "h4"));
    if (w.argv && w.argv.length) parts.push(...block("Arguments", "w-argv", w.argv.map((a) => JSON.stringify(a)).join(" "), "h4"));
    if (w.body) parts.push(...block(w.kind === "http" ? "Request body" : "Content", "w-body", w.body, "h4"));
    out.push(el("section", { class: "wire" }, ...parts));
  }
  return out;
}

export function setupPreview() {
  setup($("preview-dialog"));
  for (const id of ["preview-channel", "preview-alert", "preview-resolved"]) $(id).addEventListener("change", show);
  $("preview-form").addEventListener("submit", (ev) => ev.preventDefault());
}
