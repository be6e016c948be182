// Browser tests of the dashboard against a running daemon. The harness starts
// the daemon, generates traffic and sets MONITOR_URL (+ optional variables,
// see README.md); without MONITOR_URL every test is skipped.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  chromiumPath, connectCount, connectionState, dashboardUrl, env, feedRows, frameStats, launchBrowser,
  openDashboard, runShell, saveScreenshot, setSearch, waitForLive, waitUntil,
} from './helpers.mjs';

const noUrl = !env.url && 'MONITOR_URL is not set (the Rust test harness sets it)';
const noBrowser = !chromiumPath() && 'no Chromium installed (apt-get install -y chromium)';
const skipAll = noUrl || noBrowser;
const CLASS_LABELS = ['ICMP', 'ICMPv6', 'HTTP', 'HTTPS', 'other IPv4', 'other IPv6', 'non-IP', 'malformed'];

let browser;
before(async () => { if (!skipAll) browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

const open = (opts) => openDashboard(browser, dashboardUrl(env.url, { token: env.token }), opts);

describe('dashboard', { skip: skipAll }, () => {
  let page, problems, context;
  before(async () => {
    ({ page, problems, context } = await open());
    await waitForLive(page);
  });
  after(async () => { await context?.close(); });

  test('loads without console errors and shows the connection as live', async () => {
    assert.equal(await connectionState(page), 'live');
    await page.waitForFunction(() => document.getElementById('hostname').textContent !== '…', null, { timeout: 10000 });
    const footer = page.locator('#attribution');
    assert.equal(await footer.getAttribute('href'), 'https://db-ip.com');
    assert.match(await footer.textContent(), /DB-IP/);
    await page.waitForTimeout(2000); // a few frames of every kind
    assert.deepEqual(problems, [], 'console errors or page errors');
  });

  test('an event from MONITOR_TEST_SRC appears in the feed with its class badge', { skip: !env.testSrc && 'MONITOR_TEST_SRC not set' }, async () => {
    // Filter by the source so a busy feed cannot push its rows out of the 500 rendered.
    await setSearch(page, env.testSrc);
    const row = page.locator(`#feed tbody tr[data-src="${env.testSrc}"]`).first();
    await row.waitFor({ timeout: 30000 });
    const label = (await row.locator('.badge').textContent()).trim();
    assert.ok(CLASS_LABELS.includes(label), `class badge text ${JSON.stringify(label)}`);
    assert.equal((await row.locator('button.ip').textContent()).trim(), env.testSrc);
    await setSearch(page, '');
  });

  test('the rate chart has data', async () => {
    await page.waitForSelector('#chart canvas', { timeout: 10000 });
    const samples = Number(await page.getAttribute('#chart', 'data-samples'));
    assert.ok(samples > 0, `chart samples ${samples}`);
    if (env.testSrc) {
      // The harness generates traffic: some second in the window must be non-zero.
      await waitUntil(async () => Number(await page.getAttribute('#chart', 'data-nonzero')) > 0,
        { timeout: 30000, what: 'a non-zero rate in the chart' });
    }
  });

  test('a filter that matches nothing hides every row, clearing it shows them again', async () => {
    await waitUntil(async () => (await feedRows(page).count()) > 0, { timeout: 30000, what: 'rows in the feed' });
    await setSearch(page, 'zz-no-such-event-zz');
    await waitUntil(async () => (await feedRows(page).count()) === 0, { timeout: 5000, what: 'no rows' });
    assert.ok(await page.isVisible('#feed-empty'));
    assert.match(page.url(), /[?&]q=zz-no-such-event-zz/, 'the filter is in the URL');
    await setSearch(page, '');
    await waitUntil(async () => (await feedRows(page).count()) > 0, { timeout: 5000, what: 'rows back' });
    await page.waitForFunction(() => !/[?&]q=/.test(location.search), null, { timeout: 5000 });
    // An invalid regex shows an error and never throws; clearing it removes the error.
    await setSearch(page, '/(unclosed/');
    await page.waitForSelector('#f-error', { state: 'visible', timeout: 5000 });
    await setSearch(page, '');
    await page.waitForSelector('#f-error', { state: 'hidden', timeout: 5000 });
    assert.deepEqual(problems, []);
  });

  test('the IP lookup of MONITOR_TEST_SRC shows its counters', { skip: !env.testSrc && 'MONITOR_TEST_SRC not set' }, async () => {
    await page.fill('#lookup-ip', env.testSrc);
    await page.click('#lookup-form button[type="submit"]');
    const counters = page.locator('#lookup dl[data-part="counters"] dd');
    await counters.first().waitFor({ timeout: 10000 });
    const values = (await counters.evaluateAll((dds) => dds.map((d) => Number(d.dataset.value))));
    assert.ok(values.some((v) => v > 0), `some counter > 0 in ${JSON.stringify(values)}`);
    assert.match(await page.textContent('#lookup'), new RegExp(env.testSrc.replace(/[.:]/g, '\\$&')));
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

  test('screenshots of the full page, light and dark', { skip: !env.artifacts && 'MONITOR_ARTIFACTS not set' }, async () => {
    for (const scheme of ['light', 'dark']) {
      const s = await open({ colorScheme: scheme });
      try {
        await waitForLive(s.page);
        assert.equal(await s.page.getAttribute('html', 'data-theme'), scheme, 'follows prefers-color-scheme');
        await s.page.waitForTimeout(3000); // let the feed, map and chart fill
        await saveScreenshot(s.page, `dashboard-${scheme}.png`);
        await s.page.setViewportSize({ width: 390, height: 844 });
        await s.page.waitForTimeout(500);
        await saveScreenshot(s.page, `dashboard-${scheme}-phone.png`, { fullPage: false });
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

describe('reconnect', { skip: skipAll || (!env.restartCmd && 'MONITOR_RESTART_CMD not set') }, () => {
  test('goes back to live by itself after the daemon restarts', { timeout: 180000 }, async () => {
    const { page, context } = await open();
    try {
      await waitForLive(page);
      const before = await connectCount(page);
      await runShell(env.restartCmd);
      // A new snapshot means the socket dropped and came back without a reload.
      await waitUntil(async () => (await connectCount(page)) > before && (await connectionState(page)) === 'live',
        { timeout: 60000, what: 'a reconnect back to live' });
    } finally {
      await context.close();
    }
  });
});

describe('auth', { skip: skipAll || (!env.authUrl && 'MONITOR_AUTH_URL not set') || (!env.token && 'MONITOR_TOKEN not set') }, () => {
  test('without a token the page says how to get in', async () => {
    const { page, context, response } = await openDashboard(browser, `${env.authUrl}/`);
    try {
      assert.notEqual(response.status(), 401, 'the daemon must serve the page itself without a token so that it can explain');
      await page.waitForSelector('#auth-error:not([hidden])', { timeout: 20000 });
      assert.match(await page.textContent('#auth-error'), /Not authorized: open the dashboard with \?token=/);
      assert.equal(await connectionState(page), 'unauthorized');
    } finally {
      await context.close();
    }
  });

  test('with ?token= it connects and removes the token from the address bar', async () => {
    const { page, context, problems } = await openDashboard(browser, dashboardUrl(env.authUrl, { token: env.token }));
    try {
      await waitForLive(page);
      assert.doesNotMatch(page.url(), /token=/);
      assert.equal(await page.evaluate(() => sessionStorage.getItem('monitor.token')), env.token);
      assert.ok(await page.isHidden('#auth-error'));
      await page.waitForSelector('#hostname:not(:text("…"))', { timeout: 10000 });
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
});

describe('load', { skip: skipAll || (!env.load && 'MONITOR_LOAD is not 1') }, () => {
  test('stays responsive while thousands of events per second arrive', { timeout: 120000 }, async (t) => {
    const { page, context, problems } = await open();
    try {
      await waitForLive(page);
      await page.waitForTimeout(2000);
      const before = await page.evaluate(() => window.monitorDashboard.feedSize);
      const frames = await frameStats(page, 3000);
      const eps = await page.textContent('#h-eps');
      t.diagnostic(`frames ${JSON.stringify(frames)}, events/s shown ${eps}`);
      assert.ok(frames.frames > 20, `only ${frames.frames} frames in 3 s`);
      assert.ok(frames.p95 < 100, `p95 frame gap ${frames.p95.toFixed(1)} ms`);
      assert.ok(await page.evaluate((n) => window.monitorDashboard.feedSize !== n, before), 'events kept arriving');
      // Pause responds quickly and freezes the feed.
      const t0 = Date.now();
      await page.click('#pause', { timeout: 5000 });
      await page.waitForSelector('#pause[aria-pressed="true"]', { timeout: 2000 });
      t.diagnostic(`pause took ${Date.now() - t0} ms`);
      const first = await feedRows(page).first().innerHTML();
      await page.waitForTimeout(1000);
      assert.equal(await feedRows(page).first().innerHTML(), first, 'the feed is frozen while paused');
      assert.match(await page.textContent('#feed-status'), /Paused: [\d,]+ new events/);
      await page.click('#pause');
      await page.waitForSelector('#pause[aria-pressed="false"]', { timeout: 2000 });
      assert.ok(await page.evaluate(() => document.querySelectorAll('#feed tbody tr').length <= 500), 'DOM capped at 500 rows');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
});
