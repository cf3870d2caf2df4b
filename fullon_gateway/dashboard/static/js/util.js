// Small helpers shared by the panels: DOM building (text only, never HTML, so every
// value from the API is escaped by construction), number and time formatting, and
// the error list that shows what went wrong instead of swallowing it.

export const $ = (sel, root = document) => root.querySelector(sel);

// el("td", {class: "num", title: "x"}, "text", child...) -> element. Strings become
// text nodes; attributes are set with setAttribute (no "style", which the CSP forbids).
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function setText(node, value) {
  const text = value === undefined || value === null ? "" : String(value);
  if (node.textContent !== text) node.textContent = text;
}

// Significant decimals for a price: 2 above 1000, more for small prices.
export function fmtPrice(value) {
  const n = Number(value);
  if (value === null || value === undefined || value === "" || !Number.isFinite(n)) return "–";
  const abs = Math.abs(n);
  const digits = abs >= 1000 ? 2 : abs >= 1 ? 4 : abs >= 0.01 ? 6 : 8;
  return n.toLocaleString("en-US", { minimumFractionDigits: Math.min(digits, 2), maximumFractionDigits: digits });
}

export function fmtQty(value) {
  const n = Number(value);
  if (value === null || value === undefined || value === "" || !Number.isFinite(n)) return "–";
  return n.toLocaleString("en-US", { maximumFractionDigits: 8 });
}

export function fmtPct(value) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  return (value > 0 ? "+" : "") + value.toFixed(2) + "%";
}

// Epoch seconds, epoch milliseconds or ISO text -> epoch milliseconds (or NaN).
// fullon's Tick carries float epoch seconds; the gateway's own frames use ms.
export function toMillis(value) {
  if (value === null || value === undefined || value === "") return NaN;
  if (typeof value === "number") return value < 1e11 ? value * 1000 : value;
  if (/^\d+(\.\d+)?$/.test(String(value))) return toMillis(Number(value));
  const text = String(value);
  // A naive "2024-01-15 10:30:00" (fullon's account date) is UTC.
  const iso = /[zZ]|[+-]\d\d:?\d\d$/.test(text) ? text : text.replace(" ", "T") + "Z";
  return Date.parse(iso);
}

export function fmtAge(seconds) {
  if (!Number.isFinite(seconds)) return "–";
  const s = Math.max(0, seconds);
  if (s < 10) return s.toFixed(1) + "s";
  if (s < 120) return Math.round(s) + "s";
  if (s < 7200) return Math.round(s / 60) + "m";
  if (s < 172800) return Math.round(s / 3600) + "h";
  return Math.round(s / 86400) + "d";
}

export function fmtClock(ms, withDate = false) {
  if (!Number.isFinite(ms)) return "–";
  const iso = new Date(ms).toISOString();
  return withDate ? iso.slice(0, 10) + " " + iso.slice(11, 19) : iso.slice(11, 19);
}

// Replay the CSS flash animation on a node: up (green) or down (red) or plain.
export function flash(node, direction) {
  node.classList.remove("flash-up", "flash-down", "flash");
  void node.offsetWidth; // restart the animation
  node.classList.add(direction > 0 ? "flash-up" : direction < 0 ? "flash-down" : "flash");
}

// Errors: shown in a list under the top bar, newest first, each dismissable, the same
// message counted instead of repeated. Also logged to the console for operators.
const shown = new Map();
export function showError(message, detail) {
  const text = String(message) + (detail ? ": " + String(detail) : "");
  console.error("fullon console:", text);
  const list = document.getElementById("errors");
  if (!list) return;
  let item = shown.get(text);
  if (item) {
    item.count += 1;
    setText(item.badge, "×" + item.count);
    list.prepend(item.node);
    return;
  }
  const badge = el("span", { class: "times" });
  const close = el("button", { type: "button", class: "ghost", "aria-label": "Dismiss" }, "×");
  const node = el("li", { class: "error-item" }, el("span", {}, text), badge, close);
  item = { node, badge, count: 1 };
  shown.set(text, item);
  close.addEventListener("click", () => { node.remove(); shown.delete(text); });
  list.prepend(node);
  while (list.children.length > 5) {
    const last = list.lastElementChild;
    for (const [key, value] of shown) if (value.node === last) shown.delete(key);
    last.remove();
  }
}

export function clearErrors() {
  shown.clear();
  document.getElementById("errors")?.replaceChildren();
}
