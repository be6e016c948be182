// What the user wants to see: free text or /regex/, classes, countries, a
// CIDR, the hidden origins and the time window of the top lists. Owns the
// URL (?class=icmp&country=DE&q=...&window=15) so a view can be shared,
// compiles the state into one match(event) function, and says which part
// the daemon applies for us. Which classes and windows exist is the
// daemon's `meta`: until it is known, the URL's values are kept but not
// sent (see restrict()).

import { countryName, originLabel } from './format.js';

// ---- IP addresses and CIDRs (the daemon speaks both families) ----

/** "203.0.113.7" or "2001:db8::1" -> {v: 4|6, bytes: Uint8Array}, or null. */
export function parseIp(text) {
  const s = String(text ?? '').trim();
  if (s.includes(':')) return parseIpv6(s);
  const b = parseIpv4(s);
  return b && { v: 4, bytes: b };
}

function parseIpv4(s) {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    if (!/^\d{1,3}$/.test(parts[i])) return null;
    const n = Number(parts[i]);
    if (n > 255) return null;
    out[i] = n;
  }
  return out;
}

function parseIpv6(s) {
  s = s.replace(/%.*$/, ''); // zone index (fe80::1%ens3) does not matter for matching
  if (s.split('::').length > 2) return null;
  let [head, tail] = s.includes('::') ? s.split('::') : [s, null];
  const groups = (part) => (part ? part.split(':') : []);
  let h = groups(head), t = groups(tail);
  // An embedded IPv4 tail (::ffff:1.2.3.4) stands for two groups.
  const last = tail !== null ? t : h;
  if (last.length && last[last.length - 1].includes('.')) {
    const v4 = parseIpv4(last.pop());
    if (!v4) return null;
    last.push(((v4[0] << 8) | v4[1]).toString(16), ((v4[2] << 8) | v4[3]).toString(16));
  }
  const missing = 8 - h.length - t.length;
  if (tail === null ? missing !== 0 : missing < 1) return null;
  const all = [...h, ...Array(tail === null ? 0 : missing).fill('0'), ...t];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(all[i])) return null;
    const n = parseInt(all[i], 16);
    out[2 * i] = n >> 8;
    out[2 * i + 1] = n & 255;
  }
  return { v: 6, bytes: out };
}

/** "203.0.113.0/24", "2001:db8::/32" or a bare address -> {v, bytes, prefix, text}, or null. */
export function parseCidr(text) {
  const s = String(text ?? '').trim();
  const [addr, len, extra] = s.split('/');
  if (extra !== undefined) return null;
  const ip = parseIp(addr);
  if (!ip) return null;
  const max = ip.v === 4 ? 32 : 128;
  let prefix = max;
  if (len !== undefined) {
    if (!/^\d{1,3}$/.test(len) || Number(len) > max) return null;
    prefix = Number(len);
  }
  return { ...ip, prefix, text: `${addr}/${prefix}` };
}

/** Does the network contain the address? Families never match each other. */
export function cidrContains(net, ip) {
  if (!net || !ip || net.v !== ip.v) return false;
  const full = net.prefix >> 3, rest = net.prefix & 7;
  for (let i = 0; i < full; i++) if (net.bytes[i] !== ip.bytes[i]) return false;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (net.bytes[full] & mask) === (ip.bytes[full] & mask);
}

// ---- free text ----

/** "/re/flags" -> RegExp; throws SyntaxError on a bad pattern. Plain text -> null. */
export function parseRegex(q) {
  const m = /^\/(.*)\/([a-z]*)$/s.exec(q);
  if (!m) return null;
  // Drop g and y: stateful flags would make .test() alternate between true and false.
  return new RegExp(m[1], m[2].replace(/[gy]/g, ''));
}

/** The text an event is searched in: ip, country, city, org, detail, origin (+ class, ASN). */
function haystack(ev) {
  if (ev._hay === undefined) {
    const g = ev.geo ?? {};
    ev._hay = [ev.src, ev.dst, g.country_code, countryName(g), g.city, g.asn ? `AS${g.asn}` : '', g.as_org,
      g.label, ev.detail, originLabel(ev.origin), ev.origin?.hostname, ev.class].filter(Boolean).join('\u0001');
    ev._hayLower = ev._hay.toLowerCase();
  }
  return ev._hay;
}

function srcIp(ev) {
  if (ev._srcIp === undefined) ev._srcIp = parseIp(ev.src);
  return ev._srcIp;
}

// ---- the filter state ----

const splitList = (s) => String(s ?? '').split(/[\s,]+/).filter(Boolean);

export class Filters {
  constructor() {
    this.q = '';
    this.classes = new Set();   // empty = every class
    this.countries = new Set(); // empty = every country
    this.cidr = '';
    this.host = '';             // one host (docs/agent.md); '' = every host
    this.hiddenOrigins = new Set();
    this.window = null;         // top lists' window in minutes; null = since the daemon started
    this.meta = null;           // the daemon's meta once known: what class and window may be sent
    this.errors = {};
    this.generation = 0;        // bumps on every change: cached match results know when they are stale
    this.compile();
  }

  static fromSearch(search) {
    const f = new Filters();
    const p = new URLSearchParams(search);
    f.q = p.get('q') ?? '';
    f.classes = new Set(splitList(p.get('class')));
    f.countries = new Set(splitList(p.get('country')).map((c) => c.toUpperCase()));
    f.cidr = p.get('cidr') ?? '';
    f.host = p.get('host') ?? '';
    f.hiddenOrigins = new Set(splitList(p.get('hide')));
    const w = p.get('window');
    f.window = /^\d{1,5}$/.test(w ?? '') ? Number(w) : null;
    // A range of the history store (ms since the epoch): shown instead of live figures.
    const from = p.get('from'), to = p.get('to');
    f.range = /^\d{1,15}$/.test(from ?? '') && /^\d{1,15}$/.test(to ?? '') && Number(to) > Number(from)
      ? { from: Number(from), to: Number(to) } : null;
    f.compile();
    return f;
  }

  /**
   * The daemon's meta arrived: classes and a window it does not know are
   * dropped (from the URL too), as a shared link from another version may
   * carry them; sending them would get the connection refused.
   */
  restrict(meta) {
    this.meta = meta;
    const classes = new Set(meta.classes ?? []);
    this.classes = new Set([...this.classes].filter((c) => classes.has(c)));
    if (this.window !== null && !(meta.top_windows_minutes ?? []).includes(this.window)) this.window = null;
    this.compile();
  }

  /** Writes the state into the address bar (replaceState: no history spam while typing). */
  toUrl() {
    const url = new URL(location.href);
    const set = (k, v) => (v ? url.searchParams.set(k, v) : url.searchParams.delete(k));
    set('q', this.q);
    set('class', [...this.classes].join(','));
    set('country', [...this.countries].join(','));
    set('cidr', this.cidr);
    set('host', this.host);
    set('hide', [...this.hiddenOrigins].join(','));
    set('window', this.window === null ? '' : String(this.window));
    set('from', this.range ? String(this.range.from) : '');
    set('to', this.range ? String(this.range.to) : '');
    const next = url.pathname + url.search + url.hash;
    if (next !== location.pathname + location.search + location.hash) history.replaceState(history.state, '', next);
  }

  /** Rebuilds match() from the state; bad input lands in this.errors, never in an exception. */
  compile() {
    this.generation++;
    this.errors = {};
    let text = null, re = null;
    const q = this.q.trim();
    if (q) {
      try {
        re = parseRegex(q);
      } catch (e) {
        this.errors.q = `Invalid regular expression: ${e.message}`;
      }
      if (!re && !this.errors.q) text = q.toLowerCase();
    }
    let net = null;
    if (this.cidr.trim()) {
      net = parseCidr(this.cidr);
      if (!net) this.errors.cidr = `Not an IPv4/IPv6 address or CIDR: ${this.cidr.trim()}`;
    }
    const badCc = [...this.countries].filter((c) => !/^[A-Z]{2}$/.test(c));
    if (badCc.length) this.errors.country = `Country codes are two letters (ISO 3166): ${badCc.join(', ')}`;
    const countries = badCc.length ? new Set() : this.countries;
    const classes = this.classes, hidden = this.hiddenOrigins, host = this.host;
    this.serverNet = net;
    this.isEmpty = !text && !re && !net && !countries.size && !classes.size && !hidden.size && !host;

    this.match = (ev) => {
      if (host && ev.host !== host) return false;
      if (classes.size && !classes.has(ev.class)) return false;
      if (countries.size && !countries.has(ev.geo?.country_code)) return false;
      if (hidden.size && hidden.has(originLabel(ev.origin))) return false;
      if (net && !cidrContains(net, srcIp(ev))) return false;
      if (text) { haystack(ev); if (!ev._hayLower.includes(text)) return false; }
      if (re && !re.test(haystack(ev))) return false;
      return true;
    };
  }

  /** Cached per event and per filter generation: the feed asks often, the answer rarely changes. */
  matches(ev) {
    if (ev._mg !== this.generation) { ev._mg = this.generation; ev._mv = this.match(ev); }
    return ev._mv;
  }

  /**
   * The part the daemon applies itself: class, country and cidr (fewer
   * frames for narrow views) and the window its `top` covers. Class and
   * window only once checked against the meta.
   */
  server() {
    const known = this.meta !== null;
    return {
      class: known ? [...this.classes].sort() : [],
      country: this.errors.country ? [] : [...this.countries].sort(),
      cidr: this.serverNet ? this.serverNet.text : '',
      window: known ? this.window : null,
      // The daemon's rooms: only this host's events (absent: every host).
      ...(this.host ? { host: [this.host] } : {}),
    };
  }

  /** The same as WebSocket query parameters (?class=icmp,http&country=DE&cidr=...&window=15). */
  serverParams() {
    const s = this.server();
    return { class: s.class.join(','), country: s.country.join(','), cidr: s.cidr, window: s.window === null ? '' : String(s.window), ...(s.host ? { host: s.host.join(',') } : {}) };
  }
}
