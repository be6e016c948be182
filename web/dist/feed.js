// The live event feed. Events are kept in memory (bounded, newest last) and
// only the newest `domCap` matching ones are in the DOM; new rows are added
// in requestAnimationFrame batches so thousands of events per second cost a
// few DOM insertions per frame instead of one per event.

import { asnText, badge, esc, fmtInt, fmtTime, originLabel, placeHtml } from './format.js';

const MIN_RENDER_GAP_MS = 120; // under load, batch more instead of rendering every frame

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
      if (this.full) this.rebuild();
      else if (this.pending.length) this.prepend();
    }
    this.renderStatus();
  }

  rebuild() {
    const rows = [];
    for (let i = this.events.length - 1; i >= 0 && rows.length < this.domCap; i--) {
      const ev = this.events[i];
      if (this.filters.matches(ev)) rows.push(rowHtml(ev, false));
    }
    this.body.innerHTML = rows.join('');
    this.full = false;
    this.pending = [];
  }

  prepend() {
    const batch = this.pending;
    this.pending = [];
    const flash = batch.length <= 10; // a highlight is only readable when a few rows arrive at a time
    let html = '';
    for (let i = batch.length - 1; i >= 0; i--) html += rowHtml(batch[i], flash);
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
    const shown = this.body.children.length;
    let text = `Showing ${fmtInt(shown)} of ${fmtInt(this.matchCount)} ${this.filters.isEmpty ? '' : 'matching '}events`;
    if (this.matchCount > shown && shown === this.domCap) text += ` (newest ${fmtInt(this.domCap)} rendered)`;
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

function rowHtml(ev, flash) {
  const g = ev.geo;
  const weight = ev.weight > 1 ? ` <span class="weight" title="this event stands for ${ev.weight} packets">×${ev.weight}</span>` : '';
  const origin = originLabel(ev.origin);
  const host = ev.origin?.hostname ? ` title="${esc(ev.origin.hostname)} ${esc(ev.origin.prefix ?? '')}"` : '';
  const asn = esc(asnText(g));
  // One line per event; the full detail is in the tooltip when it is cut.
  return `<div role="row" class="row${flash ? ' new' : ''}" data-src="${esc(ev.src)}" data-class="${esc(ev.class)}">`
    + `<span role="cell" class="t">${fmtTime(ev.ts_ms)}</span>`
    + `<span role="cell" class="src"><button type="button" class="ip" data-ip="${esc(ev.src)}" title="Look up ${esc(ev.src)}">${esc(ev.src)}</button></span>`
    + `<span role="cell" class="geo">${placeHtml(g)}</span>`
    + `<span role="cell" class="net" title="${asn}">${asn}</span>`
    + `<span role="cell" class="cls">${badge(ev.class)}</span>`
    + `<span role="cell" class="detail" title="${esc(ev.detail)}">${esc(ev.detail)}${weight}</span>`
    + `<span role="cell" class="origin"${host}>${esc(origin)}</span></div>`;
}
