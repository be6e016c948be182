// The WebSocket to /ws: connects, reconnects with exponential backoff
// (capped at 5 s, so a restarted daemon is picked up quickly), measures the
// round-trip time with ping/pong and tells "the daemon refused us" apart from
// "the daemon is gone".

import { api, ApiError, reportUnauthorized, wsUrl } from './auth.js';

const PING_EVERY_MS = 2000;
const SILENCE_LIMIT_MS = 10000; // stats arrive every second: 10 s of nothing means a dead link
const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 5000;

export class LiveSocket {
  /**
   * @param {object} o
   * @param {() => object} o.params  query parameters (server-side filters) for each connect
   * @param {(frame: object) => void} o.onFrame
   * @param {(state: string, info: object) => void} o.onState  connecting | live | reconnecting | unauthorized
   * @param {(ms: number) => void} o.onRtt
   */
  constructor({ params, onFrame, onState, onRtt }) {
    Object.assign(this, { params, onFrame, onState, onRtt });
    this.ws = null;
    this.attempt = 0;
    this.connects = 0;      // snapshots received: a reconnect shows as +1
    this.state = 'connecting';
    this.timers = {};
    this.lastMessage = 0;
  }

  start() { this.connect(); }

  send(obj) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(obj));
  }

  setState(state, info = {}) {
    this.state = state;
    this.onState(state, { attempt: this.attempt, connects: this.connects, ...info });
  }

  connect() {
    clearTimeout(this.timers.retry);
    this.setState(this.connects === 0 && this.attempt === 0 ? 'connecting' : 'reconnecting');
    let opened = false;
    let ws;
    try {
      ws = new WebSocket(wsUrl('/ws', this.params()));
    } catch (e) {
      this.scheduleRetry(String(e.message ?? e));
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      opened = true;
      this.lastMessage = Date.now();
      this.ping();
      this.timers.ping = setInterval(() => this.ping(), PING_EVERY_MS);
      this.timers.watch = setInterval(() => {
        if (Date.now() - this.lastMessage > SILENCE_LIMIT_MS) ws.close(4000, 'silent');
      }, 1000);
    };
    ws.onmessage = (msg) => {
      this.lastMessage = Date.now();
      let frame;
      try { frame = JSON.parse(msg.data); } catch { return; } // a broken frame must not kill the page
      if (frame.type === 'pong') {
        if (Number.isFinite(frame.t)) this.onRtt(Date.now() - frame.t);
        return;
      }
      if (frame.type === 'snapshot') {
        this.attempt = 0;
        this.connects++;
        this.setState('live');
      }
      this.onFrame(frame);
    };
    ws.onclose = (ev) => {
      clearInterval(this.timers.ping);
      clearInterval(this.timers.watch);
      if (this.ws !== ws) return;
      this.ws = null;
      if (ev.code === 4401) { this.unauthorized(); return; }
      if (!opened) {
        // A refused upgrade (401) looks like any network error to a browser
        // WebSocket: ask the HTTP API to tell which one it was.
        this.probe();
        return;
      }
      this.scheduleRetry(ev.reason || `closed (${ev.code})`);
    };
  }

  async probe() {
    try {
      await api('/api/stats');
      this.scheduleRetry('WebSocket upgrade failed');
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) this.unauthorized();
      else this.scheduleRetry(e.message);
    }
  }

  unauthorized() {
    clearTimeout(this.timers.retry);
    reportUnauthorized();
    this.setState('unauthorized');
    // No retry: the same token will be refused again. Reloading with ?token= fixes it.
  }

  scheduleRetry(reason) {
    if (this.state === 'unauthorized') return;
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempt);
    const delay = Math.min(BACKOFF_MAX_MS, base * (0.75 + Math.random() * 0.5)); // jitter: many tabs must not reconnect in lockstep
    this.attempt++;
    this.setState('reconnecting', { reason, retryInMs: delay });
    this.timers.retry = setTimeout(() => this.connect(), delay);
  }

  ping() { this.send({ type: 'ping', t: Date.now() }); }

  /** Reconnect now with fresh parameters (used when server-side filters change and the socket is down). */
  reconnectNow() {
    if (this.state === 'unauthorized') return;
    if (this.ws) this.ws.close(1000, 'reconnect');
    else this.connect();
  }
}
