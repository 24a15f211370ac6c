// Requests across a MIXED streams cluster (@socket.io/redis-streams-adapter
// 0.3.x: requests and responses over Redis pub/sub, the server count by
// PUBSUB NUMSUB): one npm socket.io-client client on each node (auth
// `{name}`, answering every `ack-req`), then from every node in turn:
// fetchSockets sees the three clients, serverSideEmitWithAck gets the
// two other servers' answers, a broadcast with acks gets the three
// clients' acks, and a broadcast reaches each client exactly once.
//
//   node request-checks.mjs duplex1=http://127.0.0.1:P1 node=... duplex2=...
//
// Prints `  PASS <check>` / `  FAIL <check>: why` and
// `socketio-streams-requests: N passed, N failed`; exits non-zero on a failure.
import { io } from "socket.io-client";
import { sleep, tally } from "./checks.mjs";

const nodes = process.argv.slice(2).map((a) => a.split("="));
const WAIT = 5000;

function ask(socket, event, ...args) {
  return socket.timeout(WAIT).emitWithAck(event, ...args);
}

const clients = [];
for (const [name, url] of nodes) {
  const socket = io(url, { auth: { name }, transports: ["websocket"], reconnection: false });
  socket.on("ack-req", (payload, _origin, cb) => cb({ name, payload }));
  socket.got = [];
  socket.on("all-msg", (payload, from) => socket.got.push({ payload, from }));
  await new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  });
  const me = await ask(socket, "whoami");
  clients.push({ name, socket, id: socket.id, server: me.server });
}

const { check, finish } = tally();
function same(actual, expected, what) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what}: ${a}, expected ${e}`);
}

const ids = clients.map((c) => c.id).sort();
const names = clients.map((c) => c.name).sort();
for (const from of clients) {
  await check(`fetchSockets from ${from.name}`, async () => {
    const found = await ask(from.socket, "fetch-sockets", null, null);
    same(found.map((s) => s.id).sort(), ids, "ids");
    same(found.map((s) => s.data?.name).sort(), names, "data");
    for (const s of found) same(s.rooms, [s.id], `rooms of ${s.id}`);
  });
  await check(`serverSideEmitWithAck from ${from.name}`, async () => {
    const payload = { n: from.name, bin: false };
    const { err, responses } = await ask(from.socket, "sse-ack", payload);
    same(err, null, "err");
    const others = clients.filter((c) => c !== from).map((c) => c.server).sort();
    same(responses.map((r) => r.server).sort(), others, "servers");
    for (const r of responses) {
      same(r.from, from.server, "from");
      same(r.payload, payload, "payload");
    }
  });
  await check(`broadcast with acks from ${from.name}`, async () => {
    const payload = `acks-${from.name}`;
    const { err, responses } = await ask(from.socket, "ack-broadcast", null, payload, 3000);
    same(err, null, "err");
    same(responses.map((r) => r.name).sort(), names, "clients");
    for (const r of responses) same(r.payload, payload, "payload");
  });
  await check(`broadcast from ${from.name}`, async () => {
    const payload = `all-${from.name}`;
    for (const c of clients) c.socket.got = [];
    same(await ask(from.socket, "to-all", payload), "ok", "ack");
    await sleep(500);
    for (const c of clients) {
      same(c.socket.got, [{ payload, from: from.server }], `at ${c.name}`);
    }
  });
}

for (const c of clients) c.socket.disconnect();
finish("socketio-streams-requests");
