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

async function refresh(mount = false) {
  if (!token.get()) return showLogin();
  try {
    const view = VIEWS[viewName()];
    const [a, s, st] = await Promise.all([
      api("GET", "/api/v1/alerts"),
      api("GET", "/api/v1/silences?all=true"),
      api("GET", "/api/v1/status"),
      view.load ? view.load(store) : null,
    ]);
    store.alerts = a.alerts;
    store.silences = s.silences;
    store.status = st;
    const first = $("app").hidden;
    showApp();
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

// each tab waits its own 250-750 ms after an event before reading the state
// again: tabs that follow the same daemon do not all ask in the same instant
// (the daemon answers them one after the other, and its ticks wait meanwhile)
const soon = debounce(refresh, 250 + Math.floor(Math.random() * 500));

function startLive() {
  stopLive = follow({
    onEvent: (ev) => {
      // deliveries say nothing the views show; everything else may change them
      if (ev.event !== "notified" && ev.event !== "notify_failed") soon();
    },
    onReset: soon,
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
