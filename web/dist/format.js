// Formatting helpers shared by every panel: numbers, times, flags, escaping.
// Pure functions only, so any module can use them without side effects.

// Which classes, rate series, status classes and windows exist is the
// daemon's to say (GET /api/meta, and `meta` in the snapshot frame): the
// page only knows how to present them. A name it has no label for is shown
// as it is, in the neutral colour.

/** Display names; a class or series missing here is shown by its own name. */
export const LABELS = {
  icmp: 'ICMP', icmpv6: 'ICMPv6', http: 'HTTP', https: 'HTTPS', syslog: 'syslog',
  other_ipv4: 'other IPv4', other_ipv6: 'other IPv6', non_ip: 'non-IP', malformed: 'malformed',
};

const HTML_ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
/** Escapes text for innerHTML: everything from the daemon is untrusted (syslog lines, HTTP targets, SNI). */
export function esc(value) {
  return String(value ?? '').replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);
}

const intFmt = new Intl.NumberFormat('en-US');
export function fmtInt(n) {
  return Number.isFinite(n) ? intFmt.format(Math.round(n)) : '–';
}

/** 1234 -> "1.2k": for headline numbers that change every second. */
export function fmtCompact(n) {
  if (!Number.isFinite(n)) return '–';
  const a = Math.abs(n);
  if (a < 1000) return a < 10 && n % 1 ? n.toFixed(1) : String(Math.round(n));
  for (const [div, unit] of [[1e9, 'G'], [1e6, 'M'], [1e3, 'k']]) {
    if (a >= div) return (n / div).toFixed(a / div < 10 ? 1 : 0) + unit;
  }
  return String(n);
}

export function fmtBytes(n) {
  if (!Number.isFinite(n)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i && n < 10 ? 1 : 0)} ${units[i]}`;
}

export function fmtPercent(part, whole) {
  if (!whole) return '–';
  const p = (100 * part) / whole;
  return `${p >= 10 || p === 0 ? p.toFixed(0) : p.toFixed(1)}%`;
}

/** Seconds -> "3d 4h", "5h 12m", "4m 10s". */
export function fmtDuration(s) {
  if (!Number.isFinite(s) || s < 0) return '–';
  s = Math.floor(s);
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

export function fmtAgo(ms, now = Date.now()) {
  if (!Number.isFinite(ms)) return '–';
  return `${fmtDuration(Math.max(0, (now - ms) / 1000))} ago`;
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

/** The browser's time zone as a short name ("UTC", "CET", "GMT+1"): said next to every time shown. */
export const TZ = (() => {
  try {
    return new Intl.DateTimeFormat('en-GB', { timeZoneName: 'short' }).formatToParts(new Date())
      .find((p) => p.type === 'timeZoneName')?.value ?? 'local time';
  } catch { return 'local time'; }
})();

/** 24-hour wall-clock time, "HH:MM:SS" (with ".mmm" when `millis`): where a column or axis states the zone once. */
export function fmtClock(ms, { millis = false, seconds = true } = {}) {
  if (!Number.isFinite(ms)) return '–';
  const d = new Date(ms);
  let t = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  if (seconds || millis) t += `:${pad(d.getSeconds())}`;
  return millis ? `${t}.${pad(d.getMilliseconds(), 3)}` : t;
}

/** Event time with milliseconds (events arrive many per second); the feed's header names the zone. */
export function fmtTime(ms) {
  return fmtClock(ms, { millis: true });
}

/** "2026-11-30 20:58:32 UTC": a full date and time, zone included. */
export function fmtDateTime(ms) {
  if (!Number.isFinite(ms)) return '–';
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${fmtClock(ms)} ${TZ}`;
}

/** "2026-11-30": a date alone. */
export function fmtDate(ms) {
  if (!Number.isFinite(ms)) return '–';
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** Packets per second with its unit, "1.2k pkt/s". */
export function fmtPps(n) {
  return Number.isFinite(n) ? `${fmtCompact(n)} pkt/s` : '–';
}

/** Bits per second in SI units, "12.3 Mbit/s" (network rates are decimal). */
export function fmtBps(n) {
  if (!Number.isFinite(n)) return '–';
  for (const [div, unit] of [[1e9, 'Gbit/s'], [1e6, 'Mbit/s'], [1e3, 'kbit/s']]) {
    if (Math.abs(n) >= div) return `${(n / div).toFixed(n / div < 10 ? 1 : 0)} ${unit}`;
  }
  return `${Math.round(n)} bit/s`;
}

/**
 * An address as HTML that is never cut at its end: when the space is short the
 * middle gives way to an ellipsis (CSS on .ip-h), the last characters stay, and
 * the text (so copy and the tooltip) is always the full address.
 */
export function ipHtml(ip) {
  const s = String(ip ?? '');
  const k = Math.min(8, Math.floor(s.length / 2));
  return `<span class="ip-h" style="--tail:${k}ch">${esc(s.slice(0, s.length - k))}</span><span class="ip-t">${esc(s.slice(s.length - k))}</span>`;
}

/** A clickable address that opens its lookup: full value in the tooltip, middle ellipsis when short of room. */
export function ipButton(ip) {
  return `<button type="button" class="ip" data-ip="${esc(ip)}" title="${esc(ip)} (look up)">${ipHtml(ip)}</button>`;
}

/** "DE" -> regional-indicator pair, which the OS renders as a flag; no image assets. */
export function flag(cc) {
  if (!/^[A-Za-z]{2}$/.test(cc ?? '')) return '';
  const base = 0x1f1e6 - 65;
  return String.fromCodePoint(...[...cc.toUpperCase()].map((c) => base + c.charCodeAt(0)));
}

/** "xdp:eth1" / "syslog:10.0.0.5": the stable label the daemon uses too. */
export function originLabel(origin) {
  if (!origin) return 'unknown';
  if (origin.kind === 'xdp') return `xdp:${origin.iface}`;
  if (origin.kind === 'syslog') return `syslog:${origin.sender}`;
  if (origin.kind === 'agent') return `agent:${origin.iface}`;
  return String(origin.kind ?? 'unknown');
}

/** A class or series name's label (its own name when the page has none). */
export const label = (name) => LABELS[name] ?? String(name ?? '');

/** Class badge: colour plus text, so colour is never the only carrier (an unknown class: the neutral colour). */
export function badge(cls) {
  const c = /^[a-z0-9_]+$/.test(cls ?? '') ? cls : 'other_ipv4';
  return `<span class="badge c-${c}">${esc(label(cls))}</span>`;
}

/** A top-list window (minutes, null = since the daemon started) as a panel says it: "last 15 min". */
/** A history range, as the panels name it. */
export function rangeText(fromMs, toMs) {
  const day = (ms) => new Date(ms).toDateString();
  const date = day(fromMs) !== day(Date.now()) || day(toMs) !== day(Date.now())
    ? `${new Date(fromMs).toLocaleDateString('en-CA')} ` : '';
  return `${date}${fmtClock(fromMs, { seconds: false })}–${fmtClock(toMs, { seconds: false })} ${TZ}`;
}

export function topWindowText(minutes) {
  return minutes == null ? 'since the daemon started' : `last ${fmtInt(minutes)} min`;
}

// DB-IP Lite records carry a country code but no name: the browser knows the
// names itself (CLDR data in Intl), so nothing has to be shipped or fetched.
let regionNames = null;
try { regionNames = new Intl.DisplayNames(['en'], { type: 'region' }); } catch { /* very old browser: codes only */ }

/** "DE" -> "Germany" (the record's own name wins; the code when nothing knows it). */
export function countryName(geo) {
  if (!geo?.country_code) return '';
  if (geo.country) return geo.country;
  try { return regionNames?.of(geo.country_code.toUpperCase()) ?? geo.country_code; } catch { return geo.country_code; }
}

/** Where a geo record says the address is, as short text. */
export function placeText(geo) {
  if (!geo) return '';
  if (geo.country_code) return [geo.city, countryName(geo)].filter(Boolean).join(', ');
  return geo.label && geo.label !== 'public' ? geo.label.replace('_', '-') : '';
}

/** Flag + country code + place, as HTML (the flag is decorative: the code carries the meaning). */
export function placeHtml(geo) {
  if (!geo) return '<span class="muted">–</span>';
  if (!geo.country_code) {
    return geo.label && geo.label !== 'public'
      ? `<span class="tag">${esc(geo.label.replace('_', '-'))}</span>` : '<span class="muted">–</span>';
  }
  return `<span class="flag" aria-hidden="true">${flag(geo.country_code)}</span><abbr title="${esc(countryName(geo))}">${esc(geo.country_code)}</abbr> ${esc(placeText(geo))}`;
}

export function asnText(geo) {
  if (!geo || !geo.asn) return '';
  return `AS${geo.asn}${geo.as_org ? ` ${geo.as_org}` : ''}`;
}
