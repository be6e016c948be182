// IP lookup: the search box (and any IP button on the page) asks the daemon
// GET /api/lookup/{ip} and shows what it knows. The daemon validates the
// address, so its 400 message is shown as is.

import { api } from './auth.js';
import { serverNow } from './clock.js';
import { countryName, esc, fmtAgo, fmtDateTime, fmtInt, flag, LABELS } from './format.js';

const GEO_NAMES = {
  label: 'Kind', country: 'Country', country_code: 'Country code', city: 'City', lat: 'Latitude', lon: 'Longitude',
  asn: 'ASN', as_org: 'Network',
};
const human = (key) => (LABELS[key] ?? key.replace(/_ms$/, '').replace(/_/g, ' '));

export class Lookup {
  /**
   * @param {object} o
   * @param {HTMLFormElement} o.form
   * @param {HTMLInputElement} o.input
   * @param {HTMLElement} o.panel
   * @param {(ip: string) => void} o.onFilter  "show only this source" button
   */
  constructor({ form, input, panel, onFilter }) {
    Object.assign(this, { form, input, panel, onFilter });
    this.seq = 0;
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.open(input.value);
    });
    panel.addEventListener('click', (e) => {
      const b = e.target.closest('[data-filter-ip]');
      if (b) this.onFilter(b.dataset.filterIp);
    });
  }

  async open(ipText) {
    const ip = String(ipText ?? '').trim();
    this.input.value = ip;
    if (!ip) { this.panel.innerHTML = '<p class="muted">Type an IPv4 or IPv6 address.</p>'; return; }
    const seq = ++this.seq; // a slow answer must not overwrite a newer one
    this.panel.setAttribute('aria-busy', 'true');
    this.panel.innerHTML = `<p class="muted">Looking up ${esc(ip)}…</p>`;
    try {
      const data = await api(`/api/lookup/${encodeURIComponent(ip)}`);
      if (seq === this.seq) this.panel.innerHTML = render(ip, data ?? {});
    } catch (e) {
      if (seq === this.seq) {
        this.panel.innerHTML = `<p class="error" role="alert" data-status="${esc(e.status ?? '')}"><strong>${esc(ip)}:</strong> ${esc(e.message)}</p>`;
      }
    } finally {
      if (seq === this.seq) this.panel.removeAttribute('aria-busy');
    }
  }
}

/** Splits the answer into location, counters, times and the rest, whatever its exact nesting. */
function render(ip, data) {
  const counters = [], times = [], other = [];
  const walk = (obj, prefix) => {
    for (const [k, v] of Object.entries(obj)) {
      if (k === 'schema' || k === 'geo' || v === null || v === undefined) continue;
      const name = prefix ? `${prefix} ${human(k)}` : human(k);
      if (typeof v === 'number' && k.endsWith('_ms')) times.push([name, v]);
      else if (typeof v === 'number') counters.push([name, v]);
      else if (typeof v === 'object' && !Array.isArray(v)) walk(v, name);
      else if (k !== 'ip' && k !== 'addr') other.push([name, Array.isArray(v) ? v.join(', ') : String(v)]);
    }
  };
  walk(data, '');
  let geo = data.geo ?? data.location;
  if (geo?.country_code && !geo.country) geo = { ...geo, country: countryName(geo) };
  const addr = data.ip ?? data.addr ?? ip;
  const dl = (rows, attr = '') => `<dl class="kv"${attr}>${rows.join('')}</dl>`;
  let html = `<h3 class="lookup-ip"><span>${esc(addr)}</span> <button type="button" class="small" data-filter-ip="${esc(addr)}">Show only this source</button></h3>`;
  if (geo && typeof geo === 'object') {
    const rows = Object.entries(geo).filter(([, v]) => v !== null && typeof v !== 'object').map(([k, v]) => {
      let val = esc(v);
      if (k === 'country_code') val = `<span class="flag" aria-hidden="true">${flag(v)}</span>${esc(v)}`;
      if (k === 'asn') val = `AS${esc(v)}`;
      if (k === 'label') val = `<span class="tag">${esc(String(v).replace('_', '-'))}</span>`;
      return `<div><dt>${esc(GEO_NAMES[k] ?? human(k))}</dt><dd>${val}</dd></div>`;
    });
    html += `<h4>Location</h4>${dl(rows)}`;
  } else {
    html += '<p class="muted">No geolocation for this address.</p>';
  }
  html += '<h4>Counters</h4>' + (counters.length
    ? dl(counters.map(([k, v]) => `<div><dt>${esc(k)}</dt><dd class="num" data-value="${esc(v)}">${fmtInt(v)}</dd></div>`), ' data-part="counters"')
    : '<p class="muted" data-part="counters">Never seen by this daemon.</p>');
  if (times.length) {
    html += `<h4>Seen</h4>${dl(times.map(([k, v]) => `<div><dt>${esc(k)}</dt><dd>${esc(fmtDateTime(v))} <span class="muted">(${esc(fmtAgo(v, serverNow()))})</span></dd></div>`))}`;
  }
  if (other.length) html += dl(other.map(([k, v]) => `<div><dt>${esc(k)}</dt><dd>${esc(v)}</dd></div>`));
  return html;
}
