// Packets per second per class over the last 5/15/60 minutes, drawn with the
// vendored uPlot. Keeps one value per second per series in a ring of 3600
// slots: filled from the snapshot's `history`, then from `update.rates`.
// A second nobody vouched for (before the daemon started, or while the page
// was not connected) is unknown, drawn as a gap, never as a zero: only while
// live does a second without an update frame mean "nothing happened".
// Which series there are is the daemon's meta.rate_series (setSeries).
// A range from the history store (showRange) replaces the live seconds until
// showLive(); dragging across the chart picks one (onSelect).

import uPlot from './vendor/uplot/uPlot.esm.js';
import { serverNow } from './clock.js';
import { fmtClock, fmtCompact, label, TZ } from './format.js';

const SPAN_S = 3600;

const cssVar = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

export class RateChart {
  /** @param {HTMLElement} el  container; gets data-samples / data-nonzero for tests and tools */
  constructor(el) {
    this.el = el;
    this.series = [];       // names, from the daemon's meta (setSeries)
    this.secs = new Float64Array(SPAN_S).fill(-1);           // which second each slot holds
    this.vals = [];
    this.windowMin = 5;
    this.plot = null;
    this.liveFrom = null;   // first second this connection vouches for; null while not live
    this.downSec = -Infinity; // the second the last connection was lost in
    this.vouchFrom = Infinity; // first second of this connection that live rates may fill
    this.range = null;      // {xs, ys, from, to}: a history range shown instead of the live seconds
    this.onSelect = null;   // (fromMs, toMs) => ..., when a range is dragged across the chart
    new ResizeObserver(() => this.resize()).observe(el);
    this.timer = setInterval(() => this.render(), 1000);
  }

  /** The daemon's rate series (meta.rate_series); a change starts the chart afresh. */
  setSeries(names) {
    const list = [...(names ?? [])];
    if (list.join() === this.series.join()) return;
    this.series = list;
    this.secs.fill(-1);
    this.vals = list.map(() => new Float64Array(SPAN_S));
    this.el.dataset.series = list.join(',');
    this.restyle();
  }

  set(sec, series, value) {
    const i = sec % SPAN_S;
    if (this.secs[i] !== sec) {
      this.secs[i] = sec;
      for (const v of this.vals) v[i] = 0;
    }
    this.vals[series][i] = value;
  }

  /** The value of a second, or null when the second is unknown (a gap). */
  get(sec, series) {
    const i = sec % SPAN_S;
    return this.secs[i] === sec ? this.vals[series][i] : null;
  }

  /** Marks the seconds up to `toSec` that this live connection covered: no frame there means 0/s. */
  vouch(toSec) {
    if (this.liveFrom === null) return;
    for (let sec = Math.max(this.liveFrom, toSec - SPAN_S + 1); sec <= toSec; sec++) {
      if (this.secs[sec % SPAN_S] !== sec && this.series.length) this.set(sec, 0, 0);
    }
    this.liveFrom = Math.max(this.liveFrom, toSec + 1);
  }

  /**
   * `history` of a snapshot: {step_ms, end_ms, series: {icmp: [pps, ...], ...}} (oldest first).
   * `startMs` is when the daemon started: the seconds before it are gaps, not zeros.
   */
  setHistory(h, startMs = -Infinity) {
    const startSec = Math.floor(startMs / 1000);
    // Live from here on; a daemon that has not closed a second yet (end_ms 0) vouches for nothing before now.
    const now = Math.floor(serverNow() / 1000);
    if (!h?.series || !(h.end_ms > 0)) {
      this.liveFrom = Math.max(now + 1, startSec, this.downSec + 1); // this second began before the daemon did
      this.vouchFrom = this.liveFrom;
      this.render();
      return;
    }
    const step = Math.max(1, Math.round((h.step_ms ?? 1000) / 1000));
    const endSec = Math.floor(h.end_ms / 1000);
    this.series.forEach((name, k) => {
      const arr = h.series[name] ?? [];
      for (let j = 0; j < arr.length; j++) {
        // null: nobody counted that step (before the start, unless the daemon restored it from its history store).
        if (arr[j] === null || arr[j] === undefined) continue;
        const sec = endSec - (arr.length - 1 - j) * step;
        for (let s = 0; s < step; s++) this.set(sec - s, k, (Number(arr[j]) || 0) / step);
      }
    });
    this.liveFrom = Math.max(endSec + 1, startSec, this.downSec + 1);
    this.vouchFrom = this.liveFrom;
    this.render();
  }

  /** The connection went down: what came until now stands, what follows is unknown until the next snapshot. */
  setDown() {
    this.downSec = Math.floor(serverNow() / 1000); // partly down: only history can vouch for it
    this.vouch(this.downSec - 1);
    if (this.secs[this.downSec % SPAN_S] === this.downSec) this.secs[this.downSec % SPAN_S] = -1; // a live frame may have set it
    this.liveFrom = null;
    this.render();
  }

  /** `update.rates` at the daemon's ts_ms: the newest value of a second wins. */
  addRates(tsMs, rates) {
    const sec = Math.floor(tsMs / 1000);
    // Only for seconds this connection vouches for: a daemon's rates before its first complete second say nothing.
    if (!rates || this.liveFrom === null || sec < this.vouchFrom) return;
    this.series.forEach((name, k) => this.set(sec, k, Number(rates[name]) || 0));
  }

  /**
   * A range of the history store ({step_ms, end_ms, series}: packets per
   * step, null where nobody counted), drawn as packets/s per step.
   */
  showRange(h, fromMs, toMs) {
    const step = Math.max(1, h?.step_ms ?? 60000);
    const n = Math.max(0, ...this.series.map((name) => (h?.series?.[name] ?? []).length));
    const xs = Array.from({ length: n }, (_, j) => (h.end_ms - (n - j) * step) / 1000);
    const ys = this.series.map((name) => Array.from({ length: n }, (_, j) => {
      const v = h?.series?.[name]?.[j];
      return v === null || v === undefined ? null : v / (step / 1000);
    }));
    this.range = { xs, ys, from: fromMs, to: toMs };
    this.el.dataset.range = `${fromMs}-${toMs}`;
    this.el.dataset.rangeStep = String(step);
    this.restyle();
  }

  /** Back to the live seconds. */
  showLive() {
    this.range = null;
    delete this.el.dataset.range;
    delete this.el.dataset.rangeStep;
    this.restyle();
  }

  setWindow(minutes) {
    this.windowMin = minutes;
    this.render();
  }

  /** Theme changed: uPlot bakes colours in, so rebuild it. */
  restyle() {
    this.plot?.destroy();
    this.plot = null;
    this.render();
  }

  resize() {
    if (this.plot && this.el.clientWidth) this.plot.setSize(this.size());
    else this.render();
  }

  size() {
    return { width: this.el.clientWidth, height: this.el.clientWidth < 500 ? 170 : 220 };
  }

  data() {
    if (this.range) {
      const { xs, ys } = this.range;
      const known = ys[0]?.filter((v) => v !== null).length ?? 0;
      this.el.dataset.samples = String(xs.length);
      this.el.dataset.nonzero = String(xs.filter((_, j) => ys.some((y) => y[j] > 0)).length);
      this.el.dataset.unknown = String(xs.length - known);
      return [xs, ...ys];
    }
    const end = Math.floor(serverNow() / 1000) - 1; // the last complete second
    this.vouch(end);
    const n = this.windowMin * 60;
    const xs = new Array(n);
    const ys = this.series.map(() => new Array(n));
    let nonzero = 0, max = 0, unknown = 0, gaps = 0, seenKnown = false, inGap = false;
    for (let j = 0; j < n; j++) {
      const sec = end - n + 1 + j;
      xs[j] = sec;
      let any = false;
      for (let k = 0; k < this.series.length; k++) {
        const v = this.get(sec, k);
        ys[k][j] = v;
        if (v > 0) any = true;
        if (v > max) max = v;
      }
      if (any) nonzero++;
      if ((ys[0]?.[j] ?? null) === null) {
        unknown++;
        if (seenKnown && !inGap) gaps++; // a gap after known seconds: the daemon or the link was down
        inGap = true;
      } else {
        seenKnown = true;
        inGap = false;
      }
    }
    this.el.dataset.samples = String(n);
    this.el.dataset.nonzero = String(nonzero);
    this.el.dataset.max = String(max);
    this.el.dataset.unknown = String(unknown); // seconds drawn as gaps
    this.el.dataset.gaps = String(gaps);       // gaps that follow known seconds (downtime, not "not yet started")
    return [xs, ...ys];
  }

  render() {
    if (!this.el.clientWidth || document.hidden || !this.series.length) return; // no series before the meta
    const data = this.data();
    if (this.plot) { this.plot.setData(data); return; }
    const muted = cssVar('--muted'), grid = cssVar('--grid');
    // uPlot draws the axis labels on its canvas: say them in the markup too.
    const xLabel = `Time (${TZ})`, yLabel = 'packets/s';
    this.el.dataset.axes = `${xLabel} | ${yLabel}`;
    this.el.setAttribute('aria-label', `${yLabel} per class (${this.series.map(label).join(', ')}) against time (${TZ})`);
    const axis = { stroke: muted, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    this.plot = new uPlot({
      ...this.size(),
      class: 'rate-chart',
      // Dragging across picks a range (the hook below), without zooming the live chart itself.
      cursor: { drag: { x: true, y: false, setScale: false } },
      hooks: {
        setSelect: [(u) => {
          if (u.select.width < 4) return;
          const from = u.posToVal(u.select.left, 'x'), to = u.posToVal(u.select.left + u.select.width, 'x');
          u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
          this.onSelect?.(Math.round(from * 1000), Math.round(to * 1000));
        }],
      },
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
      series: [
        { label: 'time', value: (u, v) => (v == null ? '–' : `${fmtClock(v * 1000)} ${TZ}`) },
        ...this.series.map((name) => {
          const c = cssVar(`--c-${name}`) || cssVar('--c-other_ipv4'); // a series the page has no colour for
          return {
            label: label(name),
            stroke: c,
            fill: `${c}1f`,
            width: 1.5,
            points: { show: false },
            value: (u, v) => (v == null ? '–' : `${fmtCompact(v)}/s`),
          };
        }),
      ],
      axes: [
        { ...axis, label: xLabel, labelSize: 18, values: (u, vals) => vals.map((v) => fmtClock(v * 1000, { seconds: vals.some((x) => x % 60) })) },
        { ...axis, label: yLabel, labelSize: 18, size: 48, values: (u, vals) => vals.map((v) => fmtCompact(v)) },
      ],
    }, data, this.el);
  }
}
