// Text that arrives from the network (syslog hostnames, LOG fields, rejected
// lines kept for display) is shown as text and never runs in the page.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { after, before, test } from 'node:test';
import { apiGet, dashboardUrl, env, feedRowsOf, launchBrowser, openDashboard, waitForLive, waitUntil } from './helpers.mjs';

const SRC = '203.0.113.66'; // documentation range: only ever text in a datagram to 127.0.0.1
const PAYLOAD = '<img src=x onerror="window.__pwned=1">';
const skip = (!env.url && 'MONITOR_URL not set') || (!process.env.MONITOR_SYSLOG && 'MONITOR_SYSLOG not set');

function send(lines) {
  const [host, port] = process.env.MONITOR_SYSLOG.split(':');
  const socket = dgram.createSocket('udp4');
  return Promise.all(lines.map((line) => new Promise((resolve, reject) => {
    socket.send(Buffer.from(line), Number(port), host, (err) => (err ? reject(err) : resolve()));
  }))).finally(() => socket.close());
}

let browser;
before(async () => { if (!skip) browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

test('hostile text from syslog senders is displayed, never executed', { skip }, async () => {
  const { page, problems, context } = await openDashboard(browser, dashboardUrl(env.url, { token: env.token }));
  try {
    await waitForLive(page);
    const line = `<4>Nov 24 12:00:00 host-${'"><svg/onload=window.__pwned=2>'} kernel: IPT_ICMP IN=${PAYLOAD} OUT= `
      + `SRC=${SRC} DST=192.0.2.1 LEN=84 TOS=0x00 PREC=0x00 TTL=64 ID=1 PROTO=ICMP TYPE=8 CODE=0 ID=7 SEQ=1 ${PAYLOAD}`;
    const rejected = `<4>Nov 24 12:00:00 host kernel: ${PAYLOAD}<script>window.__pwned=3</script>`;
    await waitUntil(async () => {
      await send([line, rejected]);
      return (await feedRowsOf(page, SRC).count()) > 0;
    }, { what: `the event from ${SRC} in the feed`, interval: 1000 });
    const stats = await apiGet(env.url, '/api/stats');
    assert.ok(stats.syslog.last_rejected.some((r) => r.sample.includes('<script>')), 'the rejected line is kept for display');
    // The rejected line is shown in the health panel, as text.
    await waitUntil(async () => (await page.textContent('#health')).includes('<script>window.__pwned=3</script>'),
      { what: 'the rejected line, as text, in the health panel' });
    assert.equal(await page.evaluate(() => window.__pwned), undefined, 'markup from the network ran in the page');
    assert.equal(await page.locator('img[src="x"], svg[onload], script:not([src])').count(), 0);
    assert.deepEqual(problems, [], 'console errors or page errors');
  } finally {
    await context.close();
  }
});
