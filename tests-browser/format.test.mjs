// Unit tests of the page's formatting helpers and the feed's grouping
// (web/dist/format.js and feed.js's pure parts run unchanged in node).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { badge, fmtBps, fmtClock, fmtDateTime, fmtTime, ipHtml, topWindowText, TZ } from '../web/dist/format.js';
import { runs } from '../web/dist/feed.js';

test('addresses split so that only the middle can give way', () => {
  for (const ip of ['203.0.113.7', '2001:db8:aaaa:bbbb:cccc:dddd:eeee:ff01', '::1', '']) {
    const html = ipHtml(ip);
    const [, head, tail] = html.match(/^<span class="ip-h" style="--tail:\d+ch">(.*)<\/span><span class="ip-t">(.*)<\/span>$/);
    assert.equal(head + tail, ip, 'the whole address, in order');
    assert.ok(tail.length <= 8 && tail.length >= Math.min(4, Math.floor(ip.length / 2)), `tail ${tail}`);
  }
  assert.ok(!ipHtml('<x>').includes('<x>'), 'escaped');
});

test('one 24-hour time format, the zone with every full date', () => {
  const ms = Date.UTC(2026, 10, 30, 23, 5, 9, 7);
  const d = new Date(ms);
  assert.match(fmtTime(ms), /^\d\d:\d\d:\d\d\.\d{3}$/);
  assert.equal(fmtClock(ms, { seconds: false }).length, 5);
  assert.equal(Number(fmtClock(ms).slice(0, 2)), d.getHours(), '24-hour');
  assert.ok(fmtDateTime(ms).endsWith(` ${TZ}`));
  assert.equal(fmtDateTime(NaN), '–');
});

test('bits per second in SI units', () => {
  assert.equal(fmtBps(0), '0 bit/s');
  assert.equal(fmtBps(1500), '1.5 kbit/s');
  assert.equal(fmtBps(12_300_000), '12 Mbit/s');
  assert.equal(fmtBps(undefined), '–');
});

test('feed rows group consecutive events of a source only when asked', () => {
  const ev = (src, ts) => ({ src, ts_ms: ts });
  const events = [ev('a', 5), ev('a', 4), ev('b', 3), ev('a', 2), ev('a', 1)]; // newest first
  assert.equal(runs(events, false).length, 5);
  const grouped = runs(events, true);
  assert.deepEqual(grouped.map((r) => [r.ev.src, r.n, r.ev.ts_ms, r.oldest]), [['a', 2, 5, 4], ['b', 1, 3, 3], ['a', 2, 2, 1]]);
  assert.equal(grouped.reduce((a, r) => a + r.n, 0), events.length, 'every event counted once');
  const acrossSeconds = runs([ev('a', 2100), ev('a', 2000), ev('a', 1999)], true);
  assert.deepEqual(acrossSeconds.map((r) => r.n), [2, 1], 'a row never spans two seconds');
});

test('the top lists\' window as the panels say it', () => {
  assert.equal(topWindowText(15), 'last 15 min');
  assert.equal(topWindowText(null), 'since the daemon started');
  assert.equal(topWindowText(undefined), 'since the daemon started', 'a top without window_minutes (older daemon): since start');
});

test('a class the page has no label or colour for is shown by its name, in the neutral colour', () => {
  assert.equal(badge('icmp'), '<span class="badge c-icmp">ICMP</span>');
  assert.equal(badge('zz_new'), '<span class="badge c-zz_new">zz_new</span>');
  assert.equal(badge('<x>'), '<span class="badge c-other_ipv4">&lt;x&gt;</span>', 'never markup');
});
