// The panels fed by `stats` and `top` (snapshot and once a second): header,
// headline numbers, top lists, pipeline health, origins, viewers, footer.
// Each function takes plain data and writes one part of the page.

import {
  asnText, badge, countryName, esc, flag, fmtAgo, fmtBps, fmtCompact, fmtDate, fmtDateTime, fmtDuration, fmtInt, fmtPercent,
  ipButton, placeHtml, rangeText, topWindowText,
} from './format.js';
import { serverNow } from './clock.js';

const $ = (id) => document.getElementById(id);
const TOP_ROWS = 10;

/** Sets text only when it changed: these run every second and most of it is steady. */
function setText(id, text) {
  const el = typeof id === 'string' ? $(id) : id;
  if (el && el.textContent !== text) el.textContent = text;
}
function setHtml(id, html) {
  const el = $(id);
  if (el && el._html !== html) { el._html = html; el.innerHTML = html; }
}

export function renderHeader(stats, uptimeS) {
  setText('hostname', stats.hostname ?? '?');
  document.title = `Monitor · ${stats.hostname ?? ''}`;
  setText('uptime', `up ${fmtDuration(uptimeS)}`);
  setText('version', stats.version ? `Monitor ${stats.version}` : 'Monitor');
  const ifaces = stats.interfaces ?? [];
  setHtml('ifaces', ifaces.length
    ? ifaces.map((i) => `<li><span class="iface">${esc(i.name)}</span> <span class="tag" title="XDP attach mode">${esc(i.mode ?? '?')}</span></li>`).join('')
    : '<li class="muted">no XDP interface</li>');
}

/**
 * The headline: the daemon's own figures (stats.headline, docs/API.md), each
 * labelled with its window. `h` null (not live, or an older daemon): "–", never 0.
 */
export function renderHeadline(h) {
  setText('h-pps', fmtCompact(h?.xdp_packets_per_s));
  setText('h-bps', fmtBps(h?.xdp_bits_per_s));
  setText('h-syslog', fmtCompact(h?.syslog_packets_per_s));
  setText('h-eps', fmtCompact(h?.events_per_s));
  setText('h-sources', fmtInt(h?.active_sources));
  setText('h-countries', fmtInt(h?.active_countries));
  if (!h) return;
  for (const el of document.querySelectorAll('[data-window-of="rate"]')) setText(el, windowText(h.rate_window_s));
  for (const el of document.querySelectorAll('[data-window-of="active"]')) setText(el, windowText(h.active_window_s));
}

const windowText = (s) => (s === 1 ? 'second' : `${fmtInt(s)} s`);

/**
 * What the lists are made of, as a sum that adds up: the kernel's eligible
 * packets are exactly those sent as events, suppressed by sampling (their
 * count rides on the source's next event) or lost with the ring buffer full.
 * Syslog-reported packets are a separate count.
 */
export function totalsText(stats, top) {
  const p = stats?.kernel?.pipeline;
  const sl = stats?.events?.syslog_packets_by_class;
  const viaSyslog = sl ? Object.values(sl).reduce((a, n) => a + (n ?? 0), 0) : 0;
  const windowed = top?.window_minutes != null; // the kernel's counters are always since start
  const parts = [];
  if (p) {
    const suppressed = (p.suppressed_source ?? 0) + (p.suppressed_global ?? 0);
    parts.push(`${fmtInt(p.event_eligible)} packets eligible for events = ${fmtInt(p.event_submitted)} sent as events`
      + ` + ${fmtInt(suppressed)} suppressed by sampling (counted in later events' weight) + ${fmtInt(p.ring_full)} lost (ring buffer full)`
      + (windowed ? ', since the daemon started' : ''));
  }
  if (viaSyslog || !p) parts.push(`${fmtInt(viaSyslog)} packets reported over syslog, apart${windowed ? ', since the daemon started' : ''}`);
  // The lists themselves cover the window the daemon says this `top` is for.
  const events = top?.totals?.events ?? (windowed ? null : stats?.events?.accepted);
  parts.push(`lists weigh ${fmtInt(events)} events${windowed ? ` of the ${topWindowText(top.window_minutes)}` : ''} by the packets they stand for`);
  return `${parts.join('; ')}.`;
}

/**
 * The ICMP type table adds up event weights (events carry the packets that
 * sampling suppressed before them), the kernel counts every packet: say both,
 * so a sampled breakdown is never mistaken for a count.
 */
export function icmpTotalsText(top, stats) {
  const fromEvents = (top?.icmp_types ?? []).reduce((a, t) => a + (t.packets ?? 0), 0);
  const kc = stats?.kernel?.classes;
  const counted = kc ? (kc.icmp?.packets ?? 0) + (kc.icmpv6?.packets ?? 0) : null;
  const sl = stats?.events?.syslog_packets_by_class;
  const viaSyslog = sl ? (sl.icmp ?? 0) + (sl.icmpv6 ?? 0) : 0;
  const win = top?.window_minutes ?? null; // the types follow the window, the counters do not
  let text = `Types of ${fmtInt(fromEvents)} packets${win === null ? '' : ` of the ${topWindowText(win)}`}, from events (weighted by suppressed packets)`;
  if (counted !== null) text += `; the kernel counted ${fmtInt(counted)} ICMP/ICMPv6 packets ${win === null ? 'in all' : 'since the daemon started'}`;
  if (viaSyslog) text += `; ${fmtInt(viaSyslog)} reported over syslog${win === null ? '' : ' since then'}`;
  return `${text}.`;
}

function shareBar(value, max) {
  const pct = max > 0 ? Math.max(1, Math.round((100 * value) / max)) : 0;
  return `<span class="bar" style="--w:${pct}%" aria-hidden="true"></span>`;
}

function table(head, rows, empty) {
  if (!rows.length) return `<p class="muted">${esc(empty)}</p>`;
  return `<table class="top"><thead><tr>${head.map((h) => `<th scope="col"${h.num ? ' class="num"' : ''}>${esc(h.label ?? h)}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

export function renderTop(top, stats) {
  if (!top) return;
  // Each panel states the window of the data it shows: the one this `top` says
  // it covers (absent from an older daemon: since start), not the one asked for.
  // A range of the history store says so instead (/api/top?from=&to=).
  const win = top.window_minutes ?? null;
  const winText = top.range ? rangeText(top.range.from_ms, top.range.to_ms) : topWindowText(win);
  for (const el of document.querySelectorAll('[data-top-window-label]')) setText(el, winText);
  const section = $('top-section');
  const key = top.range ? 'range' : String(win ?? 'all');
  if (section && section.dataset.window !== key) section.dataset.window = key;
  const totals = totalsText(stats, top);
  for (const el of document.querySelectorAll('.top-totals')) setText(el, totals);

  const sources = (top.sources ?? []).slice(0, TOP_ROWS);
  const srcPk = (s) => (s.xdp_packets ?? 0) + (s.syslog_packets ?? 0);
  const maxS = Math.max(0, ...sources.map(srcPk));
  setHtml('top-sources', table(['Source', 'Where', { label: 'Packets', num: true }, { label: 'Events', num: true }],
    sources.map((s) => `<tr><td>${ipButton(s.ip)}`
      + `<div class="sub">${esc(asnText(s.geo))}</div></td><td class="geo">${placeHtml(s.geo)}</td>`
      + `<td class="num">${fmtInt(srcPk(s))}${shareBar(srcPk(s), maxS)}</td><td class="num">${fmtInt(s.events)}</td></tr>`),
    'No sources yet.'));

  const countries = (top.countries ?? []).slice(0, TOP_ROWS);
  const maxC = Math.max(0, ...countries.map((c) => c.packets ?? 0));
  setHtml('top-countries', table(['Country', { label: 'Packets', num: true }, { label: 'Sources', num: true }],
    countries.map((c) => `<tr><td><button type="button" class="link" data-country="${esc(c.country_code)}" title="Filter by ${esc(countryName(c))}">`
      + `<span class="flag" aria-hidden="true">${flag(c.country_code)}</span>${esc(c.country_code)} ${esc(countryName(c))}</button></td>`
      + `<td class="num">${fmtInt(c.packets)}${shareBar(c.packets, maxC)}</td><td class="num">${fmtInt(c.sources)}</td></tr>`),
    'No located sources yet.'));

  const asns = (top.asns ?? []).slice(0, TOP_ROWS);
  const maxA = Math.max(0, ...asns.map((a) => a.packets ?? 0));
  setHtml('top-asns', table(['Network', { label: 'Packets', num: true }, { label: 'Sources', num: true }],
    asns.map((a) => `<tr><td><button type="button" class="link" data-q="AS${esc(a.asn)}" title="Filter by AS${esc(a.asn)}">AS${esc(a.asn)}</button> ${esc(a.as_org ?? '')}</td>`
      + `<td class="num">${fmtInt(a.packets)}${shareBar(a.packets, maxA)}</td><td class="num">${fmtInt(a.sources)}</td></tr>`),
    'No ASN data yet.'));

  setText('icmp-totals', icmpTotalsText(top, stats));
  const icmp = (top.icmp_types ?? []).slice(0, TOP_ROWS);
  const maxI = Math.max(0, ...icmp.map((t) => t.packets ?? 0));
  setHtml('top-icmp', table(['ICMP type', 'Type/code', { label: 'Packets', num: true }],
    icmp.map((t) => `<tr><td>${badge(t.v6 ? 'icmpv6' : 'icmp')} ${esc(t.name ?? '')}</td><td>${esc(t.type)}/${esc(t.code)}</td>`
      + `<td class="num">${fmtInt(t.packets)}${shareBar(t.packets, maxI)}</td></tr>`),
    'No ICMP seen yet.'));
}

function kv(rows) {
  return `<dl class="kv">${rows.filter(Boolean).map(([k, v, warn]) => `<div${warn ? ' class="warn"' : ''}><dt>${esc(k)}</dt><dd>${warn ? '<span class="sr-only">warning: </span>⚠ ' : ''}${v}</dd></div>`).join('')}</dl>`;
}

function counts(obj, empty = 'none') {
  const entries = Object.entries(obj ?? {}).sort((a, b) => b[1] - a[1]);
  if (!entries.length) return `<span class="muted">${esc(empty)}</span>`;
  return entries.slice(0, 8).map(([k, n]) => `${esc(k)}: ${fmtInt(n)}`).join(', ') + (entries.length > 8 ? `, … (${entries.length - 8} more)` : '');
}

/** One database, or the daemon's list of them (DB-IP ships an IPv4 and an IPv6 file). */
function dbText(db) {
  if (Array.isArray(db)) return db.length ? db.map(dbText).join('<br>') : dbText(null);
  if (!db) return '<span class="muted">not loaded</span>';
  const built = Number.isFinite(db.build_epoch) ? `, built ${fmtDate(db.build_epoch * 1000)}` : '';
  const age = Number.isFinite(db.age_days) ? `, ${fmtInt(db.age_days)} days old` : '';
  const ranges = Number.isFinite(db.ranges) ? `, ${fmtInt(db.ranges)} ranges` : '';
  const file = db.path ? ` <span class="muted small">${esc(String(db.path).split('/').pop())}</span>` : '';
  return `${esc(db.type ?? '?')}${built}${age}${ranges}${file}`;
}

/** Pipeline health: where packets went that did not become events. */
export function renderHealth(stats, client) {
  const k = stats.kernel;
  const p = k?.pipeline;
  const ev = stats.events ?? {};
  const sl = stats.syslog ?? {};
  const geo = stats.geo ?? {};
  const old = (db) => (Array.isArray(db) ? db.some(old) : Number.isFinite(db?.age_days) && db.age_days > 60);
  const missing = (db) => !db || (Array.isArray(db) && !db.length);
  setHtml('health', kv([
    k ? null : ['XDP', '<span class="muted">not attached (syslog only)</span>'],
    p && ['Ring buffer full (lost events)', fmtInt(p.ring_full), p.ring_full > 0],
    p && ['Suppressed by sampling', `${fmtInt((p.suppressed_source ?? 0) + (p.suppressed_global ?? 0))} (per source ${fmtInt(p.suppressed_source)}, global ${fmtInt(p.suppressed_global)})`],
    p && ['Sampling ratio (submitted / eligible)', `${fmtPercent(p.event_submitted, p.event_eligible)} (${fmtInt(p.event_submitted)} / ${fmtInt(p.event_eligible)})`],
    ['Daemon queue drops', fmtInt(ev.dropped_queue_full), ev.dropped_queue_full > 0],
    ['Malformed records', fmtInt(ev.malformed_records), ev.malformed_records > 0],
    ['Sources tracked', `${fmtInt(stats.sources?.tracked)}${k?.sources_capacity ? ` of ${fmtInt(k.sources_capacity)} in the kernel table` : ''}; evicted ${fmtInt(stats.sources?.evicted)}`
      + (p?.source_insert_failed ? `; kernel insert failures ${fmtInt(p.source_insert_failed)}` : ''), p?.source_insert_failed > 0],
    ['This browser skipped (fell behind)', fmtInt(client.skipped), client.skipped > 0],
    ['Syslog received / accepted', `${fmtInt(sl.received)} / ${fmtInt(sl.accepted)}`],
    ['Syslog dropped by the kernel (receive buffer full)', fmtInt(sl.socket_drops), sl.socket_drops > 0],
    ['Syslog rejected by reason', counts(sl.rejected), Object.keys(sl.rejected ?? {}).length > 0],
    ['Rejected senders', counts(sl.rejected_senders)],
    ...(sl.last_rejected ?? []).slice(-3).reverse().map((r) => ['Last rejected',
      `${esc(fmtDateTime(r.ts_ms))} ${esc(r.sender)}: ${esc(r.reason)} <code class="sample">${esc(String(r.sample ?? '').slice(0, 160))}</code>`]),
    ['GeoIP city database', dbText(geo.city_db), missing(geo.city_db) || old(geo.city_db)],
    ['GeoIP ASN database', dbText(geo.asn_db), old(geo.asn_db)],
    (old(geo.city_db) || old(geo.asn_db)) && ['Fresher GeoIP data', '<code>MONITOR_GEO_REFRESH=1 ./setup.sh</code> (as root); the daemon picks the new files up by itself'],
    ...(geo.errors ?? []).slice(0, 3).map((e) => ['GeoIP error', esc(e), true]),
  ]));
}

function ms(v) {
  if (!Number.isFinite(v)) return '–';
  return v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ms`;
}

/** Status classes in the daemon's order (meta.status_classes), the numbered ones first. */
function statusOf(status, classes) {
  const order = [...classes].sort((a, b) => /^\d/.test(b) - /^\d/.test(a));
  const parts = order.filter((c) => (status?.[c] ?? 0) > 0).map((c) => `<span class="status-${c}">${esc(c)}: ${fmtInt(status[c])}</span>`);
  return parts.length ? parts.join(', ') : '<span class="muted">none</span>';
}

/**
 * HTTP response times and availability (the `http` document of /api/stats);
 * `statusClasses` are the daemon's (meta.status_classes).
 */
export function renderHttp(http, statusClasses = []) {
  if (!http) return;
  const statusText = (st) => statusOf(st, statusClasses);
  if (!http.enabled) {
    const why = (http.errors ?? []).map(esc).join('; ') || 'not attached';
    setHtml('http-timing', `<p class="muted">Response times: off (${why}).</p>`);
    return;
  }
  const k = http.kernel ?? {};
  const s = http.since_start ?? {};
  const w = http.window ?? {};
  const served = (st) => Object.entries(st ?? {}).reduce((n, [c, v]) => n + (c === '5xx' ? 0 : v), 0);
  const avail = (st, total) => (total > 0 ? fmtPercent(served(st), total) : '–');
  const pct = (x) => `${ms(x?.p50_ms)} / ${ms(x?.p90_ms)} / ${ms(x?.p99_ms)}`;
  const summary = kv([
    [`Last ${http.window_s ?? 60} s: responses, p50 / p90 / p99`, `${fmtInt(w.responses ?? 0)}; ${pct(w)}`],
    ['Since start: responses, p50 / p90 / p99', `${fmtInt(s.responses ?? 0)}; ${pct(s)}; mean ${ms(s.mean_ms)}`],
    [`Status classes (last ${http.window_s ?? 60} s)`, statusText(w.status)],
    ['Status classes (since start)', statusText(s.status)],
    ['Availability (non-5xx, since start)', avail(s.status, s.responses ?? 0), (s.status?.['5xx'] ?? 0) > 0],
    ['Unmatched responses / expired / evicted requests',
      `${fmtInt(k.responses_unmatched)} / ${fmtInt(k.requests_expired)} / ${fmtInt(k.requests_evicted_at_least)}`],
  ]);
  const rows = (list, key) => (list ?? []).slice(0, TOP_ROWS).map((r) => `<tr><td><code>${esc(r[key])}</code></td>`
    + `<td class="num">${ms(r.mean_ms)}</td><td class="num">${ms(r.max_ms)}</td><td class="num">${fmtInt(r.responses)}</td>`
    + `<td>${statusText(r.status)}</td></tr>`);
  const head = (label) => [label, { label: 'Mean', num: true }, { label: 'Max', num: true }, { label: 'Responses', num: true }, 'Status'];
  setHtml('http-timing', summary
    + '<h3>Slowest paths</h3>' + table(head('Path'), rows(http.slowest_paths, 'path'), 'No timed responses yet.')
    + '<h3>Slowest hosts</h3>' + table(head('Host'), rows(http.slowest_hosts, 'host'), 'No timed responses yet.'));
}

/** The footer attribution: DB-IP's CC BY 4.0 licence requires it on every page using its data. */
export function renderAttribution(geo) {
  const a = geo?.attribution;
  const link = $('attribution');
  if (!a || !link) return;
  if (a.url && /^https:\/\//.test(a.url) && link.getAttribute('href') !== a.url) link.href = a.url;
  if (a.text) setText(link, a.text);
  setText('attribution-license', a.license ? ` (${a.license})` : '');
}

/** Origins: each xdp interface and each syslog sender seen, with show/hide toggles. */
export function renderOrigins(origins, hidden, counts) {
  const list = [...origins].sort();
  const key = list.join('|') + '#' + [...hidden].sort().join('|');
  const el = $('origins');
  if (el._key !== key) {
    el._key = key;
    el.innerHTML = list.length
      ? list.map((o) => `<li><label><input type="checkbox" data-origin="${esc(o)}"${hidden.has(o) ? '' : ' checked'}> <span class="origin">${esc(o)}</span></label> <span class="num muted" data-origin-count="${esc(o)}"></span></li>`).join('')
      : '<li class="muted">none seen yet</li>';
  }
  for (const span of el.querySelectorAll('[data-origin-count]')) {
    const n = counts.get(span.dataset.originCount);
    setText(span, n ? `${fmtInt(n)} events` : '');
  }
}

/** Connected viewers: only sent to authenticated viewers, so the section hides when absent. */
export function renderViewers(viewers) {
  const section = $('viewers-section');
  section.hidden = !Array.isArray(viewers);
  if (!Array.isArray(viewers)) return;
  setHtml('viewers', viewers.length
    ? viewers.map((v) => `<li>${ipButton(v.addr)} ${placeHtml(v.geo)} <span class="muted">since ${esc(fmtAgo(v.since_ms, serverNow()))}</span></li>`).join('')
    : '<li class="muted">none</li>');
}
