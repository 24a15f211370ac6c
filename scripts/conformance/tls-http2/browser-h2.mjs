// Chromium against `duplex serve --tls-cert … --tls-key …` (run by
// suite-65-tls-http2.sh):
//
//   node browser-h2.mjs https://127.0.0.1:PORT
//
// Group `h2-browser`: the demo page loads over https:// on HTTP/2; two pages
// chat over each of the page's transports (websocket, polling, sse); the
// page's WebSocket is opened as an HTTP/2 extended CONNECT stream (RFC 8441)
// and its polling requests go over HTTP/2, as the server's /stats and the
// page's resource timings show.
//
// Chromium runs headless with a fresh profile, trusts the test certificate
// through --ignore-certificate-errors, and resolves nothing but 127.0.0.1
// (headless Chromium reaches for outside hosts even with
// --disable-background-networking). Prints `h2-browser: N passed, N failed`.

import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [base] = process.argv.slice(2);
const WAIT = 10000;

const profile = mkdtempSync(join(tmpdir(), 'duplex-chromium-h2-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  ignoreHTTPSErrors: true,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--no-first-run', '--disable-component-update', '--disable-sync',
    '--ignore-certificate-errors',
    '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1',
  ],
});

let passed = 0;
let failed = 0;
async function test(title, fn) {
  const pages = [];
  try {
    await fn(pages);
    passed += 1;
    console.log(`ok h2-browser ${title}`);
  } catch (e) {
    failed += 1;
    console.log(`FAIL h2-browser ${title}: ${String((e && e.message) || e).split('\n')[0]}`);
  }
  for (const p of pages) await p.close().catch(() => {});
}
function check(cond, what) {
  if (!cond) throw new Error(what);
}

async function chatPage(pages, transport, name, room) {
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  pages.push(page);
  const q = new URLSearchParams({ transport, name, room, autoconnect: '1' });
  await page.goto(`${base}/?${q}`);
  await page.waitForFunction(() => window.duplexChat && window.duplexChat.state.joined);
  return page;
}

async function say(page, text) {
  await page.fill('#text', text);
  await page.click('#send');
}

async function sees(page, from, text) {
  await page.waitForFunction(([f, t]) => window.duplexChat.state.messages
    .some((m) => m.from === f && m.text === t), [from, text]);
}

const stats = async (page) => page.evaluate(async () => (await fetch('/stats', { cache: 'no-store' })).json());

await test('the page loads over HTTP/2', async (pages) => {
  const page = await context.newPage();
  pages.push(page);
  await page.goto(`${base}/`);
  const protocol = await page.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol);
  check(protocol === 'h2', `navigation over ${protocol}`);
});

for (const transport of ['websocket', 'polling', 'sse']) {
  await test(`two pages chat over ${transport} on HTTP/2`, async (pages) => {
    const room = `h2-${transport}`;
    const before = await stats(await context.newPage().then((p) => { pages.push(p); return p.goto(`${base}/`).then(() => p); }));
    const alice = await chatPage(pages, transport, `alice-${transport}`, room);
    const bob = await chatPage(pages, transport, `bob-${transport}`, room);
    await say(alice, `hello over ${transport} on h2`);
    await sees(bob, `alice-${transport}`, `hello over ${transport} on h2`);
    await say(bob, `hello back over ${transport} on h2`);
    await sees(alice, `bob-${transport}`, `hello back over ${transport} on h2`);
    const after = await stats(alice);
    check(after.http.connections_total.h2 >= 1, `no HTTP/2 connection in /stats: ${JSON.stringify(after.http)}`);
    if (transport === 'websocket') {
      const opened = after.http.websockets_opened['h2 extended connect'] - before.http.websockets_opened['h2 extended connect'];
      check(opened >= 2, `WebSockets by extended CONNECT: ${opened} (${JSON.stringify(after.http)})`);
      const upgrades = after.http.websockets_opened['http/1.1 upgrade'] - before.http.websockets_opened['http/1.1 upgrade'];
      check(upgrades === 0, `HTTP/1.1 upgrades: ${upgrades}`);
    } else {
      // Every request the page made for its transport went over HTTP/2.
      const path = transport === 'polling' ? '/poll/' : '/sse/';
      const used = await alice.evaluate((p) => performance.getEntriesByType('resource')
        .filter((e) => e.name.includes(p)).map((e) => e.nextHopProtocol), path);
      check(used.length > 0, `no ${path} requests seen`);
      check(used.every((p) => p === 'h2' || p === ''), `${path} over ${[...new Set(used)].join(',')}`);
      check(used.includes('h2'), `${path} never over h2: ${used.join(',')}`);
    }
  });
}

console.log(`h2-browser: ${passed} passed, ${failed} failed`);
await context.close();
rmSync(profile, { recursive: true, force: true });
process.exit(0);
