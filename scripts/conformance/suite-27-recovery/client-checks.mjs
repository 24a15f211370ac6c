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
import { assert, once, sleep, startProxy as proxyTo, tally, until } from "./checks.mjs";
import { ack, connect, exactly, record } from "./recovery-client.mjs";

const [url, ...only] = process.argv.slice(2);
const upstream = new URL(url);

/// A proxy to the server that can cut every connection and refuse new ones.
const startProxy = () => proxyTo(Number(upstream.port), upstream.hostname);

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

async function blackholeCheck() {
  const proxy = await startProxy();
  try {
    const { s, sid, got } = await cutAndBack(proxy, { transports: ["websocket"] });
    const reason = once(s, "disconnect", 15000);
    proxy.blackhole();
    await sleep(1000 + 1000 + 2000);
    const [why] = await reason;
    assert(why === "ping timeout", `disconnect: ${why}`);
    proxy.reopen();
    await once(s, "connect");
    await recovered(s, sid, got);
    s.close();
  } finally {
    proxy.close();
  }
}

async function roomReplayCheck() {
  const proxy = await startProxy();
  const b = connect(new URL(url).port, { transports: ["websocket"] });
  try {
    const a = connect(proxy.port, { transports: ["websocket"] });
    await Promise.all([once(a, "connect"), once(b, "connect")]);
    await ack(a, "join", "room-R");
    await ack(b, "join", "room-R");
    await ack(b, "join", "room-other");
    const room = record(a, "room");
    const foreign = [];
    a.on("tick", (id) => id !== "room" && foreign.push(id));
    const n = 100;
    await ack(b, "stream", { id: "room", n, intervalMs: 25, room: "room-R" });
    await ack(b, "stream", { id: "other", n: 40, intervalMs: 25, room: "room-other" });
    await ack(b, "stream", { id: "own", n: 40, intervalMs: 25 });
    await until("ten room ticks", () => room.ticks.length >= 10);
    proxy.cut(true);
    await once(a, "disconnect");
    await sleep(1000);
    proxy.reopen();
    await once(a, "connect");
    assert(a.recovered === true, "not recovered");
    await until("stream-end", () => room.ends > 0, 10000);
    const want = [...Array(n).keys()];
    assert(JSON.stringify(room.ticks) === JSON.stringify(want), `room ticks ${JSON.stringify(room.ticks)}`);
    assert(room.ends === 1, `stream-end ${room.ends} times`);
    await sleep(300);
    assert(foreign.length === 0, `ticks of other streams: ${foreign.length}`);
    a.close();
  } finally {
    b.close();
    proxy.close();
  }
}

async function repeatCutCheck() {
  const proxy = await startProxy();
  try {
    const { s, sid, got } = await cutAndBack(proxy, { transports: ["websocket"] });
    proxy.cut(true);
    await once(s, "disconnect");
    await sleep(1500); // the stream (1 s) ends while the client is away
    proxy.reopen();
    await once(s, "connect");
    assert(s.recovered === true, "first reconnection not recovered");
    await until("the missed ticks", () => got.ends > 0, 500);
    exactly(got, N);
    proxy.cut(true);
    await once(s, "disconnect");
    await sleep(1000);
    proxy.reopen();
    await once(s, "connect");
    await sleep(500);
    await recovered(s, sid, got);
    s.close();
  } finally {
    proxy.close();
  }
}

async function malformedAuthCheck() {
  const port = new URL(url).port;
  const c0 = connect(port, { transports: ["websocket"] });
  await once(c0, "connect");
  const got = record(c0, "c0");
  await ack(c0, "stream", { id: "c0", n: 3, intervalMs: 20 });
  await until("c0's stream", () => got.ends > 0);
  const auths = [
    { pid: 1, offset: 2 },
    { pid: null, offset: null },
    { pid: {}, offset: [] },
    { pid: "", offset: "" },
    { pid: "p".repeat(10000), offset: "o".repeat(10000) },
    { pid: [c0._pid], offset: { o: c0._lastOffset } },
    { pid: c0._pid, offset: c0._lastOffset },
  ];
  for (const auth of auths) {
    const c = connect(port, { transports: ["websocket"], auth, reconnection: false });
    const outcome = await Promise.race([
      once(c, "connect").then(() => "connect"),
      once(c, "connect_error").then(([e]) => `connect_error ${e.message}`),
    ]);
    const label = JSON.stringify(auth).slice(0, 60);
    assert(outcome === "connect", `${label}: ${outcome}`);
    assert(c.id !== c0.id, `${label}: took the connected socket's id`);
    const me = await ack(c, "whoami");
    assert(me.recovered === false, `${label}: whoami ${JSON.stringify(me)}`);
    c.close();
  }
  assert(c0.connected, "the connected socket was disturbed");
  const me = await ack(c0, "whoami");
  assert(me.id === c0.id, `c0 whoami ${JSON.stringify(me)}`);
  c0.close();
}

const checks = {
  "rst-cut-websocket": () => cutCheck({ transports: ["websocket"], rst: true, awayMs: 1000 }),
  "fin-cut-websocket": () => cutCheck({ transports: ["websocket"], rst: false, awayMs: 1000 }),
  "rst-cut-polling": () => cutCheck({ transports: ["polling"], rst: true, awayMs: 3500 }),
  "rst-cut-after-upgrade": () =>
    cutCheck({ transports: ["polling", "websocket"], rst: true, awayMs: 3500, upgrade: true }),
  "blackhole-ping-timeout": blackholeCheck,
  "room-broadcast-replay": roomReplayCheck,
  "repeat-cut-no-double-replay": repeatCutCheck,
  "malformed-auth-fresh": malformedAuthCheck,
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

const { check, finish } = tally();
for (const [name, run] of Object.entries(checks)) {
  if (only.length && !only.includes(name)) continue;
  await check(name, run);
}
finish("socketio-recovery-client");
