// My account: balances and positions per exchange account (`accounts` stream, names
// from REST), and bot cards with live status (`bots` stream) and their last log lines
// (REST). Open orders and fills are in orders.js.

import { api } from "./session.js";
import { $, el, setText, fmtPrice, fmtQty, fmtClock, toMillis, flash, showError } from "./util.js";

const LOG_LINES = 5;

export class Account {
  constructor(stream) {
    this.stream = stream;
    this.accounts = new Map(); // ex_id -> {name, exchange}
    this.cards = new Map();    // ex_id -> {balances, positions, node}
    this.bots = new Map();     // bot_id -> {bot, status, node, logsAt}
    this.subs = [];
  }

  async start() {
    await Promise.all([this.loadAccounts(), this.loadBots()]);
    this.subs.push(this.stream.subscribe({ stream: "accounts" }, (f) => this.onAccounts(f)));
    this.subs.push(this.stream.subscribe({ stream: "bots" }, (f) => this.onBots(f)));
    this.logTimer = setInterval(() => { for (const id of this.bots.keys()) this.loadLogs(id); }, 30000);
  }

  stop() {
    for (const sub of this.subs) sub.close();
    this.subs = [];
    clearInterval(this.logTimer);
    for (const sel of ["#accounts", "#bots"]) $(sel).replaceChildren();
    this.cards.clear(); this.bots.clear(); this.accounts.clear();
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

  empty(panel, isEmpty) {
    const p = $(panel + " .empty");
    if (p) p.hidden = !isEmpty;
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
      const page = await api("/api/v1/orm/bots/" + Number(botId) + "/last-log?limit=" + LOG_LINES);
      const rows = page ? page.items : [];
      const list = b.node.querySelector(".logs");
      list.replaceChildren(...(rows || []).map((line) => el("li", { class: "log-" + String(line.level).replace(/[^a-z]/g, "") },
        el("time", {}, fmtClock(toMillis(line.ts))), " ", el("span", { class: "lvl" }, line.level), " ", line.message)));
      if (!rows || !rows.length) list.append(el("li", { class: "muted" }, "no log lines yet"));
    } catch (err) {
      if (err.status !== 404) showError("Could not read the log of bot " + botId, err.message);
    }
  }
}
