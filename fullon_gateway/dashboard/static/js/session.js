// The login session: tokens from /api/v1/auth/login, refreshed before the access token
// expires (no reload), every REST call made with the bearer token, and logout.
// Tokens live in sessionStorage: one tab, gone when the tab closes.

import { showError } from "./util.js";

const STORE = "fullon_session";
const listeners = { change: new Set(), token: new Set() };
let current = null; // {access, refresh, expiresAt (ms), user}
let refreshTimer = null;
let refreshing = null;

export const session = {
  get user() { return current && current.user; },
  get token() { return current && current.access; },
  get expiresAt() { return current && current.expiresAt; },
  isAdmin() { return Boolean(current && current.user && current.user.role === "admin"); },
  // "change": logged in or out; "token": a new access token (the socket re-auths).
  on(kind, fn) { listeners[kind].add(fn); },
};

function emit(kind) { for (const fn of listeners[kind]) fn(session); }

function store(pair, user) {
  current = {
    access: pair.access_token,
    refresh: pair.refresh_token,
    expiresAt: Date.now() + Number(pair.expires_in || 900) * 1000,
    user: user || pair.user || (current && current.user) || null,
  };
  sessionStorage.setItem(STORE, JSON.stringify(current));
  schedule();
}

// Refresh when 80% of the lifetime has passed (at least 5 s before expiry).
function schedule() {
  clearTimeout(refreshTimer);
  if (!current) return;
  const left = current.expiresAt - Date.now();
  const lead = Math.max(5000, left * 0.2);
  refreshTimer = setTimeout(() => refresh().catch(() => {}), Math.max(0, left - lead));
}

export async function refresh() {
  if (!current) throw new Error("not logged in");
  // One refresh at a time: a retired refresh token presented twice revokes the session.
  if (refreshing) return refreshing;
  refreshing = (async () => {
    try {
      let resp;
      try {
        resp = await fetch("/api/v1/auth/refresh", {
          method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ refresh_token: current.refresh }),
        });
      } catch (err) {
        // Offline: keep the tokens and try again soon.
        clearTimeout(refreshTimer);
        refreshTimer = setTimeout(() => refresh().catch(() => {}), 5000);
        throw new Error("token refresh failed: the gateway is unreachable");
      }
      const body = await resp.json().catch(() => null);
      if (resp.status === 200 && body && body.access_token) {
        store(body);
        emit("token");
        return true;
      }
      if (resp.status === 401 || resp.status === 403) {
        forget();
        showError("Your session ended; please log in again", body && body.detail);
        return false;
      }
      // The gateway is unreachable or busy: keep the tokens and try again soon.
      clearTimeout(refreshTimer);
      refreshTimer = setTimeout(() => refresh().catch(() => {}), 5000);
      throw new Error("token refresh failed (" + resp.status + ")");
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

function forget() {
  clearTimeout(refreshTimer);
  const was = current;
  current = null;
  sessionStorage.removeItem(STORE);
  if (was) emit("change");
}

export class ApiError extends Error {
  constructor(status, body, path) {
    super((body && body.detail) || "request failed (" + status + ")");
    this.status = status;
    this.code = body && body.code;
    this.path = path;
  }
}

// GET/POST JSON with the bearer token. A 401 refreshes once and retries; a second
// 401 ends the session. Other failures throw ApiError (callers show them).
export async function api(path, options = {}, retried = false) {
  const headers = Object.assign({ Accept: "application/json" }, options.headers || {});
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (current) headers.Authorization = "Bearer " + current.access;
  let resp;
  try {
    resp = await fetch(path, Object.assign({}, options, { headers }));
  } catch (err) {
    throw new ApiError(0, { detail: "the gateway is unreachable" }, path);
  }
  const type = resp.headers.get("content-type") || "";
  const body = type.includes("json") ? await resp.json().catch(() => null)
    : options.text ? await resp.text() : null;
  if (resp.status === 401 && current && !retried) {
    if (await refresh().catch(() => false)) return api(path, options, true);
  }
  if (resp.status === 401 && current) forget();
  if (!resp.ok) throw new ApiError(resp.status, body, path);
  return body;
}

export async function login(email, password) {
  const resp = await fetch("/api/v1/auth/login", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email, password }),
  });
  const body = await resp.json().catch(() => null);
  if (resp.status !== 200) throw new ApiError(resp.status, body, "/api/v1/auth/login");
  store(body, body.user);
  emit("change");
}

// Revoke first, then forget: forgetting reloads the page, and a reload would abort a
// revocation still in flight (keepalive lets it finish even so).
export async function logout() {
  const token = current && current.access;
  if (token) {
    try {
      const resp = await fetch("/api/v1/auth/logout", {
        method: "POST", keepalive: true, headers: { Authorization: "Bearer " + token },
      });
      if (!resp.ok && resp.status !== 401) showError("Logout failed", "status " + resp.status);
    } catch (err) {
      showError("Logout could not reach the gateway", err.message);
    }
  }
  forget();
}

// A tab reopened within its session keeps its login; the tokens are checked first.
export async function restore() {
  const raw = sessionStorage.getItem(STORE);
  if (!raw) return false;
  try {
    current = JSON.parse(raw);
  } catch (err) {
    sessionStorage.removeItem(STORE);
    return false;
  }
  if (Date.now() >= current.expiresAt - 5000) {
    if (!(await refresh().catch(() => false))) return false;
  } else {
    schedule();
  }
  try {
    const me = await api("/api/v1/auth/verify");
    current.user = Object.assign({}, current.user, { user_id: me.user_id, email: me.email, role: me.role });
  } catch (err) {
    if (!current) return false;
  }
  emit("change");
  return true;
}
