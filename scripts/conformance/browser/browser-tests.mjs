// Browser tests of `duplex serve`, in Debian's headless Chromium driven by
// playwright-core (never a browser download). Run by suite-50-browser.sh:
//
//   node browser-tests.mjs <base URL of duplex serve> <output folder> <group...>
//
// Groups, each ending with `<group>: N passed, N failed`:
//   browser-chat         two pages chat over each transport of the page's
//                        selector (websocket, polling, sse), then three pages
//                        on three transports in one room; a screenshot of the
//                        page goes to <output folder>/chat.png
//   browser-deflate      Chromium negotiates permessage-deflate on /ws and
//                        /echo and both sides send compressed frames (RSV1),
//                        seen by a byte-counting proxy on loopback
//   browser-socketio     npm socket.io-client (added to a page from node_modules) chats
//                        over websocket, polling, and polling upgraded, and
//                        runs the server's conformance handlers
//   browser-sockjs-stomp npm sockjs-client + @stomp/stompjs chat over each
//                        SockJS transport a page can use without an iframe
//   browser-shutdown     (last; needs DUPLEX_SERVER_PID) pages on every
//                        transport, then SIGINT to the server: each sees its
//                        protocol's close, and the server exits
//
// Every wait is bounded; a failure prints `FAIL <group> <test>: <why>`.

import { chromium } from 'playwright-core';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import net from 'node:net';

const [base, outDir, ...groups] = process.argv.slice(2);
if (!base || !outDir) {
  console.error('usage: node browser-tests.mjs <base URL> <output folder> [group...]');
  process.exit(2);
}
const here = dirname(fileURLToPath(import.meta.url));
const modules = process.env.NODE_MODULES || join(here, 'node_modules');
const WAIT = 10000;

// The peers' libraries, added to pages of the server's own origin (the chat
// page, not connected) as inline scripts: same-origin polling needs no CORS,
// and a page of the loopback origin may open loopback WebSockets.
const SCRIPTS = {
  socketio: readFileSync(join(modules, 'socket.io-client/dist/socket.io.min.js'), 'utf8'),
  sockjs: readFileSync(join(modules, 'sockjs-client/dist/sockjs.min.js'), 'utf8'),
  stomp: readFileSync(join(modules, '@stomp/stompjs/bundles/stomp.umd.min.js'), 'utf8'),
};

async function peerPage(pages, ...libraries) {
  const page = await newPage(pages);
  await page.goto(`${base}/?peer=1`);
  for (const name of libraries) await page.addScriptTag({ content: SCRIPTS[name] });
  return page;
}

const profile = mkdtempSync(join(tmpdir(), 'duplex-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--no-first-run', '--disable-component-update', '--disable-sync',
  ],
  viewport: { width: 1200, height: 760 },
});
let exitCode = 0;

async function group(name, tests) {
  let passed = 0;
  let failed = 0;
  for (const [title, fn] of tests) {
    const pages = [];
    try {
      await fn(pages);
      passed += 1;
      console.log(`ok ${name} ${title}`);
    } catch (e) {
      failed += 1;
      console.log(`FAIL ${name} ${title}: ${String(e && e.message || e).split('\n')[0]}`);
    }
    for (const p of pages) await p.close().catch(() => {});
  }
  console.log(`${name}: ${passed} passed, ${failed} failed`);
  if (failed) exitCode = 1;
}

function check(cond, what) {
  if (!cond) throw new Error(what);
}

async function newPage(pages) {
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.on('pageerror', (e) => console.log(`  page error: ${e.message}`));
  pages.push(page);
  return page;
}

// ---- the chat page's own transports ----------------------------------------

async function chatPage(pages, transport, name, room, origin = base) {
  const page = await newPage(pages);
  const q = new URLSearchParams({ transport, name, room, autoconnect: '1' });
  await page.goto(`${origin}/?${q}`);
  await page.waitForFunction(() => window.duplexChat && window.duplexChat.state.joined);
  return page;
}

async function typeAndSend(page, text) {
  await page.fill('#text', text);
  await page.click('#send');
}

async function sees(page, from, text, via) {
  await page.waitForFunction(([f, t, v]) => window.duplexChat.state.messages
    .some((m) => m.from === f && m.text === t && (!v || m.via === v)), [from, text, via]);
  // And it is on screen.
  const shown = await page.locator('#log li.msg', { hasText: text }).count();
  check(shown >= 1, `"${text}" not shown`);
}

function chatTest(transport) {
  return [`two pages over ${transport}`, async (pages) => {
    const room = `room-${transport}`;
    const alice = await chatPage(pages, transport, `alice-${transport}`, room);
    const bob = await chatPage(pages, transport, `bob-${transport}`, room);
    await alice.waitForFunction((n) => [...document.querySelectorAll('#users li')]
      .some((li) => li.textContent.startsWith(n)), `bob-${transport}`);
    check(await alice.textContent('#live-transport') === transport, 'live transport shown');
    await typeAndSend(alice, `hello from alice over ${transport}`);
    await sees(bob, `alice-${transport}`, `hello from alice over ${transport}`, transport);
    await typeAndSend(bob, `hello back over ${transport} ✓ 🦀`);
    await sees(alice, `bob-${transport}`, `hello back over ${transport} ✓ 🦀`, transport);
    // Round-trip time measured by the page's pings.
    await alice.waitForFunction(() => window.duplexChat.state.rtt !== null);
    const rtt = await alice.textContent('#rtt');
    check(/ms$/.test(rtt), `RTT shown (${rtt})`);
    const sent = Number(await bob.textContent('#sent'));
    const received = Number(await bob.textContent('#received'));
    check(sent >= 3 && received >= 4, `message counts shown (sent ${sent}, received ${received})`);
    // A third page that joins late gets the history.
    const carol = await chatPage(pages, transport, `carol-${transport}`, room);
    await sees(carol, `alice-${transport}`, `hello from alice over ${transport}`);
  }];
}

const chatTests = [
  chatTest('websocket'),
  chatTest('polling'),
  chatTest('sse'),
  ['three pages on three transports in one room, and a screenshot', async (pages) => {
    const room = 'lobby';
    const ana = await chatPage(pages, 'websocket', 'ana', room);
    const ben = await chatPage(pages, 'polling', 'ben', room);
    const cleo = await chatPage(pages, 'sse', 'cleo', room);
    const lines = [
      [ana, 'ana', 'Hi all, I am on a plain WebSocket (permessage-deflate).'],
      [ben, 'ben', 'Long-polling here: one POST per poll.'],
      [cleo, 'cleo', 'Server-Sent Events down, POST up.'],
      [ana, 'ana', 'Same room, same order, whatever the transport.'],
    ];
    for (const [page, , text] of lines) await typeAndSend(page, text);
    for (const page of [ana, ben, cleo]) {
      for (const [, from, text] of lines) await sees(page, from, text);
    }
    // The users list shows each one's transport.
    for (const who of ['ana', 'ben', 'cleo']) {
      await ana.waitForFunction((n) => [...document.querySelectorAll('#users li')]
        .some((li) => li.textContent.startsWith(n)), who);
    }
    // Let the /stats chart collect a few points, then take the picture.
    await ana.waitForFunction(() => document.querySelectorAll('#connections tr').length >= 5);
    await ana.waitForTimeout(3500);
    await ana.setViewportSize({ width: 1200, height: 900 });
    await ana.screenshot({ path: join(outDir, 'chat.png'), fullPage: true });
  }],
];

// ---- permessage-deflate, seen on the wire -----------------------------------

// A loopback TCP proxy in front of the server that, on connections upgraded
// to WebSocket, reads the frame headers both ways and counts the frames with
// RSV1 set (compressed) and the bytes.
function startProxy(target) {
  const seen = { responses: [], compressedUp: 0, compressedDown: 0, framesUp: 0, framesDown: 0, bytesUp: 0, bytesDown: 0 };
  const parser = (dir) => {
    let buf = Buffer.alloc(0);
    let upgraded = false;
    return (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        if (dir === 'down') {
          if (!head.startsWith('HTTP/1.1 101')) { buf = Buffer.alloc(0); return; }
          seen.responses.push(head);
        } else if (!/^upgrade:\s*websocket/im.test(head)) {
          buf = Buffer.alloc(0);
          return;
        }
        upgraded = true;
        buf = buf.subarray(end + 4);
      }
      for (;;) {
        if (buf.length < 2) return;
        const masked = (buf[1] & 0x80) !== 0;
        let len = buf[1] & 0x7f;
        let at = 2;
        if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); at = 4; }
        else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); at = 10; }
        if (masked) at += 4;
        if (buf.length < at + len) return;
        const rsv1 = (buf[0] & 0x40) !== 0;
        if (dir === 'up') { seen.framesUp += 1; seen.bytesUp += at + len; if (rsv1) seen.compressedUp += 1; }
        else { seen.framesDown += 1; seen.bytesDown += at + len; if (rsv1) seen.compressedDown += 1; }
        buf = buf.subarray(at + len);
      }
    };
  };
  const [host, port] = target.replace('http://', '').split(':');
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(port), host);
    const up = parser('up');
    const down = parser('down');
    client.on('data', (d) => { up(d); upstream.write(d); });
    upstream.on('data', (d) => { down(d); client.write(d); });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    resolve({ seen, url: `http://127.0.0.1:${server.address().port}`, close: () => server.close() });
  }));
}

const deflateTests = [
  ['permessage-deflate on /ws and /echo, compressed both ways', async (pages) => {
    const proxy = await startProxy(base);
    try {
      const page = await chatPage(pages, 'websocket', 'squeezer', 'deflate', proxy.url);
      const extensions = await page.evaluate(() => window.duplexChat.state.transport.ws.extensions);
      check(/permessage-deflate/.test(extensions), `WebSocket.extensions is "${extensions}"`);
      const text = 'compress me please '.repeat(100);
      await typeAndSend(page, text);
      await sees(page, 'squeezer', text.trim());
      // A big repetitive message through /echo.
      const echoed = await page.evaluate(() => new Promise((resolve, reject) => {
        const ws = new WebSocket(`ws://${location.host}/echo`);
        const big = 'duplex '.repeat(30000);
        ws.onopen = () => ws.send(big);
        ws.onmessage = (e) => { resolve({ same: e.data === big, size: big.length, extensions: ws.extensions }); ws.close(); };
        ws.onerror = () => reject(new Error('echo failed'));
      }));
      check(echoed.same, 'echo came back unchanged');
      check(/permessage-deflate/.test(echoed.extensions), `/echo extensions "${echoed.extensions}"`);
      const s = proxy.seen;
      check(s.responses.length >= 2, `saw ${s.responses.length} WebSocket handshakes`);
      for (const head of s.responses) {
        check(/^sec-websocket-extensions:\s*permessage-deflate/im.test(head), `101 without permessage-deflate: ${head}`);
      }
      check(s.compressedUp >= 2, `compressed frames from Chromium: ${s.compressedUp} of ${s.framesUp}`);
      check(s.compressedDown >= 2, `compressed frames to Chromium: ${s.compressedDown} of ${s.framesDown}`);
      // 210 KB each way travelled in far fewer bytes.
      check(s.bytesUp < echoed.size / 10, `bytes up ${s.bytesUp} for a ${echoed.size}-byte message`);
      check(s.bytesDown < echoed.size / 10, `bytes down ${s.bytesDown} for a ${echoed.size}-byte message`);
      console.log(`  deflate: ${s.compressedUp}/${s.framesUp} frames compressed up, ${s.compressedDown}/${s.framesDown} down; ${s.bytesUp} bytes up, ${s.bytesDown} down for ${echoed.size}-byte echo + chat`);
    } finally {
      proxy.close();
    }
  }],
];

// ---- socket.io-client --------------------------------------------------------

function socketIoTest(mode) {
  return [`socket.io-client over ${mode}`, async (pages) => {
    const room = `sio-${mode}`;
    const human = await chatPage(pages, 'websocket', `human-${mode}`, room);
    const page = await peerPage(pages, 'socketio');
    const joined = await page.evaluate(async ({ mode, room }) => {
      const opts = {
        websocket: { transports: ['websocket'] },
        polling: { transports: ['polling'], upgrade: false },
        upgraded: { transports: ['polling', 'websocket'], upgrade: true },
      }[mode];
      const socket = io(opts);
      const sio = { socket, chats: [], backs: [], acked: [], first: null, upgraded: false };
      socket.io.on('open', () => {
        sio.first = socket.io.engine.transport.name;
        socket.io.engine.on('upgrade', () => { sio.upgraded = true; });
      });
      window.sio = sio;
      socket.on('chat', (m) => sio.chats.push(m));
      socket.on('message-back', (...args) => sio.backs.push(args));
      socket.on('client-acked', (...args) => sio.acked.push(args));
      socket.on('please-ack', (...args) => { const ack = args.pop(); ack('pong', ...args); });
      await new Promise((resolve, reject) => {
        socket.on('connect', resolve);
        socket.on('connect_error', (e) => reject(new Error('connect_error: ' + e.message)));
      });
      return socket.timeout(5000).emitWithAck('join', { room, name: `sio-${mode}` });
    }, { mode, room });
    check(joined.room === room, `join ack ${JSON.stringify(joined)}`);
    check(joined.users.some((u) => u.name === `human-${mode}`), 'join ack lists the page user');
    const first = await page.evaluate(() => window.sio.first);
    check(first === (mode === 'websocket' ? 'websocket' : 'polling'), `first transport ${first}`);
    if (mode === 'upgraded') {
      await page.waitForFunction(() => window.sio.upgraded && window.sio.socket.io.engine.transport.name === 'websocket');
    }
    // The Socket.IO client speaks, the page hears it...
    await page.evaluate((m) => window.sio.socket.timeout(5000).emitWithAck('say', `hello from socket.io over ${m}`), mode);
    await sees(human, `sio-${mode}`, `hello from socket.io over ${mode}`, 'socket.io');
    // ...and the other way round.
    await typeAndSend(human, `hello socket.io ${mode}`);
    await page.waitForFunction((t) => window.sio.chats.some((c) => c.text === t && c.via === 'websocket'), `hello socket.io ${mode}`);
    // Round trip and the conformance handlers.
    await page.evaluate(() => window.sio.socket.timeout(5000).emitWithAck('latency'));
    const acked = await page.evaluate(() => new Promise((resolve, reject) => {
      window.sio.socket.timeout(5000).emit('message-with-ack', 1, '2', { 3: [true] },
        (err, ...args) => (err ? reject(err) : resolve(args)));
    }));
    check(JSON.stringify(acked) === '[1,"2",{"3":[true]}]', `message-with-ack ${JSON.stringify(acked)}`);
    await page.evaluate(() => window.sio.socket.emit('message', 'é', { x: [1, null] }));
    await page.waitForFunction(() => JSON.stringify(window.sio.backs[0]) === '["é",{"x":[1,null]}]');
    await page.evaluate(() => window.sio.socket.emit('server-ack', 42));
    await page.waitForFunction(() => JSON.stringify(window.sio.acked[0]) === '["pong",42]');
    const last = await page.evaluate(() => window.sio.socket.io.engine.transport.name);
    check(last === (mode === 'polling' ? 'polling' : 'websocket'), `transport at the end ${last}`);
    await page.evaluate(() => window.sio.socket.disconnect());
  }];
}

const socketIoTests = ['websocket', 'polling', 'upgraded'].map(socketIoTest);

// ---- sockjs-client + @stomp/stompjs -----------------------------------------

function sockJsTest(transport) {
  return [`sockjs-client + stompjs over ${transport}`, async (pages) => {
    const room = `stomp-${transport}`;
    const human = await chatPage(pages, 'websocket', `human-${transport}`, room);
    const page = await peerPage(pages, 'sockjs', 'stomp');
    const used = await page.evaluate(async ({ transport, room }) => {
      const got = [];
      window.stompGot = got;
      const client = new StompJs.Client({
        webSocketFactory: () => {
          window.sock = new SockJS('/sockjs/stomp', null, { transports: [transport] });
          return window.sock;
        },
        reconnectDelay: 0,
        heartbeatIncoming: 0,
        heartbeatOutgoing: 0,
      });
      window.stomp = client;
      await new Promise((resolve, reject) => {
        client.onConnect = resolve;
        client.onStompError = (f) => reject(new Error('ERROR ' + f.headers.message));
        client.onWebSocketClose = (e) => reject(new Error('closed ' + e.code));
        client.activate();
      });
      await new Promise((resolve) => {
        client.watchForReceipt('sub', resolve);
        client.subscribe(`/topic/chat.${room}`, (m) => got.push(JSON.parse(m.body)), { receipt: 'sub' });
      });
      return window.sock.transport;
    }, { transport, room });
    check(used === transport, `SockJS used ${used}`);
    // STOMP publishes to the room's topic; the page's member hears it.
    await page.evaluate(({ transport, room }) => window.stomp.publish({
      destination: `/topic/chat.${room}`,
      body: JSON.stringify({ from: `stomp-${transport}`, text: `hello from stompjs over ${transport}` }),
    }), { transport, room });
    await sees(human, `stomp-${transport}`, `hello from stompjs over ${transport}`, 'stomp');
    // The page speaks; the STOMP subscriber hears it (and its own message).
    await typeAndSend(human, `hello stomp ${transport}`);
    await page.waitForFunction((t) => window.stompGot.some((m) => m.text === t && m.via === 'websocket'), `hello stomp ${transport}`);
    await page.waitForFunction((t) => window.stompGot.some((m) => m.text === t), `hello from stompjs over ${transport}`);
    await page.evaluate(() => window.stomp.deactivate());
  }];
}

const sockJsTests = ['websocket', 'xhr-streaming', 'eventsource', 'xhr-polling', 'jsonp-polling'].map(sockJsTest);

// ---- graceful shutdown, seen from the pages ----------------------------------

const shutdownTests = [
  ['SIGINT: every page is told and closed its transport\'s way', async (pages) => {
    const pid = Number(process.env.DUPLEX_SERVER_PID);
    check(pid > 0, 'DUPLEX_SERVER_PID not set');
    const ws = await chatPage(pages, 'websocket', 'last-ws', 'closing');
    const poll = await chatPage(pages, 'polling', 'last-poll', 'closing');
    const sse = await chatPage(pages, 'sse', 'last-sse', 'closing');
    const sio = await peerPage(pages, 'socketio');
    await sio.evaluate(() => new Promise((resolve) => {
      window.sio = io({ transports: ['polling'], upgrade: false, reconnection: false });
      window.sio.on('connect', resolve);
      window.sio.on('bye', () => { window.sioBye = true; });
      window.sio.on('disconnect', (reason) => { window.sioGone = reason; });
    }));
    await sio.evaluate(() => window.sio.timeout(5000).emitWithAck('join', { room: 'closing', name: 'last-sio' }));
    const stomp = await peerPage(pages, 'sockjs', 'stomp');
    await stomp.evaluate(() => new Promise((resolve) => {
      const client = new StompJs.Client({
        webSocketFactory: () => new SockJS('/sockjs/stomp', null, { transports: ['xhr-polling'] }),
        reconnectDelay: 0,
      });
      client.onConnect = resolve;
      client.onStompError = (f) => { window.stompError = f.headers.message; };
      client.onWebSocketClose = (e) => { window.sockClosed = e.code + ' ' + e.reason; };
      client.activate();
    }));
    process.kill(pid, 'SIGINT');
    const closed = (page) => page.waitForFunction(() => window.duplexChat.state.closedReason !== null)
      .then(() => page.evaluate(() => window.duplexChat.state.closedReason));
    check(await closed(ws) === '1001 server shutting down', `websocket: ${await closed(ws)}`);
    check(await closed(poll) === '3000 Server shutting down', `polling: ${await closed(poll)}`);
    check(await closed(sse) === 'server going away', `sse: ${await closed(sse)}`);
    for (const page of [ws, poll, sse]) {
      await page.waitForFunction(() => [...document.querySelectorAll('#log li.note')]
        .some((li) => li.textContent.includes('server is going away')));
    }
    await sio.waitForFunction(() => window.sioBye && window.sioGone);
    const gone = await sio.evaluate(() => window.sioGone);
    check(gone === 'transport close', `socket.io disconnect reason ${gone}`);
    await stomp.waitForFunction(() => window.stompError && window.sockClosed);
    const [error, sock] = await stomp.evaluate(() => [window.stompError, window.sockClosed]);
    check(error === 'server shutting down', `STOMP ERROR ${error}`);
    check(sock === '3000 Server shutting down', `SockJS close ${sock}`);
    // The process ends by itself.
    const start = Date.now();
    for (;;) {
      try { process.kill(pid, 0); } catch (e) { break; }
      check(Date.now() - start < WAIT, 'the server did not exit');
      await new Promise((r) => setTimeout(r, 50));
    }
  }],
];

const all = {
  'browser-chat': chatTests,
  'browser-deflate': deflateTests,
  'browser-socketio': socketIoTests,
  'browser-sockjs-stomp': sockJsTests,
  'browser-shutdown': shutdownTests,
};
try {
  for (const name of groups.length ? groups : Object.keys(all)) {
    if (!all[name]) {
      console.log(`FAIL unknown group ${name}`);
      exitCode = 1;
      continue;
    }
    await group(name, all[name]);
  }
} finally {
  await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
process.exit(exitCode);
