// Browser tests of the dashboard against a running daemon. The Rust harness
// (monitor/tests/browser.rs) starts the real daemon with the real XDP
// program, pings from a test namespace and sets MONITOR_URL and the other
// variables (see `env` in helpers.mjs). Without MONITOR_URL every test is
// skipped; with it, a missing browser is a failure.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import {
  apiGet, connectCount, connectionState, dashboardUrl, env, feedRows, feedRowsOf, launchBrowser, mapPoint,
  openDashboard, runShell, saveScreenshot, setSearch, waitForLive, waitUntil,
} from './helpers.mjs';

const noUrl = !env.url && 'MONITOR_URL is not set (the Rust test harness sets it)';
const noSrc = !env.testSrc && 'MONITOR_TEST_SRC not set';
const noSyslog = !process.env.MONITOR_SYSLOG && 'MONITOR_SYSLOG not set';
// Documentation addresses: only ever text in a datagram to the daemon's syslog port on 127.0.0.1.
const LONG_V6 = '2001:db8:aaaa:bbbb:cccc:dddd:eeee:ff01';
const TCP_SRC = '203.0.113.80';

/** Sends netfilter LOG lines to the daemon's syslog socket (MONITOR_SYSLOG, on loopback). */
function sendSyslog(lines) {
  const [host, port] = process.env.MONITOR_SYSLOG.split(':');
  const socket = dgram.createSocket('udp4');
  return Promise.all(lines.map((line) => new Promise((resolve, reject) => {
    socket.send(Buffer.from(line), Number(port), host, (err) => (err ? reject(err) : resolve()));
  }))).finally(() => socket.close());
}

/** The browser's short time-zone name, as the page computes it. */
const pageTz = (page) => page.evaluate(() => new Intl.DateTimeFormat('en-GB', { timeZoneName: 'short' })
  .formatToParts(new Date()).find((p) => p.type === 'timeZoneName').value);
const attr = (page, sel, name) => page.getAttribute(sel, name);
/** The golden meta: what the daemon must serve at /api/meta and in the snapshot. */
const GOLDEN_META = JSON.parse(readFileSync(new URL('../docs/api/meta.json', import.meta.url), 'utf8'));

let browser;
before(async () => { if (!noUrl) browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

const open = (opts) => openDashboard(browser, dashboardUrl(env.url, { token: env.token }), opts);

describe('dashboard', { skip: noUrl }, () => {
  let page, problems, context;
  before(async () => {
    ({ page, problems, context } = await open());
    await waitForLive(page);
  });
  after(async () => { await context?.close(); });

  test('loads without console errors and shows the connection as live', async () => {
    assert.equal(await connectionState(page), 'live');
    await page.waitForFunction(() => document.getElementById('hostname').textContent !== '…', null, { timeout: 10000 });
    const stats = await apiGet(env.url, '/api/stats');
    assert.equal(await page.textContent('#hostname'), stats.hostname);
    // Interfaces with their XDP mode, the uptime and the round-trip time.
    for (const i of stats.interfaces) {
      assert.match(await page.textContent('#ifaces'), new RegExp(`${i.name}\\s+${i.mode}`));
    }
    await page.waitForSelector('#rtt:not(:empty)', { timeout: 10000 });
    assert.match(await page.textContent('#rtt'), /^RTT \d+ ms$/);
    assert.match(await page.textContent('#uptime'), /^up \d/);
    // DB-IP's CC BY 4.0 licence requires the attribution and link.
    const footer = page.locator('#attribution');
    assert.equal(await footer.getAttribute('href'), 'https://db-ip.com');
    assert.match(await footer.textContent(), /DB-IP/);
    assert.match(await page.textContent('#health'), /GeoIP city database/);
    await page.waitForTimeout(2000); // a few frames of every kind
    assert.deepEqual(problems, [], 'console errors or page errors');
  });

  test('a real ping from MONITOR_TEST_SRC shows in the feed, located, with class ICMP', { skip: noSrc }, async () => {
    const truth = await apiGet(env.url, `/api/lookup/${env.testSrc}`);
    const row = feedRowsOf(page, env.testSrc).first();
    await row.waitFor({ timeout: 30000 });
    assert.equal(await row.getAttribute('data-class'), 'icmp');
    assert.equal((await row.locator('.badge').textContent()).trim(), 'ICMP');
    assert.equal((await row.locator('button.ip').textContent()).trim(), env.testSrc);
    assert.match(await row.locator('.detail').textContent(), /echo request/);
    assert.match(await row.locator('.origin').textContent(), /^xdp:/);
    if (truth.geo?.country_code) {
      const country = new Intl.DisplayNames(['en'], { type: 'region' }).of(truth.geo.country_code);
      const geoCell = await row.locator('.geo').textContent();
      assert.ok(geoCell.includes(truth.geo.country_code) && geoCell.includes(country), `location cell ${geoCell}`);
      if (truth.geo.city) assert.ok(geoCell.includes(truth.geo.city), `city in ${geoCell}`);
    }
    if (truth.geo?.asn) assert.match(await row.locator('.net').textContent(), new RegExp(`^AS${truth.geo.asn}\\b`));
  });

  test('the source is on the map with its class, and clicking it filters by source', { skip: noSrc }, async () => {
    const p = await waitUntil(() => mapPoint(page, env.testSrc), { timeout: 30000, what: 'the test source on the map' });
    assert.equal(p.cls, 'icmp');
    assert.ok(Number(await attr(page, '#map', 'data-points')) >= 1);
    await page.locator('#map').scrollIntoViewIfNeeded();
    await page.locator('#map').click({ position: { x: p.x, y: p.y } });
    await page.waitForFunction((ip) => new URL(location.href).searchParams.get('cidr') === ip, env.testSrc, { timeout: 5000 });
    assert.equal(await page.inputValue('#f-cidr'), env.testSrc);
    await waitUntil(async () => (await feedRows(page).count()) > 0, { timeout: 10000, what: 'rows of the source' });
    const srcs = await feedRows(page).evaluateAll((rows) => [...new Set(rows.map((r) => r.dataset.src))]);
    assert.deepEqual(srcs, [env.testSrc], 'only the clicked source is listed');
    // Shift-click filters by its country instead.
    if (p.country) {
      const q = await mapPoint(page, env.testSrc);
      await page.locator('#map').click({ position: { x: q.x, y: q.y }, modifiers: ['Shift'] });
      await page.waitForFunction((cc) => new URL(location.href).searchParams.get('country') === cc, p.country, { timeout: 5000 });
    }
    await page.click('#f-reset');
    await page.waitForFunction(() => !location.search.includes('cidr=') && !location.search.includes('country='), null, { timeout: 5000 });
  });

  test('the headline is the daemon\'s figures, each with its window', async () => {
    const h = (await apiGet(env.url, '/api/stats')).headline;
    assert.equal(h.rate_window_s, 1);
    assert.equal(h.active_window_s, 60);
    await page.waitForFunction(() => /^\d/.test(document.getElementById('h-pps').textContent), null, { timeout: 10000 });
    const labels = await page.locator('#headline .l').allTextContents();
    assert.deepEqual(labels.map((l) => l.replace(/\s+/g, ' ').trim()), [
      'packets/s and bits/s seen by XDP, all classes, last second', 'packets/s reported over syslog, last second',
      'events/s, last second', 'sources seen, last 60 s', 'their countries, last 60 s']);
    assert.match(await page.textContent('#h-bps'), /^[\d.]+ (bit|kbit|Mbit|Gbit)\/s$/);
    // The page shows what the daemon computed (polled: both move every second).
    await waitUntil(async () => {
      const d = (await apiGet(env.url, '/api/stats')).headline;
      return (await page.textContent('#h-sources')) === d.active_sources.toLocaleString('en-US')
        && (await page.textContent('#h-countries')) === String(d.active_countries);
    }, { timeout: 15000, what: 'the headline to show the daemon\'s sources and countries' });
    if (env.testSrc) {
      await waitUntil(async () => Number(await page.textContent('#h-pps')) > 0, { timeout: 15000, what: 'the ping rate in the headline' });
    }
    // The totals under the lists add up, as the daemon counted them.
    const totals = await page.textContent('.top-totals');
    const m = totals.match(/^([\d,]+) packets eligible for events = ([\d,]+) sent as events \+ ([\d,]+) suppressed .* \+ ([\d,]+) lost/);
    assert.ok(m, `totals line: ${totals}`);
    const [eligible, sent, suppressed, lost] = m.slice(1).map((n) => Number(n.replace(/,/g, '')));
    assert.equal(eligible, sent + suppressed + lost, totals);
  });

  test('the feed shows whole addresses, the destination port and one time format with the zone', { skip: noSyslog }, async () => {
    const lines = [
      `<4>Nov 30 12:00:00 fw kernel: IPT_ICMP6 IN=eth0 OUT= SRC=${LONG_V6} DST=2001:db8::1 LEN=104 TC=0 HOPLIMIT=64 FLOWLBL=0 PROTO=ICMPv6 TYPE=128 CODE=0 ID=9 SEQ=1`,
      `<4>Nov 30 12:00:00 fw kernel: IPT_ICMP IN=eth0 OUT= SRC=${TCP_SRC} DST=192.0.2.1 LEN=60 TTL=57 ID=1 DF PROTO=TCP SPT=40000 DPT=443 WINDOW=64240 RES=0x00 SYN URGP=0`,
    ];
    await waitUntil(async () => {
      await sendSyslog(lines);
      return (await feedRowsOf(page, LONG_V6).count()) > 0 && (await feedRowsOf(page, TCP_SRC).count()) > 0;
    }, { interval: 1000, what: 'the syslog events in the feed' });
    await page.click('#pause');
    await page.waitForSelector('#pause[aria-pressed="true"]');
    try {
      // The long address: its end is shown, the middle gives way, the text and tooltip are whole.
      const ip = await feedRowsOf(page, LONG_V6).first().locator('button.ip').evaluate((b) => {
        const cell = b.closest('[role="cell"]').getBoundingClientRect();
        const tail = b.querySelector('.ip-t'), head = b.querySelector('.ip-h');
        const sel = getSelection();
        sel.selectAllChildren(b);
        const copied = sel.toString();
        sel.removeAllRanges();
        return {
          text: b.textContent, title: b.title, copied, tail: tail.textContent,
          tailInside: tail.getBoundingClientRect().right <= cell.right + 0.5 && tail.scrollWidth <= tail.clientWidth + 0.5,
          headElided: head.scrollWidth > head.clientWidth,
        };
      });
      assert.equal(ip.text, LONG_V6);
      assert.equal(ip.copied, LONG_V6, 'copying the address copies all of it');
      assert.ok(ip.title.includes(LONG_V6), `tooltip ${ip.title}`);
      assert.ok(LONG_V6.endsWith(ip.tail) && ip.tail.length >= 4, `the end of the address is kept: ${ip.tail}`);
      assert.ok(ip.tailInside, 'the end of the address is visible inside its cell');
      assert.ok(ip.headElided, 'the middle of a long address gives way (ellipsis), not its end');
      // The destination port, and none for ICMP.
      assert.equal((await feedRowsOf(page, TCP_SRC).first().locator('.port').textContent()).trim(), '443');
      assert.doesNotMatch(await feedRowsOf(page, LONG_V6).first().locator('.port').textContent(), /\d/);
      // One 24-hour format; the zone is stated in the header, in full in each time's tooltip, on the chart axis.
      const tz = await pageTz(page);
      assert.equal((await page.textContent('.feed-head .t')).replace(/\s+/g, ' ').trim(), `Time (${tz})`);
      const times = await page.locator('#feed-body time').evaluateAll((ts) => ts.slice(0, 50).map((t) => [t.textContent, t.title, t.dateTime]));
      for (const [text, title, iso] of times) {
        assert.match(text, /^([01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{3}$/);
        assert.equal(title, `${title.slice(0, 19)} ${tz}`);
        assert.match(title, /^\d{4}-\d\d-\d\d ([01]\d|2[0-3]):[0-5]\d:[0-5]\d /);
        assert.ok(Number.isFinite(Date.parse(iso)), `machine-readable datetime ${iso}`);
      }
      assert.equal(await page.getAttribute('#chart', 'data-axes'), `Time (${tz}) | packets/s`, 'chart axes with the zone and the unit');
      assert.match(await page.getAttribute('#chart', 'aria-label'), new RegExp(`^packets/s per class .* against time \\(${tz}\\)$`));
      assert.doesNotMatch(await page.innerText('body'), /\b\d{1,2}(:\d\d)+\s?(AM|PM|am|pm)\b/, 'no 12-hour times anywhere');
    } finally {
      await page.click('#pause');
      await page.waitForSelector('#pause[aria-pressed="false"]');
    }
  });

  test('the rate chart moves', async () => {
    await page.waitForSelector('#chart canvas', { timeout: 10000 });
    assert.equal(Number(await attr(page, '#chart', 'data-samples')), 300, 'the 5 minute window, one point a second');
    if (env.testSrc) {
      // The harness pings all along: more and more seconds of the window carry traffic.
      const first = await waitUntil(async () => Number(await attr(page, '#chart', 'data-nonzero')),
        { timeout: 30000, what: 'a non-zero rate in the chart' });
      await waitUntil(async () => Number(await attr(page, '#chart', 'data-nonzero')) > first,
        { timeout: 30000, what: `the chart to move past ${first} non-zero seconds` });
    }
    await page.click('[data-window="15"]');
    await waitUntil(async () => Number(await attr(page, '#chart', 'data-samples')) === 900, { timeout: 5000, what: '15 min window' });
    await page.click('[data-window="5"]');
  });

  test('filters hide and show rows and live in the URL', async () => {
    await waitUntil(async () => (await feedRows(page).count()) > 0, { timeout: 30000, what: 'rows in the feed' });
    await setSearch(page, 'zz-no-such-event-zz');
    await waitUntil(async () => (await feedRows(page).count()) === 0, { timeout: 5000, what: 'no rows' });
    assert.ok(await page.isVisible('#feed-empty'));
    assert.match(page.url(), /[?&]q=zz-no-such-event-zz/, 'the filter is in the URL');
    await setSearch(page, '');
    await waitUntil(async () => (await feedRows(page).count()) > 0, { timeout: 5000, what: 'rows back' });
    await page.waitForFunction(() => !/[?&]q=/.test(location.search), null, { timeout: 5000 });
    // A class with no traffic hides the ICMP rows; unticking brings them back.
    await page.check('#f-classes input[value="http"]');
    await page.waitForFunction(() => new URL(location.href).searchParams.get('class') === 'http', null, { timeout: 5000 });
    await waitUntil(async () => (await page.locator('#feed-body > [role="row"][data-class="icmp"]').count()) === 0,
      { timeout: 5000, what: 'no ICMP rows under class=http' });
    await page.uncheck('#f-classes input[value="http"]');
    await waitUntil(async () => (await feedRows(page).count()) > 0, { timeout: 10000, what: 'rows back after the class filter' });
    // Regex mode; an invalid regex shows an error and never throws.
    if (env.testSrc) {
      await setSearch(page, `/^${env.testSrc.replace(/[.:]/g, '\\$&')}$/`);
      await waitUntil(async () => (await feedRowsOf(page, env.testSrc).count()) > 0, { timeout: 5000, what: 'regex match' });
      await setSearch(page, '');
    }
    await setSearch(page, '/(unclosed/');
    await page.waitForSelector('#f-error', { state: 'visible', timeout: 5000 });
    await setSearch(page, '');
    await page.waitForSelector('#f-error', { state: 'hidden', timeout: 5000 });
    // A filter in the URL applies on load.
    const { page: p2, context: c2 } = await openDashboard(browser,
      dashboardUrl(env.url, { token: env.token, query: '?q=zz-no-such-event-zz' }));
    try {
      await waitForLive(p2);
      assert.equal(await p2.inputValue('#f-q'), 'zz-no-such-event-zz');
      assert.equal(await feedRows(p2).count(), 0);
    } finally {
      await c2.close();
    }
    assert.deepEqual(problems, []);
  });

  test('the IP lookup of MONITOR_TEST_SRC shows what the daemon knows', { skip: noSrc }, async () => {
    const truth = await apiGet(env.url, `/api/lookup/${env.testSrc}`);
    await page.fill('#lookup-ip', env.testSrc);
    await page.click('#lookup-form button[type="submit"]');
    const counters = page.locator('#lookup dl[data-part="counters"] dd');
    await counters.first().waitFor({ timeout: 10000 });
    const values = await counters.evaluateAll((dds) => dds.map((d) => Number(d.dataset.value)));
    assert.ok(values.some((v) => v > 0), `some counter > 0 in ${JSON.stringify(values)}`);
    const text = await page.textContent('#lookup');
    assert.ok(text.includes(env.testSrc));
    for (const k of ['country_code', 'city']) if (truth.geo?.[k]) assert.ok(text.includes(truth.geo[k]), `${k} ${truth.geo[k]} shown`);
    if (truth.geo?.asn) assert.ok(text.includes(`AS${truth.geo.asn}`), 'ASN shown');
    // Clicking an address in the feed opens its lookup too. Paused, as a
    // person would: live rows shift under the pointer as new ones arrive.
    await page.fill('#lookup-ip', '');
    await page.click('#pause');
    await page.waitForSelector('#pause[aria-pressed="true"]', { timeout: 5000 });
    try {
      await feedRowsOf(page, env.testSrc).first().locator('button.ip').click();
      await page.waitForFunction((ip) => document.getElementById('lookup-ip').value === ip
        && document.querySelector('#lookup dl[data-part="counters"]'), env.testSrc, { timeout: 10000 });
    } finally {
      await page.click('#pause');
      await page.waitForSelector('#pause[aria-pressed="false"]', { timeout: 5000 });
    }
  });

  test('the alerts panel shows the firing alert MONITOR_ALERT about MONITOR_TEST_SRC', { skip: noSrc || (!process.env.MONITOR_ALERT && 'MONITOR_ALERT not set') }, async () => {
    const name = process.env.MONITOR_ALERT;
    const item = page.locator(`#alerts .alert[data-state="firing"][data-alertname="${name}"]`).filter({ hasText: env.testSrc });
    await item.first().waitFor({ timeout: 30000 });
    const doc = await apiGet(env.url, '/api/alerts');
    assert.ok(doc.alerts.some((a) => a.alertname === name && a.state === 'firing' && a.labels.source === env.testSrc),
      JSON.stringify(doc.alerts));
    const text = await item.first().textContent();
    assert.match(text, /firing/i);
    assert.match(text, new RegExp(`ICMP from ${env.testSrc.replaceAll('.', '\\.')} at \\d`));
    // The source opens the lookup like any address on the page.
    assert.equal(await item.first().locator('button.ip').count(), 1);
  });

  test('the lookup of not-an-ip shows the daemon\'s 400 message', async () => {
    await page.fill('#lookup-ip', 'not-an-ip');
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/api/lookup/not-an-ip')),
      page.click('#lookup-form button[type="submit"]'),
    ]);
    assert.equal(response.status(), 400);
    const { error } = await response.json();
    assert.ok(error, 'the 400 body has {"error": ...}');
    const shown = page.locator('#lookup .error');
    await shown.waitFor({ timeout: 5000 });
    assert.ok((await shown.textContent()).includes(error), `panel shows ${JSON.stringify(error)}`);
  });

  test('pause freezes the feed, clear empties it', { skip: noSrc }, async () => {
    await waitUntil(async () => (await feedRows(page).count()) > 0, { timeout: 30000, what: 'rows' });
    await page.click('#pause');
    assert.equal(await page.getAttribute('#pause', 'aria-pressed'), 'true');
    const first = await feedRows(page).first().getAttribute('data-src') + await feedRows(page).first().locator('.t').textContent();
    await waitUntil(async () => /Paused: [1-9][\d,]* new events/.test(await page.textContent('#feed-status')),
      { timeout: 10000, what: 'new events counted while paused' });
    assert.equal(await feedRows(page).first().getAttribute('data-src') + await feedRows(page).first().locator('.t').textContent(), first);
    await page.click('#pause');
    const kept = await page.evaluate(() => window.monitorDashboard.feedSize);
    await page.click('#clear');
    // Events keep coming, so "empty" lasts a moment: compare with what was kept.
    assert.ok(await page.evaluate((n) => window.monitorDashboard.feedSize < n, kept), `feed cleared (had ${kept})`);
    await waitUntil(async () => (await feedRows(page).count()) > 0, { timeout: 10000, what: 'new rows after clear' });
  });

  test('IP lookup and health are early in the tab order; a tap toggle replaces shift-click', async () => {
    const s = await open();
    try {
      await waitForLive(s.page);
      const order = [];
      for (let i = 0; i < 6; i++) {
        await s.page.keyboard.press('Tab');
        order.push(await s.page.evaluate(() => document.activeElement.id || document.activeElement.textContent.trim()));
      }
      assert.ok(order.indexOf('jump-lookup') >= 0 && order.indexOf('jump-lookup') <= 2, `tab order ${order}`);
      assert.ok(order.indexOf('jump-health') >= 0 && order.indexOf('jump-health') <= 3, `tab order ${order}`);
      await s.page.focus('#jump-lookup');
      await s.page.keyboard.press('Enter');
      await s.page.waitForFunction(() => document.activeElement?.id === 'lookup-ip', null, { timeout: 5000 });
      if (env.testSrc) {
        // No shift key on a phone: the toggle makes a plain tap filter by country.
        await s.page.click('#pick-country');
        assert.equal(await s.page.getAttribute('#pick-country', 'aria-pressed'), 'true');
        const p = await waitUntil(() => mapPoint(s.page, env.testSrc), { timeout: 30000, what: 'the test source on the map' });
        if (p.country) {
          await s.page.locator('#map').scrollIntoViewIfNeeded();
          const q = await mapPoint(s.page, env.testSrc);
          await s.page.locator('#map').click({ position: { x: q.x, y: q.y } });
          await s.page.waitForFunction((cc) => new URL(location.href).searchParams.get('country') === cc, p.country, { timeout: 5000 });
        }
      }
      assert.deepEqual(s.problems, []);
    } finally {
      await s.context.close();
    }
  });

  test('screenshots, light and dark, laptop and phone', async () => {
    for (const scheme of ['light', 'dark']) {
      const s = await open({ colorScheme: scheme });
      try {
        await waitForLive(s.page);
        assert.equal(await s.page.getAttribute('html', 'data-theme'), scheme, 'follows prefers-color-scheme');
        await s.page.waitForTimeout(3000); // let the feed, map and chart fill
        await saveScreenshot(s.page, `dashboard-${scheme}.png`);
        await s.page.setViewportSize({ width: 390, height: 844 });
        await s.page.waitForTimeout(500);
        // Phone width: nothing may stick out sideways.
        const wide = await s.page.evaluate(() => [...document.querySelectorAll('body *')]
          .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1 && !el.closest('.feed-wrap, .sr-only'))
          .map((el) => `${el.tagName.toLowerCase()}#${el.id}.${el.className}`));
        assert.deepEqual(wide, [], 'elements sticking out of a 390px phone screen');
        await saveScreenshot(s.page, `dashboard-${scheme}-phone.png`, { fullPage: false });
        assert.deepEqual(s.problems, []);
      } finally {
        await s.context.close();
      }
    }
    // The toggle flips the theme and the choice survives a reload.
    const s = await open({ colorScheme: 'light' });
    try {
      await s.page.click('#theme');
      assert.equal(await s.page.getAttribute('html', 'data-theme'), 'dark');
      await s.page.reload();
      assert.equal(await s.page.getAttribute('html', 'data-theme'), 'dark');
    } finally {
      await s.context.close();
    }
  });
});

describe('map', { skip: noUrl || noSyslog }, () => {
  // Documentation-free public addresses, only ever text in datagrams to the daemon's syslog port on 127.0.0.1.
  const BUSY = '133.242.0.10', QUIET = '200.160.2.10', PAIR = ['193.0.6.10', '193.0.6.11'];
  const line = (ip) => `<4>Nov 30 12:00:00 fw kernel: IPT_ICMP IN=eth0 OUT= SRC=${ip} DST=192.0.2.1 LEN=84 TTL=57 ID=1 PROTO=ICMP TYPE=8 CODE=0 ID=1 SEQ=1`;
  let page, problems, context;
  before(async () => {
    for (const ip of [BUSY, QUIET, ...PAIR]) {
      assert.ok(Number.isFinite((await apiGet(env.url, `/api/lookup/${ip}`)).geo?.lat), `${ip} has a location in the GeoIP data`);
    }
    const [a, b] = await Promise.all(PAIR.map((ip) => apiGet(env.url, `/api/lookup/${ip}`)));
    assert.deepEqual([a.geo.lat.toFixed(2), a.geo.lon.toFixed(2)], [b.geo.lat.toFixed(2), b.geo.lon.toFixed(2)], 'the pair is co-located');
    ({ page, problems, context } = await open());
    await waitForLive(page);
  });
  after(async () => { await context?.close(); });

  test('circle size follows the daemon\'s per-source rate on a log scale, from the first frame', async () => {
    // About 80 and 4 packets/s: 20 lines and 1 line every 250 ms, for at least 3 s.
    let rounds = 0;
    const [busy, quiet] = await waitUntil(async () => {
      await sendSyslog([...Array(20).fill(line(BUSY)), line(QUIET)]);
      rounds++;
      const pts = await Promise.all([mapPoint(page, BUSY), mapPoint(page, QUIET)]);
      return rounds >= 12 && pts.every(Boolean) && pts;
    }, { what: 'both sources on the map' });
    const max = await page.evaluate(() => { const c = document.getElementById('map'); return 2.5 + Math.min(1, c.clientWidth / 1000) * 16; });
    assert.ok(busy.r < max - 2 && quiet.r < max - 2, `not at the maximum radius ${max}: ${busy.r}, ${quiet.r}`);
    assert.ok(busy.r > quiet.r + 4, `the busier source has the clearly larger circle: ${busy.r} > ${quiet.r}`);
    assert.ok(busy.rate > 5 * quiet.rate, `rates ${busy.rate} vs ${quiet.rate}`);
    // A page opened now shows the daemon's rate at once, not a ramp from zero.
    const fresh = await open();
    try {
      const first = await waitUntil(() => mapPoint(fresh.page, BUSY), { interval: 50, what: 'the busy source on a fresh page' });
      const top = (await apiGet(env.url, '/api/top')).sources.find((s) => s.ip === BUSY);
      assert.ok(first.rate > 0.5 * top.packets_per_s && first.rate < 2 * top.packets_per_s,
        `first frame ${first.rate} packets/s, the daemon says ${top.packets_per_s}`);
      const q = await waitUntil(() => mapPoint(fresh.page, QUIET), { what: 'the quiet source on a fresh page' });
      assert.ok(first.r > q.r + 4, `order holds on the fresh page: ${first.r} > ${q.r}`);
    } finally {
      await fresh.context.close();
    }
  });

  test('co-located sources share one circle with their count, and hovering lists them', async () => {
    const p = await waitUntil(async () => {
      await sendSyslog(PAIR.map(line));
      const q = await mapPoint(page, PAIR[0]);
      return q?.count >= 2 && q;
    }, { interval: 500, what: 'the pair grouped on the map' });
    const other = await mapPoint(page, PAIR[1]);
    assert.deepEqual([other.x, other.y, other.count], [p.x, p.y, p.count], 'one circle for both');
    await page.locator('#map').scrollIntoViewIfNeeded();
    await waitUntil(async () => {
      const q = await mapPoint(page, PAIR[0]);
      await page.locator('#map').hover({ position: { x: q.x, y: q.y } });
      const tip = await page.textContent('#map-tip');
      return (await page.isVisible('#map-tip')) && tip.includes(`${q.count} sources here`) && PAIR.every((ip) => tip.includes(ip));
    }, { what: 'the tooltip listing the pair' });
  });

  test('the colour key shows every class, the circle sizes and the country shading', async () => {
    const key = page.locator('#map-key');
    for (const label of ['ICMP', 'ICMPv6', 'HTTP', 'HTTPS', 'other IPv4', 'non-IP', 'malformed']) assert.ok((await key.textContent()).includes(label), label);
    assert.match(await key.locator('[data-key="size"]').textContent(), /1 pkt\/s.*100 pkt\/s.*10k pkt\/s.*log scale/);
    assert.ok(await key.locator('[data-key="shade"] .ramp').isVisible());
  });

  test('zoom in doubles distances from the centre, zoom out and reset go back', async () => {
    const w = await page.evaluate(() => document.getElementById('map').clientWidth);
    const h = await page.evaluate(() => document.getElementById('map').clientHeight);
    const a = await mapPoint(page, BUSY);
    await page.click('#map-zoom-in');
    await page.waitForSelector('#map[data-zoom="2"]');
    const b = await waitUntil(() => mapPoint(page, BUSY), { what: 'the source after zooming' });
    assert.ok(Math.abs((b.x - w / 2) - 2 * (a.x - w / 2)) < 1.5 && Math.abs((b.y - h / 2) - 2 * (a.y - h / 2)) < 1.5,
      `zoomed around the centre: ${JSON.stringify([a, b, w, h])}`);
    if (env.artifacts) await page.locator('#map-section').screenshot({ path: `${env.artifacts}/map-zoomed.png` });
    await page.click('#map-zoom-out');
    await page.waitForSelector('#map[data-zoom="1"]');
    await page.click('#map-zoom-in');
    await page.waitForSelector('#map[data-zoom="2"]');
    await page.click('#map-zoom-reset');
    await page.waitForSelector('#map[data-zoom="1"]');
    const c = await mapPoint(page, BUSY);
    assert.ok(Math.abs(c.x - a.x) < 1 && Math.abs(c.y - a.y) < 1, 'back to the whole world');
    if (env.artifacts) await page.locator('#map-section').screenshot({ path: `${env.artifacts}/map.png` });
    assert.deepEqual(problems, []);
  });
});

describe('meta: what exists is the daemon\'s to say', { skip: noUrl }, () => {
  test('GET /api/meta is docs/api/meta.json, and the snapshot frame carries the same', async () => {
    assert.deepEqual(await apiGet(env.url, '/api/meta'), GOLDEN_META);
    const s = await open({ recordWs: true });
    try {
      await waitForLive(s.page);
      const snapshot = await waitUntil(() => s.sockets[0]?.frames.find((f) => f.type === 'snapshot'), { timeout: 5000, what: 'the snapshot frame' });
      assert.deepEqual(snapshot.meta, GOLDEN_META);
      assert.deepEqual(await s.page.evaluate(() => window.monitorDashboard.meta), GOLDEN_META);
      assert.ok(await s.page.isHidden('#schema-warning'));
      assert.deepEqual(s.problems, []);
    } finally {
      await s.context.close();
    }
  });

  test('the class filter, chart series, map key and window selector are built from meta', async () => {
    const s = await open();
    try {
      await waitForLive(s.page);
      const meta = GOLDEN_META;
      await s.page.waitForSelector('#chart canvas', { timeout: 10000 });
      assert.deepEqual(await s.page.locator('#f-classes input').evaluateAll((bs) => bs.map((b) => b.value)), meta.classes);
      assert.deepEqual(await s.page.locator('#map-key [data-class]').evaluateAll((es) => es.map((e) => e.dataset.class)), meta.classes);
      assert.equal(await attr(s.page, '#chart', 'data-series'), meta.rate_series.join(','));
      assert.deepEqual(await s.page.locator('#top-window [data-top-window]').evaluateAll((bs) => bs.map((b) => b.dataset.topWindow)),
        [...meta.top_windows_minutes.map(String), 'all']);
    } finally {
      await s.context.close();
    }
    // The proof that nothing is restated: a meta with a class and a window
    // this page has never heard of shows up as they are.
    const extend = (m) => ({ ...m, classes: [...m.classes, 'zz_new'], top_windows_minutes: [...m.top_windows_minutes, 30] });
    const t = await open({
      setup: async (page) => {
        await page.route('**/api/meta', async (route) => route.fulfill({ json: extend(await (await route.fetch()).json()) }));
        await page.routeWebSocket(/\/ws(\?|$)/, (ws) => {
          const server = ws.connectToServer();
          ws.onMessage((m) => server.send(m));
          server.onMessage((m) => {
            if (typeof m === 'string' && m.includes('"snapshot"')) {
              const f = JSON.parse(m);
              if (f.type === 'snapshot' && f.meta) { f.meta = extend(f.meta); m = JSON.stringify(f); }
            }
            ws.send(m);
          });
        });
      },
    });
    try {
      await waitForLive(t.page);
      await t.page.waitForSelector('#f-classes input[value="zz_new"]', { timeout: 10000 });
      assert.match(await t.page.textContent('#f-classes'), /zz_new/, 'shown by its own name: the page has no label for it');
      assert.ok(await t.page.isVisible('#map-key [data-class="zz_new"]'));
      assert.equal((await t.page.textContent('#top-window [data-top-window="30"]')).trim(), '30 min');
      assert.deepEqual(t.problems, []);
    } finally {
      await t.context.close();
    }
  });
});

describe('the top lists\' window', { skip: noUrl }, () => {
  const panelsSay = (page, text) => page.waitForFunction((t) => ['top-h', 'map-h'].every((id) => document.getElementById(id).textContent.includes(t)),
    text, { timeout: 10000 });
  /** The newest stats frame's top covers `minutes` (null: since start). */
  const framesFollow = (sockets, minutes) => waitUntil(() => {
    const frames = sockets.at(-1).frames.filter((f) => f.type === 'stats' || f.type === 'snapshot');
    return frames.length && frames.at(-1).top?.window_minutes === minutes;
  }, { timeout: 10000, what: `stats frames with top.window_minutes ${minutes}` });

  test('/api/top?window= says its window', async () => {
    assert.equal((await apiGet(env.url, '/api/top')).window_minutes, null, 'since start when no window is asked for');
    for (const w of GOLDEN_META.top_windows_minutes) {
      const top = await apiGet(env.url, `/api/top?n=20&window=${w}`);
      assert.equal(top.window_minutes, w);
      assert.ok(Array.isArray(top.sources) && Array.isArray(top.countries) && Array.isArray(top.asns));
    }
    const bad = await fetch(`${env.url}/api/top?window=7`, { headers: env.token ? { Authorization: `Bearer ${env.token}` } : {} });
    assert.equal(bad.status, 400, 'a window not in meta.top_windows_minutes');
  });

  test('chosen in the page, kept in the URL, asked for on the socket and stated on the panels', async () => {
    const s = await openDashboard(browser, dashboardUrl(env.url, { token: env.token, query: '?window=15' }), { recordWs: true });
    try {
      await waitForLive(s.page);
      assert.equal(s.sockets[0].url.searchParams.get('window'), '15', 'the first connection asks for the URL\'s window');
      assert.equal(await attr(s.page, '#top-window [data-top-window="15"]', 'aria-pressed'), 'true');
      await framesFollow(s.sockets, 15);
      await panelsSay(s.page, 'last 15 min');
      await s.page.waitForSelector('#top-section[data-window="15"]');
      assert.match(await s.page.textContent('.top-totals'), /events of the last 15 min by the packets/);

      await s.page.click('#top-window [data-top-window="5"]');
      await s.page.waitForFunction(() => new URL(location.href).searchParams.get('window') === '5', null, { timeout: 5000 });
      await waitUntil(() => s.sockets.at(-1).sent.some((m) => m.type === 'filter' && m.window === 5), { timeout: 5000, what: 'a filter message with window 5' });
      await framesFollow(s.sockets, 5);
      await panelsSay(s.page, 'last 5 min');
      assert.equal(await attr(s.page, '#top-window [data-top-window="5"]', 'aria-pressed'), 'true');
      assert.equal(await attr(s.page, '#top-window [data-top-window="15"]', 'aria-pressed'), 'false');

      // Since start: no window in the URL, "window": null on the socket.
      await s.page.click('#top-window [data-top-window="all"]');
      await s.page.waitForFunction(() => !new URL(location.href).searchParams.has('window'), null, { timeout: 5000 });
      await waitUntil(() => s.sockets.at(-1).sent.some((m) => m.type === 'filter' && m.window === null), { timeout: 5000, what: 'a filter message with window null' });
      await framesFollow(s.sockets, null);
      await panelsSay(s.page, 'since the daemon started');

      // The round trip: a window and a class filter survive a reload, and the new connection asks for both.
      await s.page.click('#top-window [data-top-window="60"]');
      await s.page.check('#f-classes input[value="icmp"]');
      await s.page.waitForFunction(() => { const p = new URL(location.href).searchParams; return p.get('window') === '60' && p.get('class') === 'icmp'; },
        null, { timeout: 5000 });
      const before = s.sockets.length;
      await s.page.reload({ waitUntil: 'domcontentloaded' });
      await waitForLive(s.page);
      await waitUntil(() => s.sockets.length > before, { timeout: 5000, what: 'the new page\'s socket' });
      assert.equal(s.sockets.at(-1).url.searchParams.get('window'), '60');
      assert.equal(s.sockets.at(-1).url.searchParams.get('class'), 'icmp');
      assert.equal(await attr(s.page, '#top-window [data-top-window="60"]', 'aria-pressed'), 'true');
      assert.ok(await s.page.isChecked('#f-classes input[value="icmp"]'));
      await framesFollow(s.sockets, 60);
      await panelsSay(s.page, 'last 60 min');
      assert.deepEqual(s.problems, []);
    } finally {
      await s.context.close();
    }
  });

  test('a window or class the daemon does not offer is dropped, and the page connects', async () => {
    const s = await openDashboard(browser, dashboardUrl(env.url, { token: env.token, query: '?window=7&class=zz_none,http' }), { recordWs: true });
    try {
      await waitForLive(s.page);
      const url = s.sockets[0].url;
      assert.equal(url.searchParams.get('window'), null);
      assert.equal(url.searchParams.get('class'), 'http');
      assert.equal(await connectCount(s.page), 1, 'connected at the first attempt');
      await s.page.waitForFunction(() => { const p = new URL(location.href).searchParams; return !p.has('window') && p.get('class') === 'http'; },
        null, { timeout: 5000 });
      assert.equal(await attr(s.page, '#top-window [data-top-window="all"]', 'aria-pressed'), 'true');
      await panelsSay(s.page, 'since the daemon started');
      assert.deepEqual(s.problems, []);
    } finally {
      await s.context.close();
    }
  });
});

describe('map zoom by wheel and pinch', { skip: noUrl }, () => {
  const near = (a, b, tol = 1.5) => Math.abs(a.x - b.x) <= tol && Math.abs(a.y - b.y) <= tol;
  const project = (page, [lon, lat]) => page.evaluate(([a, b]) => window.monitorDashboard.mapProject(a, b), [lon, lat]);
  const unproject = (page, { x, y }) => page.evaluate(([a, b]) => window.monitorDashboard.mapUnproject(a, b), [x, y]);
  const zoomIs = (page, k) => page.waitForFunction((z) => Math.abs(window.monitorDashboard.mapZoom - z) < 0.01, k, { timeout: 5000 });

  test('the wheel zooms about the pointer; at the whole world it scrolls the page; the buttons still work from the keyboard', async () => {
    const s = await open();
    try {
      await waitForLive(s.page);
      await s.page.waitForSelector('#map[data-zoom="1"]');
      await s.page.locator('#map').scrollIntoViewIfNeeded();
      const box = await s.page.locator('#map').boundingBox();
      const p = { x: Math.round(box.width * 0.3), y: Math.round(box.height * 0.4) }; // off centre: about the pointer, not the middle
      const place = await unproject(s.page, p);
      await s.page.mouse.move(box.x + p.x, box.y + p.y);
      const scrollY = await s.page.evaluate(() => scrollY);
      await s.page.mouse.wheel(0, -300);
      await zoomIs(s.page, 2);
      assert.ok(near(await project(s.page, place), p), 'the place under the pointer stays under it');
      await s.page.mouse.wheel(0, -300);
      await zoomIs(s.page, 4);
      assert.ok(near(await project(s.page, place), p), 'again at 4x');
      assert.equal(await s.page.evaluate(() => scrollY), scrollY, 'zooming in does not scroll the page');
      if (env.artifacts) await s.page.locator('#map-section').screenshot({ path: `${env.artifacts}/map-wheel-zoomed.png` });
      await s.page.mouse.wheel(0, 600);
      await zoomIs(s.page, 1);
      assert.ok(near(await project(s.page, place), p), 'back to the whole world');
      // At the whole world a wheel down is the page's: it scrolls.
      await s.page.mouse.wheel(0, 200);
      await waitUntil(async () => (await s.page.evaluate(() => scrollY)) > scrollY, { timeout: 5000, what: 'the page to scroll' });
      assert.equal(await s.page.evaluate(() => window.monitorDashboard.mapZoom), 1);
      // Keyboard: the buttons zoom and reset.
      await s.page.focus('#map-zoom-in');
      await s.page.keyboard.press('Enter');
      await zoomIs(s.page, 2);
      await s.page.focus('#map-zoom-reset');
      await s.page.keyboard.press('Enter');
      await zoomIs(s.page, 1);
      assert.deepEqual(s.problems, []);
    } finally {
      await s.context.close();
    }
  });

  test('two fingers pinch the map: the place between them stays between them', async () => {
    const s = await open({ hasTouch: true, viewport: { width: 390, height: 844 } });
    try {
      await waitForLive(s.page);
      await s.page.waitForSelector('#map[data-zoom="1"]');
      await s.page.locator('#map').scrollIntoViewIfNeeded();
      const box = await s.page.locator('#map').boundingBox();
      const m0 = { x: box.width * 0.5, y: box.height * 0.5 };
      const m1 = { x: m0.x + 30, y: m0.y }; // the fingers also move: the map follows
      const place = await unproject(s.page, m0);
      const cdp = await s.context.newCDPSession(s.page);
      const touch = (type, m, half) => cdp.send('Input.dispatchTouchEvent', {
        type,
        touchPoints: type === 'touchEnd' ? [] : [
          { x: box.x + m.x - half, y: box.y + m.y, id: 1 }, { x: box.x + m.x + half, y: box.y + m.y, id: 2 },
        ],
      });
      await touch('touchStart', m0, 40);
      for (let i = 1; i <= 8; i++) {
        const f = i / 8;
        await touch('touchMove', { x: m0.x + (m1.x - m0.x) * f, y: m0.y }, 40 + 40 * f);
      }
      await touch('touchEnd');
      await zoomIs(s.page, 2); // the fingers went from 80 to 160 px apart
      const now = await project(s.page, place);
      assert.ok(near(now, m1, 2), `the place between the fingers followed them: ${JSON.stringify([now, m1])}`);
      assert.equal(new URL(s.page.url()).searchParams.get('cidr'), null, 'a pinch is no tap on a circle');
      if (env.artifacts) await s.page.locator('#map-section').screenshot({ path: `${env.artifacts}/map-pinched.png` });
      assert.deepEqual(s.problems, []);
    } finally {
      await s.context.close();
    }
  });
});

describe('reconnect', { skip: noUrl || (!env.restartCmd && 'MONITOR_RESTART_CMD not set') }, () => {
  test('goes back to live by itself after the daemon restarts', { timeout: 180000 }, async () => {
    const { page, context, problems } = await open();
    try {
      await waitForLive(page);
      const before = await connectCount(page);
      const uptimeBefore = (await apiGet(env.url, '/api/stats')).uptime_s;
      await page.waitForSelector('#chart canvas', { timeout: 10000 });
      const chart = async () => page.evaluate(() => ({ ...document.getElementById('chart').dataset }));
      await page.waitForFunction(() => /^\d/.test(document.getElementById('h-pps').textContent), null, { timeout: 10000 });
      assert.equal((await chart()).gaps, '0', 'no gap while the daemon runs');
      if (uptimeBefore < 290) assert.ok(Number((await chart()).unknown) > 0, 'the seconds before the daemon started are gaps, not zeros');
      await runShell(env.restartCmd);
      // Read in one go inside the page the moment it notices: stale everywhere.
      const down = await page.waitForFunction(() => {
        if (document.getElementById('conn').dataset.state === 'live') return null;
        const text = (id) => document.getElementById(id).textContent;
        return {
          stale: document.body.dataset.stale, banner: !document.getElementById('stale').hidden,
          pps: text('h-pps'), eps: text('h-eps'), sources: text('h-sources'), uptime: text('uptime'),
          grey: getComputedStyle(document.getElementById('rates-section')).filter,
        };
      }, null, { timeout: 30000, polling: 50 }).then((h) => h.jsonValue());
      await saveScreenshot(page, 'dashboard-not-live.png', { fullPage: false });
      assert.ok(['reconnecting', 'connecting'].includes(down.stale), `stale ${down.stale}`);
      assert.ok(down.banner, 'the not-live banner shows');
      assert.deepEqual([down.pps, down.eps, down.sources], ['–', '–', '–'], 'no current figures while down');
      assert.equal(down.uptime, 'up –', 'the uptime stops');
      assert.match(down.grey, /grayscale/);
      // A new snapshot means the socket came back without a reload.
      await waitUntil(async () => (await connectCount(page)) > before && (await connectionState(page)) === 'live',
        { timeout: 60000, what: 'a reconnect back to live' });
      const stats = await apiGet(env.url, '/api/stats');
      assert.ok(stats.uptime_s <= uptimeBefore, `a new daemon process (uptime ${stats.uptime_s} s, was ${uptimeBefore} s)`);
      assert.equal(await page.getAttribute('body', 'data-stale'), null, 'live again: not greyed');
      assert.ok(await page.isHidden('#stale'));
      // The seconds the daemon was down are a gap in the chart, not zeros.
      await waitUntil(async () => Number((await chart()).gaps) >= 1, { timeout: 10000, what: 'a gap in the chart for the downtime' })
        .catch(async (e) => { throw new Error(`${e.message}: chart ${JSON.stringify(await chart())}, daemon up ${stats.uptime_s} s`); });
      // Console errors are expected while the daemon is down (failed
      // connects); uncaught page errors are not.
      assert.deepEqual(problems.filter((p) => p.startsWith('pageerror')), []);
    } finally {
      await context.close();
    }
  });
});

describe('auth', { skip: noUrl || (!env.authUrl && 'MONITOR_AUTH_URL not set') || (!env.token && 'MONITOR_TOKEN not set') }, () => {
  test('without a token the viewer is refused and told how to get in', async () => {
    const { page, context, response } = await openDashboard(browser, `${env.authUrl}/`);
    try {
      assert.notEqual(response.status(), 401, 'the daemon must serve the page itself without a token so that it can explain');
      await page.waitForSelector('#auth-error:not([hidden])', { timeout: 20000 });
      assert.match(await page.textContent('#auth-error'), /Not authorized: open the dashboard with \?token=/);
      assert.equal(await connectionState(page), 'unauthorized');
      assert.equal(await page.getAttribute('body', 'data-stale'), 'unauthorized');
      assert.equal(await page.textContent('#h-pps'), '–', 'no figure, not 0');
      assert.equal(await feedRows(page).count(), 0, 'no data without the token');
      const api = await page.evaluate(async () => (await fetch('/api/stats')).status);
      assert.equal(api, 401);
    } finally {
      await context.close();
    }
  });

  test('with ?token= it connects, removes the token from the address bar and lists the viewers', async () => {
    const { page, context, problems } = await openDashboard(browser, dashboardUrl(env.authUrl, { token: env.token }));
    try {
      await waitForLive(page);
      assert.doesNotMatch(page.url(), /token=/);
      assert.equal(await page.evaluate(() => sessionStorage.getItem('monitor.token')), env.token);
      assert.ok(await page.isHidden('#auth-error'));
      await page.waitForSelector('#hostname:not(:text("…"))', { timeout: 10000 });
      // Authenticated viewers get the viewers list, and see themselves in it.
      await page.waitForSelector('#viewers-section:not([hidden]) #viewers button.ip', { timeout: 10000 });
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
});
