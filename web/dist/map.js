// The world map: country outlines from the vendored world-atlas TopoJSON on a
// <canvas> (equirectangular, no tiles, nothing fetched from outside), countries
// shaded by their sources' packet rate, one circle per location (co-located
// sources share it, with their count) sized by the packet rate on a log scale,
// a short flash for every new event, and zoom: buttons, the wheel (about
// the pointer), two-finger pinch, drag to pan. With a time window set, sources
// not heard from within it leave the map (it follows the top lists).

import { serverNow } from './clock.js';
import { asnText, esc, flag, fmtPps, label, placeText } from './format.js';

const TAU_MS = 20000;          // decay time constant: a circle shows ~the last minute (as the daemon's RATE_TAU_MS)
const MAX_RATE = 10000;        // packets/s at the largest circle and the darkest country (log scale)
const MAX_ZOOM = 16;
const WHEEL_PX_PER_DOUBLING = 300; // wheel travel (px) that doubles the zoom: one notch (100 px) is x1.26
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
    for (const p of polys) out.push(Object.assign(p.map(ring).map(unwrap), { id: g.id }));
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

/** A packet rate's place on the log scale from 1 to MAX_RATE packets/s, 0..1. */
export const rateLevel = (pps) => Math.min(1, Math.log10(1 + Math.max(0, pps)) / Math.log10(1 + MAX_RATE));

/** A circle's radius (CSS px at full size) for a packet rate. */
export const radius = (pps, scale = 1) => 2.5 + scale * 16 * rateLevel(pps);

/** The map's key: the colours of the daemon's classes (meta.classes), circle sizes and country shading. */
export function keyHtml(classes) {
  const dot = (pps) => `<span class="dot" style="width:${2 * radius(pps)}px;height:${2 * radius(pps)}px"></span>`;
  return classes.map((c) => `<span class="key-item" data-class="${esc(c)}"><span class="dot" style="width:10px;height:10px;background:var(--c-${esc(c)}, var(--c-other_ipv4))"></span>${esc(label(c))}</span>`).join('')
    + `<span class="key-item" data-key="size">${[1, 100, MAX_RATE].map((r) => `${dot(r)} ${esc(fmtPps(r))}`).join(' ')} (log scale)</span>`
    + `<span class="key-item" data-key="shade">country: <span class="ramp"></span> by packets/s</span>`;
}

/** Whether [lon, lat] is inside a polygon (rings, even-odd; lon also tried ±360 for unwrapped rings). */
function inside(poly, lon, lat) {
  return [lon, lon - 360, lon + 360].some((x) => {
    let n = 0;
    for (const ring of poly) {
      for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
        const [xi, yi] = ring[i], [xj, yj] = ring[j];
        if ((yi > lat) !== (yj > lat) && x < ((xj - xi) * (lat - yi)) / (yj - yi) + xi) n++;
      }
    }
    return n % 2 === 1;
  });
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
    this.groups = [];          // circles as last drawn: co-located points
    this.countryPoly = new Map(); // country code -> its polygons' id (found from a point inside)
    this.noLocation = new Set();
    this.flashes = [];
    this.paused = false;
    this.bg = null;
    this.raf = 0;
    this.timer = 0;
    this.lastDraw = 0;
    this.view = { k: 1, x: 0, y: 0 }; // zoom and pan: screen = base * k + (x, y)
    this.windowMs = Infinity;  // sources older than this leave the map (the top lists' window)
    this.touches = new Map();  // pointerId -> {x, y} of the fingers down, for pinch
    this.readColors();
    new ResizeObserver(() => this.resize()).observe(canvas.parentElement);
    canvas.addEventListener('click', (e) => this.click(e));
    canvas.addEventListener('pointerdown', (e) => this.down(e));
    canvas.addEventListener('pointerup', (e) => this.up(e));
    canvas.addEventListener('pointercancel', (e) => this.up(e));
    canvas.addEventListener('pointermove', (e) => { if (!this.pinchMove(e)) this.hover(e); });
    canvas.addEventListener('pointerleave', (e) => { if (e.pointerType !== 'touch') { this.tooltip.hidden = true; this.drag = null; } });
    // Not passive: a wheel that zooms must not also scroll the page.
    canvas.addEventListener('wheel', (e) => this.wheel(e), { passive: false });
  }

  async load(url) {
    const res = await fetch(url);
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
    this.polygons = topoPolygons(await res.json());
    this.countryPoly.clear();
    this.bg = null;
    this.schedule();
  }

  /** Theme changed: re-read the palette and repaint the land. */
  readColors() {
    this.colors = {
      sea: cssVar('--map-sea'), land: cssVar('--map-land'), border: cssVar('--map-border'),
      shade: cssVar('--map-shade'), fg: cssVar('--fg'), panel: cssVar('--panel'), other: cssVar('--c-other_ipv4'),
    };
    this.classColors = new Map(); // filled as classes turn up: the daemon's meta says which exist
    this.bg = null;
    this.schedule();
  }

  /** A class's colour (--c-<class>), the neutral one for a class the page has no colour for. */
  color(cls) {
    let c = this.classColors.get(cls);
    if (c === undefined) {
      c = (/^[a-z0-9_]+$/.test(cls ?? '') && cssVar(`--c-${cls}`)) || this.colors.other;
      this.classColors.set(cls, c);
    }
    return c;
  }

  /** The top lists' window (minutes, null = since start): older sources leave the map. */
  setWindow(minutes) {
    this.windowMs = minutes == null ? Infinity : minutes * 60000;
    this.schedule();
  }

  resize() {
    const dpr = window.devicePixelRatio || 1;
    const w = this.canvas.clientWidth, h = this.canvas.clientHeight;
    if (!w || !h) return;
    this.w = w; this.h = h; this.dpr = dpr;
    this.canvas.width = Math.round(w * dpr);
    this.canvas.height = Math.round(h * dpr);
    this.zoom(1, w / 2, h / 2); // keeps the pan inside the new size
  }

  x(lon) { return ((lon + 180) / 360) * this.w * this.view.k + this.view.x; }
  y(lat) { return ((LAT_TOP - lat) / (LAT_TOP - LAT_BOTTOM)) * this.h * this.view.k + this.view.y; }

  /** Canvas CSS px -> [lon, lat] (the inverse of x() and y()): lets tests check what stays under the pointer. */
  unproject(px, py) {
    const v = this.view;
    return [((px - v.x) / (this.w * v.k)) * 360 - 180, LAT_TOP - ((py - v.y) / (this.h * v.k)) * (LAT_TOP - LAT_BOTTOM)];
  }

  /** Zooms by `factor` around (cx, cy) in canvas CSS px; zoom 1 shows the whole map. */
  zoom(factor, cx = this.w / 2, cy = this.h / 2) {
    if (!this.w) return;
    const v = this.view;
    const k = Math.min(MAX_ZOOM, Math.max(1, v.k * factor));
    this.pan(cx - ((cx - v.x) * k) / v.k - v.x, cy - ((cy - v.y) * k) / v.k - v.y, k);
  }

  resetZoom() { this.view = { k: 1, x: 0, y: 0 }; this.zoom(1); }

  /** Moves the view by (dx, dy) CSS px, never past the map's edges. */
  pan(dx, dy, k = this.view.k) {
    const clamp = (v, size) => Math.min(0, Math.max(size - size * k, v));
    this.view = { k, x: clamp(this.view.x + dx, this.w), y: clamp(this.view.y + dy, this.h) };
    this.canvas.dataset.zoom = String(Math.round(k * 100) / 100);
    this.canvas.toggleAttribute('data-zoomed', k > 1); // CSS: one finger pans the map instead of the page
    this.bg = null;
    this.draw(performance.now());
  }

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
        p = { ip: ev.src, geo: g, s: 0, t, first: t, cls: ev.class };
        this.points.set(ev.src, p);
      }
      if (!(t <= p.seededAt)) { // the daemon's rate already counts events up to then
        p.s = p.s * Math.exp(-Math.max(0, t - p.t) / TAU_MS) + (ev.weight || 1);
        p.t = Math.max(p.t, t);
        p.first = Math.min(p.first, t);
      }
      p.cls = ev.class;
      p.geo = g;
      if (flash && !this.paused && this.flashes.length < MAX_FLASHES && !(p.flashAt > nowMs - 300)) {
        p.flashAt = nowMs;
        this.flashes.push({ p, t0: nowMs });
      }
    }
    this.schedule();
  }

  /**
   * The daemon's top sources: puts them on the map (so it is not empty after a
   * (re)load) and takes their packet rates as they are now.
   */
  seed(sources) {
    const now = serverNow();
    for (const s of sources ?? []) {
      const g = s.geo;
      if (!g || !Number.isFinite(g.lat) || !Number.isFinite(g.lon)) continue;
      let p = this.points.get(s.ip);
      if (!p) {
        if (this.points.size >= MAX_POINTS) continue;
        const cls = Object.entries(s.by_class ?? {}).sort((a, b) => b[1] - a[1])[0]?.[0] ?? 'other_ipv4';
        p = { ip: s.ip, geo: g, s: 0, t: s.last_seen_ms ?? 0, first: s.first_seen_ms ?? now, cls };
        this.points.set(s.ip, p);
      }
      if (Number.isFinite(s.packets_per_s)) {
        // Back to the decayed sum that gives this rate (see rate()).
        p.first = s.first_seen_ms ?? p.first;
        p.s = s.packets_per_s * (TAU_MS / 1000) * (1 - Math.exp(-Math.max(1000, now - p.first) / TAU_MS));
        p.t = p.seededAt = now;
      }
    }
    this.schedule();
  }

  /** A point's packets/s at server time t: its decayed sum over the weight a steady rate would have since it was first seen. */
  rate(p, t) {
    const s = p.s * Math.exp(-Math.max(0, t - p.t) / TAU_MS);
    return s / ((TAU_MS / 1000) * (1 - Math.exp(-Math.max(1000, t - p.first) / TAU_MS)));
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

  /** Where a source is drawn ({x, y, r, cls, country, count, rate}, CSS px inside the canvas), or null: lets tests click it. */
  locate(ip) {
    const p = this.points.get(ip);
    const g = p?.group;
    if (!g) return null;
    return { x: g.x, y: g.y, r: g.r, cls: g.cls, country: p.geo.country_code ?? null, count: g.members.length, rate: p.rate };
  }

  /** The polygons' id of the country a point is in (looked up once per country code). */
  countryOf(p) {
    const cc = p.geo.country_code;
    if (!cc) return null;
    if (!this.countryPoly.has(cc)) this.countryPoly.set(cc, this.polygons.find((poly) => inside(poly, p.geo.lon, p.geo.lat))?.id ?? null);
    return this.countryPoly.get(cc);
  }

  tracePolygon(c, poly) {
    for (const off of poly.some((r) => r.wraps) ? [-360, 0, 360] : [0]) {
      for (const ring of poly) {
        for (let i = 0; i < ring.length; i++) {
          const px = this.x(ring[i][0] + off), py = this.y(ring[i][1]);
          if (i) c.lineTo(px, py); else c.moveTo(px, py);
        }
        c.closePath();
      }
    }
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
      c.beginPath();
      this.tracePolygon(c, poly);
      c.fill('evenodd');
      c.stroke();
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
    const t = serverNow();
    // Co-located points share one circle; countries sum their points' rates.
    const byPlace = new Map(), byCountry = new Map();
    for (const p of this.points.values()) {
      if (t - p.t > this.windowMs) { this.points.delete(p.ip); continue; } // outside the window: off the map
      p.rate = this.rate(p, t);
      const key = `${p.geo.lat.toFixed(2)},${p.geo.lon.toFixed(2)}`;
      let g = byPlace.get(key);
      if (!g) byPlace.set(key, (g = { members: [], rate: 0, geo: p.geo }));
      g.members.push(p);
      g.rate += p.rate;
      p.group = g;
      const id = this.countryOf(p);
      if (id !== null) byCountry.set(id, (byCountry.get(id) ?? 0) + p.rate);
    }
    // Country shading: one fill per country with traffic, darker for more packets/s.
    ctx.fillStyle = this.colors.shade;
    for (const poly of this.polygons) {
      const r = byCountry.get(poly.id);
      if (!r) continue;
      ctx.globalAlpha = 0.15 + 0.6 * rateLevel(r);
      ctx.beginPath();
      this.tracePolygon(ctx, poly);
      ctx.fill('evenodd');
    }
    // One path per colour and activity: thousands of circles, a dozen fill() calls.
    const paths = new Map();
    const scale = Math.min(1, Math.max(0.45, this.w / 1000)) * Math.sqrt(this.view.k); // a phone-sized map gets smaller circles
    this.groups = [...byPlace.values()];
    for (const g of this.groups) {
      g.members.sort((a, b) => b.rate - a.rate);
      g.cls = g.members[0].cls;
      g.r = radius(g.rate, scale);
      g.x = this.x(g.geo.lon); g.y = this.y(g.geo.lat);
      const key = `${g.cls}|${g.rate > 0.01 ? 1 : 0}`;
      let list = paths.get(key);
      if (!list) paths.set(key, (list = []));
      list.push(g);
    }
    for (const [key, list] of paths) {
      const [cls, active] = key.split('|');
      ctx.globalAlpha = active === '1' ? 0.75 : 0.4;
      ctx.fillStyle = this.color(cls);
      ctx.beginPath();
      for (const g of list) { ctx.moveTo(g.x + g.r, g.y); ctx.arc(g.x, g.y, g.r, 0, Math.PI * 2); }
      ctx.fill();
    }
    // How many sources share a circle.
    ctx.globalAlpha = 1;
    ctx.font = 'bold 11px system-ui, sans-serif';
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.lineWidth = 3;
    ctx.strokeStyle = this.colors.panel;
    ctx.fillStyle = this.colors.fg;
    for (const g of this.groups) {
      if (g.members.length < 2) continue;
      ctx.strokeText(String(g.members.length), g.x, g.y);
      ctx.fillText(String(g.members.length), g.x, g.y);
    }
    // Flashes: an expanding, fading ring per new event.
    ctx.lineWidth = 1.5;
    this.flashes = this.flashes.filter((f) => now - f.t0 < FLASH_MS);
    for (const f of this.flashes) {
      const a = (now - f.t0) / FLASH_MS;
      ctx.globalAlpha = 1 - a;
      ctx.strokeStyle = this.color(f.p.cls);
      ctx.beginPath();
      ctx.arc(this.x(f.p.geo.lon), this.y(f.p.geo.lat), (f.p.group?.r ?? 3) + 2 + 14 * a, 0, Math.PI * 2);
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

  /** The circle under the pointer, if any (the nearest one within its radius + 4 px). */
  pick(e) {
    const rect = this.canvas.getBoundingClientRect();
    const mx = e.clientX - rect.left, my = e.clientY - rect.top;
    let best = null, bestD = Infinity;
    for (const g of this.groups) {
      const d = Math.hypot(g.x - mx, g.y - my);
      if (d <= g.r + 4 && d < bestD) { best = g; bestD = d; }
    }
    return { g: best, mx, my };
  }

  // ---- pointer: drag to pan, wheel and pinch to zoom ----

  down(e) {
    if (e.pointerType === 'touch') this.touches.set(e.pointerId, { x: e.clientX, y: e.clientY });
    if (this.touches.size > 1) { this.drag = { moved: true }; this.tooltip.hidden = true; return; } // a pinch is no tap
    this.drag = { x: e.clientX, y: e.clientY, moved: false };
  }

  up(e) {
    this.touches.delete(e.pointerId);
    if (this.touches.size) {
      // One finger of a pinch lifted: the other may go on panning, from where it is now.
      const [t] = this.touches.values();
      this.drag = { x: t.x, y: t.y, moved: true };
      return;
    }
    setTimeout(() => { this.drag = null; }); // after the click event, which must know about the drag
  }

  /** Two fingers: the distance between them scales the map about their midpoint, which also pans. Returns whether it handled e. */
  pinchMove(e) {
    const before = this.touches.get(e.pointerId);
    if (!before) return false;
    if (this.touches.size !== 2) {
      this.touches.set(e.pointerId, { x: e.clientX, y: e.clientY });
      return this.touches.size > 2; // three fingers: neither pinch nor pan
    }
    const [a, b] = [...this.touches.values()];
    const other = a === before ? b : a;
    const after = { x: e.clientX, y: e.clientY };
    this.touches.set(e.pointerId, after);
    const d0 = Math.hypot(before.x - other.x, before.y - other.y), d1 = Math.hypot(after.x - other.x, after.y - other.y);
    const rect = this.canvas.getBoundingClientRect();
    const m0 = { x: (before.x + other.x) / 2 - rect.left, y: (before.y + other.y) / 2 - rect.top };
    const m1 = { x: (after.x + other.x) / 2 - rect.left, y: (after.y + other.y) / 2 - rect.top };
    if (d0 > 0 && d1 > 0) this.zoom(d1 / d0, m0.x, m0.y);
    this.pan(m1.x - m0.x, m1.y - m0.y);
    return true;
  }

  /** The wheel (and a touchpad's pinch, which browsers send as a wheel with ctrlKey) zooms about the pointer. */
  wheel(e) {
    if (!this.w || e.deltaY === 0) return;
    const px = e.deltaY * (e.deltaMode === 1 ? 40 : e.deltaMode === 2 ? this.h : 1); // lines, pages -> px
    const k = this.view.k;
    // At the whole world a wheel down is left to the page: scrolling past the map must still scroll.
    if ((px > 0 && k <= 1) || (px < 0 && k >= MAX_ZOOM)) return;
    e.preventDefault();
    const rect = this.canvas.getBoundingClientRect();
    this.tooltip.hidden = true;
    this.zoom(2 ** (-px / WHEEL_PX_PER_DOUBLING), e.clientX - rect.left, e.clientY - rect.top);
  }

  /** A click filters by the circle's busiest source (or its country); a drag is no click. */
  click(e) {
    if (this.drag?.moved) return;
    const { g } = this.pick(e);
    if (g) this.onPick(g.members[0], e.shiftKey);
  }

  hover(e) {
    if (this.drag && e.buttons === 1 && this.view.k > 1) {
      const dx = e.clientX - this.drag.x, dy = e.clientY - this.drag.y;
      if (this.drag.moved || Math.hypot(dx, dy) > 4) {
        this.drag = { x: e.clientX, y: e.clientY, moved: true };
        this.tooltip.hidden = true;
        this.pan(dx, dy);
        return;
      }
    }
    const { g, mx, my } = this.pick(e);
    this.canvas.style.cursor = g ? 'pointer' : this.view.k > 1 ? 'grab' : '';
    if (!g) { this.tooltip.hidden = true; return; }
    const geo = g.geo, n = g.members.length;
    const list = g.members.slice(0, 8).map((p) => `<br>${esc(p.ip)} · ~${esc(fmtPps(p.rate))}`).join('');
    this.tooltip.innerHTML = `<strong>${n > 1 ? `${n} sources here` : esc(g.members[0].ip)}</strong><br>`
      + `${geo.country_code ? `<span aria-hidden="true">${flag(geo.country_code)}</span> ` : ''}${esc(placeText(geo))}`
      + `${n === 1 && geo.asn ? `<br>${esc(asnText(geo))}` : ''}`
      + (n > 1 ? `${list}${n > 8 ? `<br>and ${n - 8} more` : ''}<br>total ~${esc(fmtPps(g.rate))}` : `<br>~${esc(fmtPps(g.rate))}`)
      + `<br><small>click: filter by ${n > 1 ? 'the busiest ' : ''}source · shift-click: by country</small>`;
    this.tooltip.hidden = false;
    const left = Math.min(mx + 12, this.w - this.tooltip.offsetWidth - 4);
    this.tooltip.style.left = `${Math.max(4, left)}px`;
    this.tooltip.style.top = `${my + 12 > this.h - 80 ? my - this.tooltip.offsetHeight - 8 : my + 12}px`;
  }
}
