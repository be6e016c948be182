// Token handling and the one fetch wrapper every API call goes through.
// The daemon wants a token when it listens beyond loopback: the page takes
// it once from ?token=..., keeps it in sessionStorage (gone when the tab
// closes) and removes it from the address bar so it is not shared by accident.

const KEY = 'monitor.token';
let memoryToken = null; // fallback when sessionStorage is unavailable
const listeners = new Set();

export function initToken() {
  const url = new URL(location.href);
  const t = url.searchParams.get('token');
  if (t === null) return;
  memoryToken = t;
  try { sessionStorage.setItem(KEY, t); } catch { /* private mode: keep it in memory */ }
  url.searchParams.delete('token');
  history.replaceState(history.state, '', url.pathname + url.search + url.hash);
}

export function token() {
  try { return sessionStorage.getItem(KEY) ?? memoryToken; } catch { return memoryToken; }
}

/** Called with no arguments whenever the daemon refuses our credentials. */
export function onUnauthorized(fn) { listeners.add(fn); }
export function reportUnauthorized() { for (const fn of listeners) fn(); }

export class ApiError extends Error {
  constructor(message, status) { super(message); this.status = status; }
}

/** GET a JSON API path; throws ApiError with the daemon's {"error"} message on 4xx/5xx. */
export async function api(path, { signal } = {}) {
  const headers = { Accept: 'application/json' };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  let res;
  try {
    res = await fetch(path, { headers, signal, cache: 'no-store' });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(`daemon unreachable (${e.message})`, 0);
  }
  if (res.status === 401) {
    reportUnauthorized();
    throw new ApiError('Not authorized: open the dashboard with ?token=...', 401);
  }
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { /* not JSON: use the text below */ }
  if (!res.ok) {
    const msg = body && typeof body.error === 'string' ? body.error : (text.trim() || res.statusText);
    throw new ApiError(msg, res.status);
  }
  return body;
}

/** ws:// or wss:// URL for a path on this origin, with the token as ?token=. */
export function wsUrl(path, params = {}) {
  const url = new URL(path, location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  for (const [k, v] of Object.entries(params)) if (v) url.searchParams.set(k, v);
  const t = token();
  if (t) url.searchParams.set('token', t);
  return url.href;
}
