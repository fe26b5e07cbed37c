// Live updates: GET /api/v1/events as server-sent events. EventSource cannot send
// the bearer token, so each connection first gets a single-use ticket (30 s) and
// passes it in the URL. On an error or a drop (the daemon restarted, this tab fell
// behind) it reconnects with a fresh ticket after a growing pause and reads the
// state afresh, so nothing is missed.
import { api } from "./api.js";

export function follow({ onEvent, onReset, onState }) {
  let source = null;
  let wait = 1000;
  let stopped = false;
  let timer = null;

  async function connect() {
    if (stopped) return;
    onState("connecting");
    let ticket;
    try {
      ticket = (await api("POST", "/api/v1/events/ticket", {})).ticket;
    } catch (e) {
      if (e.status === 401) return stop();
      return retry();
    }
    if (stopped) return;
    source = new EventSource("/api/v1/events?ticket=" + encodeURIComponent(ticket));
    source.onopen = () => {
      wait = 1000;
      onState("live");
      onReset(); // whatever happened while disconnected
    };
    source.onmessage = (m) => {
      try {
        onEvent(JSON.parse(m.data));
      } catch {
        /* a line this version does not know */
      }
    };
    source.addEventListener("dropped", () => retry());
    source.onerror = () => retry();
  }

  function retry() {
    if (source) source.close();
    source = null;
    if (stopped) return;
    onState("reconnecting");
    clearTimeout(timer);
    timer = setTimeout(connect, wait);
    wait = Math.min(wait * 2, 30000);
  }

  function stop() {
    stopped = true;
    clearTimeout(timer);
    if (source) source.close();
    source = null;
    onState("off");
  }

  connect();
  return stop;
}
