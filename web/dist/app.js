// Entry point: wires the socket's frames into the panels, the feed, the map
// and the chart, and the controls (filters, pause, clear, theme) back into
// them. Everything the page shows flows through here; each module does one job.
// What exists (classes, rate series, status classes, top-list windows, the
// schema) is the daemon's `meta` (GET /api/meta, and in every snapshot): the
// page builds its class filter, chart series, map key and window selector
// from it and restates none of it.

import { AlertsPanel } from './alerts.js';
import { api, initToken, onUnauthorized } from './auth.js';
import { RateChart } from './chart.js';
import { observeServerTime, serverNow } from './clock.js';
import { Feed } from './feed.js';
import { Filters } from './filters.js';
import { HostsPanel } from './hosts.js';
import { TZ, badge, esc, fmtClock, fmtCompact, label, originLabel, rangeText, topWindowText } from './format.js';
import { Lookup } from './lookup.js';
import { WorldMap, keyHtml } from './map.js';
import {
  renderAttribution, renderHeader, renderHeadline, renderHealth, renderHttp, renderOrigins, renderTop, renderViewers,
} from './panels.js';
import { LiveSocket } from './socket.js';
import { initTheme } from './theme.js';

const $ = (id) => document.getElementById(id);

initToken(); // before anything reads the URL: the token must not end up in shared links

const state = {
  stats: null,
  top: null,
  statsAt: 0,              // performance.now() of the last stats, to tick the uptime
  live: false,             // only a live socket's figures are shown as current
  skipped: 0,              // events this browser missed because it fell behind
  received: 0,             // events that arrived in update frames since load
  paused: false,
  origins: new Set(),      // "xdp:eth1", "syslog:10.0.0.5"
  originCounts: new Map(),
  range: null,             // {from, to} of the history range on screen; null: live
};

let filters = Filters.fromSearch(location.search);
let meta = null;           // the daemon's meta, once known
let metaKey = '';
let pageSchema = null;     // the schema of the first meta: the daemon that served this page
let shownWindow = null;    // the window of the top lists on screen (as the daemon said), minutes or null
let pickBy = 'source';     // what a click or tap on a map circle filters by
let chart = null, map = null;
initTheme($('theme'), () => { map?.readColors(); chart?.restyle(); });

const feed = new Feed({ body: $('feed-body'), status: $('feed-status'), empty: $('feed-empty'), filters });
chart = new RateChart($('chart'));
map = new WorldMap({
  canvas: $('map'),
  tooltip: $('map-tip'),
  onPick: (p, shift) => {
    // Shift-click, or the "tap: country" toggle where there is no shift key (phones).
    const byCountry = shift || pickBy === 'country';
    if (byCountry && p.geo?.country_code) setFilters({ countries: [p.geo.country_code] });
    else setFilters({ cidr: p.ip });
  },
  onCount: ({ points, noLocation }) => {
    const text = `${points} on the map · ${noLocation >= 10000 ? '10,000+' : noLocation} with no location`;
    if ($('map-count').textContent !== text) $('map-count').textContent = text;
  },
});
map.load('/assets/vendor/world-atlas/countries-110m.json').catch((e) => {
  $('map-error').textContent = `Map outlines could not be loaded: ${e.message}`;
  $('map-error').hidden = false;
});
new AlertsPanel($('alerts')).start();
const lookup = new Lookup({
  form: $('lookup-form'), input: $('lookup-ip'), panel: $('lookup'),
  onFilter: (ip) => setFilters({ cidr: ip }),
});

// ---- frames from the daemon ----

const socket = new LiveSocket({
  params: () => {
    // What this connection asks for is what the daemon has: later changes go as filter messages.
    lastServer = connectedServer = JSON.stringify(filters.server());
    return filters.serverParams();
  },
  onFrame: (f) => {
    checkSchema(f.schema);
    if (f.type === 'snapshot') onSnapshot(f);
    else if (f.type === 'update') onUpdate(f);
    else if (f.type === 'stats') onStats(f.stats, f.top);
  },
  onState: (s, info) => {
    const conn = $('conn');
    conn.dataset.state = s;
    conn.dataset.connects = String(info.connects);
    $('conn-text').textContent = {
      connecting: 'connecting…',
      live: 'live',
      reconnecting: `reconnecting${info.retryInMs ? ` in ${Math.ceil(info.retryInMs / 1000)} s` : '…'}`,
      unauthorized: 'not authorized',
    }[s] ?? s;
    conn.title = info.reason ? `Last disconnect: ${info.reason}` : '';
    if (s !== 'live') $('rtt').textContent = '';
    setLive(s === 'live', s);
  },
  onRtt: (ms) => { $('rtt').textContent = `RTT ${ms} ms`; },
});
onUnauthorized(() => { $('auth-error').hidden = false; });

/** Identity of an event across reconnects, to drop the overlap of `recent` with what we have. */
const eventKey = (ev) => `${ev.id ?? ''}|${ev.ts_ms}|${ev.src}|${ev.detail}`;

/**
 * Live or not: when the socket is down or refused, every figure on the page is
 * old. The panels go grey, the uptime stops, the headline shows "–" and the
 * chart leaves the seconds that follow as gaps.
 */
function setLive(live, why) {
  const was = state.live;
  state.live = live;
  if (live) document.body.removeAttribute('data-stale');
  else document.body.dataset.stale = why;
  if (was && !live) {
    chart.setDown();
    $('stale-since').textContent = fmtClock(serverNow());
    $('stale-tz').textContent = TZ;
  }
  $('stale').hidden = live || !state.stats; // nothing shown yet: nothing to warn about
  if (!live) renderUptime();
  refreshHeadline();
}

function renderUptime() {
  if (!state.stats) return;
  renderHeader(state.stats, state.live ? state.stats.uptime_s + (performance.now() - state.statsAt) / 1000 : NaN);
}

/**
 * A daemon speaking another schema than the one that served this page (it
 * was upgraded while the page stayed open): its frames may mean other things.
 */
function checkSchema(schema) {
  if (schema === undefined || pageSchema === null || schema === pageSchema) return;
  $('schema-warning').textContent = `The daemon speaks API schema ${schema}; this page was loaded for schema ${pageSchema}. Some panels may be wrong: reload the page.`;
  $('schema-warning').hidden = false;
}

/** The daemon's meta: (re)builds everything that lists classes, series or windows. */
function applyMeta(m) {
  if (!m || typeof m !== 'object' || !Array.isArray(m.classes)) return;
  if (pageSchema === null) pageSchema = m.schema;
  checkSchema(m.schema);
  const key = JSON.stringify(m);
  if (key === metaKey) return; // every reconnect brings it again, mostly unchanged
  metaKey = key;
  meta = m;
  filters.restrict(m);
  chart.setSeries(m.rate_series);
  $('f-classes').querySelectorAll('label.chip').forEach((el) => el.remove());
  $('f-classes').insertAdjacentHTML('beforeend', m.classes.map((c) =>
    `<label class="chip"><input type="checkbox" value="${esc(c)}"> ${badge(c)}<span class="sr-only"> ${esc(label(c))}</span></label>`).join(''));
  classBoxes = [...$('f-classes').querySelectorAll('input')];
  $('map-key').innerHTML = keyHtml(m.classes);
  const windows = (m.top_windows_minutes ?? []).filter((w) => Number.isInteger(w) && w > 0);
  $('top-window').innerHTML = [...windows.map((w) => [String(w), `${w} min`, `the last ${w} minutes`]), ['all', 'since start', 'since the daemon started']]
    .map(([v, text, title]) => `<button type="button" data-top-window="${v}" title="Top lists and map: ${title}">${text}</button>`).join('');
  showWindow();
  showFilters();
  applyFilters();
  if (state.stats) renderHttp(state.stats.http, m.status_classes);
}

function onSnapshot(f) {
  // A change made while the socket was opening was sent into the void: say it again now.
  lastServer = connectedServer;
  applyMeta(f.meta); // before anything that lists classes or series (and it may complete the filter)
  syncServer();
  onStats(f.stats, f.top);
  const up = Number(f.stats?.uptime_s);
  chart.setHistory(f.history, Number.isFinite(up) ? serverNow() - up * 1000 : -Infinity);
  let recent = Array.isArray(f.recent) ? f.recent : [];
  if (recent.length && feed.events.length) {
    // After a reconnect `recent` overlaps what we already show.
    const since = recent[0].ts_ms;
    const seen = new Set();
    for (let i = feed.events.length - 1; i >= 0 && feed.events[i].ts_ms >= since; i--) seen.add(eventKey(feed.events[i]));
    recent = recent.filter((ev) => !seen.has(eventKey(ev)));
  }
  ingest(recent, false);
  if (filters.isEmpty) map.seed(f.top?.sources);
}

function onUpdate(f) {
  observeServerTime(f.ts_ms);
  const events = Array.isArray(f.events) ? f.events : [];
  if (f.skipped > 0) state.skipped += f.skipped;
  state.received += events.length;
  if (f.rates) chart.addRates(f.ts_ms ?? Date.now(), f.rates);
  ingest(events, true);
}

function onStats(stats, top) {
  if (stats) {
    state.stats = stats;
    state.statsAt = performance.now();
    renderUptime();
    renderHealth(stats, { skipped: state.skipped });
    renderHttp(stats.http, meta?.status_classes);
    renderAttribution(stats.geo);
    renderViewers(stats.viewers);
    for (const i of stats.interfaces ?? []) state.origins.add(`xdp:${i.name}`);
    for (const s of Object.keys(stats.syslog?.accepted_by_sender ?? {})) state.origins.add(`syslog:${s}`);
  }
  if (top && state.range) {
    state.top = top; // kept for "Live"; the range's lists stay on screen
    top = null;
  }
  if (top) {
    const win = top.window_minutes ?? null;
    if (win !== shownWindow) {
      // Another window on screen: the map starts again from the events this page has and the new top sources.
      shownWindow = win;
      map.setWindow(win);
      map.clear();
      map.add(feed.events.filter((ev) => filters.matches(ev)), false);
    }
    state.top = top;
    if (filters.isEmpty && !state.paused) map.seed(top.sources);
  }
  if (!state.range) renderTop(state.top, state.stats);
  renderOrigins(state.origins, filters.hiddenOrigins, state.originCounts);
  refreshHeadline();
}

function ingest(events, flash) {
  if (!events.length) return;
  for (const ev of events) {
    const o = originLabel(ev.origin);
    state.origins.add(o);
    state.originCounts.set(o, (state.originCounts.get(o) ?? 0) + 1);
  }
  feed.add(events);
  if (!state.range) map.add(events.filter((ev) => filters.matches(ev)), flash);
}

// ---- a range of the history store ----

let rangeTop = null;

/** Shows [from, to) from the history store: the chart, the top lists and the map follow; live updates pause. */
async function showRange(from, to) {
  state.range = { from, to };
  filters.range = state.range;
  filters.toUrl();
  document.body.dataset.range = `${from}-${to}`;
  $('range-text').textContent = `Showing ${rangeText(from, to)} from the history`;
  $('range-live').hidden = false;
  $('range-error').hidden = true;
  let history, top;
  try {
    [history, top] = await Promise.all([
      api(`/api/history?from=${from}&to=${to}`),
      api(`/api/top?from=${from}&to=${to}&n=20`),
    ]);
  } catch (e) {
    if (state.range?.from !== from || state.range?.to !== to) return;
    $('range-error').textContent = `The history cannot show it: ${e.message}`;
    $('range-error').hidden = false;
    return;
  }
  if (state.range?.from !== from || state.range?.to !== to) return; // another range was picked meanwhile
  chart.showRange(history, from, to);
  rangeTop = top;
  renderTop(top, state.stats);
  map.setWindow(null);
  map.clear();
  map.seed(top.sources);
}

/** Back to live: the chart's seconds, the live top lists, the map from the events this page has. */
function showLive() {
  state.range = null;
  rangeTop = null;
  filters.range = null;
  filters.toUrl();
  delete document.body.dataset.range;
  $('range-text').textContent = 'Drag across the chart to see a range from the history: the map and top lists follow it.';
  $('range-live').hidden = true;
  $('range-error').hidden = true;
  chart.showLive();
  shownWindow = undefined; // the next top list resets the map's window
  map.clear();
  map.add(feed.events.filter((ev) => filters.matches(ev)), false);
  if (state.top) onStats(null, state.top);
}

chart.onSelect = (from, to) => showRange(from, to);
$('range-live').addEventListener('click', showLive);

/** The daemon's headline figures (stats.headline), or none when they are not current. */
function refreshHeadline() {
  renderHeadline(state.live ? state.stats?.headline : null);
}

setInterval(() => {
  if (state.live) renderUptime();
  renderOrigins(state.origins, filters.hiddenOrigins, state.originCounts);
}, 1000);

// ---- hosts (agents reporting to this central, docs/agent.md) ----

const hostsPanel = new HostsPanel({ select: $('f-host'), label: $('f-host-label'), panel: $('hosts-health') });
async function refreshHosts() {
  try { hostsPanel.render(await api('/api/hosts'), serverNow()); } catch { /* the socket's state says why */ }
  hostsPanel.select(filters.host);
}
refreshHosts();
setInterval(refreshHosts, 5000);

// ---- filters ----

const inputs = { q: $('f-q'), country: $('f-country'), cidr: $('f-cidr'), host: $('f-host') };
let classBoxes = []; // built from the daemon's meta.classes (applyMeta)

function showFilters() {
  inputs.q.value = filters.q;
  inputs.country.value = [...filters.countries].join(', ');
  inputs.cidr.value = filters.cidr;
  hostsPanel.select(filters.host);
  for (const b of classBoxes) b.checked = filters.classes.has(b.value);
}

let lastServer = JSON.stringify(filters.server()); // what the daemon applies for this page's connection
let connectedServer = lastServer;                  // what the current connection asked for in its URL
let backfillTimer = 0;

/** Applies the current filter state everywhere: URL, errors, feed, map, and the daemon. */
function applyFilters() {
  filters.compile();
  filters.toUrl();
  const errors = Object.values(filters.errors);
  $('f-error').textContent = errors.join(' · ');
  $('f-error').hidden = !errors.length;
  inputs.q.toggleAttribute('aria-invalid', Boolean(filters.errors.q));
  inputs.country.toggleAttribute('aria-invalid', Boolean(filters.errors.country));
  inputs.cidr.toggleAttribute('aria-invalid', Boolean(filters.errors.cidr));
  feed.refilter();
  map.clear();
  map.add(feed.events.filter((ev) => filters.matches(ev)), false);
  renderOrigins(state.origins, filters.hiddenOrigins, state.originCounts);
  if (syncServer()) {
    clearTimeout(backfillTimer);
    backfillTimer = setTimeout(backfill, 300);
  }
}

/**
 * Tells the daemon what changed of class/country/cidr and the top lists'
 * window (text and origins stay here). Returns whether the event filter
 * widened or narrowed, which calls for a backfill; a window alone does not.
 */
function syncServer() {
  const server = filters.server();
  const key = JSON.stringify(server);
  if (key === lastServer) return false;
  const was = JSON.parse(lastServer);
  lastServer = key;
  socket.send({ type: 'filter', class: server.class, country: server.country, ...(server.cidr ? { cidr: server.cidr } : {}), host: server.host ?? [], window: server.window });
  return JSON.stringify({ ...was, window: null }) !== JSON.stringify({ ...server, window: null });
}

/** The window selector shows the window asked for; the panels say the one they show (renderTop). */
function showWindow() {
  const v = filters.window === null ? 'all' : String(filters.window);
  for (const b of $('top-window').querySelectorAll('[data-top-window]')) b.setAttribute('aria-pressed', String(b.dataset.topWindow === v));
}

$('top-window').addEventListener('click', (e) => {
  const b = e.target.closest('[data-top-window]');
  if (!b) return;
  filters.window = b.dataset.topWindow === 'all' ? null : Number(b.dataset.topWindow);
  filters.toUrl();
  showWindow();
  syncServer();
});

/** A wider server-side filter: fetch the newest events we were not sent before. */
async function backfill() {
  let body;
  try { body = await api('/api/events?limit=2000'); } catch { return; }
  const events = Array.isArray(body) ? body : (body?.events ?? []);
  const have = new Set(feed.events.map(eventKey));
  const extra = events.filter((ev) => !have.has(eventKey(ev)));
  if (!extra.length) return;
  const merged = feed.events.concat(extra).sort((a, b) => a.ts_ms - b.ts_ms || (a.id ?? 0) - (b.id ?? 0));
  feed.replace(merged);
  map.clear();
  map.add(feed.events.filter((ev) => filters.matches(ev)), false);
}

function readInputs() {
  filters.q = inputs.q.value;
  filters.countries = new Set(inputs.country.value.split(/[\s,]+/).filter(Boolean).map((c) => c.toUpperCase()));
  filters.cidr = inputs.cidr.value.trim();
  filters.host = inputs.host.value;
  filters.classes = new Set(classBoxes.filter((b) => b.checked).map((b) => b.value));
}

/** Programmatic filter changes (map clicks, top lists, lookup): replace the named parts. */
function setFilters({ q, countries, cidr }) {
  if (q !== undefined) filters.q = q;
  if (countries !== undefined) filters.countries = new Set(countries);
  if (cidr !== undefined) filters.cidr = cidr;
  showFilters();
  applyFilters();
}

let typing = 0;
$('filters').addEventListener('input', () => {
  clearTimeout(typing);
  typing = setTimeout(() => { readInputs(); applyFilters(); }, 150); // do not refilter 5000 events per keystroke
});
$('filters').addEventListener('submit', (e) => e.preventDefault());
$('f-reset').addEventListener('click', () => {
  filters.q = ''; filters.countries = new Set(); filters.cidr = ''; filters.host = ''; filters.classes = new Set(); filters.hiddenOrigins = new Set();
  showFilters();
  applyFilters();
});
$('origins').addEventListener('change', (e) => {
  const o = e.target.dataset.origin;
  if (!o) return;
  if (e.target.checked) filters.hiddenOrigins.delete(o); else filters.hiddenOrigins.add(o);
  applyFilters();
});
showFilters();
applyFilters();

// ---- controls ----

$('pause').addEventListener('click', () => {
  state.paused = !state.paused;
  const b = $('pause');
  b.setAttribute('aria-pressed', String(state.paused));
  b.textContent = state.paused ? 'Resume' : 'Pause';
  document.body.classList.toggle('paused', state.paused);
  feed.setPaused(state.paused);
  map.setPaused(state.paused);
});
$('clear').addEventListener('click', () => {
  feed.clear();
  map.clear();
  state.originCounts.clear();
});
for (const b of document.querySelectorAll('[data-pick]')) {
  b.addEventListener('click', () => {
    pickBy = b.dataset.pick;
    for (const o of document.querySelectorAll('[data-pick]')) o.setAttribute('aria-pressed', String(o === b));
  });
}
// The header's jump links: the lookup gets the focus, ready to type into.
$('jump-lookup').addEventListener('click', (e) => {
  e.preventDefault();
  $('lookup-section').scrollIntoView({ block: 'start' });
  $('lookup-ip').focus({ preventScroll: true });
});
for (const el of document.querySelectorAll('.feed-head .tz')) el.textContent = `(${TZ})`;
for (const b of document.querySelectorAll('[data-window]')) {
  b.addEventListener('click', () => {
    for (const o of document.querySelectorAll('[data-window]')) o.setAttribute('aria-pressed', String(o === b));
    chart.setWindow(Number(b.dataset.window));
  });
}

// Any IP anywhere opens the lookup; countries and ASNs in the top lists filter.
document.addEventListener('click', (e) => {
  const t = e.target.closest('[data-ip], [data-country], [data-q]');
  if (!t) return;
  if (t.dataset.ip) {
    lookup.open(t.dataset.ip);
    const r = $('lookup-section').getBoundingClientRect();
    if (r.bottom < 0 || r.top > innerHeight) $('lookup-section').scrollIntoView({ block: 'start', behavior: 'smooth' });
  } else if (t.dataset.country) {
    setFilters({ countries: [t.dataset.country] });
  } else if (t.dataset.q) {
    setFilters({ q: t.dataset.q });
  }
});

// Until a top list arrives, the panels name the window asked for (nothing is shown yet).
for (const el of document.querySelectorAll('[data-top-window-label]')) el.textContent = topWindowText(filters.window);
$('map-zoom-in').addEventListener('click', () => map.zoom(2));
$('map-zoom-out').addEventListener('click', () => map.zoom(0.5));
$('map-zoom-reset').addEventListener('click', () => map.resetZoom());
// The meta first, so the first connection already asks for the URL's classes
// and window, checked: an unknown one would get it refused. If the daemon
// cannot be asked now, the socket connects without them and the snapshot's
// meta completes the filter.
api('/api/meta').then(applyMeta, () => {}).finally(() => socket.start());
if (filters.range) showRange(filters.range.from, filters.range.to); // a shared link to a range

// For the browser tests and for poking at the page from the devtools console.
window.monitorDashboard = {
  get connection() { return socket.state; },
  get connects() { return socket.connects; },
  get feedSize() { return feed.events.length; },
  get received() { return state.received; },
  get mapSize() { return map.points.size; },
  get paused() { return state.paused; },
  mapPoint: (ip) => map.locate(ip),
  /** Canvas CSS px of a place, and the place under a pixel: what stays under the pointer while zooming. */
  mapProject: (lon, lat) => ({ x: map.x(lon), y: map.y(lat) }),
  mapUnproject: (x, y) => map.unproject(x, y),
  get mapZoom() { return map.view.k; },
  get meta() { return meta; },
  get topWindow() { return shownWindow; },
  get range() { return state.range; },
  get rangeTop() { return rangeTop; },
  showRange,
  showLive,
  chart,
  fmtCompact,
};
