#!/usr/bin/env node
// DEVELOPMENT AID ONLY: a fake Monitor daemon that serves ../../web/dist and
// emits frames shaped per docs/API.md, so the dashboard can be worked on
// without root, XDP or the Rust build. The real browser tests run against the
// real daemon (MONITOR_URL); nothing here is used by them. What exists
// (classes, series, windows) is read from the golden docs/api/meta.json, as
// the daemon serves it, never restated here.
//
//   node dev/mock-server.mjs [--port 8099] [--eps 200] [--token T] [--auth-mode reject|close]
//                            [--test-src 203.0.113.7] [--no-geo-db]
//
// --auth-mode: how an unauthenticated WebSocket is refused: "reject" answers
// the upgrade with 401, "close" accepts it and closes with code 4401.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { extname, join, normalize, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from 'ws';
import { cidrContains, parseCidr, parseIp } from '../../web/dist/filters.js';

const args = Object.fromEntries(process.argv.slice(2).join(' ').split('--').filter(Boolean).map((a) => {
  const [k, ...v] = a.trim().split(/\s+/);
  return [k, v.length ? v.join(' ') : true];
}));
const PORT = Number(args.port ?? 8099);
const HOST = args.host ?? '127.0.0.1';
const EPS = Number(args.eps ?? 200);
const TOKEN = args.token === true ? undefined : args.token;
const AUTH_MODE = args['auth-mode'] ?? 'reject';
const TEST_SRC = args['test-src'] === true ? undefined : args['test-src'];
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DIST = join(ROOT, 'web', 'dist');
const META = JSON.parse(await readFile(join(ROOT, 'docs', 'api', 'meta.json'), 'utf8'));
let STARTED = Date.now(); // a simulated restart starts it again, as a new daemon process would
const CLASS_NAMES = META.classes;
const SERIES = META.rate_series;
const SCHEMA = META.schema;

// ---- a small world of sources ----
const PLACES = [
  ['DE', 'Germany', 'Berlin', 52.52, 13.40, 3320, 'Deutsche Telekom AG'],
  ['DE', 'Germany', 'Frankfurt am Main', 50.11, 8.68, 24940, 'Hetzner Online GmbH'],
  ['FR', 'France', 'Paris', 48.86, 2.35, 16276, 'OVH SAS'],
  ['US', 'United States', 'Ashburn', 39.04, -77.49, 14618, 'Amazon.com, Inc.'],
  ['US', 'United States', 'San Jose', 37.34, -121.89, 13335, 'Cloudflare, Inc.'],
  ['US', 'United States', 'Chicago', 41.88, -87.63, 7018, 'AT&T Services, Inc.'],
  ['CN', 'China', 'Beijing', 39.90, 116.40, 4134, 'Chinanet'],
  ['CN', 'China', 'Shanghai', 31.23, 121.47, 4812, 'China Telecom (Group)'],
  ['RU', 'Russia', 'Moscow', 55.76, 37.62, 12389, 'Rostelecom'],
  ['BR', 'Brazil', 'São Paulo', -23.55, -46.63, 28573, 'Claro NXT Telecomunicacoes Ltda'],
  ['IN', 'India', 'Mumbai', 19.08, 72.88, 9829, 'National Internet Backbone'],
  ['JP', 'Japan', 'Tokyo', 35.68, 139.69, 2516, 'KDDI Corporation'],
  ['AU', 'Australia', 'Sydney', -33.87, 151.21, 1221, 'Telstra Limited'],
  ['ZA', 'South Africa', 'Johannesburg', -26.20, 28.05, 37100, 'SEACOM Limited'],
  ['NL', 'Netherlands', 'Amsterdam', 52.37, 4.90, 1136, 'KPN B.V.'],
  ['GB', 'United Kingdom', 'London', 51.51, -0.13, 2856, 'British Telecommunications PLC'],
  ['SG', 'Singapore', 'Singapore', 1.35, 103.82, 16509, 'Amazon.com, Inc.'],
  ['KR', 'South Korea', 'Seoul', 37.57, 126.98, 4766, 'Korea Telecom'],
  ['CA', 'Canada', 'Toronto', 43.65, -79.38, 812, 'Rogers Communications Canada Inc.'],
  ['AR', 'Argentina', 'Buenos Aires', -34.60, -58.38, 7303, 'Telecom Argentina S.A.'],
  ['NG', 'Nigeria', 'Lagos', 6.52, 3.38, 29465, 'MTN NIGERIA Communication limited'],
  ['RU', 'Russia', 'Anadyr', 64.73, 177.51, 12389, 'Rostelecom'],
  ['NZ', 'New Zealand', 'Auckland', -36.85, 174.76, 9500, 'One New Zealand Group Limited'],
];
const rnd = (n) => Math.floor(Math.random() * n);
const sources = [];
for (let i = 0; i < 90; i++) {
  const [cc, country, city, lat, lon, asn, as_org] = PLACES[i % PLACES.length];
  const v6 = i % 9 === 4;
  const ip = v6 ? `2001:db8:${(i * 37).toString(16)}::${(i + 1).toString(16)}` : `${[45, 185, 91, 203, 198, 77][i % 6]}.${(i * 53) % 250}.${(i * 17) % 250}.${1 + (i % 250)}`;
  const noCity = i % 7 === 3;
  sources.push({
    ip, v6, weight: 1 / (1 + i * 0.15),
    geo: { label: 'public', country_code: cc, country, ...(noCity ? {} : { city }), lat: lat + (Math.random() - 0.5) * 2, lon: lon + (Math.random() - 0.5) * 2, asn, as_org },
  });
}
sources.push({ ip: '10.0.0.23', weight: 0.5, geo: { label: 'private' } });
sources.push({ ip: '192.168.1.50', weight: 0.3, geo: { label: 'private' } });
sources.push({ ip: '100.64.3.9', weight: 0.2, geo: { label: 'cgnat' } });
sources.push({ ip: '8.8.4.4', weight: 0.2 }); // no geo at all
// Located, as the real harness's test source must be (browser.rs checks its GeoIP location).
if (TEST_SRC) sources.push({ ip: TEST_SRC, weight: 0, test: true, geo: { label: 'public', country_code: 'NL', country: 'Netherlands', city: 'Amsterdam', lat: 52.37, lon: 4.90, asn: 1136, as_org: 'KPN B.V.' } });
const totalWeight = sources.reduce((a, s) => a + s.weight, 0);
const pickSource = () => {
  let r = Math.random() * totalWeight;
  for (const s of sources) { r -= s.weight; if (r <= 0) return s; }
  return sources[0];
};

// ---- counters ----
let nextId = 1;
const recent = [];
const agg = new Map(); // ip -> per source counters
const kernel = { classes: Object.fromEntries(CLASS_NAMES.map((c) => [c, { packets: 0, bytes: 0 }])), pipeline: { event_eligible: 0, event_submitted: 0, suppressed_source: 0, suppressed_global: 0, ring_full: 0, source_inserted: 0, source_insert_failed: 0 }, sources_capacity: 65536 };
const evStats = { received: 0, accepted: 0, dropped_queue_full: 0, malformed_records: 0, xdp_packets_by_class: Object.fromEntries(CLASS_NAMES.map((c) => [c, 0])), syslog_packets_by_class: Object.fromEntries(CLASS_NAMES.map((c) => [c, 0])) };
const syslog = { received: 0, accepted: 0, rejected: { not_iptables: 3, sender_not_allowed: 12 }, rejected_senders: { '192.0.2.66': 12 }, accepted_by_sender: {}, last_rejected: [{ ts_ms: Date.now() - 60000, sender: '192.0.2.66', reason: 'sender_not_allowed', sample: '<4>Nov 24 10:00:00 fw kernel: IPT_ICMP IN=ens3 OUT= SRC=203.0.113.9 DST=198.51.100.1 LEN=84 PROTO=ICMP TYPE=8 CODE=0 ID=1 SEQ=1' }] };
const icmpTypes = new Map();
// The same per source and ICMP type counters per minute, for the top lists'
// windows (meta.top_windows_minutes): a window sums its last minutes.
const minutes = new Map(); // minute -> {agg: Map(ip -> counters), icmp: Map(key -> type), events}
const MAX_WINDOW = Math.max(...META.top_windows_minutes);
function minuteOf(ts_ms) {
  const m = Math.floor(ts_ms / 60000);
  let b = minutes.get(m);
  if (!b) {
    b = { agg: new Map(), icmp: new Map(), events: 0 };
    minutes.set(m, b);
    for (const old of minutes.keys()) if (old <= m - MAX_WINDOW) minutes.delete(old);
  }
  return b;
}
const history = new Map(); // sec -> {series}
const nowSec = () => Math.floor(Date.now() / 1000);
// A plausible past hour so the chart has a shape right away.
for (let s = nowSec() - 3600; s < nowSec(); s++) {
  const wave = 1 + 0.5 * Math.sin(s / 300);
  history.set(s, { icmp: EPS * 0.45 * wave * (0.8 + Math.random() * 0.4), icmpv6: EPS * 0.08 * wave, http: EPS * 0.2 * (0.7 + Math.random() * 0.6), https: EPS * 0.35 * wave, syslog: EPS * 0.05 * Math.random() });
}

function makeEvent(src, forceIcmp = false) {
  const ts_ms = Date.now();
  const roll = Math.random();
  const cls = forceIcmp ? 'icmp' : src.v6 ? (roll < 0.5 ? 'icmpv6' : roll < 0.9 ? 'https' : 'other_ipv6') : roll < 0.45 ? 'icmp' : roll < 0.62 ? 'http' : roll < 0.93 ? 'https' : roll < 0.97 ? 'other_ipv4' : roll < 0.99 ? 'non_ip' : 'malformed';
  const viaSyslog = !src.test && Math.random() < 0.1 && !src.v6;
  const weight = Math.random() < 0.8 ? 1 : 1 + rnd(20);
  const ev = {
    id: nextId++, ts_ms, class: cls, src: src.ip, dst: src.v6 ? '2001:db8::1' : '198.51.100.1',
    origin: viaSyslog ? { kind: 'syslog', sender: '10.0.0.5', hostname: 'fw1', prefix: 'IPT_ICMP' } : { kind: 'xdp', iface: Math.random() < 0.8 ? 'eth1' : 'eth2' },
    weight, len: 60 + rnd(1400), detail: '',
  };
  if (cls === 'icmp' || cls === 'icmpv6') {
    const type = cls === 'icmp' ? (Math.random() < 0.85 ? 8 : [0, 3, 11][rnd(3)]) : (Math.random() < 0.8 ? 128 : 135);
    const name = { 8: 'echo request', 0: 'echo reply', 3: 'destination unreachable', 11: 'time exceeded', 128: 'echo request', 135: 'neighbor solicitation' }[type];
    // Only echo messages have an id and seq (docs/API.md): other types carry neither.
    if ([0, 8, 128].includes(type)) {
      ev.icmp = { type, code: 0, id: rnd(65535), seq: rnd(1000) };
      ev.detail = `${name} id ${ev.icmp.id} seq ${ev.icmp.seq}`;
    } else {
      ev.icmp = { type, code: 0 };
      ev.detail = name;
    }
    const key = `${cls === 'icmpv6'}|${type}`;
    for (const types of [icmpTypes, minuteOf(ts_ms).icmp]) {
      const t = types.get(key) ?? { v6: cls === 'icmpv6', type, code: 0, name, packets: 0 };
      t.packets += weight;
      types.set(key, t);
    }
  } else if (cls === 'http') {
    ev.src_port = 30000 + rnd(30000); ev.dst_port = 80; ev.tcp_flags = 24;
    const target = ['/', '/api/users', '/wp-login.php', '/.env', '/index.html?q=<script>alert(1)</script>'][rnd(5)];
    ev.http = { method: ['GET', 'POST', 'HEAD'][rnd(3)], target, host: 'example.com' };
    ev.detail = `${ev.http.method} ${target}`;
  } else if (cls === 'https') {
    ev.src_port = 30000 + rnd(30000); ev.dst_port = 443; ev.tcp_flags = 2;
    if (Math.random() < 0.7) { ev.tls = { sni: ['api.example.com', 'www.example.com'][rnd(2)], version: 'TLS 1.3' }; ev.detail = `ClientHello SNI ${ev.tls.sni} (${ev.tls.version})`; } else ev.detail = 'SYN';
  } else if (cls === 'malformed') ev.detail = 'truncated IPv4 header';
  else if (cls === 'non_ip') ev.detail = 'ethertype 0x0806 (ARP)';
  else { ev.src_port = 5000 + rnd(1000); ev.dst_port = 53; ev.detail = `UDP ${ev.src_port} → 53`; }
  if (src.geo) ev.geo = src.geo;
  // counters
  const sec = Math.floor(ts_ms / 1000);
  const h = history.get(sec) ?? Object.fromEntries(SERIES.map((k) => [k, 0]));
  if (viaSyslog) { h.syslog += weight; syslog.received++; syslog.accepted++; syslog.accepted_by_sender['10.0.0.5'] = (syslog.accepted_by_sender['10.0.0.5'] ?? 0) + 1; evStats.syslog_packets_by_class[cls] += weight; }
  else {
    if (h[cls] !== undefined) h[cls] += weight;
    kernel.classes[cls].packets += weight * 3; kernel.classes[cls].bytes += ev.len * weight * 3;
    kernel.pipeline.event_eligible += weight; kernel.pipeline.event_submitted++; kernel.pipeline.suppressed_source += weight - 1;
    evStats.xdp_packets_by_class[cls] += weight;
  }
  history.set(sec, h);
  evStats.received++; evStats.accepted++;
  if (!agg.has(src.ip)) kernel.pipeline.source_inserted++;
  const bucket = minuteOf(ts_ms);
  bucket.events++;
  for (const sums of [agg, bucket.agg]) {
    let a = sums.get(src.ip);
    if (!a) { a = { ip: src.ip, xdp_packets: 0, syslog_packets: 0, events: 0, bytes: 0, first_seen_ms: ts_ms, last_seen_ms: ts_ms, by_class: {}, geo: src.geo }; sums.set(src.ip, a); }
    if (viaSyslog) a.syslog_packets += weight; else a.xdp_packets += weight;
    a.events++; a.bytes += ev.len * weight; a.last_seen_ms = ts_ms; a.by_class[cls] = (a.by_class[cls] ?? 0) + weight;
    if (!a.geo) delete a.geo;
  }
  recent.push(ev);
  if (recent.length > 2500) recent.splice(0, 500);
  return ev;
}

function stats(authenticated) {
  const s = {
    schema: SCHEMA, hostname: 'mock-host', uptime_s: Math.floor((Date.now() - STARTED) / 1000), version: '0.1.0-mock',
    interfaces: [{ name: 'eth1', ifindex: 3, mode: 'driver' }, { name: 'eth2', ifindex: 4, mode: 'skb' }],
    kernel, events: evStats, sources: { tracked: agg.size, evicted: 0 }, syslog,
    headline: {
      end_ms: Math.floor(Date.now() / 1000) * 1000, rate_window_s: 1, xdp_packets_per_s: Math.round(EPS * 0.92 * 3),
      xdp_bits_per_s: Math.round(EPS * 0.92 * 3 * 800), syslog_packets_per_s: Math.round(EPS * 0.08), events_per_s: EPS,
      active_window_s: 60, active_sources: agg.size, active_countries: new Set([...agg.values()].map((a) => a.geo?.country_code).filter(Boolean)).size,
    },
    geo: {
      city_db: args['no-geo-db'] ? null : { path: '/var/lib/monitor/dbip-city-lite.mmdb', type: 'DBIP-City-Lite', build_epoch: Math.floor(Date.now() / 1000) - 12 * 86400, age_days: 12 },
      asn_db: args['no-geo-db'] ? null : { path: '/var/lib/monitor/dbip-asn-lite.mmdb', type: 'DBIP-ASN-Lite', build_epoch: Math.floor(Date.now() / 1000) - 12 * 86400, age_days: 12 },
      attribution: { text: 'IP geolocation by DB-IP', url: 'https://db-ip.com', license: 'CC BY 4.0' },
    },
  };
  if (authenticated) s.viewers = [...clients].map((c) => ({ addr: c.addr, since_ms: c.since, geo: { label: 'loopback' } }));
  return s;
}

/** The counters of the last `windowMin` minutes (null: since start, the running totals). */
function windowed(windowMin) {
  if (windowMin == null) return { agg, icmp: icmpTypes, events: evStats.accepted };
  const from = Math.floor(Date.now() / 60000) - windowMin + 1;
  const out = { agg: new Map(), icmp: new Map(), events: 0 };
  for (const [m, b] of minutes) {
    if (m < from) continue;
    out.events += b.events;
    for (const [ip, a] of b.agg) {
      const o = out.agg.get(ip);
      if (!o) { out.agg.set(ip, { ...a, by_class: { ...a.by_class } }); continue; }
      for (const k of ['xdp_packets', 'syslog_packets', 'events', 'bytes']) o[k] += a[k];
      o.first_seen_ms = Math.min(o.first_seen_ms, a.first_seen_ms);
      o.last_seen_ms = Math.max(o.last_seen_ms, a.last_seen_ms);
      for (const [c, v] of Object.entries(a.by_class)) o.by_class[c] = (o.by_class[c] ?? 0) + v;
    }
    for (const [k, t] of b.icmp) {
      const o = out.icmp.get(k);
      if (o) o.packets += t.packets; else out.icmp.set(k, { ...t });
    }
  }
  return out;
}

/** A window parameter: minutes from meta.top_windows_minutes, or null (absent, "", "null": since start). */
function parseWindow(v) {
  if (v === undefined || v === null || v === '' || v === 'null') return { window: null };
  const n = Number(v);
  if (!META.top_windows_minutes.includes(n)) return { error: `window must be one of ${META.top_windows_minutes.join(', ')} (minutes), or absent for since start` };
  return { window: n };
}

function top(n = 10, windowMin = null) {
  const { agg, icmp, events } = windowed(windowMin);
  const pk = (a) => a.xdp_packets + a.syslog_packets;
  const srcs = [...agg.values()].sort((a, b) => pk(b) - pk(a));
  const countries = new Map(), asns = new Map();
  for (const a of srcs) {
    const g = a.geo;
    if (g?.country_code) { const c = countries.get(g.country_code) ?? { country_code: g.country_code, country: g.country, packets: 0, sources: 0 }; c.packets += pk(a); c.sources++; countries.set(g.country_code, c); }
    if (g?.asn) { const c = asns.get(g.asn) ?? { asn: g.asn, as_org: g.as_org, packets: 0, sources: 0 }; c.packets += pk(a); c.sources++; asns.set(g.asn, c); }
  }
  const weighted = srcs.reduce((x, a) => x + pk(a), 0);
  return {
    schema: SCHEMA, window_minutes: windowMin, sources: srcs.slice(0, n),
    countries: [...countries.values()].sort((a, b) => b.packets - a.packets).slice(0, n),
    asns: [...asns.values()].sort((a, b) => b.packets - a.packets).slice(0, n),
    icmp_types: [...icmp.values()].sort((a, b) => b.packets - a.packets).slice(0, n),
    totals: { events, weighted_packets: weighted, counted_packets: Object.values(kernel.classes).reduce((x, c) => x + c.packets, 0) + syslog.accepted },
  };
}

function historyJson(minutes = 60) {
  const end = nowSec() - 1;
  const n = minutes * 60;
  const series = Object.fromEntries(SERIES.map((k) => [k, []]));
  for (let s = end - n + 1; s <= end; s++) for (const k of SERIES) series[k].push(Math.round((history.get(s)?.[k] ?? 0) * 10) / 10);
  return { schema: SCHEMA, step_ms: 1000, end_ms: end * 1000, series };
}

// ---- filters per client ----
function compileFilter(f) {
  const classes = new Set(f.class ?? []), countries = new Set(f.country ?? []);
  const net = f.cidr ? parseCidr(f.cidr) : null;
  return (ev) => (!classes.size || classes.has(ev.class)) && (!countries.size || countries.has(ev.geo?.country_code)) && (!net || cidrContains(net, parseIp(ev.src)));
}
const list = (v) => (v ? v.split(',').filter(Boolean) : []);

// ---- HTTP ----
const MIME = { '.html': 'text/html; charset=utf-8', '.js': 'application/javascript', '.css': 'text/css', '.json': 'application/json', '.svg': 'image/svg+xml', '.md': 'text/markdown' };
function send(res, status, body, type = 'application/json') {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body));
}
function authorized(req, url) {
  if (!TOKEN) return true;
  return req.headers.authorization === `Bearer ${TOKEN}` || url.searchParams.get('token') === TOKEN;
}

const server = createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  const p = url.pathname;
  if (p === '/' || p.startsWith('/assets/')) {
    // The page itself holds no data: served without a token so it can explain a missing one.
    const rel = p === '/' ? 'index.html' : normalize(p.slice('/assets/'.length)).replace(/^(\.\.[/\\])+/, '');
    try { send(res, 200, await readFile(join(DIST, rel)), MIME[extname(rel)] ?? 'application/octet-stream'); } catch { send(res, 404, { error: 'not found' }); }
    return;
  }
  if (p === '/healthz') return send(res, 200, 'ok\n', 'text/plain');
  if (p === '/__dev/restart' && req.method === 'POST') { send(res, 200, 'restarting\n', 'text/plain'); setTimeout(simulateRestart, 50); return; }
  if (!authorized(req, url)) return send(res, 401, { error: 'missing or wrong token' });
  if (p === '/api/stats') return send(res, 200, stats(Boolean(TOKEN)));
  if (p === '/api/meta') return send(res, 200, META);
  if (p === '/api/top') {
    const w = parseWindow(url.searchParams.get('window'));
    if (w.error) return send(res, 400, { error: w.error });
    return send(res, 200, top(Number(url.searchParams.get('n') ?? 10), w.window));
  }
  if (p === '/api/history') return send(res, 200, historyJson(Math.min(60, Number(url.searchParams.get('minutes') ?? 60))));
  if (p === '/api/events') {
    const limit = Number(url.searchParams.get('limit') ?? 100);
    if (!(limit >= 1 && limit <= 2000)) return send(res, 400, { error: 'limit must be 1..=2000' });
    const match = compileFilter({ class: list(url.searchParams.get('class')), country: list(url.searchParams.get('country')), cidr: url.searchParams.get('cidr') });
    return send(res, 200, { schema: SCHEMA, events: recent.filter(match).slice(-limit) });
  }
  if (p.startsWith('/api/lookup/')) {
    const ip = decodeURIComponent(p.slice('/api/lookup/'.length));
    if (!isIP(ip)) return send(res, 400, { error: `not an IP address: ${JSON.stringify(ip)}` });
    const a = agg.get(ip);
    const src = sources.find((s) => s.ip === ip);
    return send(res, 200, {
      schema: SCHEMA, ip, ...(src?.geo ? { geo: src.geo } : {}),
      ...(a ? { xdp_packets: a.xdp_packets, syslog_packets: a.syslog_packets, events: a.events, bytes: a.bytes, by_class: a.by_class, first_seen_ms: a.first_seen_ms, last_seen_ms: a.last_seen_ms } : {}),
    });
  }
  send(res, 404, { error: 'not found' });
});

// ---- WebSocket ----
const wss = new WebSocketServer({ noServer: true });
const clients = new Set();
server.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname !== '/ws') { socket.destroy(); return; }
  if (!authorized(req, url) && AUTH_MODE === 'reject') {
    socket.write('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    socket.destroy();
    return;
  }
  // As the daemon: parameters it cannot use refuse the upgrade (400).
  const w = parseWindow(url.searchParams.get('window'));
  const badClass = list(url.searchParams.get('class')).find((c) => !CLASS_NAMES.includes(c));
  if (w.error || badClass) {
    const body = JSON.stringify({ error: w.error ?? `unknown class ${JSON.stringify(badClass)}` });
    socket.write(`HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    socket.destroy();
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    if (!authorized(req, url)) { ws.close(4401, 'unauthorized'); return; }
    const client = { ws, addr: req.socket.remoteAddress, since: Date.now(), match: compileFilter({ class: list(url.searchParams.get('class')), country: list(url.searchParams.get('country')), cidr: url.searchParams.get('cidr') }), window: w.window, pending: [] };
    clients.add(client);
    ws.send(JSON.stringify({ type: 'snapshot', schema: SCHEMA, meta: META, stats: stats(Boolean(TOKEN)), history: historyJson(60), top: top(10, client.window), recent: recent.filter(client.match).slice(-500) }));
    ws.on('message', (data) => {
      let m; try { m = JSON.parse(data); } catch { return; }
      if (m.type === 'ping') ws.send(JSON.stringify({ type: 'pong', schema: SCHEMA, t: m.t }));
      if (m.type === 'filter') {
        // "window" absent: unchanged; null: since start.
        const fw = 'window' in m ? parseWindow(m.window) : { window: client.window };
        const bad = (m.class ?? []).find((c) => !CLASS_NAMES.includes(c));
        if (fw.error || bad) { ws.send(JSON.stringify({ type: 'error', schema: SCHEMA, error: fw.error ?? `unknown class ${JSON.stringify(bad)}` })); return; }
        client.match = compileFilter(m);
        client.window = fw.window;
      }
    });
    ws.on('close', () => clients.delete(client));
  });
});

let seq = 0;
let carry = 0;
setInterval(() => {
  carry += EPS / 5;
  const n = Math.floor(carry);
  carry -= n;
  const events = [];
  for (let i = 0; i < n; i++) events.push(makeEvent(pickSource()));
  if (TEST_SRC && Date.now() % 1000 < 200) events.push(makeEvent(sources.find((s) => s.test), true));
  if (!events.length) return;
  const rates = history.get(nowSec() - 1) ?? {};
  const ts_ms = Date.now();
  seq++;
  for (const c of clients) {
    const mine = events.filter(c.match);
    c.ws.send(JSON.stringify({ type: 'update', schema: SCHEMA, seq, ts_ms, events: mine, rates: Object.fromEntries(SERIES.map((k) => [k, Math.round(rates[k] ?? 0)])), skipped: 0 }));
  }
}, 200);
setInterval(() => {
  const s = stats(Boolean(TOKEN));
  const tops = new Map(); // one top per window in use, not per client
  for (const c of clients) {
    if (!tops.has(c.window)) tops.set(c.window, top(10, c.window));
    c.ws.send(JSON.stringify({ type: 'stats', schema: SCHEMA, stats: s, top: tops.get(c.window) }));
  }
}, 1000);

// Simulates a daemon restart for the reconnect test: drop every connection,
// refuse new ones for 2 s, then listen again.
function simulateRestart() {
  for (const c of clients) c.ws.terminate();
  server.close();
  server.closeAllConnections?.();
  setTimeout(() => { STARTED = Date.now(); server.listen(PORT, HOST); }, 2000);
}

server.listen(PORT, HOST, () => console.log(`mock Monitor daemon (dev aid) on http://${HOST}:${PORT}/ eps=${EPS}${TOKEN ? ' token=' + TOKEN : ''}`));
