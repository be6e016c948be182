// The load check: the page must stay responsive while the daemon streams
// thousands of events a second (the Rust harness floods pings from its test
// namespace while this file runs, and sets MONITOR_LOAD=1). Frame gaps are
// measured inside the page; the assertions are on counts of long frames,
// generous on purpose: they catch a page that stalls, not a slow machine.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  apiGet, dashboardUrl, env, feedRows, frameStats, launchBrowser, openDashboard, saveScreenshot, waitForLive, waitUntil,
} from './helpers.mjs';

const skip = (!env.url && 'MONITOR_URL is not set (the Rust test harness sets it)') || (!env.load && 'MONITOR_LOAD is not 1');
const LONG_FRAME_MS = 200;  // a frame this long is a visible stall
const MEASURE_MS = 5000;
const DOM_CAP = 500;        // feed.js domCap
const MEMORY_CAP = 6000;    // feed.js memory * 1.2

let browser;
before(async () => { if (!skip) browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

test('stays responsive while thousands of events per second arrive', { skip, timeout: 180000 }, async (t) => {
  const { page, context, problems } = await openDashboard(browser, dashboardUrl(env.url, { token: env.token }));
  try {
    await waitForLive(page);
    const accepted = async () => (await apiGet(env.url, '/api/stats')).events.accepted;
    const a0 = await accepted(), t0 = Date.now();
    await waitUntil(async () => (await accepted()) - a0 > 2000, { timeout: 30000, what: 'the daemon to stream the flood' });
    const received = () => page.evaluate(() => window.monitorDashboard.received);
    const r0 = await received();

    const frames = await frameStats(page, MEASURE_MS, LONG_FRAME_MS);
    const eps = ((await accepted()) - a0) / ((Date.now() - t0) / 1000);
    t.diagnostic(`daemon accepted ~${Math.round(eps)} events/s; page frames ${JSON.stringify(frames)}; headline ${await page.textContent('#h-eps')} events/s`);
    assert.ok(frames.frames >= 50, `only ${frames.frames} frames in ${MEASURE_MS} ms`);
    assert.ok(frames.long <= 5, `${frames.long} frames longer than ${LONG_FRAME_MS} ms`);
    assert.ok((await received()) - r0 > 1000, 'the page kept receiving events');

    // Memory and DOM stay bounded however long the flood lasts.
    const sizes = await page.evaluate(() => ({ kept: window.monitorDashboard.feedSize, points: window.monitorDashboard.mapSize }));
    assert.ok(sizes.kept <= MEMORY_CAP, `feed keeps ${sizes.kept} events`);
    assert.ok(await feedRows(page).count() <= DOM_CAP, 'DOM capped');
    assert.match(await page.textContent('#feed-status'), /max [\d,]+\)/, 'the cap is shown');

    // At this rate a source's consecutive events share a row that says how many.
    const grouped = await waitUntil(() => page.evaluate(() => {
      const row = [...document.querySelectorAll('#feed-body > [role="row"]')].find((r) => Number(r.dataset.n) > 1);
      return row && { n: Number(row.dataset.n), src: row.dataset.src, label: row.querySelector('.group')?.textContent, title: row.querySelector('.group')?.title };
    }), { timeout: 10000, what: 'a row grouping consecutive events of one source' });
    assert.equal(grouped.label, `${grouped.n} events`);
    assert.ok(grouped.title.includes(grouped.src), grouped.title);
    assert.match(await page.textContent('#feed-status'), /Showing [\d,]+ of [\d,]+ events in [\d,]+ rows/);

    // Controls answer under load: pause freezes the feed, resume unfreezes.
    await page.click('#pause', { timeout: 5000 });
    await page.waitForSelector('#pause[aria-pressed="true"]', { timeout: 5000 });
    const first = await feedRows(page).first().innerHTML();
    // New events arrive while paused (counted in the status), yet the rows stay.
    await waitUntil(async () => /Paused: [1-9][\d,]* new events/.test(await page.textContent('#feed-status')),
      { timeout: 10000, what: 'events counted while paused' });
    assert.equal(await feedRows(page).first().innerHTML(), first, 'the feed is frozen while paused');
    await page.click('#pause', { timeout: 5000 });
    await page.waitForSelector('#pause[aria-pressed="false"]', { timeout: 5000 });
    await waitUntil(async () => (await feedRows(page).first().innerHTML()) !== first, { timeout: 10000, what: 'the feed to move again' });
    await saveScreenshot(page, 'dashboard-under-load.png');
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});
