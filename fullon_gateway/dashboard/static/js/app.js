// The console: log in, then one WebSocket feeds every panel. Views: Trade (markets,
// chart, open orders, fills), Account (balances, positions, bots), Operators (admins).

import { session, login, logout, restore } from "./session.js";
import { StreamClient } from "./stream.js";
import { Markets } from "./markets.js";
import { ChartData } from "./chartdata.js";
import { CandleChart } from "./chart.js";
import { Account } from "./account.js";
import { Orders } from "./orders.js";
import { Operators } from "./operators.js";
import { TIMEFRAMES } from "./timeframes.js";
import { $, setText, showError, clearErrors } from "./util.js";

const TF_KEY = "fullon_timeframe";
const STATE_TEXT = { offline: "offline", connecting: "connecting", connected: "connected",
                     reconnecting: "reconnecting", resumed: "resumed" };

let stream, markets, chartData, chart, account, orders, operators;

function showConnection(state, detail) {
  const pill = $("#conn");
  pill.dataset.state = state;
  setText(pill, STATE_TEXT[state] + (detail ? " · " + detail : ""));
  pill.title = "Live stream: " + state + (detail ? " (" + detail + ")" : "");
}

function chartStatus(text) {
  const node = $("#chart-status");
  setText(node, text);
  node.hidden = !text;
}

function selectView(name) {
  const allowed = name === "ops" ? session.isAdmin() : name === "account" || name === "trade";
  const view = allowed ? name : "trade";
  for (const tab of document.querySelectorAll("#tabs .tab")) tab.setAttribute("aria-selected", String(tab.dataset.view === view));
  for (const section of document.querySelectorAll("main .view")) section.hidden = section.dataset.view !== view;
  if (location.hash.slice(1) !== view) history.replaceState(null, "", "#" + view);
  if (view === "trade" && chart) chart.resize();
}

function pickTimeframe(tf) {
  for (const b of document.querySelectorAll("#timeframes button")) b.setAttribute("aria-pressed", String(b.dataset.tf === tf));
  localStorage.setItem(TF_KEY, tf);
  return tf;
}

let picked = { exchange: null, symbol: null, tf: null };
function loadChart() {
  if (!picked.exchange) return;
  setText($("#chart-title"), picked.symbol + " · " + picked.exchange);
  chartData.load(picked.exchange, picked.symbol, picked.tf);
}

async function enter() {
  clearErrors();
  const user = session.user || {};
  $("#login-view").hidden = true;
  $("#tabs").hidden = false;
  $("#logout").hidden = false;
  setText($("#who"), (user.email || "") + (user.role === "admin" ? " · admin" : ""));
  // Operators exist in the page only for admins.
  const opsTab = $("#tabs .tab[data-view=ops]");
  if (session.isAdmin()) opsTab.hidden = false;
  else { opsTab?.remove(); $("#view-ops")?.remove(); }

  stream = new StreamClient(showConnection);
  stream.start();
  chart = new CandleChart($("#chart"), $("#chart-readout"));
  chartData = new ChartData(stream, (reason, added) => chart.setData(chartData.bars, chartData.tf, reason, added), chartStatus);
  chart.onNeedOlder = () => chartData.loadOlder();
  picked.tf = pickTimeframe(TIMEFRAMES.includes(localStorage.getItem(TF_KEY)) ? localStorage.getItem(TF_KEY) : "1m");
  markets = new Markets(stream, (exchange, symbol) => { picked.exchange = exchange; picked.symbol = symbol; loadChart(); });
  account = new Account(stream);
  orders = new Orders(stream, (exId) => account.accountName(exId));
  selectView(location.hash.slice(1) || "trade");
  // Orders name their exchange accounts: list the accounts first.
  const accountStarted = account.start();
  const starts = [markets.start(), accountStarted, accountStarted.then(() => orders.start())];
  if (session.isAdmin() && $("#view-ops")) {
    operators = new Operators(stream);
    starts.push(operators.start());
  }
  await Promise.all(starts.map((p) => p.catch((err) => showError("A panel failed to start", err.message))));
  document.body.dataset.ready = "true";
}

function leave() {
  for (const part of [markets, account, orders, operators, chartData]) if (part) part.stop();
  if (stream) stream.stop();
  markets = account = orders = operators = chartData = chart = stream = null;
  // A fresh page: nothing of the last user stays in the DOM.
  location.replace("/");
}

session.on("change", () => { if (!session.token) leave(); });

$("#login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = ev.target;
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  setText($("#login-error"), "");
  try {
    await login(form.email.value, form.password.value);
    form.password.value = "";
    await enter();
  } catch (err) {
    setText($("#login-error"), err.status === 429 ? "Too many attempts; wait a moment and try again."
      : err.message || "Login failed");
  } finally {
    button.disabled = false;
  }
});
$("#logout").addEventListener("click", () => logout());
$("#tabs").addEventListener("click", (ev) => {
  const tab = ev.target.closest(".tab");
  if (tab) selectView(tab.dataset.view);
});
$("#timeframes").addEventListener("click", (ev) => {
  const b = ev.target.closest("button[data-tf]");
  if (!b || b.dataset.tf === picked.tf) return;
  picked.tf = pickTimeframe(b.dataset.tf);
  loadChart();
});
window.addEventListener("hashchange", () => { if (session.token) selectView(location.hash.slice(1)); });
window.addEventListener("unhandledrejection", (ev) => showError("Unexpected error", ev.reason && ev.reason.message));
window.addEventListener("error", (ev) => showError("Script error", ev.message));

restore().then((ok) => {
  if (ok) return enter();
  $("#login-view").hidden = false;
  $("#login-form").email.focus();
  document.body.dataset.ready = "login";
}).catch((err) => showError("Could not restore the session", err.message));
