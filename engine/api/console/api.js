// The API client: the bearer token lives in this tab's sessionStorage only.
const KEY = "vigil-token";
let onUnauthorized = () => {};

export const token = {
  get: () => sessionStorage.getItem(KEY) || "",
  set: (t) => sessionStorage.setItem(KEY, t),
  clear: () => sessionStorage.removeItem(KEY),
};

export function whenUnauthorized(fn) {
  onUnauthorized = fn;
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export async function api(method, path, body) {
  const opts = { method, headers: { Authorization: "Bearer " + token.get() } };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  const data = await r.json().catch(() => ({}));
  if (r.status === 401) {
    onUnauthorized("token rejected: " + (data.error || r.status));
  }
  if (!r.ok) throw new ApiError(r.status, data.error || "HTTP " + r.status);
  return data;
}

export const enc = encodeURIComponent;
