// My account: open orders (live from the `orders` stream; a status change moves an
// order out of the open list), recent fills (orders that filled, plus the stored
// trades from REST), balances and positions per exchange account (`accounts` stream),
// and bot cards with live status (`bots` stream) and their last log lines (REST).

import { api } from "./session.js";
import { $, el, setText, fmtPrice, fmtQty, fmtClock, toMillis, flash, showError } from "./util.js";

const CLOSED = new Set(["filled", "closed", "canceled", "cancelled", "rejected", "expired", "done"]);
const FILLED = new Set(["filled", "closed", "done"]);
const MAX_FILLS = 50;
const LOG_LINES = 5;

export class Account {
  constructor(stream) {
    this.stream = stream;
    this.accounts = new Map(); // ex_id -> {name, exchange}
    this.orders = new Map();   // "ex_id|order_id" -> {order, tr}
    this.fills = new Map();    // key -> {t, tr}
    this.cards = new Map();    // ex_id -> {balances, positions, node}
    this.bots = new Map();     // bot_id -> {bot, status, node, logsAt}
    this.subs = [];
  }

  async start() {
    await Promise.all([this.loadAccounts(), this.loadBots()]);
    this.subs.push(this.stream.subscribe({ stream: "orders" }, (f) => this.onOrders(f)));
    this.subs.push(this.stream.subscribe({ stream: "accounts" }, (f) => this.onAccounts(f)));
    this.subs.push(this.stream.subscribe({ stream: "bots" }, (f) => this.onBots(f)));
    this.loadTrades();
    this.logTimer = setInterval(() => { for (const id of this.bots.keys()) this.loadLogs(id); }, 30000);
  }

  stop() {
    for (const sub of this.subs) sub.close();
    this.subs = [];
    clearInterval(this.logTimer);
    for (const sel of ["#orders-table tbody", "#fills-table tbody", "#accounts", "#bots"]) $(sel).replaceChildren();
    this.orders.clear(); this.fills.clear(); this.cards.clear(); this.bots.clear(); this.accounts.clear();
  }

  accountName(exId) {
    const a = this.accounts.get(Number(exId));
    return a ? a.name : "#" + exId;
  }

  async loadAccounts() {
    try {
      const body = await api("/api/v1/orm/exchanges/user-exchanges?limit=1000");
      for (const a of body.items || []) {
        this.accounts.set(a.ex_id, { name: a.name, exchange: a.exchange });
        this.card(a.ex_id);
      }
    } catch (err) {
      showError("Could not list your exchange accounts", err.message);
    }
    this.empty("#accounts-panel", this.cards.size === 0);
  }

  async loadBots() {
    try {
      const body = await api("/api/v1/orm/bots?limit=1000");
      for (const bot of body.items || []) {
        const b = this.bot(bot.bot_id);
        b.bot = bot;
        this.renderBot(b);
        this.loadLogs(bot.bot_id);
      }
    } catch (err) {
      showError("Could not list your bots", err.message);
    }
    this.empty("#bots-panel", this.bots.size === 0);
  }

  async loadTrades() {
    try {
      const body = await api("/api/v1/orm/trades?limit=" + MAX_FILLS);
      for (const t of body.items || []) {
        this.addFill("trade:" + t.trade_id, toMillis(t.ts), t.ex_id, t.symbol, t.side, t.price, t.volume,
                     t.order_id === null || t.order_id === undefined ? "" : "#" + t.order_id);
      }
    } catch (err) {
      showError("Could not read your recent trades", err.message);
    }
  }

  empty(panel, isEmpty) {
    const p = $(panel + " .empty");
    if (p) p.hidden = !isEmpty;
  }

  // -- orders ------------------------------------------------------------------------
  onOrders(frame) {
    const r = frame.result || {};
    if (frame.snapshot) {
      const seen = new Set();
      for (const o of r.orders || []) { seen.add(o.ex_id + "|" + o.order_id); this.applyOrder(o, false); }
      for (const key of [...this.orders.keys()]) if (!seen.has(key)) this.removeOrder(key);
    } else {
      this.applyOrder(r, true);
    }
    this.renderOrderCount();
  }

  applyOrder(o, live) {
    if (!o || o.order_id === undefined) return;
    const key = o.ex_id + "|" + o.order_id;
    const status = String(o.status || "").toLowerCase();
    const prev = this.orders.get(key);
    const merged = Object.assign({}, prev ? prev.order : {}, o);
    if (CLOSED.has(status)) {
      if (prev) this.removeOrder(key);
      if (FILLED.has(status)) {
        const t = toMillis(merged.timestamp ?? merged.time) || Date.now();
        this.addFill("order:" + key, live ? Date.now() : t, merged.ex_id, merged.symbol, merged.side,
                     merged.final_price ?? merged.price, merged.final_volume ?? merged.volume, merged.order_id);
      }
      return;
    }
    let tr = prev && prev.tr;
    if (!tr) {
      tr = el("tr", { "data-order": String(o.order_id) });
      for (let i = 0; i < 8; i++) tr.append(el("td"));
      for (const i of [3, 4]) tr.children[i].className = "num";
      $("#orders-table tbody").prepend(tr);
      if (live) flash(tr, 0);
    } else if (live && prev.order.status !== merged.status) {
      flash(tr.children[5], 0);
    }
    this.orders.set(key, { order: merged, tr });
    const side = String(merged.side || "");
    const cells = [this.accountName(merged.ex_id), merged.symbol, side, fmtPrice(merged.price),
                   fmtQty(merged.volume), merged.status, merged.bot_id ?? "", merged.order_id];
    cells.forEach((v, i) => setText(tr.children[i], v));
    tr.children[2].className = side.toLowerCase() === "buy" ? "buy" : side.toLowerCase() === "sell" ? "sell" : "";
    tr.children[5].className = "status status-" + status.replace(/[^a-z_]/g, "");
  }

  removeOrder(key) {
    const o = this.orders.get(key);
    if (o) o.tr.remove();
    this.orders.delete(key);
  }

  renderOrderCount() {
    setText($("#orders-count"), this.orders.size ? "(" + this.orders.size + ")" : "");
    this.empty("#orders-panel", this.orders.size === 0);
  }

  addFill(key, t, exId, symbol, side, price, volume, order) {
    if (this.fills.has(key)) return;
    const tr = el("tr", { "data-fill": key },
      el("td", {}, fmtClock(t)), el("td", {}, this.accountName(exId)), el("td", {}, symbol || ""),
      el("td", { class: String(side).toLowerCase() === "sell" ? "sell" : "buy" }, side || ""),
      el("td", { class: "num" }, fmtPrice(price)), el("td", { class: "num" }, fmtQty(volume)),
      el("td", {}, order ?? ""));
    tr.title = new Date(t).toISOString();
    this.fills.set(key, { t, tr });
    // Newest first.
    const body = $("#fills-table tbody");
    const after = [...this.fills.values()].filter((f) => f.tr.isConnected && f.t < t)
      .sort((a, b) => b.t - a.t)[0];
    body.insertBefore(tr, after ? after.tr : null);
    if (Date.now() - t < 10000) flash(tr, 0);
    while (body.children.length > MAX_FILLS) {
      const last = body.lastElementChild;
      this.fills.delete(last.dataset.fill);
      last.remove();
    }
    this.empty("#fills-panel", false);
  }

  // -- balances and positions --------------------------------------------------------
  card(exId) {
    exId = Number(exId);
    let c = this.cards.get(exId);
    if (c) return c;
    const a = this.accounts.get(exId);
    const node = el("section", { class: "card account-card", "data-ex-id": String(exId) },
      el("h3", {}, a ? a.name : "#" + exId, " ", el("small", { class: "muted" }, a ? a.exchange : "")),
      el("h4", {}, "Balances"), el("table", { class: "grid compact balances" },
        el("thead", {}, el("tr", {}, el("th", {}, "Asset"), el("th", { class: "num" }, "Free"),
                        el("th", { class: "num" }, "Used"), el("th", { class: "num" }, "Total"))), el("tbody")),
      el("h4", {}, "Positions"), el("table", { class: "grid compact positions" },
        el("thead", {}, el("tr", {}, el("th", {}, "Symbol"), el("th", { class: "num" }, "Size"),
                        el("th", { class: "num" }, "Entry"))), el("tbody")),
      el("p", { class: "muted updated" }));
    $("#accounts").append(node);
    c = { node, balances: null, positions: null };
    this.cards.set(exId, c);
    this.empty("#accounts-panel", false);
    return c;
  }

  onAccounts(frame) {
    const r = frame.result || {};
    if (frame.snapshot) {
      for (const a of r.accounts || []) {
        const c = this.card(a.ex_id);
        c.balances = a.balances; c.positions = a.positions;
        this.renderCard(c, false);
      }
      return;
    }
    const c = this.card(r.ex_id);
    if (r.kind === "balances") c.balances = r.balances;
    if (r.kind === "positions") c.positions = r.positions;
    this.renderCard(c, true);
  }

  renderCard(c, live) {
    const btbody = c.node.querySelector(".balances tbody");
    const rows = [];
    // Writers differ: {free, used, total} or {balance, available} or a bare number.
    for (const [asset, v] of Object.entries(c.balances || {})) {
      if (asset === "date" || asset === "timestamp") continue;
      if (typeof v === "number") { rows.push([asset, v, null, v]); continue; }
      if (!v || typeof v !== "object") continue;
      const free = v.free ?? v.available;
      const used = v.used ?? (v.balance !== undefined && free !== undefined ? v.balance - free : undefined);
      const total = v.total ?? v.balance ?? (Number(free || 0) + Number(used || 0));
      rows.push([asset, free, used, total]);
    }
    rows.sort((a, b) => a[0].localeCompare(b[0]));
    btbody.replaceChildren(...rows.map((row) => el("tr", {}, el("td", {}, row[0]),
      ...row.slice(1).map((v) => el("td", { class: "num" }, fmtQty(v))))));
    if (!rows.length) btbody.append(el("tr", {}, el("td", { colspan: "4", class: "muted" }, "none reported")));
    const ptbody = c.node.querySelector(".positions tbody");
    const pos = [];
    const p = c.positions;
    if (Array.isArray(p)) {
      for (const x of p) pos.push([x.symbol, x.size ?? x.volume, x.entry_price ?? x.price]);
    } else if (p && typeof p === "object") {
      for (const [symbol, x] of Object.entries(p)) {
        if (symbol === "timestamp" || !x || typeof x !== "object") continue;
        pos.push([symbol, x.volume ?? x.size, x.price ?? x.entry_price]);
      }
    }
    ptbody.replaceChildren(...pos.map(([s, size, entry]) => el("tr", {}, el("td", {}, s),
      el("td", { class: "num " + (Number(size) < 0 ? "sell" : Number(size) > 0 ? "buy" : "") }, fmtQty(size)),
      el("td", { class: "num" }, fmtPrice(entry)))));
    if (!pos.length) ptbody.append(el("tr", {}, el("td", { colspan: "3", class: "muted" }, "no open positions")));
    setText(c.node.querySelector(".updated"), "updated " + fmtClock(Date.now()) + " UTC");
    if (live) flash(c.node, 0);
  }

  // -- bots --------------------------------------------------------------------------
  bot(botId) {
    botId = Number(botId);
    let b = this.bots.get(botId);
    if (b) return b;
    const node = el("section", { class: "card bot-card", "data-bot-id": String(botId) },
      el("h3", {}, el("span", { class: "name" }, "bot #" + botId), " ", el("span", { class: "badge state" }, "no status")),
      el("dl", { class: "kv" }), el("h4", {}, "Last log lines"), el("ol", { class: "logs" }));
    $("#bots").append(node);
    b = { bot: null, status: null, node, logsAt: 0 };
    this.bots.set(botId, b);
    this.empty("#bots-panel", false);
    return b;
  }

  onBots(frame) {
    const r = frame.result || {};
    const list = frame.snapshot ? r.bots || [] : [r];
    for (const s of list) {
      if (!s || s.bot_id === undefined) continue;
      const b = this.bot(s.bot_id);
      b.status = s;
      this.renderBot(b);
      if (!frame.snapshot) {
        flash(b.node.querySelector(".state"), 0);
        if (Date.now() - b.logsAt > 5000) this.loadLogs(s.bot_id);
      }
    }
  }

  renderBot(b) {
    const n = b.node;
    if (b.bot) setText(n.querySelector(".name"), b.bot.name + (b.bot.dry_run ? " (dry run)" : ""));
    const s = b.status || {};
    const state = String(s.status ?? (b.bot ? (b.bot.active ? "active" : "inactive") : "unknown"));
    const badge = n.querySelector(".state");
    setText(badge, state);
    badge.className = "badge state state-" + state.toLowerCase().replace(/[^a-z_]/g, "");
    const kv = [];
    for (const [k, v] of Object.entries(s)) {
      if (k === "status" || k === "bot_id" || v === null || typeof v === "object") continue;
      kv.push(el("dt", {}, k.replace(/_/g, " ")), el("dd", {}, typeof v === "number" ? fmtQty(v) : String(v)));
    }
    n.querySelector(".kv").replaceChildren(...kv);
  }

  async loadLogs(botId) {
    const b = this.bots.get(Number(botId));
    if (!b) return;
    b.logsAt = Date.now();
    try {
      const rows = await api("/api/v1/orm/bots/" + Number(botId) + "/last-log?limit=" + LOG_LINES);
      const list = b.node.querySelector(".logs");
      list.replaceChildren(...(rows || []).map((line) => el("li", { class: "log-" + String(line.level).replace(/[^a-z]/g, "") },
        el("time", {}, fmtClock(toMillis(line.ts))), " ", el("span", { class: "lvl" }, line.level), " ", line.message)));
      if (!rows || !rows.length) list.append(el("li", { class: "muted" }, "no log lines yet"));
    } catch (err) {
      if (err.status !== 404) showError("Could not read the log of bot " + botId, err.message);
    }
  }
}
