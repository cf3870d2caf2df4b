// The chart's data: history from REST (/api/v1/ohlcv/candles, older pages loaded as
// the trader pans left) and the forming bar kept live from the `ohlcv` stream.
//
// The gateway streams 1m bars; a bar of a longer timeframe is the REST bar of its
// bucket folded with the live minutes. To count no minute twice, the newest 1m bar
// REST held when the history was read (`base`) is taken out of its bucket again once
// the stream delivers that same minute in full.

import { api } from "./session.js";
import { toMillis, showError } from "./util.js";
import { bucketStart } from "./timeframes.js";

const PAGE = 1000; // the REST maximum per request

function candle(c) {
  return { t: toMillis(c.timestamp), o: Number(c.open), h: Number(c.high), l: Number(c.low),
           c: Number(c.close), v: Number(c.vol ?? c.volume ?? 0) };
}

export class ChartData {
  constructor(stream, onChange, onStatus) {
    this.stream = stream;
    this.onChange = onChange; // (reason: "load"|"live"|"older")
    this.onStatus = onStatus;
    this.bars = [];
    this.key = null;
    this.sub = null;
    this.generation = 0;
  }

  async load(exchange, symbol, tf) {
    const gen = ++this.generation;
    if (this.sub) this.sub.close();
    this.sub = null;
    this.exchange = exchange; this.symbol = symbol; this.tf = tf;
    this.bars = [];
    this.rest = new Map(); // bucket ms -> REST bar (as read)
    this.live = new Map(); // bucket ms -> Map(minute ms -> live 1m bar)
    this.base = null;      // newest REST 1m bar at load time
    this.exhausted = false;
    this.loadingOlder = false;
    this.liveBars = 0;
    this.restLoaded = false;
    this.onStatus("loading " + symbol + " " + tf + "…");
    this.onChange("load");
    const path = "/api/v1/ohlcv/candles/" + encodeURIComponent(exchange) + "/" + encodeURIComponent(symbol) + "/";
    // Subscribe first: minutes that close while REST is read are not lost.
    this.pendingLive = [];
    this.sub = this.stream.subscribe(
      { stream: "ohlcv", exchange, symbol, timeframe: "1m" },
      (frame) => this.onFrame(gen, frame));
    let history = [], lastMinute = [];
    try {
      const [h, m] = await Promise.all([
        api(path + tf + "?limit=" + PAGE),
        tf === "1m" ? Promise.resolve({ candles: [] }) : api(path + "1m?limit=1"),
      ]);
      history = h.candles || [];
      lastMinute = m.candles || [];
    } catch (err) {
      if (gen !== this.generation) return;
      if (err.status === 404 || err.status === 422) {
        this.exhausted = true;
        this.onStatus("no stored history for " + symbol + " on " + exchange + "; live bars only");
      } else {
        showError("Could not load candles for " + symbol, err.message);
        this.onStatus("history failed: " + err.message);
      }
    }
    if (gen !== this.generation) return;
    for (const c of history.map(candle)) this.rest.set(c.t, c);
    if (tf === "1m" && history.length) this.base = candle(history[history.length - 1]);
    else if (lastMinute.length) this.base = candle(lastMinute[0]);
    if (history.length < PAGE) this.exhausted = true;
    this.bars = history.map(candle);
    this.restLoaded = true;
    for (const bar of this.pendingLive.splice(0)) this.applyMinute(bar);
    if (this.bars.length || !this.exhausted) this.onStatus("");
    else if (!this.bars.length) this.onStatus("waiting for the first live bar…");
    this.onChange("load");
  }

  stop() {
    this.generation++;
    if (this.sub) this.sub.close();
    this.sub = null;
  }

  onFrame(gen, frame) {
    if (gen !== this.generation) return;
    const r = frame.result || {};
    const bars = frame.snapshot ? r.bars || [] : [r];
    let changed = false;
    for (const raw of bars) {
      if (!raw || raw.timestamp === undefined) continue;
      const bar = candle(raw);
      if (!this.restLoaded) { this.pendingLive.push(bar); continue; }
      changed = this.applyMinute(bar) || changed;
    }
    if (changed) { this.onStatus(""); this.onChange("live"); }
  }

  // Fold one live 1m bar into the bar of its bucket. Returns whether a bar changed.
  applyMinute(m) {
    if (!Number.isFinite(m.t)) return false;
    if (this.base && m.t < this.base.t) return false; // already counted by REST
    const b = bucketStart(m.t, this.tf);
    if (this.bars.length && b < this.bars[0].t) return false;
    if (!this.live.has(b)) {
      this.live.set(b, new Map());
      // Buckets closed long ago never change again; keep the last few only.
      const old = [...this.live.keys()].sort((x, y) => x - y);
      while (old.length > 3 && old[0] !== b) this.live.delete(old.shift());
    }
    this.live.get(b).set(m.t, m);
    const merged = this.compose(b);
    // Insert or replace, keeping time order (a new bucket is nearly always last).
    let i = this.bars.length - 1;
    while (i >= 0 && this.bars[i].t > b) i--;
    if (i >= 0 && this.bars[i].t === b) this.bars[i] = merged;
    else { this.bars.splice(i + 1, 0, merged); this.liveBars++; }
    return true;
  }

  compose(b) {
    const rest = this.rest.get(b);
    let bar = rest ? Object.assign({}, rest) : null;
    const base = this.base;
    const live = this.live.get(b) || new Map();
    if (bar && base && bucketStart(base.t, this.tf) === b && live.has(base.t)) {
      // REST counted part of this minute; the stream has all of it.
      bar.v -= base.v;
    }
    const minutes = [...live.values()].sort((x, y) => x.t - y.t);
    for (const m of minutes) {
      if (!bar) { bar = Object.assign({}, m, { t: b }); continue; }
      bar.h = Math.max(bar.h, m.h);
      bar.l = Math.min(bar.l, m.l);
      bar.c = m.c;
      bar.v += m.v;
    }
    if (bar) bar.v = Math.max(0, bar.v);
    return bar;
  }

  // The trader panned to the oldest bar: read the page before it.
  async loadOlder() {
    if (this.exhausted || this.loadingOlder || !this.bars.length) return;
    const gen = this.generation;
    this.loadingOlder = true;
    const first = this.bars[0].t;
    const path = "/api/v1/ohlcv/candles/" + encodeURIComponent(this.exchange) + "/" +
      encodeURIComponent(this.symbol) + "/" + this.tf + "?limit=" + PAGE + "&end_time=" + (first - 1);
    try {
      const body = await api(path);
      if (gen !== this.generation) return;
      const older = (body.candles || []).map(candle).filter((c) => c.t < first);
      if (older.length < PAGE - 1) this.exhausted = true;
      for (const c of older) this.rest.set(c.t, c);
      this.bars = older.concat(this.bars);
      this.onChange("older", older.length);
    } catch (err) {
      if (gen === this.generation) showError("Could not load older candles", err.message);
    } finally {
      this.loadingOlder = false;
    }
  }
}
