// The world map: country outlines from the vendored world-atlas TopoJSON on a
// <canvas> (equirectangular, no tiles, nothing fetched from outside), one
// circle per source sized by its recent packet rate (exponentially decaying)
// and a short flash for every new event.

import { serverNow } from './clock.js';
import { asnText, esc, flag, placeText } from './format.js';

const TAU_MS = 20000;          // decay time constant: a circle shows ~the last minute
const FLASH_MS = 900;
const MAX_FLASHES = 250;       // under a flood, more rings are noise and cost frames
const MAX_POINTS = 5000;
const MAX_UNLOCATED = 10000;
const LAT_TOP = 84, LAT_BOTTOM = -58; // Antarctica has no sources worth the space
const ANTARCTICA = '010';

/** Decodes a TopoJSON topology's object into polygons: arrays of rings of [lon, lat]. */
export function topoPolygons(topo, name = 'countries') {
  const [sx, sy] = topo.transform?.scale ?? [1, 1];
  const [tx, ty] = topo.transform?.translate ?? [0, 0];
  const quantized = Boolean(topo.transform);
  const arcs = topo.arcs.map((arc) => {
    let x = 0, y = 0;
    return arc.map(([dx, dy]) => {
      if (quantized) { x += dx; y += dy; return [x * sx + tx, y * sy + ty]; }
      return [dx, dy];
    });
  });
  const ring = (ids) => {
    const pts = [];
    for (const id of ids) {
      const a = id >= 0 ? arcs[id] : arcs[~id].slice().reverse();
      // Consecutive arcs share their joining point.
      for (let k = pts.length ? 1 : 0; k < a.length; k++) pts.push(a[k]);
    }
    return pts;
  };
  const out = [];
  for (const g of topo.objects[name].geometries) {
    if (g.id === ANTARCTICA) continue;
    const polys = g.type === 'Polygon' ? [g.arcs] : g.type === 'MultiPolygon' ? g.arcs : [];
    for (const p of polys) out.push(p.map(ring).map(unwrap));
  }
  return out;
}

/** Makes a ring continuous across the antimeridian (lon may then leave [-180, 180]). */
function unwrap(pts) {
  let shift = 0;
  const out = [pts[0].slice()];
  for (let i = 1; i < pts.length; i++) {
    const d = pts[i][0] - pts[i - 1][0];
    if (d > 180) shift -= 360; else if (d < -180) shift += 360;
    out.push([pts[i][0] + shift, pts[i][1]]);
  }
  out.wraps = out.some(([lon]) => lon < -180 || lon > 180);
  return out;
}

const cssVar = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

export class WorldMap {
  /**
   * @param {object} o
   * @param {HTMLCanvasElement} o.canvas
   * @param {HTMLElement} o.tooltip
   * @param {(point: object, byCountry: boolean) => void} o.onPick
   * @param {(info: {points: number, noLocation: number}) => void} o.onCount
   */
  constructor({ canvas, tooltip, onPick, onCount }) {
    Object.assign(this, { canvas, tooltip, onPick, onCount });
    this.ctx = canvas.getContext('2d');
    this.polygons = [];
    this.points = new Map();   // ip -> point
    this.noLocation = new Set();
    this.flashes = [];
    this.paused = false;
    this.bg = null;
    this.raf = 0;
    this.timer = 0;
    this.lastDraw = 0;
    this.readColors();
    new ResizeObserver(() => this.resize()).observe(canvas.parentElement);
    canvas.addEventListener('click', (e) => this.click(e));
    canvas.addEventListener('pointermove', (e) => this.hover(e));
    canvas.addEventListener('pointerleave', () => { this.tooltip.hidden = true; });
  }

  async load(url) {
    const res = await fetch(url);
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
    this.polygons = topoPolygons(await res.json());
    this.bg = null;
    this.schedule();
  }

  /** Theme changed: re-read the palette and repaint the land. */
  readColors() {
    this.colors = {
      sea: cssVar('--map-sea'), land: cssVar('--map-land'), border: cssVar('--map-border'),
      other: cssVar('--c-other_ipv4'),
    };
    for (const c of ['icmp', 'icmpv6', 'http', 'https', 'other_ipv6', 'non_ip', 'malformed']) this.colors[c] = cssVar(`--c-${c}`);
    this.bg = null;
    this.schedule();
  }

  resize() {
    const dpr = window.devicePixelRatio || 1;
    const w = this.canvas.clientWidth, h = this.canvas.clientHeight;
    if (!w || !h) return;
    this.w = w; this.h = h; this.dpr = dpr;
    this.canvas.width = Math.round(w * dpr);
    this.canvas.height = Math.round(h * dpr);
    this.bg = null;
    this.draw(performance.now());
  }

  x(lon) { return ((lon + 180) / 360) * this.w; }
  y(lat) { return ((LAT_TOP - lat) / (LAT_TOP - LAT_BOTTOM)) * this.h; }

  /** Adds events (oldest first); flash=false for history and rebuilds. */
  add(events, flash = true) {
    const nowMs = performance.now();
    for (const ev of events) {
      const g = ev.geo;
      if (!g || !Number.isFinite(g.lat) || !Number.isFinite(g.lon)) {
        if (this.noLocation.size < MAX_UNLOCATED) this.noLocation.add(ev.src); // a count, not worth unbounded memory
        continue;
      }
      let p = this.points.get(ev.src);
      const t = ev.ts_ms ?? serverNow();
      if (!p) {
        if (this.points.size >= MAX_POINTS) this.evictOldest();
        p = { ip: ev.src, geo: g, s: 0, t, cls: ev.class };
        this.points.set(ev.src, p);
      }
      p.s = p.s * Math.exp(-Math.max(0, t - p.t) / TAU_MS) + (ev.weight || 1);
      p.t = Math.max(p.t, t);
      p.cls = ev.class;
      p.geo = g;
      if (flash && !this.paused && this.flashes.length < MAX_FLASHES && !(p.flashAt > nowMs - 300)) {
        p.flashAt = nowMs;
        this.flashes.push({ p, t0: nowMs });
      }
    }
    this.schedule();
  }

  /** Top sources known to the daemon, so the map is not empty after a (re)load. */
  seed(sources) {
    for (const s of sources ?? []) {
      const g = s.geo;
      if (!g || !Number.isFinite(g.lat) || !Number.isFinite(g.lon) || this.points.has(s.ip)) continue;
      if (this.points.size >= MAX_POINTS) break;
      const cls = Object.entries(s.by_class ?? {}).sort((a, b) => b[1] - a[1])[0]?.[0] ?? 'other_ipv4';
      this.points.set(s.ip, { ip: s.ip, geo: g, s: 0, t: s.last_seen_ms ?? 0, cls });
    }
    this.schedule();
  }

  evictOldest() {
    let oldest = null;
    for (const p of this.points.values()) if (!oldest || p.t < oldest.t) oldest = p;
    if (oldest) this.points.delete(oldest.ip);
  }

  clear() {
    this.points.clear();
    this.noLocation.clear();
    this.flashes = [];
    this.schedule();
  }

  setPaused(paused) {
    this.paused = paused;
    if (paused) this.flashes = [];
    this.schedule();
  }

  schedule() {
    if (this.paused && this.bg) { this.report(); return; } // frozen: keep counting, do not repaint
    if (!this.raf) this.raf = requestAnimationFrame((t) => { this.raf = 0; this.draw(t); });
  }

  report() {
    const n = String(this.points.size);
    if (this.canvas.dataset.points !== n) this.canvas.dataset.points = n; // for tests and tools
    this.onCount?.({ points: this.points.size, noLocation: this.noLocation.size });
  }

  /** Where a source is drawn (CSS px inside the canvas), or null: lets tests click it. */
  locate(ip) {
    const p = this.points.get(ip);
    if (!p || p.x === undefined) return null;
    return { x: p.x, y: p.y, r: p.r, cls: p.cls, country: p.geo.country_code ?? null };
  }

  paintBackground() {
    const { w, h, dpr } = this;
    const bg = document.createElement('canvas');
    bg.width = Math.round(w * dpr); bg.height = Math.round(h * dpr);
    const c = bg.getContext('2d');
    c.scale(dpr, dpr);
    c.fillStyle = this.colors.sea;
    c.fillRect(0, 0, w, h);
    c.fillStyle = this.colors.land;
    c.strokeStyle = this.colors.border;
    c.lineWidth = 0.6;
    c.lineJoin = 'round';
    for (const poly of this.polygons) {
      const wraps = poly.some((r) => r.wraps);
      for (const off of wraps ? [-360, 0, 360] : [0]) {
        c.beginPath();
        for (const ring of poly) {
          for (let i = 0; i < ring.length; i++) {
            const px = this.x(ring[i][0] + off), py = this.y(ring[i][1]);
            if (i) c.lineTo(px, py); else c.moveTo(px, py);
          }
          c.closePath();
        }
        c.fill('evenodd');
        c.stroke();
      }
    }
    this.bg = bg;
  }

  draw(now) {
    if (!this.w) return;
    if (!this.bg) this.paintBackground();
    const { ctx, dpr } = this;
    this.lastDraw = now;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.drawImage(this.bg, 0, 0);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    // One path per colour and activity: thousands of circles, a dozen fill() calls.
    const t = serverNow();
    const groups = new Map();
    const scale = Math.min(1, Math.max(0.45, this.w / 1000)); // a phone-sized map gets smaller circles
    for (const p of this.points.values()) {
      const s = p.s * Math.exp(-Math.max(0, t - p.t) / TAU_MS);
      p.r = 2.5 + scale * Math.min(16, 2.2 * Math.sqrt(s));
      p.x = this.x(p.geo.lon); p.y = this.y(p.geo.lat);
      const key = `${p.cls}|${s > 0.2 ? 1 : 0}`;
      let list = groups.get(key);
      if (!list) groups.set(key, (list = []));
      list.push(p);
    }
    for (const [key, list] of groups) {
      const [cls, active] = key.split('|');
      ctx.globalAlpha = active === '1' ? 0.75 : 0.4;
      ctx.fillStyle = this.colors[cls] || this.colors.other;
      ctx.beginPath();
      for (const p of list) { ctx.moveTo(p.x + p.r, p.y); ctx.arc(p.x, p.y, p.r, 0, Math.PI * 2); }
      ctx.fill();
    }
    // Flashes: an expanding, fading ring per new event.
    ctx.lineWidth = 1.5;
    this.flashes = this.flashes.filter((f) => now - f.t0 < FLASH_MS);
    for (const f of this.flashes) {
      const a = (now - f.t0) / FLASH_MS;
      ctx.globalAlpha = 1 - a;
      ctx.strokeStyle = this.colors[f.p.cls] || this.colors.other;
      ctx.beginPath();
      ctx.arc(this.x(f.p.geo.lon), this.y(f.p.geo.lat), (f.p.r ?? 3) + 2 + 14 * a, 0, Math.PI * 2);
      ctx.stroke();
    }
    ctx.globalAlpha = 1;
    this.report();
    // Animate while rings are flashing; otherwise repaint slowly for the decay.
    clearTimeout(this.timer);
    if (this.paused) return;
    if (this.flashes.length) this.schedule();
    else if (this.points.size) this.timer = setTimeout(() => this.schedule(), 500);
  }

  /** The point under the pointer, if any (the nearest one within its radius + 4 px). */
  pick(e) {
    const rect = this.canvas.getBoundingClientRect();
    const mx = e.clientX - rect.left, my = e.clientY - rect.top;
    let best = null, bestD = Infinity;
    for (const p of this.points.values()) {
      if (p.x === undefined) continue;
      const d = Math.hypot(p.x - mx, p.y - my);
      if (d <= p.r + 4 && d < bestD) { best = p; bestD = d; }
    }
    return { p: best, mx, my };
  }

  click(e) {
    const { p } = this.pick(e);
    if (p) this.onPick(p, e.shiftKey);
  }

  hover(e) {
    const { p, mx, my } = this.pick(e);
    this.canvas.style.cursor = p ? 'pointer' : '';
    if (!p) { this.tooltip.hidden = true; return; }
    const rate = (p.s * Math.exp(-Math.max(0, serverNow() - p.t) / TAU_MS)) / (TAU_MS / 1000);
    const g = p.geo;
    this.tooltip.innerHTML = `<strong>${esc(p.ip)}</strong><br>`
      + `${g.country_code ? `<span aria-hidden="true">${flag(g.country_code)}</span> ` : ''}${esc(placeText(g))}`
      + `${g.asn ? `<br>${esc(asnText(g))}` : ''}<br>~${rate < 10 ? rate.toFixed(1) : Math.round(rate)} packets/s`
      + '<br><small>click: filter by source · shift-click: by country</small>';
    this.tooltip.hidden = false;
    const left = Math.min(mx + 12, this.w - this.tooltip.offsetWidth - 4);
    this.tooltip.style.left = `${Math.max(4, left)}px`;
    this.tooltip.style.top = `${my + 12 > this.h - 80 ? my - this.tooltip.offsetHeight - 8 : my + 12}px`;
  }
}
