// Connection state recovery ACROSS NODES of one Redis streams cluster
// (issue #16): npm socket.io-client 4.8 behind a loopback TCP proxy that
// cuts the connection to one node (FIN or RST) and sends the reconnection
// to another; the client must come back recovered (same id, rooms, data)
// with every event of its streams exactly once and in order.
//
//   node cross-checks.mjs duplex1=http://127.0.0.1:P1 duplex2=... node=... [check ...]
//
// Prints `  PASS <check>` / `  FAIL <check>: why` and
// `socketio-streams-recovery: N passed, N failed`; exits non-zero on a failure.
import { assert, once, sleep, startProxy, tally, until } from "./checks.mjs";
import { ack, connect, exactly, record } from "./recovery-client.mjs";

const args = process.argv.slice(2);
const nodes = Object.fromEntries(
  args.filter((a) => a.includes("=")).map((a) => {
    const [name, url] = a.split("=");
    return [name, Number(new URL(url).port)];
  }),
);
const only = args.filter((a) => !a.includes("="));

const N = 60;

/// A client on `from` (through the proxy) with a room, data, a stream of
/// its own and a room stream from a second client on `third`; cut after
/// ten ticks, sent to `to`, kept away `awayMs`. Everything must arrive
/// once, in order, on the node it came back to.
///
/// Coming back to the Node node, the streams end while the client is away:
/// Node's adapter loses a live entry that its stream reader delivers
/// between the restore's last XRANGE and the socket's creation (nothing
/// holds it for the socket being restored; duplex keeps such entries), so
/// ticks still flowing during the restore would test Node's race, not the
/// wire between the two.
///
/// Each check has rooms of its own: a stream outlives its check.
async function cross(from, to, third, { transports, rst, awayMs }) {
  const n = to === "node" ? 20 : N;
  const tag = `${from}-${to}-${transports[0]}`;
  const roomR = `room-r-${tag}`;
  const proxy = await startProxy(nodes[from]);
  const b = connect(nodes[third], { transports: ["websocket"] });
  try {
    const s = connect(proxy.port, { transports });
    await Promise.all([once(s, "connect"), once(b, "connect")]);
    const sid = s.id;
    await ack(s, "join", roomR);
    await ack(s, "set-data", { k: "v", n: [1, 2] });
    const own = record(s, "own");
    const room = record(s, "room");
    const foreign = [];
    s.on("tick", (id) => id !== "own" && id !== "room" && foreign.push(id));
    let ok = await ack(s, "stream", { id: "own", n, intervalMs: 25 });
    assert(ok && ok.ok === true, `stream: ${JSON.stringify(ok)}`);
    await ack(b, "join", `room-other-${tag}`);
    ok = await ack(b, "stream", { id: "room", n, intervalMs: 25, room: roomR });
    assert(ok && ok.ok === true, `room stream: ${JSON.stringify(ok)}`);
    await ack(b, "stream", { id: "other", n: 20, intervalMs: 25, room: `room-other-${tag}` });
    await until("ten ticks", () => own.ticks.length >= 10 && room.ticks.length >= 10, 8000);
    proxy.cutTo(nodes[to], rst);
    await once(s, "disconnect");
    await sleep(awayMs);
    proxy.reopen();
    await once(s, "connect");
    assert(s.recovered === true, `socket.recovered is ${s.recovered}`);
    assert(s.id === sid, `id ${s.id}, was ${sid}`);
    await until("both stream-ends", () => own.ends > 0 && room.ends > 0, 10000);
    await sleep(300);
    exactly(own, n, "own stream");
    exactly(room, n, "room stream");
    assert(foreign.length === 0, `ticks of another room: ${foreign.length}`);
    const me = await ack(s, "whoami");
    assert(me.recovered === true, `whoami: ${JSON.stringify(me)}`);
    assert(me.id === sid, `whoami id ${me.id}`);
    assert(me.rooms.includes(roomR), `rooms: ${JSON.stringify(me.rooms)}`);
    const data = await ack(s, "get-data");
    assert(JSON.stringify(data) === JSON.stringify({ k: "v", n: [1, 2] }), `data ${JSON.stringify(data)}`);
    s.close();
  } finally {
    b.close();
    proxy.close();
  }
}

/// A forged pid on another node: looked up, not found, a fresh session.
async function forged(from, to) {
  const proxy = await startProxy(nodes[from]);
  try {
    const s = connect(proxy.port, { transports: ["websocket"] });
    await once(s, "connect");
    const sid = s.id;
    const own = record(s, "own");
    await ack(s, "stream", { id: "own", n: 40, intervalMs: 25 });
    await until("ten ticks", () => own.ticks.length >= 10, 8000);
    proxy.cutTo(nodes[to], true);
    await once(s, "disconnect");
    s._pid = "AAAAAAAAAAAAAAAAAAAA";
    proxy.reopen();
    await once(s, "connect");
    assert(s.recovered === false, `socket.recovered is ${s.recovered}`);
    assert(s.id !== sid, "same id");
    s.close();
  } finally {
    proxy.close();
  }
}

const checks = [];
const pairs = [
  ["duplex1", "duplex2", "node"],
  ["duplex1", "node", "duplex2"],
  ["node", "duplex1", "duplex2"],
  ["duplex2", "duplex1", "duplex1"],
];
for (const [from, to, third] of pairs) {
  checks.push([`${from}-to-${to}-websocket-fin`, () => cross(from, to, third, { transports: ["websocket"], rst: false, awayMs: 600 })]);
  // A polling session cut by RST ends at the ping timeout (1 s + 1 s) on
  // the node it left, which keeps its session only then: away longer.
  checks.push([`${from}-to-${to}-polling-rst`, () => cross(from, to, third, { transports: ["polling"], rst: true, awayMs: 2500 })]);
}
checks.push(["forged-pid-node-to-duplex", () => forged("node", "duplex1")]);
checks.push(["forged-pid-duplex-to-node", () => forged("duplex1", "node")]);

const { check, finish } = tally();
for (const [name, run] of checks) {
  if (only.length && !only.includes(name)) continue;
  await check(name, run);
}
finish("socketio-streams-recovery");
