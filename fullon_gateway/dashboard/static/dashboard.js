// The dashboard uses only the public API: login, REST with the bearer token, and one
// WebSocket to /api/v1/cache/ws authenticated with the same token.
"use strict";

const state = { token: sessionStorage.getItem("fullon_token"), ws: null, rows: new Map() };
const $ = (sel) => document.querySelector(sel);

async function api(path, options = {}) {
  const headers = Object.assign({ "Content-Type": "application/json" }, options.headers || {});
  if (state.token) headers.Authorization = "Bearer " + state.token;
  const resp = await fetch(path, Object.assign({}, options, { headers }));
  const body = resp.headers.get("content-type")?.includes("json") ? await resp.json() : null;
  if (resp.status === 401) logout();
  return { status: resp.status, body };
}

async function health() {
  const { status, body } = await api("/health");
  const badge = $("#health");
  badge.textContent = "health: " + (body ? body.status : status);
  badge.className = "badge " + (status === 200 && body.status === "ok" ? "ok" : "bad");
}

function logout() {
  if (state.token) fetch("/api/v1/auth/logout", { method: "POST", headers: { Authorization: "Bearer " + state.token } });
  state.token = null;
  sessionStorage.removeItem("fullon_token");
  if (state.ws) state.ws.close();
  show();
}

function show() {
  const inside = Boolean(state.token);
  $("#login-panel").hidden = inside;
  $("#live").hidden = !inside;
  $("#logout").hidden = !inside;
  if (inside) { loadBots(); watch($("#ticker-form").exchange.value); }
  else $("#who").textContent = "";
}

async function loadBots() {
  const me = await api("/api/v1/auth/verify");
  if (me.body) $("#who").textContent = me.body.email + " (" + me.body.role + ")";
  const { status, body } = await api("/api/v1/orm/bots?limit=100");
  const tbody = $("#bots tbody");
  tbody.replaceChildren();
  for (const bot of (status === 200 && body.items) || []) {
    const tr = document.createElement("tr");
    for (const value of [bot.bot_id, bot.name, bot.active, bot.dry_run]) {
      const td = document.createElement("td");
      td.textContent = String(value);
      tr.appendChild(td);
    }
    tbody.appendChild(tr);
  }
}

function watch(exchange) {
  if (state.ws) state.ws.close();
  state.rows.clear();
  $("#tickers tbody").replaceChildren();
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const ws = new WebSocket(scheme + location.host + "/api/v1/cache/ws");
  state.ws = ws;
  ws.onopen = () => {
    // Authenticate in the first message, so the token never appears in a URL.
    ws.send(JSON.stringify({ action: "auth", request_id: "auth", params: { token: state.token } }));
    ws.send(JSON.stringify({ action: "subscribe", request_id: "tickers", params: { stream: "tickers", exchange, symbols: "*" } }));
    $("#stream-state").textContent = "connected";
  };
  ws.onclose = (ev) => { $("#stream-state").textContent = "closed " + ev.code + " " + ev.reason; };
  ws.onmessage = (ev) => {
    const data = JSON.parse(ev.data);
    for (const msg of Array.isArray(data) ? data : [data]) {
      if (msg.action === "tickers_update" && msg.result) render(msg.result, msg.seq);
      else if (msg.success === false) $("#stream-state").textContent = msg.error_code + ": " + msg.error;
    }
  };
}

// Epoch milliseconds or ISO text -> "HH:MM:SS.mmm" UTC.
function clock(value) {
  if (value === undefined || value === null) return "";
  const date = new Date(typeof value === "number" ? value : String(value));
  return isNaN(date) ? String(value) : date.toISOString().slice(11, 23) + "Z";
}

function render(result, seq) {
  const ticks = Array.isArray(result.tickers) ? result.tickers : [result.ticker || result];
  for (const t of ticks) {
    if (!t || !t.symbol) continue;
    let tr = state.rows.get(t.symbol);
    if (!tr) {
      tr = document.createElement("tr");
      for (let i = 0; i < 7; i++) tr.appendChild(document.createElement("td"));
      state.rows.set(t.symbol, tr);
      $("#tickers tbody").appendChild(tr);
    }
    const cells = [t.symbol, t.price, t.bid, t.ask, t.volume, clock(t.time || t.timestamp), seq];
    cells.forEach((v, i) => { tr.children[i].textContent = v === undefined || v === null ? "" : String(v); });
    tr.className = "flash";
    setTimeout(() => { tr.className = ""; }, 300);
  }
}

$("#login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = ev.target;
  const { status, body } = await api("/api/v1/auth/login", {
    method: "POST", body: JSON.stringify({ email: form.email.value, password: form.password.value }),
  });
  if (status === 200) {
    state.token = body.access_token;
    sessionStorage.setItem("fullon_token", state.token);
    $("#login-error").textContent = "";
    show();
  } else {
    $("#login-error").textContent = body ? body.detail : "login failed (" + status + ")";
  }
});
$("#ticker-form").addEventListener("submit", (ev) => { ev.preventDefault(); watch(ev.target.exchange.value); });
$("#logout").addEventListener("click", logout);

health();
setInterval(health, 10000);
show();
