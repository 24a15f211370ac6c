// npm sockjs-client (Node) against duplex's SockJS services, one transport
// forced per run:
//
//   node sockjs-interop.mjs http://127.0.0.1:PORT/sockjs <transport>
//
// <transport>: websocket, xhr-streaming, xhr-polling or eventsource (the
// ones sockjs-client can use in Node). Prints
//   sockjs-client-<transport>: N passed, N failed
// and exits non-zero if a check failed.
import SockJS from 'sockjs-client';
import { assert, tally } from './checks.mjs';

const [base, transport] = process.argv.slice(2);
if (!base || !transport) {
  console.error('usage: node sockjs-interop.mjs <base url> <transport>');
  process.exit(2);
}
const STEP_MS = 15000;

const { check, finish } = tally({
  pass: 'ok    ',
  fail: 'FAIL  ',
  timeoutMs: STEP_MS,
});

/// Opens a session on `service` with only `transport` allowed; resolves with
/// the socket, a queue of received messages, and a promise of the close.
function open(service) {
  return new Promise((resolve, reject) => {
    const sock = new SockJS(`${base}/${service}`, null, { transports: [transport], timeout: 10000 });
    const inbox = [];
    const waiters = [];
    let closed;
    const closedPromise = new Promise((r) => { closed = r; });
    sock.onmessage = (e) => {
      inbox.push(e.data);
      while (waiters.length && inbox.length) waiters.shift()(inbox.shift());
    };
    sock.onopen = () => resolve({
      sock,
      next: () => new Promise((r) => {
        if (inbox.length) r(inbox.shift()); else waiters.push(r);
      }),
      closed: closedPromise,
    });
    sock.onclose = (e) => {
      closed({ code: e.code, reason: e.reason });
      reject(new Error(`closed before opening: ${e.code} ${e.reason}`));
    };
  });
}

async function echoes(service, messages) {
  const s = await open(service);
  assert(s.sock.transport === transport, `opened over ${s.sock.transport}, not ${transport}`);
  for (const m of messages) s.sock.send(m);
  for (const [i, m] of messages.entries()) {
    const got = await s.next();
    assert(got === m, `message ${i}: sent ${JSON.stringify(m).slice(0, 60)}, got ${JSON.stringify(got).slice(0, 60)}`);
  }
  s.sock.close();
  const c = await s.closed;
  assert(c.code === 1000, `close code ${c.code}`);
}

await check('open over the forced transport, echo one message', () => echoes('echo', ['hello']));
await check('100 messages echoed in order', () =>
  echoes('echo', Array.from({ length: 100 }, (_, i) => `message ${i}`)));
await check('unicode: escapes, U+2028, astral, U+FFFF, NUL, quotes', () =>
  echoes('echo', ['\u2028\u2029 \u200c', 'snow \u2603 clef \u{1d11e}', '\uffff\ufff0', 'nul \u0000 in', '"quoted" \\ back']));
await check('a 64 KiB message', () => echoes('echo', ['x'.repeat(64 * 1024)]));
await check('empty message', () => echoes('echo', ['', 'after empty']));
await check('messages past the 4 KiB streaming limit (the client reconnects)', () =>
  echoes('echo', Array.from({ length: 40 }, (_, i) => `${i} ${'y'.repeat(500)}`)));
await check('the JSESSIONID service echoes too', () => echoes('cookie_needed_echo', ['cookie']));
await check('application close reaches the client with code 3000 "Go away!"', async () => {
  const sock = new SockJS(`${base}/close`, null, { transports: [transport], timeout: 10000 });
  const c = await new Promise((resolve) => {
    sock.onclose = (e) => resolve({ code: e.code, reason: e.reason });
  });
  assert(c.code === 3000 && c.reason === 'Go away!', `closed with ${c.code} ${c.reason}`);
});
if (transport !== 'websocket') {
  await check('the service without WebSocket serves this transport', () =>
    echoes('disabled_websocket_echo', ['no websocket here']));
}

finish(`sockjs-client-${transport}`);
