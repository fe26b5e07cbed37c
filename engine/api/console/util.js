// Small DOM and formatting helpers. Text only, never HTML: labels and
// annotations come from collectors and configs.
export const $ = (id) => document.getElementById(id);

export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = String(v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

export function ago(iso) {
  if (!iso) return "";
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 90) return Math.round(s) + "s";
  if (s < 5400) return Math.round(s / 60) + "m";
  if (s < 172800) return Math.round(s / 3600) + "h";
  return Math.round(s / 86400) + "d";
}

export function until(iso) {
  // "in 2h" / "3m ago": an expiry in words, the exact time in the title
  if (!iso) return "";
  const d = (Date.parse(iso) - Date.now()) / 1000;
  const span = ago(new Date(Date.now() - Math.abs(d) * 1000).toISOString());
  return d >= 0 ? "in " + span : span + " ago";
}

export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

export function num(v) {
  // whole numbers as they are (a byte count must not read as a rounded one);
  // fractions to 3 decimals, small ones to 4 significant digits
  if (typeof v !== "number" || Number.isInteger(v) || !Number.isFinite(v)) return String(v ?? "");
  return String(Math.abs(v) >= 1 ? +v.toFixed(3) : +v.toPrecision(4));
}

export function safeUrl(text) {
  // a runbook link only when it is http(s): never javascript: or data:
  if (!text) return null;
  try {
    const u = new URL(String(text), location.href);
    return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
  } catch {
    return null;
  }
}

export function debounce(fn, ms) {
  let t = null;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}

// a live update redraws a view: the focused control comes back focused in the
// redrawn one (its successor has the same data-key)
export function keepingFocus(root, draw) {
  const focused = document.activeElement && document.activeElement.dataset.key;
  draw();
  if (focused && !root.contains(document.activeElement)) {
    const again = root.querySelector(`[data-key="${CSS.escape(focused)}"]`);
    if (again) again.focus();
  }
}

// whether the signed-in token may act (ack, silence, expire, preview): those
// endpoints are operator-only, so a viewer is not offered buttons that answer 403
export function mayAct(store) {
  const role = ((store.status || {}).caller || {}).role;
  return role === "operator" || role === "admin";
}
