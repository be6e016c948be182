// The alerts panel: what /api/alerts says is firing or pending, and the
// newest firings and resolutions. Polled (the document changes at most once
// a second and is small); hidden rules and targets stay in the API.

import { api } from './auth.js';
import { esc, fmtAgo, fmtTime, ipButton } from './format.js';

const POLL_MS = 2000;
const RECENT_SHOWN = 8;

/** A label value as HTML: addresses open the lookup like everywhere else. */
function labelHtml(name, value) {
  return name === 'source' && /[.:]/.test(value) ? ipButton(value) : esc(value);
}

/** The labels that tell an alert apart (not alertname, not the rule's own). */
function instanceHtml(a) {
  return Object.entries(a.labels)
    .filter(([k]) => k !== 'alertname' && k !== 'severity')
    .map(([k, v]) => `<span class="alert-label">${esc(k)}=${labelHtml(k, v)}</span>`)
    .join(' ');
}

function alertHtml(a, now) {
  const severity = a.labels.severity ? ` <span class="muted small">${esc(a.labels.severity)}</span>` : '';
  const since = a.state === 'firing' ? a.fired_at_ms : a.active_since_ms;
  const summary = a.annotations.summary ? `<div class="small">${esc(a.annotations.summary)}</div>` : '';
  return `<li class="alert" data-state="${esc(a.state)}" data-alertname="${esc(a.alertname)}">`
    + `<span class="alert-state">${esc(a.state)}</span> <strong>${esc(a.alertname)}</strong>${severity} ${instanceHtml(a)}`
    + ` <span class="muted small" title="${esc(fmtTime(since))}">${esc(fmtAgo(since, now))}</span>${summary}</li>`;
}

export class AlertsPanel {
  constructor(panel) {
    this.panel = panel;
    this.timer = null;
  }

  start() {
    const tick = async () => {
      try {
        this.render(await api('/api/alerts'));
      } catch (e) {
        if (e.status !== 401) this.panel.innerHTML = `<p class="error">Alerts: ${esc(e.message)}</p>`;
      }
      this.timer = setTimeout(tick, POLL_MS);
    };
    tick();
  }

  render(doc) {
    const now = Date.now();
    if (!doc.rules.length) {
      this.panel.innerHTML = '<p class="muted">Alerting is off (--alert-rules none).</p>';
      return;
    }
    const active = doc.alerts.length
      ? `<ul class="alerts">${doc.alerts.map((a) => alertHtml(a, now)).join('')}</ul>`
      : `<p class="muted">None firing (${doc.rules.length} rules).</p>`;
    const recent = doc.recent.slice(0, RECENT_SHOWN).map((e) =>
      `<li><span class="muted small">${esc(fmtTime(e.at_ms))}</span> ${esc(e.state)} <strong>${esc(e.alertname)}</strong> ${instanceHtml(e)}</li>`).join('');
    const failing = doc.targets.filter((t) => t.failed > 0 || t.dropped > 0);
    const delivery = failing.map((t) =>
      `<p class="error small">${esc(t.name)}: ${t.failed} failed, ${t.dropped} dropped${t.last_error ? ` (${esc(t.last_error)})` : ''}</p>`).join('');
    const html = active + delivery + (recent ? `<h3>Recent</h3><ul class="alerts-recent small">${recent}</ul>` : '');
    if (this.panel.innerHTML !== html) this.panel.innerHTML = html;
  }
}
