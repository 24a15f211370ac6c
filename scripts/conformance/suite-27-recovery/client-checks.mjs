// npm socket.io-client 4.8 against a Socket.IO server with connection state
// recovery at /recovery/ (the handlers of
// shared/conformance/socketio-recovery.md), through a loopback TCP proxy
// this script runs: it cuts connections (RST or FIN) and refuses new ones
// while a client is kept away.
//
//   node client-checks.mjs http://127.0.0.1:<port> [check ...]
//
// Prints `  PASS <check>` / `  FAIL <check>: why` and
// `socketio-recovery-client: N passed, N failed`; exits non-zero on a failure.
import net from "node:net";
import { io } from "socket.io-client";

const [url, ...only] = process.argv.slice(2);
const upstream = new URL(url);
const PATH = "/recovery/";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/// A proxy to the server that can cut every connection and refuse new ones.
function startProxy() {
  const conns = new Set();
  let open = true;
  const server = net.createServer((client) => {
    if (!open) return client.resetAndDestroy();
    const up = net.connect(Number(upstream.port), upstream.hostname);
    const pair = { client, up };
    conns.add(pair);
    const end = () => conns.delete(pair);
    client.on("error", end).on("close", end);
    up.on("error", () => client.destroy()).on("close", () => client.destroy());
    client.on("close", () => up.destroy());
    client.pipe(up);
    up.pipe(client);
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({
        port: server.address().port,
        cut(rst) {
          open = false;
          for (const { client, up } of conns) {
            if (rst) {
              client.resetAndDestroy();
              up.resetAndDestroy();
            } else {
              client.destroy();
              up.destroy();
            }
          }
          conns.clear();
        },
        reopen() {
          open = true;
        },
        close() {
          server.close();
          for (const { client, up } of conns) {
            client.destroy();
            up.destroy();
          }
        },
      }),
    ),
  );
}

function connect(port, opts = {}) {
  return io(`http://127.0.0.1:${port}`, {
    path: PATH,
    forceNew: true,
    reconnectionDelay: 100,
    reconnectionDelayMax: 500,
    ...opts,
  });
}

async function until(what, cond, ms = 5000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

function once(socket, event, ms = 10000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no ${event} in ${ms} ms`)), ms);
    socket.once(event, (...args) => {
      clearTimeout(t);
      resolve(args);
    });
  });
}

const ack = (s, event, ...args) => s.timeout(5000).emitWithAck(event, ...args);

/// Records the ticks of stream `id` on `s`.
function record(s, id) {
  const got = { ticks: [], ends: 0 };
  s.on("tick", (sid, seq) => sid === id && got.ticks.push(seq));
  s.on("stream-end", (sid) => sid === id && (got.ends += 1));
  return got;
}

function exactly(got, n) {
  const want = [...Array(n).keys()];
  if (JSON.stringify(got.ticks) !== JSON.stringify(want)) {
    throw new Error(`ticks ${JSON.stringify(got.ticks)}, want 0..${n - 1} once each`);
  }
  if (got.ends !== 1) throw new Error(`stream-end came ${got.ends} times`);
}

function assert(cond, why) {
  if (!cond) throw new Error(why);
}

const N = 40;

/// A client with a room, data and a 25 ms stream of N ticks; cut after
/// ten ticks, kept away `awayMs`, let back. Returns the client and what it
/// recorded, cut and back.
async function cutAndBack(proxy, { transports, rst = true, awayMs = 1000, id = "s" }) {
  const s = connect(proxy.port, transports ? { transports } : {});
  await once(s, "connect");
  const sid = s.id;
  await ack(s, "join", "room-r");
  await ack(s, "set-data", { k: "v", n: [1, 2] });
  const got = record(s, id);
  const ok = await ack(s, "stream", { id, n: N, intervalMs: 25 });
  assert(ok && ok.ok === true, `stream: ${JSON.stringify(ok)}`);
  await until("ten ticks", () => got.ticks.length >= 10);
  return { s, sid, got };
}

async function recovered(s, sid, got) {
  assert(s.recovered === true, `socket.recovered is ${s.recovered}`);
  assert(s.id === sid, `id ${s.id}, was ${sid}`);
  await until("stream-end", () => got.ends > 0);
  exactly(got, N);
  const me = await ack(s, "whoami");
  assert(me.recovered === true, `whoami: ${JSON.stringify(me)}`);
  assert(me.rooms.includes("room-r"), `rooms: ${JSON.stringify(me.rooms)}`);
  const data = await ack(s, "get-data");
  assert(JSON.stringify(data) === JSON.stringify({ k: "v", n: [1, 2] }), `data ${JSON.stringify(data)}`);
}

async function cutCheck({ transports, rst, awayMs, upgrade }) {
  const proxy = await startProxy();
  try {
    const opts = { transports, rst, awayMs };
    const { s, sid, got } = await cutAndBack(proxy, opts);
    if (upgrade) {
      await until("the upgrade", () => s.io.engine.transport.name === "websocket");
    }
    proxy.cut(rst);
    await once(s, "disconnect");
    await sleep(awayMs);
    proxy.reopen();
    await once(s, "connect");
    await recovered(s, sid, got);
    if (upgrade) {
      await until("the upgrade again", () => s.io.engine.transport.name === "websocket");
    } else {
      const want = transports[0];
      assert(s.io.engine.transport.name === want, `transport ${s.io.engine.transport.name}`);
    }
    s.close();
  } finally {
    proxy.close();
  }
}

/// A fresh session after a reconnection, with nothing of the old stream.
async function fresh(s, sid, got) {
  assert(s.recovered === false, `socket.recovered is ${s.recovered}`);
  assert(s.id !== sid, "same id");
  const before = got.ticks.length;
  const me = await ack(s, "whoami");
  assert(me.recovered === false, `whoami: ${JSON.stringify(me)}`);
  assert(!me.rooms.includes("room-r"), `rooms: ${JSON.stringify(me.rooms)}`);
  const data = await ack(s, "get-data");
  assert(data === null || JSON.stringify(data) === "{}", `data ${JSON.stringify(data)}`);
  await sleep(500);
  assert(got.ticks.length === before, "ticks of the old stream came");
}

/// Cut, `tamper` with the client's pid/offset, back after `awayMs`: fresh.
async function freshCheck(awayMs, tamper) {
  const proxy = await startProxy();
  try {
    const { s, sid, got } = await cutAndBack(proxy, { transports: ["websocket"] });
    proxy.cut(true);
    await once(s, "disconnect");
    tamper(s);
    await sleep(awayMs);
    proxy.reopen();
    await once(s, "connect");
    await fresh(s, sid, got);
    s.close();
  } finally {
    proxy.close();
  }
}

const checks = {
  "rst-cut-websocket": () => cutCheck({ transports: ["websocket"], rst: true, awayMs: 1000 }),
  "fin-cut-websocket": () => cutCheck({ transports: ["websocket"], rst: false, awayMs: 1000 }),
  "rst-cut-polling": () => cutCheck({ transports: ["polling"], rst: true, awayMs: 3500 }),
  "rst-cut-after-upgrade": () =>
    cutCheck({ transports: ["polling", "websocket"], rst: true, awayMs: 3500, upgrade: true }),
  "forged-pid-fresh": () => freshCheck(1000, (s) => (s._pid = "forged-pid-0123456789")),
  "bogus-offset-fresh": () => freshCheck(1000, (s) => (s._lastOffset = "never-issued.offset")),
  "expired-session-fresh": () => freshCheck(13000, () => {}),
  "explicit-disconnect-not-restored": async () => {
    const s1 = connect(new URL(url).port, { transports: ["websocket"] });
    await once(s1, "connect");
    const got1 = record(s1, "x");
    await ack(s1, "join", "room-r");
    await ack(s1, "stream", { id: "x", n: N, intervalMs: 25 });
    await until("ten ticks", () => got1.ticks.length >= 10);
    const { _pid: pid, _lastOffset: offset } = s1;
    assert(typeof pid === "string" && typeof offset === "string", "no pid or offset");
    s1.disconnect();
    const s2 = connect(new URL(url).port, { transports: ["websocket"], auth: { pid, offset } });
    const got2 = record(s2, "x");
    await once(s2, "connect");
    assert(s2.id !== s1.id, "same id");
    const me = await ack(s2, "whoami");
    assert(me.recovered === false, `whoami: ${JSON.stringify(me)}`);
    await sleep(500);
    assert(got2.ticks.length === 0, "ticks replayed");
    s2.close();
  },
  "mass-cut-50": async () => {
    const proxy = await startProxy();
    try {
      const clients = await Promise.all(
        [...Array(50).keys()].map((i) =>
          cutAndBack(proxy, { transports: ["websocket"], id: `m${i}` }),
        ),
      );
      proxy.cut(true);
      await Promise.all(clients.map(({ s }) => (s.connected ? once(s, "disconnect") : null)));
      await sleep(1000);
      proxy.reopen();
      await Promise.all(clients.map(({ s }) => (s.connected ? null : once(s, "connect", 15000))));
      const failures = [];
      for (const { s, sid, got } of clients) {
        try {
          await recovered(s, sid, got);
        } catch (e) {
          failures.push(`${sid}: ${e.message}`);
        }
        s.close();
      }
      assert(failures.length === 0, `${failures.length}/50: ${failures.slice(0, 3).join("; ")}`);
    } finally {
      proxy.close();
    }
  },
};

let passed = 0;
let failed = 0;
for (const [name, check] of Object.entries(checks)) {
  if (only.length && !only.includes(name)) continue;
  try {
    await check();
    passed += 1;
    console.log(`  PASS ${name}`);
  } catch (e) {
    failed += 1;
    console.log(`  FAIL ${name}: ${e.message}`);
  }
}
console.log(`socketio-recovery-client: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
