// The hosts a central hears from (GET /api/hosts, docs/agent.md): the host
// picker of the filter bar and one row per host in the health panel. Both
// stay hidden while there is only one host, so a single-host install looks
// as it always did. Host names come from syslog senders: text only, never HTML.

import { fmtCompact } from './format.js';

const el = (tag, text, cls) => {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
};

const ago = (ms, now) => {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  return s < 90 ? `${s} s ago` : `${Math.round(s / 60)} min ago`;
};

export class HostsPanel {
  constructor({ select, label, panel }) {
    Object.assign(this, { selectEl: select, label, panel });
    this.names = [];
  }

  /** Shows the picked host, adding it when the list does not have it (a shared link). */
  select(host) {
    if (host && !this.names.includes(host)) this.#options([...this.names, host]);
    this.selectEl.value = host ?? '';
    this.label.hidden = this.names.length <= 1 && !host;
  }

  render(doc, now) {
    const hosts = Array.isArray(doc?.hosts) ? doc.hosts : [];
    this.#options(hosts.map((h) => String(h.host)));
    this.label.hidden = hosts.length <= 1 && !this.selectEl.value;
    this.panel.hidden = hosts.length <= 1;
    if (this.panel.hidden) return;
    // Three columns that wrap, so the table fits a phone's width.
    const table = el('table', undefined, 'hosts');
    const head = table.createTHead().insertRow();
    for (const t of ['Host', 'Seen', 'Counts']) head.append(el('th', t));
    const body = table.createTBody();
    for (const h of hosts) {
      const row = body.insertRow();
      const packets = h.classes ? Object.values(h.classes).reduce((n, c) => n + (c?.packets ?? 0), 0) : null;
      const name = el('td', h.local ? `${h.host} (this host)` : h.host);
      const ifaces = (h.interfaces ?? []).map((i) => `${i.name} (${i.mode})`).join(', ');
      if (ifaces) name.append(el('div', ifaces, 'muted'));
      const seen = el('td', h.local ? 'now' : ago(h.last_seen_ms, now));
      if (h.lag_ms !== null && h.lag_ms !== undefined) seen.append(el('div', `lag ${h.lag_ms} ms`, 'muted'));
      const counts = [
        packets === null ? 'no counters' : `${fmtCompact(packets)} packets`,
        `${fmtCompact(h.events ?? 0)} events`,
        `${fmtCompact(h.dropped ?? 0)} dropped`,
        `${fmtCompact(h.lost ?? 0)} lost`,
        `${h.seq_gaps ?? 0} gaps`,
        `${h.restarts ?? 0} restarts`,
      ].join(' · ');
      row.append(name, seen, el('td', counts));
      if ((h.dropped ?? 0) + (h.lost ?? 0) + (h.seq_gaps ?? 0) > 0) row.className = 'warn';
    }
    const over = doc.over_cap ? el('p', `${doc.over_cap} messages from hosts beyond the tracked number`, 'muted') : null;
    this.panel.replaceChildren(el('h3', 'Hosts'), table, ...(over ? [over] : []));
  }

  #options(names) {
    if (JSON.stringify(names) === JSON.stringify(this.names)) return;
    this.names = names;
    const keep = this.selectEl.value;
    this.selectEl.replaceChildren(el('option', 'All hosts'), ...names.map((n) => {
      const o = el('option', n);
      o.value = n;
      return o;
    }));
    this.selectEl.firstChild.value = '';
    this.selectEl.value = keep;
  }
}
