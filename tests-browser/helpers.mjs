// Helpers for driving Monitor's dashboard in Debian's Chromium with
// playwright-core. Exported so the Rust test harness (or anyone) can build
// more scenarios on them; dashboard.test.mjs uses nothing else.
import { exec } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

/** Everything the tests read from the environment, in one place. */
export const env = {
  url: process.env.MONITOR_URL?.replace(/\/+$/, ''),
  token: process.env.MONITOR_TOKEN || undefined,
  testSrc: process.env.MONITOR_TEST_SRC || undefined,
  artifacts: process.env.MONITOR_ARTIFACTS || undefined,
  restartCmd: process.env.MONITOR_RESTART_CMD || undefined,
  authUrl: process.env.MONITOR_AUTH_URL?.replace(/\/+$/, ''),
  load: process.env.MONITOR_LOAD === '1',
  chromium: process.env.MONITOR_CHROMIUM || undefined,
};

export const CHROMIUM_ARGS = [
  '--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/** The browser binary: $MONITOR_CHROMIUM, else the first distribution Chromium/Chrome found. */
export function chromiumPath() {
  const candidates = [env.chromium, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome-stable', '/usr/bin/google-chrome'];
  return candidates.find((p) => p && existsSync(p));
}

export async function launchBrowser() {
  const executablePath = chromiumPath();
  if (!executablePath) throw new Error('no Chromium found: apt-get install -y chromium, or set MONITOR_CHROMIUM');
  return chromium.launch({ executablePath, args: CHROMIUM_ARGS });
}

/** Dashboard URL with ?token= when a token is given (the page moves it to sessionStorage). */
export function dashboardUrl(base, { token, query = '' } = {}) {
  const u = new URL(`${base}/${query}`);
  if (token) u.searchParams.set('token', token);
  return u.href;
}

/**
 * Opens the dashboard in a fresh context. `problems` collects console errors
 * and uncaught page errors, which a healthy page must not produce.
 * `hasTouch`: a touch screen (for pinch tests). `recordWs`: keep the page's
 * WebSockets in `sockets` (see recordSockets), from the very first one.
 */
export async function openDashboard(browser, url, {
  colorScheme = 'light', viewport = { width: 1440, height: 900 }, hasTouch = false, recordWs = false, setup,
} = {}) {
  const context = await browser.newContext({ colorScheme, viewport, hasTouch });
  const page = await context.newPage();
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()} (${m.location()?.url ?? ''})`); });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  const sockets = recordWs ? recordSockets(page) : null;
  if (setup) await setup(page, context); // routes and the like, before the page loads
  const response = await page.goto(url, { waitUntil: 'domcontentloaded' });
  return { context, page, problems, response, sockets };
}

/**
 * Records the page's WebSockets: [{url, sent: [messages], frames: [snapshot,
 * stats and error frames]}], parsed, oldest first. Update frames are left
 * out: under load they would pile up.
 */
export function recordSockets(page) {
  const sockets = [];
  page.on('websocket', (ws) => {
    const rec = { url: new URL(ws.url()), sent: [], frames: [] };
    sockets.push(rec);
    const parse = (payload) => { try { return JSON.parse(String(payload)); } catch { return null; } };
    ws.on('framesent', (f) => { const m = parse(f.payload); if (m && m.type !== 'ping') rec.sent.push(m); });
    ws.on('framereceived', (f) => {
      const text = String(f.payload);
      if (text.startsWith('{"type":"update"') || text.startsWith('{"type":"pong"')) return; // cheap: most frames
      const m = parse(text);
      if (m && m.type !== 'update' && m.type !== 'pong') rec.frames.push(m);
    });
  });
  return sockets;
}

/** connecting | live | reconnecting | unauthorized, as the header shows it. */
export const connectionState = (page) => page.getAttribute('#conn', 'data-state');
/** Snapshots received since load: goes up by one on every reconnect. */
export const connectCount = async (page) => Number(await page.getAttribute('#conn', 'data-connects') ?? 0);

export async function waitForLive(page, timeout = 30000) {
  await page.waitForSelector('#conn[data-state="live"]', { timeout });
}

/** The rendered rows of the live feed (divs with ARIA row roles, newest first). */
export const feedRows = (page) => page.locator('#feed-body > [role="row"]');
export const feedRowsOf = (page, ip) => page.locator(`#feed-body > [role="row"][data-src="${ip}"]`);

/** Where the map draws a source ({x, y, r, cls, country} in canvas CSS px), or null. */
export const mapPoint = (page, ip) => page.evaluate((a) => window.monitorDashboard.mapPoint(a), ip);

/** GET a daemon API path as JSON from node (not through the page), with the token if any. */
export async function apiGet(base, path, token = env.token) {
  const res = await fetch(`${base}${path}`, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  if (!res.ok) throw new Error(`GET ${path}: HTTP ${res.status} ${await res.text()}`);
  return res.json();
}

/** Types into a filter field; the page debounces input by 150 ms. */
export async function setSearch(page, text) {
  await page.fill('#f-q', text);
}

/**
 * Measures frame gaps with requestAnimationFrame inside the page for `ms`.
 * Returns {frames, p50, p95, max} in milliseconds and `long`, the number of
 * gaps over `longMs`.
 */
export function frameStats(page, ms = 3000, longMs = 200) {
  return page.evaluate(([duration, longMs]) => new Promise((resolve) => {
    const gaps = [];
    let last = performance.now();
    const start = last;
    const step = (t) => {
      gaps.push(t - last);
      last = t;
      if (t - start < duration) requestAnimationFrame(step);
      else {
        gaps.sort((a, b) => a - b);
        const q = (p) => gaps[Math.min(gaps.length - 1, Math.floor(p * gaps.length))];
        resolve({ frames: gaps.length, p50: q(0.5), p95: q(0.95), max: gaps[gaps.length - 1], long: gaps.filter((g) => g > longMs).length });
      }
    };
    requestAnimationFrame(step);
  }), [ms, longMs]);
}

/** Saves a screenshot into $MONITOR_ARTIFACTS (returns the path, or null when unset). */
export async function saveScreenshot(page, name, { fullPage = true } = {}) {
  if (!env.artifacts) return null;
  mkdirSync(env.artifacts, { recursive: true });
  const path = join(env.artifacts, name);
  if (!fullPage) {
    await page.screenshot({ path });
    return path;
  }
  // A viewport as tall as the page instead of Playwright's fullPage: the feed
  // rows use content-visibility and sticky parts stay where they belong.
  const viewport = page.viewportSize();
  const height = await page.evaluate(() => document.documentElement.scrollHeight);
  await page.setViewportSize({ width: viewport.width, height: Math.min(height, 8000) });
  await page.waitForTimeout(300);
  await page.screenshot({ path });
  await page.setViewportSize(viewport);
  return path;
}

/** Runs a shell command (e.g. MONITOR_RESTART_CMD); rejects with its output on failure. */
export function runShell(cmd, timeout = 120000) {
  return new Promise((resolve, reject) => {
    exec(cmd, { timeout, shell: '/bin/sh' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

/** Polls fn until it returns a truthy value; throws with `what` after timeout. */
export async function waitUntil(fn, { timeout = 30000, interval = 250, what = 'condition' } = {}) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, interval));
  }
  throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
}
