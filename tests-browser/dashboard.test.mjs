// Browser tests of the dashboard against a running daemon. The Rust harness
// (monitor/tests/browser.rs) starts the real daemon with the real XDP
// program, pings from a test namespace and sets MONITOR_URL and the other
// variables (see `env` in helpers.mjs). Without MONITOR_URL every test is
// skipped; with it, a missing browser is a failure.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  apiGet, connectCount, connectionState, dashboardUrl, env, feedRows, feedRowsOf, launchBrowser, mapPoint,
  openDashboard, runShell, saveScreenshot, setSearch, waitForLive, waitUntil,
} from './helpers.mjs';

const noUrl = !env.url && 'MONITOR_URL is not set (the Rust test harness sets it)';
const noSrc = !env.testSrc && 'MONITOR_TEST_SRC not set';
const attr = (page, sel, name) => page.getAttribute(sel, name);

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

describe('reconnect', { skip: noUrl || (!env.restartCmd && 'MONITOR_RESTART_CMD not set') }, () => {
  test('goes back to live by itself after the daemon restarts', { timeout: 180000 }, async () => {
    const { page, context, problems } = await open();
    try {
      await waitForLive(page);
      const before = await connectCount(page);
      const uptimeBefore = (await apiGet(env.url, '/api/stats')).uptime_s;
      await runShell(env.restartCmd);
      await waitUntil(async () => ['reconnecting', 'connecting'].includes(await connectionState(page)),
        { timeout: 30000, interval: 50, what: 'the page to notice the daemon is gone' });
      // A new snapshot means the socket came back without a reload.
      await waitUntil(async () => (await connectCount(page)) > before && (await connectionState(page)) === 'live',
        { timeout: 60000, what: 'a reconnect back to live' });
      const stats = await apiGet(env.url, '/api/stats');
      assert.ok(stats.uptime_s <= uptimeBefore, `a new daemon process (uptime ${stats.uptime_s} s, was ${uptimeBefore} s)`);
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
