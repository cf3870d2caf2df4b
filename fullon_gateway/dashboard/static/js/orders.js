// Open orders, live from the `orders` stream (every exchange account of the user): a
// status change updates the row, a closed status moves the order out of the list, and
// a filled one moves to Recent fills, which also lists the stored trades (REST). An
// order whose trade is stored is listed once, as that trade (the trade has the real
// price, volume and time; one order may fill in several trades).

import { api } from "./session.js";
import { $, el, setText, fmtPrice, fmtQty, fmtClock, toMillis, flash, showError } from "./util.js";

const CLOSED = new Set(["filled", "closed", "canceled", "cancelled", "rejected", "expired", "done"]);
const FILLED = new Set(["filled", "closed", "done"]);
const MAX_FILLS = 50;

export class Orders {
  // accountName(ex_id) -> the exchange account's name (Account knows them).
  constructor(stream, accountName) {
    this.stream = stream;
    this.accountName = accountName;
    this.orders = new Map(); // "ex_id|order_id" -> {order, tr}
    this.fills = new Map();  // key -> {t, tr}
    this.traded = new Set(); // "ex_id|order_id" of the orders the stored trades name
  }

  async start() {
    this.sub = this.stream.subscribe({ stream: "orders" }, (f) => this.onOrders(f));
    await this.loadTrades();
  }

  stop() {
    if (this.sub) this.sub.close();
    for (const sel of ["#orders-table tbody", "#fills-table tbody"]) $(sel).replaceChildren();
    this.orders.clear(); this.fills.clear(); this.traded.clear();
  }

  async loadTrades() {
    try {
      const body = await api("/api/v1/orm/trades?limit=" + MAX_FILLS);
      for (const t of body.items || []) {
        if (t.order_id !== null && t.order_id !== undefined) {
          // The orders snapshot may have listed this order's fill already.
          const key = t.ex_id + "|" + t.order_id;
          this.traded.add(key);
          this.removeFill("order:" + key);
        }
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
      if (FILLED.has(status) && !this.traded.has(key)) {
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

  removeFill(key) {
    const f = this.fills.get(key);
    if (f) f.tr.remove();
    this.fills.delete(key);
  }

  addFill(key, t, exId, symbol, side, price, volume, order) {
    if (this.fills.has(key)) return;
    const tr = el("tr", { "data-fill": key },
      el("td", {}, fmtClock(t)), el("td", {}, this.accountName(exId)), el("td", {}, symbol || ""),
      el("td", { class: String(side).toLowerCase() === "sell" ? "sell" : "buy" }, side || ""),
      el("td", { class: "num" }, fmtPrice(price)), el("td", { class: "num" }, fmtQty(volume)));
    tr.title = new Date(t).toISOString() + (order ? " · order " + order : "");
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
}
