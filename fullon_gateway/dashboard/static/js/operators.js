// Operators (admins only): the platform's process registry (/api/v1/services, kept
// live by the `process` stream) with heartbeat age and a stale mark, and the
// gateway's connection and delivery figures read from /metrics.

import { api } from "./session.js";
import { $, el, setText, fmtAge, toMillis, flash, showError } from "./util.js";

const STALE_AFTER = 300; // seconds without a heartbeat (API.md section 4)
const POLL = 5000;

export class Operators {
  constructor(stream) {
    this.stream = stream;
    this.procs = new Map(); // "type:id" -> {proc, tr, beat (client ms)}
    this.skew = 0;          // client clock minus server clock, seconds
    this.prev = null;       // previous /metrics sample, for rates
  }

  async start() {
    await this.loadServices();
    this.sub = this.stream.subscribe({ stream: "process" }, (f) => this.onFrame(f));
    this.timer = setInterval(() => this.tickAges(), 1000);
    this.metricsTimer = setInterval(() => this.loadMetrics(), 2000);
    this.slow = setInterval(() => this.loadServices(), 30000);
    this.loadMetrics(true);
  }

  stop() {
    if (this.sub) this.sub.close();
    clearInterval(this.timer);
    clearInterval(this.slow);
    clearInterval(this.metricsTimer);
    this.procs.clear();
    $("#process-table tbody").replaceChildren();
  }

  async loadServices() {
    try {
      const body = await api("/api/v1/services");
      const skews = [];
      for (const p of body.items || []) {
        const hb = toMillis(p.heartbeat);
        if (Number.isFinite(hb) && typeof p.heartbeat_age_s === "number") {
          skews.push((Date.now() - hb) / 1000 - p.heartbeat_age_s);
        }
        this.apply(p, false);
      }
      if (skews.length) this.skew = skews.sort((a, b) => a - b)[Math.floor(skews.length / 2)];
      this.tickAges();
    } catch (err) {
      showError("Could not read the process registry", err.message);
    }
  }

  onFrame(frame) {
    const r = frame.result || {};
    const list = frame.snapshot ? r.processes || [] : [r];
    for (const p of list) this.apply(p, !frame.snapshot);
    this.tickAges();
  }

  apply(p, live) {
    if (!p || !p.process_id) return;
    const key = (p.process_type || "") + ":" + p.process_id;
    let row = this.procs.get(key);
    if (!row) {
      const tr = el("tr", { "data-process": key });
      for (let i = 0; i < 5; i++) tr.append(el("td"));
      tr.children[4].className = "num";
      const body = $("#process-table tbody");
      const after = [...body.children].find((o) => o.dataset.process.localeCompare(key) > 0);
      body.insertBefore(tr, after || null);
      row = { tr };
      this.procs.set(key, row);
    }
    // The REST answer names a stale process's status "stale"; keep the reported one.
    const status = p.status === "stale" && row.proc ? row.proc.status : p.status;
    row.proc = Object.assign({}, p, { status });
    row.beat = toMillis(p.heartbeat);
    const cells = row.tr.children;
    setText(cells[0], p.process_type);
    setText(cells[1], p.process_id);
    setText(cells[2], status);
    cells[2].className = "status status-" + String(status).toLowerCase().replace(/[^a-z_]/g, "");
    setText(cells[3], p.message);
    if (live) flash(cells[4], 0);
  }

  tickAges() {
    let stale = 0;
    const now = Date.now();
    for (const row of this.procs.values()) {
      const age = Number.isFinite(row.beat) ? (now - row.beat) / 1000 - this.skew : NaN;
      const isStale = !(age <= STALE_AFTER);
      if (isStale) stale++;
      setText(row.tr.children[4], Number.isFinite(age) ? fmtAge(age) + " ago" : "never");
      row.tr.classList.toggle("stale", isStale);
      row.tr.children[4].title = isStale ? "no heartbeat for over 5 minutes" : "";
    }
    const n = this.procs.size;
    setText($("#process-summary"), n ? n + " processes" + (stale ? ", " + stale + " stale" : ", all reporting") : "");
    $("#process-summary").classList.toggle("bad", stale > 0);
    $("#process-panel .empty").hidden = n > 0;
  }

  async loadMetrics(first = false) {
    if (this.metricsBusy) return;
    this.metricsBusy = true;
    try {
      const text = await api("/metrics", { text: true, headers: { Accept: "text/plain" } });
      const sample = parseMetrics(text || "");
      sample.at = Date.now();
      this.render(sample, this.prev);
      this.prev = sample;
      setText($("#metrics-age"), "from /metrics, every 2 s");
    } catch (err) {
      if (first || !this.metricsFailed) showError("Could not read /metrics", err.message);
      this.metricsFailed = true;
      setText($("#metrics-age"), "/metrics unreachable");
    } finally {
      this.metricsBusy = false;
    }
  }

  render(m, prev) {
    const sum = (name) => m.sum(name);
    const rate = (name) => {
      if (!prev) return null;
      const dt = (m.at - prev.at) / 1000;
      return dt > 0 ? Math.max(0, (sum(name) - prev.sum(name)) / dt) : null;
    };
    const p2s = m.quantile("gateway_ws_publish_to_send_seconds", 0.99);
    const tiles = [
      ["Open sockets", fmtInt(sum("gateway_ws_open_sockets")), ""],
      ["Subscriptions", fmtInt(sum("gateway_ws_subscriptions")), byLabel(m, "gateway_ws_subscriptions", "stream")],
      ["Deliveries / s", fmtRate(rate("gateway_ws_messages_delivered_total")), fmtInt(sum("gateway_ws_messages_delivered_total")) + " total"],
      ["Conflated", fmtInt(sum("gateway_ws_messages_conflated_total")), fmtRate(rate("gateway_ws_messages_conflated_total")) + " / s"],
      ["Slow-consumer closes", fmtInt(sum("gateway_ws_slow_consumer_closes_total")), fmtInt(sum("gateway_ws_messages_dropped_total")) + " messages dropped"],
      ["Publish → send p99", p2s === null ? "–" : (p2s * 1000 < 1 ? "< 1" : fmtInt(p2s * 1000)) + " ms", "histogram bucket bound"],
      ["HTTP requests / s", fmtRate(rate("gateway_http_requests_total")), fmtInt(sum("gateway_http_requests_total")) + " total"],
      ["Redis reconnects", fmtInt(sum("gateway_hub_reconnects_total")), ""],
    ];
    const box = $("#metrics");
    if (box.children.length !== tiles.length) {
      box.replaceChildren(...tiles.map(() => el("div", { class: "tile" }, el("span", { class: "k" }), el("b", { class: "v" }), el("small", { class: "muted" }))));
    }
    tiles.forEach(([k, v, note], i) => {
      const t = box.children[i];
      setText(t.children[0], k); setText(t.children[1], v); setText(t.children[2], note);
    });
    if (sum("gateway_ws_slow_consumer_closes_total") > 0) box.children[4].classList.add("warn");
  }
}

function fmtInt(n) { return Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "–"; }
function fmtRate(n) { return n === null || !Number.isFinite(n) ? "–" : n < 10 ? n.toFixed(1) : fmtInt(n); }

function byLabel(m, name, label) {
  const parts = m.series(name).filter((s) => s.value > 0).map((s) => s.labels[label] + " " + s.value);
  return parts.join(" · ");
}

// Prometheus text format -> {series(name), sum(name), quantile(histogram, q)}.
export function parseMetrics(text) {
  const series = new Map();
  const line = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
  for (const raw of text.split("\n")) {
    if (!raw || raw[0] === "#") continue;
    const m = line.exec(raw);
    if (!m) continue;
    const labels = {};
    if (m[2]) for (const lm of m[2].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[lm[1]] = lm[2];
    const value = Number(m[3]);
    if (!series.has(m[1])) series.set(m[1], []);
    series.get(m[1]).push({ labels, value });
  }
  const get = (name) => series.get(name) || [];
  return {
    series: get,
    sum: (name) => get(name).reduce((a, s) => a + (Number.isFinite(s.value) ? s.value : 0), 0),
    quantile(name, q) {
      const buckets = get(name + "_bucket").map((s) => ({ le: Number(s.labels.le), n: s.value }))
        .sort((a, b) => a.le - b.le);
      const total = buckets.length ? buckets[buckets.length - 1].n : 0;
      if (!total) return null;
      for (const b of buckets) if (b.n >= total * q) return Number.isFinite(b.le) ? b.le : null;
      return null;
    },
  };
}
