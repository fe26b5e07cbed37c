// The console's entry: log in with a token, switch views (#/alerts, #/silences),
// keep the store of alerts and silences fresh from the live event stream.
import { api, token, whenUnauthorized } from "./api.js";
import * as alerts from "./alerts.js";
import { setupDialogs } from "./dialogs.js";
import { follow } from "./live.js";
import * as overview from "./overview.js";
import { setupPreview } from "./preview.js";
import * as rules from "./rules.js";
import * as silences from "./silences.js";
import * as system from "./system.js";
import { $, debounce } from "./util.js";

// each view: mount(root, ctx), render(), and load(store) for what only it reads
const VIEWS = { overview, alerts, silences, rules, system };
const store = { alerts: [], silences: [], status: null, rules: [], channels: [] };
let current = null;
let stopLive = null;
let failed = false; // #error shows a failed refresh: the next good one clears it

const ctx = { store, refresh: () => refresh(), act };

function showLogin(message) {
  token.clear();
  if (stopLive) stopLive();
  stopLive = null;
  $("app").hidden = true;
  $("nav").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("error").textContent = message || "";
  $("token").focus();
}

function showApp() {
  $("login").hidden = true;
  $("app").hidden = false;
  $("nav").hidden = false;
  $("logout").hidden = false;
}

function viewName() {
  const name = (location.hash.match(/^#\/(\w+)/) || [])[1];
  return VIEWS[name] ? name : "alerts";
}

// the parts of the store: each is one read of the API
const PARTS = { alerts: "/api/v1/alerts", silences: "/api/v1/silences?all=true", status: "/api/v1/status" };
const ALL = Object.keys(PARTS);
// what each view shows of the store (besides what its own load() reads)
const SHOWS = {
  overview: ALL,
  alerts: ["alerts"],
  silences: ["alerts", "silences"],
  rules: ["alerts", "status"],
  system: ["status"],
};

async function refresh(mount = false, parts = ALL) {
  if (!token.get()) return showLogin();
  try {
    const view = VIEWS[viewName()];
    const read = (part) => (parts.includes(part) ? api("GET", PARTS[part]) : null);
    const [a, s, st] = await Promise.all([
      read("alerts"),
      read("silences"),
      read("status"),
      view.load ? view.load(store) : null,
    ]);
    if (a) store.alerts = a.alerts;
    if (s) store.silences = s.silences;
    if (st) store.status = st;
    const first = $("app").hidden;
    showApp();
    if (st)
      $("status").textContent =
        "v" + (st.version || "?") + (st.last_reload && st.last_reload.ok === false ? " · LAST RELOAD FAILED" : "");
    if (first || mount || current !== viewName()) route();
    else VIEWS[current].render();
    if (failed) $("error").textContent = "";
    failed = false;
    if (!stopLive) startLive();
  } catch (e) {
    if (e.status !== 401) {
      failed = true;
      $("error").textContent = e.message;
    }
  }
}

async function act(fn) {
  try {
    await fn();
    $("error").textContent = "";
    await refresh();
  } catch (e) {
    if (e.status !== 401) $("error").textContent = e.message;
  }
}

// what an event may change: a tab reads again only that, and only what its view
// shows (every read is the daemon's work, times every tab that follows it).
// Deliveries, reports and audit lines change nothing shown (an action's audit
// comes with the action's own event); a kind not listed here may change anything.
const QUIET = new Set(["notified", "notify_failed", "report_sent", "audit"]);
// (engine/common/records.py: AlertEventKind, MarkKind, AckEvent, UnackEvent, EscalatedEvent)
const ALERT_EVENTS = new Set(
  ["pending", "firing", "resolved", "inactive", "flapping", "flapping_end", "no_data", "error"].concat(
    ["stale", "stale_end", "silenced", "unsilenced", "inhibited", "uninhibited"],
    ["acknowledged", "unacknowledged", "escalated"],
  ),
);
const SILENCE_EVENTS = new Set(["silence_created", "silence_expired"]);

function changes(kind) {
  if (QUIET.has(kind)) return [];
  if (ALERT_EVENTS.has(kind)) return ["alerts", "status"].filter((p) => SHOWS[viewName()].includes(p));
  if (SILENCE_EVENTS.has(kind)) return ALL.filter((p) => SHOWS[viewName()].includes(p));
  return ALL; // a reload, a restart, a collector: the header and every view
}

// each tab waits its own 250-750 ms after an event before reading the state
// again: tabs that follow the same daemon do not all ask in the same instant
// (the daemon answers them one after the other, and its ticks wait meanwhile);
// the parts the events of that pause touched are read once, together
let wanted = new Set();
const reread = debounce(() => {
  const parts = [...wanted];
  wanted = new Set();
  refresh(false, parts);
}, 250 + Math.floor(Math.random() * 500));

function soon(parts) {
  for (const p of parts) wanted.add(p);
  if (wanted.size) reread();
}

function startLive() {
  stopLive = follow({
    onEvent: (ev) => soon(changes(ev.event)),
    onReset: () => soon(ALL), // whatever happened while disconnected
    onState: (state) => {
      $("live").textContent = state === "live" ? "● live" : state === "off" ? "" : "○ " + state;
      $("live").dataset.state = state;
    },
  });
}

function route() {
  current = viewName();
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.dataset.view === current) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.title = "vigil · " + current;
  VIEWS[current].mount($("view"), ctx);
}

whenUnauthorized(showLogin);
setupDialogs();
setupPreview();
window.addEventListener("hashchange", () => {
  if (!$("app").hidden) refresh(true); // the new view's own data first
});
$("login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const t = $("token").value.trim();
  $("token").value = "";
  $("error").textContent = ""; // a rejected token's message is about the previous one
  token.set(t);
  refresh();
});
$("logout").addEventListener("click", () => showLogin());
// charts are drawn for the window's width (chart.js): a new width redraws them
window.addEventListener(
  "resize",
  debounce(() => {
    if (current && !$("app").hidden) VIEWS[current].render();
  }, 50),
);
if (token.get()) refresh();
else showLogin();
// a slow safety net; the live stream does the real work
setInterval(() => {
  if (token.get()) refresh();
}, 60000);
