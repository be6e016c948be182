// The rate chart's range control against the real daemon with a history
// store the harness filled with one minute (MONITOR_HISTORY_MINUTE_MS, from
// MONITOR_TEST_SRC): a range in the URL shows that minute in the chart, the
// top lists and the map, and pauses the live figures; "Live" goes back;
// dragging across the chart picks a range and puts it in the URL.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { dashboardUrl, env, launchBrowser, openDashboard, waitForLive, waitUntil } from './helpers.mjs';

const minuteMs = Number(process.env.MONITOR_HISTORY_MINUTE_MS);
const skip = (!env.url && 'MONITOR_URL is not set (the Rust test harness sets it)')
  || (!minuteMs && 'MONITOR_HISTORY_MINUTE_MS is not set');

let browser;
before(async () => { if (!skip) browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

const search = (page) => page.evaluate(() => Object.fromEntries(new URL(location.href).searchParams));

describe('history range', { skip }, () => {
  test('a range in the URL shows the history: chart, top lists and map; Live goes back', async () => {
    const [from, to] = [minuteMs - 5 * 60000, minuteMs + 5 * 60000];
    const url = dashboardUrl(env.url, { token: env.token, query: `?from=${from}&to=${to}` });
    const { page, problems, context } = await openDashboard(browser, url);
    try {
      await waitForLive(page);
      await page.waitForSelector('body[data-range]', { timeout: 10000 });
      assert.equal(await page.getAttribute('#chart', 'data-range'), `${from}-${to}`);
      await waitUntil(async () => Number(await page.getAttribute('#chart', 'data-nonzero')) >= 1,
        { timeout: 10000, what: 'the restored minute in the chart' });
      assert.equal(Number(await page.getAttribute('#chart', 'data-range-step')), 60000);
      assert.equal(await page.isVisible('#range-live'), true);
      assert.match(await page.textContent('#range-text'), /from the history/);
      // The top lists and the map follow the range and stay on it while live frames arrive.
      await page.waitForSelector('#top-section[data-window="range"]', { timeout: 10000 });
      assert.match(await page.textContent('#top-sources'), new RegExp(env.testSrc.replaceAll('.', '\\.')));
      assert.match(await page.textContent('#top-sources'), /4,242/);
      await waitUntil(() => page.evaluate((ip) => window.monitorDashboard.mapPoint(ip) !== null, env.testSrc),
        { timeout: 10000, what: 'the range\'s source on the map' });
      await page.waitForTimeout(2500); // stats frames with their own top lists
      assert.equal(await page.getAttribute('#top-section', 'data-window'), 'range', 'live updates pause');

      await page.click('#range-live');
      await page.waitForSelector('body:not([data-range])', { timeout: 5000 });
      assert.equal(await page.getAttribute('#chart', 'data-range'), null);
      assert.equal(await page.isVisible('#range-live'), false);
      const s = await search(page);
      assert.ok(!('from' in s) && !('to' in s), `the range left the URL: ${JSON.stringify(s)}`);
      await waitUntil(async () => (await page.getAttribute('#top-section', 'data-window')) !== 'range',
        { timeout: 10000, what: 'the live top lists back' });
      assert.deepEqual(problems, [], 'console errors or page errors');
    } finally {
      await context.close();
    }
  });

  test('dragging across the chart picks a range and puts it in the URL', async () => {
    const { page, problems, context } = await openDashboard(browser, dashboardUrl(env.url, { token: env.token }));
    try {
      await waitForLive(page);
      const over = page.locator('#chart .u-over');
      await over.waitFor({ timeout: 10000 });
      const box = await over.boundingBox();
      const y = box.y + box.height / 2;
      await page.mouse.move(box.x + box.width * 0.2, y);
      await page.mouse.down();
      await page.mouse.move(box.x + box.width * 0.5, y, { steps: 8 });
      await page.mouse.move(box.x + box.width * 0.8, y, { steps: 8 });
      await page.mouse.up();
      await page.waitForSelector('body[data-range]', { timeout: 5000 });
      const s = await search(page);
      const [from, to] = [Number(s.from), Number(s.to)];
      assert.ok(from > 0 && to > from, `from and to in the URL: ${JSON.stringify(s)}`);
      // 60 % of the 5 minute window.
      assert.ok(Math.abs((to - from) - 180000) < 15000, `about 3 minutes: ${to - from} ms`);
      await page.waitForSelector('#top-section[data-window="range"]', { timeout: 10000 });
      await page.click('#range-live');
      await page.waitForSelector('body:not([data-range])', { timeout: 5000 });
      assert.deepEqual(problems, [], 'console errors or page errors');
    } finally {
      await context.close();
    }
  });
});
