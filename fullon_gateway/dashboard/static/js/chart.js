// A candle chart on a canvas, drawn by this file alone: candles, volume bars, price and
// time axes, the last price, a crosshair with an OHLCV readout, zoom (wheel, pinch,
// +/-) and pan (drag, arrows). When bars get narrower than a few pixels, each pixel
// column shows the range of the bars it covers, so 1,000+ bars stay readable.
// (Over 300 lines on purpose: one chart's geometry, drawing and input share the same
// view state, and splitting them would pass that state around for nothing.)

import { fmtPrice, fmtQty, fmtClock, setText } from "./util.js";
import { isIntraday } from "./timeframes.js";

const COLORS = {
  bg: "#0f141b", grid: "#1c2430", axis: "#8a96a8", text: "#c9d3e0",
  up: "#26a69a", down: "#ef5350", upVol: "rgba(38,166,154,0.45)", downVol: "rgba(239,83,80,0.45)",
  cross: "rgba(201,211,224,0.55)", last: "#f0b90b", label: "#263140",
};
const AXIS_W = 76, AXIS_H = 22, PAD_TOP = 8;
const MIN_BARS = 10, DEFAULT_BARS = 120;

export class CandleChart {
  constructor(canvas, readout) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.readout = readout;
    this.bars = [];
    this.tf = "1m";
    this.count = DEFAULT_BARS; // bars across the plot
    this.end = 0;              // index (float) at the right edge; follows the newest bar
    this.follow = true;
    this.hover = null;         // {x, y} in CSS pixels
    this.onNeedOlder = null;
    canvas.tabIndex = 0;
    this.bind();
    new ResizeObserver(() => this.resize()).observe(canvas.parentElement);
    this.resize();
  }

  setData(bars, tf, reason, added = 0) {
    const wasLast = this.bars.length - 1;
    this.bars = bars;
    this.tf = tf;
    if (reason === "load") {
      // About 9 px a bar: 120 on a laptop, fewer on a phone.
      this.count = Math.max(30, Math.min(DEFAULT_BARS, Math.round(this.plotW() / 9)));
      this.end = bars.length - 1 + 0.5;
      this.follow = true;
    } else if (reason === "older") {
      this.end += added; // the same bars stay in view
    } else if (this.follow && bars.length - 1 > wasLast) {
      this.end += bars.length - 1 - wasLast;
    }
    this.draw();
  }

  resize() {
    const rect = this.canvas.parentElement.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    this.w = Math.max(200, rect.width);
    this.h = Math.max(160, rect.height);
    this.canvas.width = Math.round(this.w * dpr);
    this.canvas.height = Math.round(this.h * dpr);
    this.canvas.style.width = this.w + "px";
    this.canvas.style.height = this.h + "px";
    this.ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    this.draw();
  }

  // -- interaction -------------------------------------------------------------------
  bind() {
    const c = this.canvas;
    c.addEventListener("wheel", (ev) => {
      ev.preventDefault();
      this.zoom(ev.deltaY > 0 ? 1.15 : 1 / 1.15, this.localX(ev));
    }, { passive: false });
    let drag = null;
    c.addEventListener("pointerdown", (ev) => {
      if (ev.pointerType === "touch") return; // touch handled below (pinch)
      drag = { x: ev.clientX, end: this.end };
      c.setPointerCapture(ev.pointerId);
    });
    c.addEventListener("pointermove", (ev) => {
      this.hover = { x: this.localX(ev), y: this.localY(ev) };
      if (drag) this.panTo(drag.end - (ev.clientX - drag.x) / this.barW());
      this.draw();
    });
    c.addEventListener("pointerup", () => { drag = null; });
    c.addEventListener("pointerleave", () => { this.hover = null; drag = null; this.draw(); });
    c.addEventListener("dblclick", () => this.latest());
    c.addEventListener("keydown", (ev) => {
      const keys = { ArrowLeft: () => this.panTo(this.end - this.count / 10),
                     ArrowRight: () => this.panTo(this.end + this.count / 10),
                     "+": () => this.zoom(1 / 1.25), "=": () => this.zoom(1 / 1.25),
                     "-": () => this.zoom(1.25), End: () => this.latest(),
                     Home: () => this.panTo(this.count - 0.5) };
      if (keys[ev.key]) { ev.preventDefault(); keys[ev.key](); }
    });
    let touch = null;
    c.addEventListener("touchstart", (ev) => {
      touch = { points: [...ev.touches].map((t) => t.clientX), end: this.end, count: this.count };
    }, { passive: true });
    c.addEventListener("touchmove", (ev) => {
      if (!touch) return;
      ev.preventDefault();
      const xs = [...ev.touches].map((t) => t.clientX);
      if (xs.length >= 2 && touch.points.length >= 2) {
        const before = Math.abs(touch.points[0] - touch.points[1]) || 1;
        const now = Math.abs(xs[0] - xs[1]) || 1;
        this.count = this.clampCount(touch.count * before / now);
        this.panTo(touch.end);
      } else if (xs.length === 1) {
        this.panTo(touch.end - (xs[0] - touch.points[0]) / this.barW());
      }
      this.draw();
    }, { passive: false });
    c.addEventListener("touchend", () => { touch = null; });
  }

  localX(ev) { return ev.clientX - this.canvas.getBoundingClientRect().left; }
  localY(ev) { return ev.clientY - this.canvas.getBoundingClientRect().top; }
  plotW() { return this.w - AXIS_W; }
  barW() { return this.plotW() / this.count; }
  clampCount(n) { return Math.max(MIN_BARS, Math.min(Math.max(this.bars.length * 1.2, DEFAULT_BARS), n)); }

  zoom(factor, anchorX) {
    const x = anchorX === undefined ? this.plotW() : Math.min(anchorX, this.plotW());
    const anchor = this.end - (this.plotW() - x) / this.barW(); // bar index under the cursor
    this.count = this.clampCount(this.count * factor);
    this.panTo(anchor + (this.plotW() - x) / this.barW());
  }

  panTo(end) {
    const last = this.bars.length - 1 + 0.5;
    const lo = Math.min(last, this.count * 0.2 - 0.5);
    this.end = Math.max(lo, Math.min(last + this.count * 0.3, end));
    this.follow = this.end >= last - 0.01;
    if (this.end - this.count < 20 && this.onNeedOlder) this.onNeedOlder();
    this.draw();
  }

  latest() {
    this.end = this.bars.length - 1 + 0.5;
    this.follow = true;
    this.draw();
  }

  // -- drawing -----------------------------------------------------------------------
  draw() {
    if (this.pending) return;
    this.pending = requestAnimationFrame(() => { this.pending = 0; this.paint(); });
  }

  paint() {
    const { ctx, w, h } = this;
    ctx.fillStyle = COLORS.bg;
    ctx.fillRect(0, 0, w, h);
    const bars = this.bars;
    const pw = this.plotW(), ph = h - AXIS_H;
    const volH = Math.round(ph * 0.2), priceH = ph - volH - PAD_TOP;
    const bw = this.barW();
    const first = Math.max(0, Math.floor(this.end - this.count));
    const last = Math.min(bars.length - 1, Math.ceil(this.end));
    const xOf = (i) => pw - (this.end - i) * bw;
    if (last < first) { this.showReadout(null); this.canvas.dataset.bars = String(bars.length); return; }

    // Visible range, with some air above and below.
    let lo = Infinity, hi = -Infinity, vmax = 0;
    for (let i = first; i <= last; i++) {
      const b = bars[i];
      if (b.l < lo) lo = b.l;
      if (b.h > hi) hi = b.h;
      if (b.v > vmax) vmax = b.v;
    }
    if (!(hi > lo)) { hi = lo + (Math.abs(lo) * 0.001 || 1); lo -= (hi - lo); }
    const pad = (hi - lo) * 0.08;
    lo -= pad; hi += pad;
    const yOf = (p) => PAD_TOP + (hi - p) / (hi - lo) * priceH;
    const vTop = PAD_TOP + priceH;
    const yVol = (v) => ph - (vmax ? v / vmax : 0) * (volH - 4);

    // Grid and price axis.
    ctx.font = "11px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace";
    ctx.textBaseline = "middle";
    ctx.lineWidth = 1;
    const step = niceStep((hi - lo) / Math.max(2, priceH / 48));
    const lastY = bars.length ? yOf(bars[bars.length - 1].c) : -100;
    for (let p = Math.ceil(lo / step) * step; p <= hi; p += step) {
      const y = Math.round(yOf(p)) + 0.5;
      ctx.strokeStyle = COLORS.grid;
      ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(pw, y); ctx.stroke();
      ctx.fillStyle = COLORS.axis;
      if (Math.abs(y - lastY) > 14) ctx.fillText(fmtPrice(p), pw + 6, y); // not under the last-price label
    }
    ctx.strokeStyle = COLORS.grid;
    ctx.beginPath(); ctx.moveTo(0, vTop + 0.5); ctx.lineTo(pw, vTop + 0.5); ctx.stroke();

    // Time axis: a label every ~110 px, on round bars.
    const every = Math.max(1, Math.ceil(110 / bw));
    ctx.textBaseline = "alphabetic";
    ctx.fillStyle = COLORS.axis;
    for (let i = Math.ceil(first / every) * every; i <= last; i += every) {
      const x = Math.round(xOf(i)) + 0.5;
      ctx.strokeStyle = COLORS.grid;
      ctx.beginPath(); ctx.moveTo(x, PAD_TOP); ctx.lineTo(x, ph); ctx.stroke();
      const text = this.timeLabel(bars[i].t);
      ctx.fillText(text, Math.min(pw - ctx.measureText(text).width - 2, Math.max(2, x - ctx.measureText(text).width / 2)), h - 6);
    }

    // Candles and volume. Below 3 px a bar, one pixel column shows all it covers.
    ctx.save();
    ctx.beginPath(); ctx.rect(0, 0, pw, ph); ctx.clip();
    if (bw >= 3) {
      const body = Math.max(1, Math.floor(bw * 0.7));
      for (let i = first; i <= last; i++) {
        const b = bars[i];
        const x = Math.round(xOf(i));
        const up = b.c >= b.o;
        ctx.fillStyle = up ? COLORS.upVol : COLORS.downVol;
        const vy = yVol(b.v);
        ctx.fillRect(x - body / 2, vy, body, ph - vy);
        ctx.strokeStyle = ctx.fillStyle = up ? COLORS.up : COLORS.down;
        ctx.beginPath(); ctx.moveTo(x + 0.5, yOf(b.h)); ctx.lineTo(x + 0.5, yOf(b.l)); ctx.stroke();
        const top = yOf(Math.max(b.o, b.c)), bot = yOf(Math.min(b.o, b.c));
        ctx.fillRect(x - Math.floor(body / 2), top, body, Math.max(1, bot - top));
      }
    } else {
      const cols = new Map();
      for (let i = first; i <= last; i++) {
        const b = bars[i];
        const x = Math.round(xOf(i));
        const col = cols.get(x);
        if (!col) cols.set(x, { o: b.o, h: b.h, l: b.l, c: b.c, v: b.v });
        else { col.h = Math.max(col.h, b.h); col.l = Math.min(col.l, b.l); col.c = b.c; col.v += b.v; }
      }
      let cvmax = 0;
      for (const col of cols.values()) cvmax = Math.max(cvmax, col.v);
      for (const [x, col] of cols) {
        const up = col.c >= col.o;
        ctx.fillStyle = up ? COLORS.upVol : COLORS.downVol;
        const vy = ph - (cvmax ? col.v / cvmax : 0) * (volH - 4);
        ctx.fillRect(x, vy, 1, ph - vy);
        ctx.fillStyle = up ? COLORS.up : COLORS.down;
        const top = yOf(col.h);
        ctx.fillRect(x, top, 1, Math.max(1, yOf(col.l) - top));
      }
    }
    ctx.restore();

    // Last price line and label.
    const newest = bars[bars.length - 1];
    if (newest) {
      const y = Math.round(yOf(newest.c)) + 0.5;
      if (y > PAD_TOP && y < vTop) {
        ctx.strokeStyle = COLORS.last;
        ctx.setLineDash([4, 3]);
        ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(pw, y); ctx.stroke();
        ctx.setLineDash([]);
        this.axisLabel(fmtPrice(newest.c), y, COLORS.last, "#111");
      }
    }

    // Crosshair.
    let shown = newest;
    if (this.hover && this.hover.x < pw && this.hover.y < ph) {
      const i = Math.round(this.end - (pw - this.hover.x) / bw);
      if (i >= 0 && i < bars.length) {
        shown = bars[i];
        const x = Math.round(xOf(i)) + 0.5, y = Math.round(this.hover.y) + 0.5;
        ctx.strokeStyle = COLORS.cross;
        ctx.setLineDash([3, 3]);
        ctx.beginPath(); ctx.moveTo(x, PAD_TOP); ctx.lineTo(x, ph); ctx.moveTo(0, y); ctx.lineTo(pw, y); ctx.stroke();
        ctx.setLineDash([]);
        if (y < vTop) this.axisLabel(fmtPrice(hi - (y - PAD_TOP) / priceH * (hi - lo)), y, COLORS.label, COLORS.text);
        const text = fmtClock(shown.t, true).slice(0, isIntraday(this.tf) ? 16 : 10);
        const tw = ctx.measureText(text).width + 10;
        const tx = Math.max(0, Math.min(pw - tw, x - tw / 2));
        ctx.fillStyle = COLORS.label;
        ctx.fillRect(tx, ph, tw, AXIS_H);
        ctx.fillStyle = COLORS.text;
        ctx.fillText(text, tx + 5, h - 6);
      }
    }
    this.showReadout(shown);
    // For people and tests alike: what is drawn, without reading pixels.
    this.canvas.dataset.bars = String(bars.length);
    this.canvas.dataset.visible = String(last - first + 1);
    if (newest) { this.canvas.dataset.lastT = String(newest.t); this.canvas.dataset.lastClose = String(newest.c); }
  }

  axisLabel(text, y, bg, fg) {
    const { ctx } = this;
    const pw = this.plotW();
    ctx.fillStyle = bg;
    ctx.fillRect(pw, y - 9, AXIS_W, 18);
    ctx.fillStyle = fg;
    ctx.textBaseline = "middle";
    ctx.fillText(text, pw + 6, y);
    ctx.textBaseline = "alphabetic";
  }

  timeLabel(t) {
    const iso = new Date(t).toISOString();
    if (this.tf === "1M") return iso.slice(0, 7);
    if (!isIntraday(this.tf)) return iso.slice(0, 10);
    return iso.slice(11, 16) === "00:00" ? iso.slice(5, 10) : iso.slice(11, 16);
  }

  showReadout(b) {
    const r = this.readout;
    if (!b) { setText(r, ""); return; }
    const chg = b.o ? (b.c / b.o - 1) * 100 : 0;
    const parts = [
      ["", fmtClock(b.t, true).slice(0, isIntraday(this.tf) ? 16 : 10)],
      ["O", fmtPrice(b.o)], ["H", fmtPrice(b.h)], ["L", fmtPrice(b.l)], ["C", fmtPrice(b.c)],
      ["V", fmtQty(Math.round(b.v * 1000) / 1000)], ["", (chg >= 0 ? "+" : "") + chg.toFixed(2) + "%"],
    ];
    const text = parts.map(([k, v]) => (k ? k + " " : "") + v).join("  ");
    setText(r, text);
    r.classList.toggle("up", b.c >= b.o);
    r.classList.toggle("down", b.c < b.o);
    r.dataset.t = String(b.t);
  }
}

// 1, 2 or 5 times a power of ten, at least `raw`.
function niceStep(raw) {
  if (!(raw > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}
