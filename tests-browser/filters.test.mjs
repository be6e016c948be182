// Unit tests of the page's address/CIDR parsing and filter compilation
// (web/dist/filters.js runs unchanged in node: no DOM needed for these parts).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { cidrContains, Filters, parseCidr, parseIp, parseRegex } from '../web/dist/filters.js';

const META = JSON.parse(readFileSync(new URL('../docs/api/meta.json', import.meta.url), 'utf8'));

const ip = (s) => parseIp(s);

test('IPv4 addresses', () => {
  assert.deepEqual([...ip('203.0.113.7').bytes], [203, 0, 113, 7]);
  assert.equal(ip(' 1.2.3.4 ').v, 4, 'surrounding space is trimmed');
  for (const bad of ['1.2.3.256', '1.2.3', '1.2.3.4.5', 'a.b.c.d', '', '01234.1.1.1']) assert.equal(ip(bad), null, bad);
});

test('IPv6 addresses', () => {
  assert.equal(ip('::1').bytes[15], 1);
  assert.ok(ip('::').bytes.every((b) => b === 0));
  assert.deepEqual([...ip('2001:db8::1').bytes.slice(0, 4)], [0x20, 0x01, 0x0d, 0xb8]);
  assert.deepEqual([...ip('::ffff:1.2.3.4').bytes.slice(10)], [0xff, 0xff, 1, 2, 3, 4]);
  assert.equal(ip('1:2:3:4:5:6:7:8').bytes[15], 8);
  assert.equal(ip('fe80::1%ens3').v, 6);
  for (const bad of ['1:2:3:4:5:6:7:8:9', '1::2::3', '1:2:3:4:5:6:7', '12345::', '1:2:3:4:5:6:7::8', 'g::1']) {
    assert.equal(ip(bad), null, bad);
  }
});

test('CIDR containment', () => {
  const n24 = parseCidr('203.0.113.0/24');
  assert.ok(cidrContains(n24, ip('203.0.113.7')));
  assert.ok(!cidrContains(n24, ip('203.0.114.7')));
  assert.ok(cidrContains(parseCidr('10.0.0.0/9'), ip('10.127.1.1')));
  assert.ok(!cidrContains(parseCidr('10.0.0.0/9'), ip('10.128.0.1')));
  assert.ok(cidrContains(parseCidr('0.0.0.0/0'), ip('8.8.8.8')));
  assert.ok(!cidrContains(parseCidr('::/0'), ip('8.8.8.8')), 'families never match');
  assert.ok(cidrContains(parseCidr('2001:db8::/32'), ip('2001:db8:ffff::1')));
  assert.ok(!cidrContains(parseCidr('2001:db8::/32'), ip('2001:db9::1')));
  assert.equal(parseCidr('1.2.3.4').prefix, 32);
  assert.equal(parseCidr('::1').prefix, 128);
  for (const bad of ['1.2.3.4/33', '::/129', '1.2.3.4/', '1.2.3.4/8/8', 'x/8']) assert.equal(parseCidr(bad), null, bad);
});

test('regex mode and bad input never throw from the filter', () => {
  assert.ok(parseRegex('/ab+c/i').test('xABBC'));
  assert.equal(parseRegex('plain'), null);
  globalThis.location ??= { href: 'http://x/', search: '' };
  const ev = { src: '203.0.113.7', class: 'icmp', detail: 'echo request', origin: { kind: 'xdp', iface: 'eth1' }, geo: { country_code: 'DE', city: 'Berlin' } };
  const f = Filters.fromSearch('?q=/(/&cidr=999.1.1.1/8&country=Germany');
  assert.ok(f.errors.q && f.errors.cidr && f.errors.country);
  assert.doesNotThrow(() => f.match(ev));
  assert.equal(Filters.fromSearch('?q=berlin').match(ev), true);
  assert.equal(Filters.fromSearch('?q=/^203\\.0/').match(ev), true);
  assert.equal(Filters.fromSearch('?class=http').match(ev), false);
  assert.equal(Filters.fromSearch('?country=de').match(ev), true);
  assert.equal(Filters.fromSearch('?cidr=203.0.113.0/24').match(ev), true);
  assert.equal(Filters.fromSearch('?hide=xdp:eth1').match(ev), false);
  const narrow = Filters.fromSearch('?class=icmp,http&country=DE&cidr=203.0.113.0/24&window=15');
  narrow.restrict(META);
  assert.deepEqual(narrow.server(), { class: ['http', 'icmp'], country: ['DE'], cidr: '203.0.113.0/24', window: 15 });
});

test('classes and the window are the daemon\'s meta: unknown ones are kept from the daemon until checked, then dropped', () => {
  globalThis.location ??= { href: 'http://x/', search: '' };
  const f = Filters.fromSearch('?class=icmp,zz_none&window=15');
  // Before the meta: nothing unchecked goes to the daemon (it would refuse the connection).
  assert.deepEqual(f.server(), { class: [], country: [], cidr: '', window: null });
  assert.deepEqual(f.serverParams(), { class: '', country: '', cidr: '', window: '' });
  f.restrict(META);
  assert.deepEqual([...f.classes], ['icmp']);
  assert.deepEqual(f.serverParams(), { class: 'icmp', country: '', cidr: '', window: '15' });
  const g = Filters.fromSearch('?window=7');
  g.restrict(META);
  assert.equal(g.window, null, 'a window the daemon does not offer: since start');
  assert.equal(Filters.fromSearch('?window=abc').window, null);
  assert.equal(Filters.fromSearch('').window, null, 'no window: since start');
  // A daemon with another list of classes and windows is taken at its word.
  const h = Filters.fromSearch('?class=zz_new&window=30');
  h.restrict({ ...META, classes: [...META.classes, 'zz_new'], top_windows_minutes: [30] });
  assert.deepEqual(h.server(), { class: ['zz_new'], country: [], cidr: '', window: 30 });
});

test('one host: matched here, and sent to the daemon as its room', () => {
  const f = Filters.fromSearch('?host=web-1');
  assert.equal(f.host, 'web-1');
  assert.equal(f.isEmpty, false);
  assert.ok(f.matches({ host: 'web-1', class: 'icmp', src: '192.0.2.1' }));
  assert.ok(!f.matches({ host: 'web-2', class: 'icmp', src: '192.0.2.1' }));
  assert.deepEqual(f.server().host, ['web-1']);
  assert.equal(f.serverParams().host, 'web-1');
  assert.equal(new Filters().server().host, undefined, 'no host: every host, as before');
});
