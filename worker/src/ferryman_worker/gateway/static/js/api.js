// The public REST API, as any script would call it, plus the bearer token it may need.
//
// The console has no auth check of its own: when the API answers 401 it asks for a
// token, keeps it in the browser (sessionStorage, or localStorage when remembered) and
// sends it as "Authorization: Bearer <token>" from then on.

const KEY = "ferryman.token";
const listeners = new Set();

export function getToken() {
  return sessionStorage.getItem(KEY) || localStorage.getItem(KEY) || "";
}

export function setToken(token, remember) {
  sessionStorage.removeItem(KEY);
  localStorage.removeItem(KEY);
  if (token) (remember ? localStorage : sessionStorage).setItem(KEY, token);
  notify({ needed: false });
}

export function onAuth(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function notify(state) {
  for (const listener of listeners) listener(state);
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export async function api(path, { method = "GET", body, headers = {} } = {}) {
  const sent = { Accept: "application/json", ...headers };
  const token = getToken();
  if (token) sent.Authorization = `Bearer ${token}`;
  if (body !== undefined) sent["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: sent,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (exc) {
    throw new ApiError(0, `cannot reach the gateway (${exc.message})`);
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  const message = (data && data.error) || `${response.status} ${response.statusText}`;
  if (response.status === 401) {
    notify({ needed: true, message, hadToken: Boolean(token) });
  }
  if (!response.ok) throw new ApiError(response.status, message);
  return data;
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}
