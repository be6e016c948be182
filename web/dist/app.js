// Entry point: wires the socket's frames into the panels, the feed, the map
// and the chart, and the controls (filters, pause, clear, theme) back into
// them. Everything the page shows flows through here; each module does one job.

import { api, initToken, onUnauthorized } from './auth.js';
import { RateChart } from './chart.js';
import { observeServerTime, serverNow } from './clock.js';
import { Feed } from './feed.js';
import { Filters } from './filters.js';
import { CLASSES, LABELS, TZ, badge, fmtClock, fmtCompact, originLabel } from './format.js';
import { Lookup } from './lookup.js';
import { WorldMap, keyHtml } from './map.js';
import {
  renderAttribution, renderHeader, renderHeadline, renderHealth, renderHttp, renderOrigins, renderTop, renderViewers,
} from './panels.js';
import { LiveSocket } from './socket.js';
import { initTheme } from './theme.js';

const SCHEMA = 1;
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
};

let filters = Filters.fromSearch(location.search);
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
const lookup = new Lookup({
  form: $('lookup-form'), input: $('lookup-ip'), panel: $('lookup'),
  onFilter: (ip) => setFilters({ cidr: ip }),
});

// ---- frames from the daemon ----

const socket = new LiveSocket({
  params: () => filters.serverParams(),
  onFrame: (f) => {
    if (f.schema !== undefined && f.schema !== SCHEMA) {
      $('schema-warning').textContent = `The daemon speaks API schema ${f.schema}; this page knows schema ${SCHEMA}. Some panels may be wrong: reload the page.`;
      $('schema-warning').hidden = false;
    }
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

function onSnapshot(f) {
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
    renderHttp(stats.http);
    renderAttribution(stats.geo);
    renderViewers(stats.viewers);
    for (const i of stats.interfaces ?? []) state.origins.add(`xdp:${i.name}`);
    for (const s of Object.keys(stats.syslog?.accepted_by_sender ?? {})) state.origins.add(`syslog:${s}`);
  }
  if (top) {
    state.top = top;
    if (filters.isEmpty && !state.paused) map.seed(top.sources);
  }
  renderTop(state.top, state.stats);
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
  map.add(events.filter((ev) => filters.matches(ev)), flash);
}

/** The daemon's headline figures (stats.headline), or none when they are not current. */
function refreshHeadline() {
  renderHeadline(state.live ? state.stats?.headline : null);
}

setInterval(() => {
  if (state.live) renderUptime();
  renderOrigins(state.origins, filters.hiddenOrigins, state.originCounts);
}, 1000);

// ---- filters ----

const inputs = { q: $('f-q'), country: $('f-country'), cidr: $('f-cidr') };
$('f-classes').insertAdjacentHTML('beforeend', CLASSES.map((c) =>
  `<label class="chip"><input type="checkbox" value="${c}"> ${badge(c)}<span class="sr-only"> ${LABELS[c]}</span></label>`).join(''));
const classBoxes = [...$('f-classes').querySelectorAll('input')];

function showFilters() {
  inputs.q.value = filters.q;
  inputs.country.value = [...filters.countries].join(', ');
  inputs.cidr.value = filters.cidr;
  for (const b of classBoxes) b.checked = filters.classes.has(b.value);
}

let lastServer = JSON.stringify(filters.server());
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
  const server = filters.server();
  const key = JSON.stringify(server);
  if (key !== lastServer) {
    lastServer = key;
    // Only class/country/cidr go to the daemon; text and origins stay here.
    socket.send({ type: 'filter', class: server.class, country: server.country, ...(server.cidr ? { cidr: server.cidr } : {}) });
    clearTimeout(backfillTimer);
    backfillTimer = setTimeout(backfill, 300);
  }
}

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
  filters.q = ''; filters.countries = new Set(); filters.cidr = ''; filters.classes = new Set(); filters.hiddenOrigins = new Set();
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

$('map-key').innerHTML = keyHtml();
$('map-zoom-in').addEventListener('click', () => map.zoom(2));
$('map-zoom-out').addEventListener('click', () => map.zoom(0.5));
$('map-zoom-reset').addEventListener('click', () => map.resetZoom());
socket.start();

// For the browser tests and for poking at the page from the devtools console.
window.monitorDashboard = {
  get connection() { return socket.state; },
  get connects() { return socket.connects; },
  get feedSize() { return feed.events.length; },
  get received() { return state.received; },
  get mapSize() { return map.points.size; },
  get paused() { return state.paused; },
  mapPoint: (ip) => map.locate(ip),
  chart,
  fmtCompact,
};
