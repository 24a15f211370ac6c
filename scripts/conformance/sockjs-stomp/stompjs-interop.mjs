// @stomp/stompjs (Node) against duplex's STOMP server, over a plain
// WebSocket (`ws`, subprotocols v12/v11/v10.stomp, at /stomp) or over
// sockjs-client (at /sockjs/stomp):
//
//   node stompjs-interop.mjs http://127.0.0.1:PORT websocket|sockjs
//
// Checks: connect and version, subscribe/send with receipts, topic
// fan-out, ack modes (client-individual ACK and NACK with redelivery,
// cumulative client ACK), transactions, bodies with NUL and non-ASCII
// text, binary bodies (WebSocket only: SockJS carries text), heart-beats
// keeping an idle connection alive, and disconnect. Prints
//   stompjs-<mode>: N passed, N failed
import { Client } from '@stomp/stompjs';
import WebSocket from 'ws';
import SockJS from 'sockjs-client';
import { assert, sleep, tally } from './checks.mjs';

const [base, mode] = process.argv.slice(2);
if (!base || !['websocket', 'sockjs'].includes(mode)) {
  console.error('usage: node stompjs-interop.mjs <http base> websocket|sockjs');
  process.exit(2);
}
const STEP_MS = 15000;
const tag = `${mode}-${process.pid}`;
const clients = [];

const { check, finish } = tally({
  pass: 'ok    ',
  fail: 'FAIL  ',
  timeoutMs: STEP_MS,
});

/// A connected client (resolves on CONNECTED).
function connect(extra = {}) {
  return new Promise((resolve, reject) => {
    const wsUrl = base.replace(/^http/, 'ws') + '/stomp';
    const client = new Client({
      webSocketFactory: mode === 'websocket'
        ? () => new WebSocket(wsUrl, ['v12.stomp', 'v11.stomp', 'v10.stomp'])
        : () => new SockJS(`${base}/sockjs/stomp`),
      reconnectDelay: 0,
      heartbeatIncoming: 0,
      heartbeatOutgoing: 0,
      debug: () => {},
      ...extra,
    });
    client.onConnect = (frame) => resolve({ client, frame });
    client.onStompError = (frame) => reject(new Error(`ERROR ${frame.headers.message}`));
    client.onWebSocketClose = (e) => reject(new Error(`closed: ${e.code}`));
    clients.push(client);
    client.activate();
  });
}

/// Resolves when the receipt `id` arrives.
function receipt(client, id) {
  return new Promise((resolve) => client.watchForReceipt(id, resolve));
}

/// A subscription whose messages are queued for `next()`.
function subscribe(client, destination, headers = {}) {
  const inbox = [];
  const waiters = [];
  const sub = client.subscribe(destination, (m) => {
    inbox.push(m);
    while (waiters.length && inbox.length) waiters.shift()(inbox.shift());
  }, headers);
  return {
    sub,
    next: () => new Promise((r) => {
      if (inbox.length) r(inbox.shift()); else waiters.push(r);
    }),
    pending: () => inbox.length,
  };
}

async function subscribed(client, destination, headers = {}) {
  const r = `sub-${Math.random()}`;
  const done = receipt(client, r);
  const s = subscribe(client, destination, { ...headers, receipt: r });
  await done;
  return s;
}

await check('connect: STOMP 1.2, heart-beat and server headers', async () => {
  const { client, frame } = await connect();
  assert(frame.headers.version === '1.2', `version ${frame.headers.version}`);
  assert(client.connectedVersion === '1.2', `connectedVersion ${client.connectedVersion}`);
  assert(frame.headers.server && frame.headers.server.startsWith('duplex'), `server ${frame.headers.server}`);
  if (mode === 'websocket') {
    assert(client.webSocket.protocol === 'v12.stomp', `subprotocol ${client.webSocket.protocol}`);
  }
  await client.deactivate();
});

await check('subscribe, send with receipt, receive on a queue', async () => {
  const { client } = await connect();
  const q = `/queue/stompjs-${tag}-a`;
  const s = await subscribed(client, q);
  const r = receipt(client, 'sent-1');
  client.publish({ destination: q, body: 'hello', headers: { receipt: 'sent-1', 'x-custom': 'kept' } });
  await r;
  const m = await s.next();
  assert(m.body === 'hello', `body ${m.body}`);
  assert(m.headers['x-custom'] === 'kept', `headers ${JSON.stringify(m.headers)}`);
  assert(m.headers.destination === q, `destination ${m.headers.destination}`);
  await client.deactivate();
});

await check('topic fan-out to two clients, in order', async () => {
  const a = await connect();
  const b = await connect();
  const t = `/topic/stompjs-${tag}`;
  const sa = await subscribed(a.client, t);
  const sb = await subscribed(b.client, t);
  for (let i = 0; i < 50; i++) a.client.publish({ destination: t, body: `${i}` });
  for (const s of [sa, sb]) {
    for (let i = 0; i < 50; i++) {
      const m = await s.next();
      assert(m.body === `${i}`, `expected ${i}, got ${m.body}`);
    }
  }
  await a.client.deactivate();
  await b.client.deactivate();
});

await check('client-individual: ACK one, NACK one redelivers it', async () => {
  const { client } = await connect();
  const q = `/queue/stompjs-${tag}-ci`;
  const s = await subscribed(client, q, { ack: 'client-individual' });
  client.publish({ destination: q, body: 'one' });
  client.publish({ destination: q, body: 'two' });
  const one = await s.next();
  const two = await s.next();
  assert(one.body === 'one' && two.body === 'two', 'order');
  one.ack();
  two.nack();
  const again = await s.next();
  assert(again.body === 'two', `redelivered ${again.body}`);
  assert(again.headers.redelivered === 'true', `headers ${JSON.stringify(again.headers)}`);
  again.ack();
  await client.deactivate();
});

await check('client: cumulative ACK, unacknowledged go to the next subscriber', async () => {
  const first = await connect();
  const q = `/queue/stompjs-${tag}-c`;
  const s = await subscribed(first.client, q, { ack: 'client' });
  for (const body of ['1', '2', '3']) first.client.publish({ destination: q, body });
  const m1 = await s.next();
  const m2 = await s.next();
  const m3 = await s.next();
  assert([m1.body, m2.body, m3.body].join() === '1,2,3', 'order');
  m2.ack(); // covers 1 and 2
  const r = receipt(first.client, 'acked');
  first.client.publish({ destination: `/queue/stompjs-${tag}-nothing`, body: 'x', headers: { receipt: 'acked' } });
  await r;
  await first.client.deactivate();
  const second = await connect();
  const s2 = await subscribed(second.client, q, { ack: 'auto' });
  const m = await s2.next();
  assert(m.body === '3', `redelivered ${m.body}`);
  await sleep(200);
  assert(s2.pending() === 0, 'acknowledged messages came back');
  await second.client.deactivate();
});

await check('transactions: commit delivers, abort drops', async () => {
  const { client } = await connect();
  const q = `/queue/stompjs-${tag}-tx`;
  const s = await subscribed(client, q);
  const aborted = client.begin();
  client.publish({ destination: q, body: 'aborted', headers: { transaction: aborted.id } });
  aborted.abort();
  const committed = client.begin();
  client.publish({ destination: q, body: 'committed', headers: { transaction: committed.id } });
  committed.commit();
  const m = await s.next();
  assert(m.body === 'committed', `got ${m.body}`);
  await client.deactivate();
});

await check('text body with NUL, escapes and non-ASCII', async () => {
  const { client } = await connect();
  const q = `/queue/stompjs-${tag}-nul`;
  const s = await subscribed(client, q);
  const body = 'a\u0000b \u2603 \u{1d11e} line\nbreak';
  // Escaped in 1.2 both ways. (Not a backslash before `n`, `r` or `c`:
  // stompjs 7 unescapes `\\n` as a backslash and a line feed, its own bug.)
  const value = 'colon:back\\ slash\nline';
  client.publish({ destination: q, body, headers: { 'weird-header': value } });
  const m = await s.next();
  assert(m.body === body, `body ${JSON.stringify(m.body)}`);
  assert(m.headers['weird-header'] === value, `header ${JSON.stringify(m.headers['weird-header'])}`);
  await client.deactivate();
});

if (mode === 'websocket') {
  await check('binary body (all 256 octet values) both ways', async () => {
    const { client } = await connect();
    const q = `/queue/stompjs-${tag}-bin`;
    const s = await subscribed(client, q);
    const data = new Uint8Array(4096);
    for (let i = 0; i < data.length; i++) data[i] = i % 256;
    client.publish({ destination: q, binaryBody: data, headers: { 'content-type': 'application/octet-stream' } });
    const m = await s.next();
    const got = m.binaryBody;
    assert(got.length === data.length, `length ${got.length}`);
    for (let i = 0; i < data.length; i++) assert(got[i] === data[i], `octet ${i}`);
    await client.deactivate();
  });
}

await check('heart-beats every second keep an idle connection alive', async () => {
  const { client, frame } = await connect({ heartbeatIncoming: 1000, heartbeatOutgoing: 1000 });
  assert(frame.headers['heart-beat'] === '1000,1000', `heart-beat ${frame.headers['heart-beat']}`);
  await sleep(4000);
  assert(client.connected, 'dropped while idle');
  const r = receipt(client, 'still-there');
  client.publish({ destination: `/queue/stompjs-${tag}-hb`, body: 'x', headers: { receipt: 'still-there' } });
  await r;
  await client.deactivate();
});

await check('disconnect: the server confirms and closes', async () => {
  const { client } = await connect();
  const closed = new Promise((r) => { client.onWebSocketClose = r; });
  await client.deactivate();
  await closed;
});

for (const c of clients) {
  try { await c.deactivate(); } catch { /* already gone */ }
}
finish(`stompjs-${mode}`);
