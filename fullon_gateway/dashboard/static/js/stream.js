// One WebSocket to /api/v1/cache/ws carrying every subscription of the page.
//
// It authenticates with its first message (the token never goes into a URL), remembers
// the last seq of each subscription, and when the socket drops it reconnects with
// backoff and subscribes again with `since`, so the server replays what was missed
// ("recovered": true) or sends a fresh snapshot ("recovered": false). The state it
// reports: connecting, connected, reconnecting, resumed (gapless or not), offline.

import { session, refresh, logout } from "./session.js";
import { showError } from "./util.js";

const PING_EVERY = 15000;   // our own keep-alive; the server closes a silent socket
const SILENT_LIMIT = 45000; // nothing at all for this long: the link is dead
const FATAL = new Set(["session revoked", "user disabled", "key revoked", "role changed",
                       "insufficient scope", "missing token"]);

export class StreamClient {
  constructor(onState) {
    this.onState = onState;
    this.subs = new Map(); // request_id -> {params, handler, lastSeq, key}
    this.nextId = 1;
    this.ws = null;
    this.wanted = false;
    this.attempt = 0;
    this.everConnected = false;
    this.timers = {};
    this.resume = null; // counts of the resume in progress
    this.lastResume = null;
    this.replayed = 0;
    session.on("token", () => this.sendRefresh());
  }

  start() {
    this.wanted = true;
    this.open();
  }

  stop() {
    this.wanted = false;
    clearTimeout(this.timers.retry);
    clearInterval(this.timers.ping);
    if (this.ws) this.ws.close(1000, "logout");
    this.ws = null;
    this.subs.clear();
    this.everConnected = false;
    this.setState("offline", "");
  }

  // Subscribe; handler(frame) gets every frame (snapshot: true means "replace").
  subscribe(params, handler) {
    const id = "s" + this.nextId++;
    const sub = { id, params, handler, lastSeq: null, key: null, live: false };
    this.subs.set(id, sub);
    if (this.ready) this.sendSubscribe(sub);
    return {
      close: () => {
        this.subs.delete(id);
        if (this.resume && sub.sentSince && sub.key === null) this.settle();
        if (sub.key && this.ready) this.send({ action: "unsubscribe", request_id: "u" + id, params: { stream_key: sub.key } });
      },
    };
  }

  get ready() { return this.ws && this.ws.readyState === WebSocket.OPEN && this.authed; }

  setState(state, detail) {
    this.state = state;
    this.onState(state, detail || "");
  }

  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  sendSubscribe(sub) {
    const params = Object.assign({}, sub.params);
    sub.sentSince = sub.lastSeq !== null;
    if (sub.sentSince) params.since = sub.lastSeq;
    sub.key = null;
    this.send({ action: "subscribe", request_id: sub.id, params });
  }

  sendRefresh() {
    if (this.ready) this.send({ action: "refresh", request_id: "refresh", params: { token: session.token } });
  }

  open() {
    if (!this.wanted || !session.token) return;
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(scheme + location.host + "/api/v1/cache/ws");
    this.ws = ws;
    this.authed = false;
    this.lastHeard = Date.now();
    this.setState(this.everConnected ? "reconnecting" : "connecting",
                  this.attempt ? "attempt " + (this.attempt + 1) : "");
    ws.onopen = () => {
      this.send({ action: "auth", request_id: "auth", params: { token: session.token } });
    };
    ws.onmessage = (ev) => {
      this.lastHeard = Date.now();
      let data;
      try { data = JSON.parse(ev.data); } catch (err) { showError("Unreadable stream frame", err.message); return; }
      for (const msg of Array.isArray(data) ? data : [data]) this.dispatch(msg);
    };
    ws.onclose = (ev) => this.closed(ws, ev);
    ws.onerror = () => {}; // onclose follows with the code and reason
  }

  dispatch(msg) {
    if (msg.request_id === "auth" && "success" in msg) {
      if (!msg.success) { showError("Stream login refused", msg.error); return; }
      this.authed = true;
      this.attempt = 0;
      clearInterval(this.timers.ping);
      this.timers.ping = setInterval(() => this.keepAlive(), PING_EVERY);
      for (const sub of this.subs.values()) this.sendSubscribe(sub);
      const resuming = [...this.subs.values()].filter((s) => s.sentSince).length;
      if (this.everConnected && resuming) {
        this.replayed = 0;
        this.resume = { pending: resuming, recovered: 0, fresh: 0 };
        this.setState("reconnecting", "resubscribing");
      } else {
        this.setState("connected", "");
      }
      this.everConnected = true;
      return;
    }
    if (msg.request_id === "refresh" && "success" in msg) {
      if (!msg.success) showError("Stream token refresh refused", msg.error);
      return;
    }
    if (msg.action === "subscription_ended") {
      showError("Subscription ended", (msg.reason || "") + " (" + msg.stream_key + ")");
      return;
    }
    const sub = this.subs.get(msg.request_id);
    if ("success" in msg) {
      if (!sub) return; // pong, unsubscribe ack
      if (!msg.success) {
        showError("Subscription refused: " + (msg.error_code || ""), msg.error);
        if (this.resume && sub.sentSince) { this.resume.fresh += 1; this.settle(); }
        return;
      }
      sub.key = msg.result && msg.result.stream_key;
      if (this.resume && sub.sentSince) {
        // With `since` the ack says whether the gap is replayed (true) or a fresh
        // snapshot follows (false).
        if (msg.result && msg.result.recovered === true) this.resume.recovered += 1;
        else this.resume.fresh += 1;
        this.settle();
      }
      return;
    }
    if (!sub) return;
    if (typeof msg.seq === "number" && (sub.lastSeq === null || msg.seq > sub.lastSeq)) sub.lastSeq = msg.seq;
    if (msg.recovered === true && !msg.snapshot) {
      this.replayed += 1;
      if (this.state === "resumed") this.setState("resumed", this.resumeDetail());
    }
    try {
      sub.handler(msg);
    } catch (err) {
      showError("A panel failed to apply a stream frame", err.message);
    }
  }

  // One resubscription answered; when all are, the resume is over.
  settle() {
    const r = this.resume;
    r.pending -= 1;
    if (r.pending > 0) return;
    this.resume = null;
    this.lastResume = r;
    this.setState("resumed", this.resumeDetail());
  }

  resumeDetail() {
    const r = this.lastResume;
    if (!r) return "";
    const how = r.fresh === 0 ? "gapless" : "gap: " + r.fresh + " fresh snapshot" + (r.fresh > 1 ? "s" : "");
    return how + " · " + this.replayed + " replayed";
  }

  keepAlive() {
    if (Date.now() - this.lastHeard > SILENT_LIMIT) {
      // Half-open TCP: the browser may not notice for minutes. Start over.
      if (this.ws) this.ws.close(4000, "silent");
      return;
    }
    this.send({ action: "ping", request_id: "ping" });
  }

  async closed(ws, ev) {
    if (ws !== this.ws) return;
    clearInterval(this.timers.ping);
    this.ws = null;
    this.authed = false;
    this.resume = null;
    if (!this.wanted) return;
    const reason = ev.reason || "";
    if (ev.code === 1008 && FATAL.has(reason)) {
      showError("The gateway closed the stream", reason);
      this.wanted = false;
      this.setState("offline", reason);
      if (reason !== "insufficient scope") logout();
      return;
    }
    if (ev.code === 1008 && (reason === "token expired" || reason === "invalid token")) {
      await refresh().catch(() => false);
      if (!session.token) return;
    }
    this.attempt += 1;
    const delay = Math.min(15000, 500 * 2 ** Math.min(this.attempt - 1, 5)) * (0.75 + Math.random() * 0.5);
    this.setState(this.everConnected ? "reconnecting" : "connecting",
                  (reason || "closed " + ev.code) + "; retry in " + Math.round(delay / 100) / 10 + "s");
    clearTimeout(this.timers.retry);
    this.timers.retry = setTimeout(() => this.open(), delay);
  }
}
