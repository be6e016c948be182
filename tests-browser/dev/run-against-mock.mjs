#!/usr/bin/env node
// DEVELOPMENT AID ONLY: runs the browser tests against two mock daemons
// (dev/mock-server.mjs: one open, one with a token) instead of the real one,
// with every optional test enabled. The real run is the Rust harness's.
//
//   node dev/run-against-mock.mjs            (MOCK_EPS=3000 by default, for the load check)
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const eps = process.env.MOCK_EPS ?? '3000';
const testSrc = '203.0.113.250';
const token = 'dev-token';
const mocks = [];
const start = (args) => new Promise((resolve, reject) => {
  const child = spawn(process.execPath, [join(here, 'mock-server.mjs'), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  mocks.push(child);
  child.stdout.once('data', (d) => resolve(String(d).trim()));
  child.once('exit', (code) => reject(new Error(`mock exited ${code}`)));
});

console.log(await start(['--port', '8301', '--eps', eps, '--test-src', testSrc]));
console.log(await start(['--port', '8302', '--eps', '50', '--token', token, '--auth-mode', process.env.MOCK_AUTH_MODE ?? 'reject']));
const artifacts = process.env.MONITOR_ARTIFACTS ?? mkdtempSync(join(tmpdir(), 'monitor-artifacts-'));
const testEnv = {
  ...process.env,
  MONITOR_URL: 'http://127.0.0.1:8301',
  MONITOR_TEST_SRC: testSrc,
  MONITOR_ARTIFACTS: artifacts,
  MONITOR_RESTART_CMD: `"${process.execPath}" -e "fetch('http://127.0.0.1:8301/__dev/restart',{method:'POST'}).then(r=>process.exit(r.ok?0:1))"`,
  MONITOR_AUTH_URL: 'http://127.0.0.1:8302',
  MONITOR_TOKEN: token,
  MONITOR_LOAD: '1',
};
const run = spawn(process.execPath, ['--test', join(here, '..')], { env: testEnv, stdio: 'inherit' });
const code = await new Promise((r) => run.once('exit', r));
console.log(`screenshots in ${artifacts}`);
for (const m of mocks) { m.removeAllListeners('exit'); m.kill(); }
process.exit(code ?? 1);
