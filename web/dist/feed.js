// The live event feed. Events are kept in memory (bounded, newest last) and
// only the newest `domCap` matching ones are in the DOM; new rows are added
// in requestAnimationFrame batches so thousands of events per second cost a
// few DOM insertions per frame instead of one per event. Above
// GROUP_ABOVE_EPS matching events a second, consecutive events of one source
// share a row that says how many it stands for, so a flood does not push
// every other source out of sight.

import { asnText, badge, esc, fmtDateTime, fmtInt, fmtTime, ipButton, originLabel, placeHtml } from './format.js';

const MIN_RENDER_GAP_MS = 120; // under load, batch more instead of rendering every frame
export const GROUP_ABOVE_EPS = 50;
const RATE_WINDOW_MS = 2000;

export class Feed {
  /**
   * @param {object} o
   * @param {HTMLElement} o.body     the rowgroup the rows go into
   * @param {HTMLElement} o.status   "showing 500 of N" line
   * @param {HTMLElement} o.empty    shown when no row is rendered
   * @param {import('./filters.js').Filters} o.filters
   */
  constructor({ body, status, empty, filters, memory = 5000, domCap = 500 }) {
    Object.assign(this, { body, status, empty, filters, memory, domCap });
    this.events = [];      // oldest first, at most ~memory * 1.2
    this.matchCount = 0;   // how many of this.events match the filters
    this.received = 0;     // since load or the last clear
    this.pending = [];     // matching events not yet in the DOM, oldest first
    this.full = true;      // the DOM must be rebuilt from this.events
    this.paused = false;
    this.pausedNew = 0;
    this.raf = 0;
    this.lastRender = 0;
    this.arrivals = [];    // [performance.now(), matching events] of the last RATE_WINDOW_MS
    this.grouping = false;
  }

  /** Matching events per second lately, for the grouping decision. */
  rate() {
    const now = performance.now();
    while (this.arrivals.length && now - this.arrivals[0][0] > RATE_WINDOW_MS) this.arrivals.shift();
    return this.arrivals.reduce((a, [, n]) => a + n, 0) / (RATE_WINDOW_MS / 1000);
  }

  /** Appends events (oldest first). Returns how many of them match the filters. */
  add(events) {
    let matched = 0;
    for (const ev of events) {
      this.events.push(ev);
      if (this.filters.matches(ev)) {
        matched++;
        if (!this.paused && !this.full) this.pending.push(ev);
      }
    }
    this.received += events.length;
    this.matchCount += matched;
    if (matched) this.arrivals.push([performance.now(), matched]);
    if (this.paused) this.pausedNew += events.length;
    // Trim in chunks (splice is O(n)): keep between memory and memory * 1.2 events.
    if (this.events.length > this.memory * 1.2) {
      const drop = this.events.length - this.memory;
      for (let i = 0; i < drop; i++) if (this.filters.matches(this.events[i])) this.matchCount--;
      this.events.splice(0, drop);
    }
    // More new rows than the cap: cheaper to rebuild than to insert and trim.
    if (this.pending.length > this.domCap) { this.pending = []; this.full = true; }
    this.schedule();
    return matched;
  }

  /** Replaces the whole memory (after a backfill). */
  replace(events) {
    this.events = events.slice(-this.memory);
    this.refilter();
  }

  /** The filters changed: recount and rebuild. */
  refilter() {
    this.matchCount = 0;
    for (const ev of this.events) if (this.filters.matches(ev)) this.matchCount++;
    this.pending = [];
    this.full = true;
    this.schedule(true);
  }

  clear() {
    this.events = [];
    this.matchCount = 0;
    this.received = 0;
    this.pausedNew = 0;
    this.pending = [];
    this.full = true;
    this.schedule(true);
  }

  setPaused(paused) {
    this.paused = paused;
    this.pausedNew = 0;
    if (!paused) { this.pending = []; this.full = true; }
    this.schedule(true);
  }

  schedule(force = false) {
    if (force) this.forced = true;
    if (!this.raf) this.raf = requestAnimationFrame(() => this.render());
  }

  render() {
    this.raf = 0;
    const now = performance.now();
    if (!this.forced && now - this.lastRender < MIN_RENDER_GAP_MS) { this.schedule(); return; }
    this.forced = false;
    this.lastRender = now;
    if (!this.paused) {
      const grouping = this.rate() > GROUP_ABOVE_EPS;
      if (grouping !== this.grouping) { this.grouping = grouping; this.full = true; }
      if (this.full) this.rebuild();
      else if (this.pending.length) this.prepend();
    }
    this.renderStatus();
  }

  rebuild() {
    const matching = [];
    for (let i = this.events.length - 1; i >= 0; i--) {
      const ev = this.events[i];
      if (this.filters.matches(ev)) matching.push(ev);
    }
    this.body.innerHTML = runs(matching, this.grouping).slice(0, this.domCap).map((r) => rowHtml(r, false)).join('');
    this.full = false;
    this.pending = [];
  }

  prepend() {
    const batch = this.pending.slice().reverse(); // newest first, as the rows are
    this.pending = [];
    const flash = batch.length <= 10; // a highlight is only readable when a few rows arrive at a time
    const html = runs(batch, this.grouping).map((r) => rowHtml(r, flash)).join('');
    this.body.insertAdjacentHTML('afterbegin', html);
    const rows = this.body.children;
    if (rows.length > this.domCap) {
      const r = document.createRange();
      r.setStartBefore(rows[this.domCap]);
      r.setEndAfter(this.body.lastElementChild);
      r.deleteContents();
    }
  }

  renderStatus() {
    const rows = this.body.children;
    let shown = 0;
    for (const r of rows) shown += Number(r.dataset.n) || 1;
    shown = Math.min(shown, this.matchCount); // grouped rows can outlive the events memory keeps
    let text = `Showing ${fmtInt(shown)} of ${fmtInt(this.matchCount)} ${this.filters.isEmpty ? '' : 'matching '}events`;
    if (shown > rows.length) text += ` in ${fmtInt(rows.length)} rows (above ${GROUP_ABOVE_EPS} events/s a source's consecutive events in one second share a row)`;
    if (this.matchCount > shown && rows.length === this.domCap) text += ` (newest ${fmtInt(this.domCap)} rows rendered)`;
    text += ` · ${fmtInt(this.events.length)} kept in memory (max ${fmtInt(this.memory)})`;
    if (this.paused) text = `Paused: ${fmtInt(this.pausedNew)} new events not shown yet (still counted). ` + text;
    this.status.textContent = text;
    this.status.classList.toggle('paused', this.paused);
    this.empty.hidden = shown > 0;
    if (!shown) {
      this.empty.textContent = this.events.length
        ? 'No event matches the filters.'
        : (this.received ? 'Cleared. Waiting for new events…' : 'Waiting for events…');
    }
  }
}

/**
 * Events (newest first) as rows: one per event, or with `group` one per run of
 * consecutive events from the same source within one second (so every row
 * still has a time): {ev: the newest, n, oldest: ts_ms}.
 */
export function runs(events, group) {
  const out = [];
  for (const ev of events) {
    const last = out[out.length - 1];
    if (group && last && last.ev.src === ev.src && Math.floor(last.ev.ts_ms / 1000) === Math.floor(ev.ts_ms / 1000)) {
      last.n++;
      last.oldest = ev.ts_ms;
    } else {
      out.push({ ev, n: 1, oldest: ev.ts_ms });
    }
  }
  return out;
}

function rowHtml({ ev, n, oldest }, flash) {
  const g = ev.geo;
  const weight = ev.weight > 1 ? ` <span class="weight" title="this event stands for ${ev.weight} packets">×${ev.weight}</span>` : '';
  const more = n > 1
    ? `<span class="group" title="${n} events from ${esc(ev.src)} since ${esc(fmtTime(oldest))}; this row shows the newest">${n} events</span> ` : '';
  const port = Number.isInteger(ev.dst_port) ? String(ev.dst_port) : '';
  const origin = originLabel(ev.origin);
  const host = ev.origin?.hostname ? ` title="${esc(ev.origin.hostname)} ${esc(ev.origin.prefix ?? '')}"` : '';
  const asn = esc(asnText(g));
  // One line per event; the full detail is in the tooltip when it is cut.
  return `<div role="row" class="row${flash ? ' new' : ''}" data-src="${esc(ev.src)}" data-class="${esc(ev.class)}" data-n="${n}">`
    + `<span role="cell" class="t"><time datetime="${new Date(ev.ts_ms).toISOString()}" title="${esc(fmtDateTime(ev.ts_ms))}">${fmtTime(ev.ts_ms)}</time></span>`
    + `<span role="cell" class="src">${ipButton(ev.src)}</span>`
    + `<span role="cell" class="geo">${placeHtml(g)}</span>`
    + `<span role="cell" class="net" title="${asn}">${asn}</span>`
    + `<span role="cell" class="port">${port || '<span aria-hidden="true">–</span><span class="sr-only">none</span>'}</span>`
    + `<span role="cell" class="cls">${badge(ev.class)}</span>`
    + `<span role="cell" class="detail" title="${esc(ev.detail)}">${more}${esc(ev.detail)}${weight}</span>`
    + `<span role="cell" class="origin"${host}>${esc(origin)}</span></div>`;
}
