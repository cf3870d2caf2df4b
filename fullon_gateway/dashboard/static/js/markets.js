// Markets: every exchange and symbol the gateway streams (from /api/v1/markets, then
// one `tickers` subscription per exchange with symbols "*"), with last/bid/ask, 24h
// change, quote age and a stale mark after a configurable time, and a flash on change.
// Clicking a row picks the symbol for the chart.

import { api } from "./session.js";
import { $, el, setText, fmtPrice, fmtPct, fmtAge, toMillis, flash, showError } from "./util.js";

const STALE_KEY = "fullon_stale_after";
const PICK_KEY = "fullon_market"; // the last symbol picked, kept across visits
const REF_TTL = 10 * 60 * 1000; // re-read the 24h reference price every 10 minutes
const REF_CONCURRENCY = 3;

export class Markets {
  constructor(stream, onPick) {
    this.stream = stream;
    this.onPick = onPick;
    this.rows = new Map(); // "exchange|symbol" -> row state
    this.subs = new Map(); // exchange -> subscription
    this.selected = null;
    this.tbody = $("#market-table tbody");
    this.filter = $("#market-exchange");
    this.staleInput = $("#stale-after");
    const fallback = Number(document.body.dataset.staleAfter) || 10;
    this.staleAfter = Number(localStorage.getItem(STALE_KEY)) || fallback;
    this.staleInput.value = String(this.staleAfter);
    this.staleInput.addEventListener("change", () => {
      const v = Number(this.staleInput.value);
      if (Number.isFinite(v) && v >= 1) {
        this.staleAfter = v;
        localStorage.setItem(STALE_KEY, String(v));
        this.tickAges();
      } else {
        this.staleInput.value = String(this.staleAfter);
        showError("Stale after must be a number of seconds, at least 1");
      }
    });
    this.filter.addEventListener("change", () => this.applyFilter());
    this.refQueue = [];
    this.refBusy = 0;
  }

  async start() {
    await this.loadCatalog();
    this.ageTimer = setInterval(() => this.tickAges(), 500);
    this.catalogTimer = setInterval(() => this.loadCatalog().catch(() => {}), 30000);
  }

  stop() {
    clearInterval(this.ageTimer);
    clearInterval(this.catalogTimer);
    for (const sub of this.subs.values()) sub.close();
    this.subs.clear();
    this.rows.clear();
    this.tbody.replaceChildren();
  }

  async loadCatalog() {
    let body;
    try {
      body = await api("/api/v1/markets");
    } catch (err) {
      showError("Could not list the markets", err.message);
      return;
    }
    for (const item of body.items) {
      if (!this.subs.has(item.exchange)) {
        this.filter.append(el("option", { value: item.exchange }, item.exchange));
        this.subs.set(item.exchange, this.stream.subscribe(
          { stream: "tickers", exchange: item.exchange, symbols: "*" },
          (frame) => this.onFrame(item.exchange, frame)));
      }
      for (const symbol of item.symbols) this.row(item.exchange, symbol);
    }
    this.updateEmpty();
    if (!this.selected) {
      const remembered = localStorage.getItem(PICK_KEY);
      const first = this.rows.has(remembered) ? remembered : this.firstVisible();
      if (first) this.pick(first);
    }
  }

  onFrame(exchange, frame) {
    const result = frame.result || {};
    const ticks = frame.snapshot ? result.tickers || [] : [result];
    for (const tick of ticks) {
      if (tick && tick.symbol) this.apply(exchange, tick, !frame.snapshot);
    }
    this.updateEmpty();
  }

  row(exchange, symbol) {
    const id = exchange + "|" + symbol;
    let r = this.rows.get(id);
    if (r) return r;
    const cells = {};
    const tr = el("tr", { tabindex: "0", "data-exchange": exchange, "data-symbol": symbol });
    const name = el("td", { class: "sym" }, el("span", { class: "ex" }, exchange), " ", el("b", {}, symbol));
    tr.append(name);
    for (const k of ["last", "bid", "ask", "change", "age"]) {
      cells[k] = el("td", { class: "num " + k });
      tr.append(cells[k]);
    }
    setText(cells.last, "–"); setText(cells.bid, "–"); setText(cells.ask, "–");
    setText(cells.change, "–"); setText(cells.age, "–");
    tr.addEventListener("click", () => this.pick(id));
    tr.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); this.pick(id); } });
    r = { id, exchange, symbol, tr, cells, last: null, time: NaN, ref: undefined, refAt: 0, tick: null };
    this.rows.set(id, r);
    // Keep rows sorted: exchange, then symbol.
    const after = [...this.tbody.children].find((other) => {
      const key = other.dataset.exchange + "|" + other.dataset.symbol;
      return key.localeCompare(id) > 0;
    });
    this.tbody.insertBefore(tr, after || null);
    tr.hidden = Boolean(this.filter.value) && this.filter.value !== exchange;
    this.queueRef(r);
    return r;
  }

  apply(exchange, tick, live) {
    const r = this.row(exchange, tick.symbol);
    const last = Number(tick.last ?? tick.price);
    const changed = { last: r.tick ? Number(r.tick.last ?? r.tick.price) : null,
                      bid: r.tick ? Number(r.tick.bid) : null, ask: r.tick ? Number(r.tick.ask) : null };
    r.tick = tick;
    r.last = Number.isFinite(last) ? last : null;
    const t = toMillis(tick.time ?? tick.timestamp);
    r.time = Number.isFinite(t) ? t : Date.now();
    this.set(r, "last", last, changed.last, live);
    this.set(r, "bid", Number(tick.bid), changed.bid, live);
    this.set(r, "ask", Number(tick.ask), changed.ask, live);
    this.renderChange(r);
    this.tickAge(r, Date.now());
    if (this.onTick) this.onTick(r);
  }

  set(r, key, value, before, live) {
    const cell = r.cells[key];
    setText(cell, fmtPrice(Number.isFinite(value) ? value : null));
    if (live && Number.isFinite(value) && before !== null && Number.isFinite(before) && value !== before) {
      flash(cell, value > before ? 1 : -1);
    }
  }

  renderChange(r) {
    let pct = null;
    const given = r.tick && (r.tick.change_24h ?? r.tick.percentage);
    if (given !== undefined && given !== null && Number.isFinite(Number(given)) && Number(given) !== 0) pct = Number(given);
    else if (r.ref && r.last !== null) pct = (r.last / r.ref - 1) * 100;
    setText(r.cells.change, fmtPct(pct));
    r.cells.change.classList.toggle("up", pct !== null && pct > 0);
    r.cells.change.classList.toggle("down", pct !== null && pct < 0);
    r.cells.change.title = r.ref === null ? "no stored history for a 24h reference" : "";
  }

  tickAge(r, now) {
    if (!Number.isFinite(r.time)) return;
    const age = (now - r.time) / 1000;
    setText(r.cells.age, fmtAge(age));
    const stale = age > this.staleAfter;
    if (r.tr.classList.contains("stale") !== stale) {
      r.tr.classList.toggle("stale", stale);
      r.cells.age.title = stale ? "no change for over " + this.staleAfter + " s" : "";
    }
  }

  tickAges() {
    const now = Date.now();
    for (const r of this.rows.values()) {
      this.tickAge(r, now);
      if (now - r.refAt > REF_TTL && r.ref !== undefined) this.queueRef(r);
    }
  }

  // 24h reference price: the close of the last hourly candle at or before now - 24h
  // (or the oldest of the last 25 when history is shorter), from REST.
  queueRef(r) {
    r.refAt = Date.now();
    this.refQueue.push(r);
    this.pumpRefs();
  }

  pumpRefs() {
    while (this.refBusy < REF_CONCURRENCY && this.refQueue.length) {
      const r = this.refQueue.shift();
      this.refBusy += 1;
      const path = "/api/v1/ohlcv/candles/" + encodeURIComponent(r.exchange) + "/" +
        encodeURIComponent(r.symbol) + "/1h?limit=25";
      api(path).then((body) => {
        const candles = body.candles || [];
        const cutoff = Date.now() - 24 * 3600 * 1000;
        let ref = null;
        for (const c of candles) if (toMillis(c.timestamp) <= cutoff) ref = Number(c.close);
        if (ref === null && candles.length) ref = Number(candles[0].open);
        r.ref = ref;
      }).catch((err) => {
        r.ref = null;
        if (err.status !== 404 && err.status !== 422) showError("Could not read the 24h reference for " + r.symbol, err.message);
      }).finally(() => {
        this.refBusy -= 1;
        this.renderChange(r);
        this.pumpRefs();
      });
    }
  }

  applyFilter() {
    const only = this.filter.value;
    for (const r of this.rows.values()) r.tr.hidden = Boolean(only) && r.exchange !== only;
    this.updateEmpty();
    if (!this.selected || this.rows.get(this.selected).tr.hidden) {
      const first = this.firstVisible();
      if (first) this.pick(first);
    }
  }

  firstVisible() {
    for (const tr of this.tbody.children) if (!tr.hidden) return tr.dataset.exchange + "|" + tr.dataset.symbol;
    return null;
  }

  updateEmpty() {
    const any = [...this.rows.values()].some((r) => !r.tr.hidden);
    $("#markets-empty").hidden = any;
  }

  pick(id) {
    const r = this.rows.get(id);
    if (!r) return;
    if (id === this.selected) return;
    if (this.selected) this.rows.get(this.selected)?.tr.classList.remove("selected");
    this.selected = id;
    r.tr.classList.add("selected");
    localStorage.setItem(PICK_KEY, id);
    this.onPick(r.exchange, r.symbol);
  }
}
