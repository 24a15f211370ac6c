// The mixed-cluster test of shared/conformance/socketio-cluster.md §4: npm
// socket.io-client clients on every node of a cluster (any mix of the Node
// reference node and duplex conformance-servers sharing one Redis), each
// check with fresh clients, its own rooms and tokens.
//
//   node cluster-test.mjs --mode classic|sharded --redis redis://127.0.0.1:P \
//        --nodes http://127.0.0.1:A,http://127.0.0.1:B,... \
//        [--restart-redis PIDFILE] [--kill PID] [--rust-emitter PATH]
//
// --restart-redis: Redis is shut down mid-run (SHUTDOWN NOSAVE) and started
// again here (`redis-server` on the same port), its pid written to PIDFILE
// for the caller to stop. --kill: the pid of the LAST node, killed at the end
// to check that the others stop counting it. --rust-emitter: duplex-redis's
// `emit` example, whose Emitter publishes into the cluster (both modes).
//
// Prints one `PASS name` / `FAIL name: why` line per check, then
// `cluster-<mode>: N passed, N failed`.
import { execFile, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { io as ioc, Manager } from "socket.io-client";
import { createClient } from "redis";
import { Emitter } from "@socket.io/redis-emitter";
import { sleep, tally } from "./checks.mjs";

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const mode = arg("--mode", "classic");
const redisUrl = arg("--redis");
let nodes = arg("--nodes").split(",");
const restartPidfile = arg("--restart-redis");
const killPid = arg("--kill");
const rustEmitter = arg("--rust-emitter");
const classic = mode === "classic";

let tokenSeq = 0;
const token = (what) => `${what}-${++tokenSeq}-${Math.random().toString(36).slice(2, 8)}`;
const room = (what) => `${what}-${++tokenSeq}-${Math.random().toString(36).slice(2, 6)}`;

// ---- clients ------------------------------------------------------------
const TRANSPORTS = ["websocket", "polling", "upgrade"];
let clientSeq = 0;
const open = new Set();

function managerOpts(kind) {
  const opts = { forceNew: true, reconnection: false, timeout: 5000 };
  if (kind === "websocket") opts.transports = ["websocket"];
  else if (kind === "polling") Object.assign(opts, { transports: ["polling"], upgrade: false });
  else opts.transports = ["polling", "websocket"];
  return opts;
}

function instrument(s, label, nsp) {
  s.label = label;
  s.got = [];
  s.reason = null;
  s.onAny((event, ...args) => s.got.push({ event, args }));
  s.on("ack-req", (payload, _origin, cb) => cb({ name: label, nsp, payload }));
  s.on("disconnect", (r) => { s.reason = r; });
}

function connected(s) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${s.label}: no connect in 5 s`)), 5000);
    s.once("connect", () => { clearTimeout(t); resolve(s); });
    s.once("connect_error", (e) => { clearTimeout(t); reject(new Error(`${s.label}: ${e.message}`)); });
  });
}

// One client on node `n` (index) and namespace `nsp`, transports rotating.
async function client(n, nsp = "/", name) {
  const kind = TRANSPORTS[clientSeq++ % TRANSPORTS.length];
  const label = `n${n}${nsp === "/" ? "" : nsp}#${clientSeq}(${kind})`;
  const s = ioc(nodes[n] + nsp, { ...managerOpts(kind), auth: { name: name ?? label } });
  instrument(s, label, nsp);
  s.node = n;
  open.add(s);
  return connected(s);
}

// `/` and `/chat` multiplexed on one connection to node `n`.
async function pair(n) {
  const kind = TRANSPORTS[clientSeq++ % TRANSPORTS.length];
  const m = new Manager(nodes[n], managerOpts(kind));
  const out = [];
  for (const nsp of ["/", "/chat"]) {
    const label = `n${n}${nsp}#${clientSeq}(${kind},pair)`;
    const s = m.socket(nsp, { auth: { name: label } });
    instrument(s, label, nsp);
    s.node = n;
    open.add(s);
    out.push(s);
  }
  await Promise.all(out.map(connected));
  return out;
}

// One client per node per namespace-free argument, `per` on each node.
async function everywhere(per = 2, nsp = "/") {
  const all = [];
  for (let n = 0; n < nodes.length; n++) {
    for (let k = 0; k < per; k++) all.push(await client(n, nsp));
  }
  return all;
}

function closeAll() {
  for (const s of open) s.disconnect();
  open.clear();
}

async function call(s, event, ...args) {
  const reply = await s.timeout(5000).emitWithAck(event, ...args);
  if (reply && typeof reply === "object" && !Array.isArray(reply) && "error" in reply) {
    throw new Error(`${event} on ${s.label}: ${reply.error}`);
  }
  return reply;
}

// ---- checking deliveries ------------------------------------------------
const tokenOf = (p) => (typeof p === "string" ? p : p && typeof p === "object" ? p.t : undefined);
const hits = (c, event, tok) => c.got.filter((m) => m.event === event && tokenOf(m.args[0]) === tok);

// Waits up to 3 s for every expected client, 300 ms more for strays; throws
// with every client that got a number other than one (expected) or zero.
async function deliveries(all, expected, event, tok, origin) {
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline && !expected.every((c) => hits(c, event, tok).length >= 1)) {
    await sleep(20);
  }
  await sleep(300);
  const wrong = [];
  for (const c of all) {
    const got = hits(c, event, tok);
    const want = expected.includes(c) ? 1 : 0;
    if (got.length !== want) wrong.push(`${c.label} got ${got.length}, want ${want}`);
    else if (origin !== undefined && got.length && got[0].args[1] !== origin) {
      wrong.push(`${c.label}: origin ${got[0].args[1]}, want ${origin}`);
    }
  }
  if (wrong.length) throw new Error(`${event} ${tok}: ${wrong.join("; ")}`);
}

const serverIds = [];
async function learnServerIds() {
  for (let n = 0; n < nodes.length; n++) {
    const c = await client(n);
    serverIds[n] = (await call(c, "whoami")).server;
  }
  closeAll();
}

// ---- the checks ---------------------------------------------------------
const { check, finish } = tally({
  pass: "PASS ",
  fail: "FAIL ",
  timeoutMs: 60000,
  timeoutMessage: () => "check took over 60 s",
  why: (e) => e.message,
  after: async () => {
    closeAll();
    await sleep(100);
  },
});

function eq(actual, expected, what) {
  const a = JSON.stringify(actual);
  const b = JSON.stringify(expected);
  if (a !== b) throw new Error(`${what}: got ${a}, want ${b}`);
}

const redis = createClient({ url: redisUrl });
redis.on("error", () => {});
await redis.connect();

async function subscriberCounts() {
  const out = {};
  for (const nsp of ["/", "/chat"]) {
    if (classic) {
      for (const ch of [`socket.io-request#${nsp}#`, `socket.io-response#${nsp}#`]) {
        const r = await redis.sendCommand(["PUBSUB", "NUMSUB", ch]);
        out[ch] = Number(r[1]);
      }
    } else {
      const ch = `socket.io#${nsp}#`;
      const r = await redis.sendCommand(["PUBSUB", "SHARDNUMSUB", ch]);
      out[ch] = Number(r[1]);
    }
  }
  return out;
}

async function waitSubscribers(want, seconds) {
  const deadline = Date.now() + seconds * 1000;
  let counts;
  while (Date.now() < deadline) {
    counts = await subscriberCounts();
    if (Object.values(counts).every((v) => v === want)) return counts;
    await sleep(200);
  }
  throw new Error(`subscriber counts ${JSON.stringify(counts)}, want ${want} each`);
}

await check("redis-subscriptions", async () => {
  await waitSubscribers(nodes.length, 10);
});

await learnServerIds();

await check("broadcast-all", async () => {
  const all = await everywhere(2);
  const chat = await everywhere(1, "/chat");
  for (let n = 0; n < nodes.length; n++) {
    const t = token("all");
    await call(all[n * 2], "to-all", t);
    await deliveries([...all, ...chat], all, "all-msg", t, serverIds[n]);
  }
});

await check("broadcast-room", async () => {
  const all = await everywhere(2);
  const r = room("room");
  // Members on every node but the last, which sends without a member.
  const members = all.filter((c) => c.node !== nodes.length - 1 && all.indexOf(c) % 2 === 0);
  for (const c of members) await call(c, "join", r);
  await sleep(250);
  for (let n = 0; n < nodes.length; n++) {
    const t = token("room");
    await call(all[n * 2 + 1], "to-room", r, t);
    await deliveries(all, members, "room-msg", t, serverIds[n]);
  }
});

await check("broadcast-multi-room", async () => {
  const all = await everywhere(2);
  const [r1, r2] = [room("m1"), room("m2")];
  const inR1 = [all[0], all[3]];
  const inR2 = [all[2], all[all.length - 1]];
  const both = all[1];
  for (const c of inR1) await call(c, "join", r1);
  for (const c of inR2) await call(c, "join", r2);
  await call(both, "join", [r1, r2]);
  await sleep(250);
  for (let n = 0; n < nodes.length; n++) {
    const t = token("multi");
    await call(all[n * 2], "to-room", [r1, r2], t);
    await deliveries(all, [...inR1, ...inR2, both], "room-msg", t, serverIds[n]);
  }
});

await check("broadcast-room-except", async () => {
  const all = await everywhere(2);
  const [r, e1, e2] = [room("r"), room("e1"), room("e2")];
  for (const c of all) await call(c, "join", r);
  await call(all[1], "join", e1);
  await call(all[4], "join", e1);
  await call(all[2], "join", e2);
  await sleep(250);
  for (let n = 0; n < nodes.length; n++) {
    let t = token("except1");
    await call(all[n * 2], "to-room-except", r, e1, t);
    await deliveries(all, all.filter((c) => c !== all[1] && c !== all[4]), "room-msg", t);
    t = token("except2");
    await call(all[n * 2], "to-room-except", r, [e1, e2], t);
    await deliveries(all, all.filter((c) => ![all[1], all[4], all[2]].includes(c)), "room-msg", t);
  }
});

await check("socket-to-room", async () => {
  const all = await everywhere(2);
  const r = room("str");
  for (const c of all) await call(c, "join", r);
  await sleep(250);
  for (let n = 0; n < nodes.length; n++) {
    const t = token("str");
    const sender = all[n * 2];
    await call(sender, "socket-to-room", r, t);
    await deliveries(all, all.filter((c) => c !== sender), "room-msg", t, serverIds[n]);
  }
});

await check("socket-broadcast", async () => {
  const all = await everywhere(2);
  for (let n = 0; n < nodes.length; n++) {
    const t = token("sb");
    const sender = all[n * 2 + 1];
    await call(sender, "socket-broadcast", t);
    await deliveries(all, all.filter((c) => c !== sender), "all-msg", t, serverIds[n]);
  }
});

await check("broadcast-to-socket-id", async () => {
  const all = await everywhere(2);
  for (let n = 0; n < nodes.length; n++) {
    const target = all[((n + 1) % nodes.length) * 2];
    let t = token("sid");
    await call(all[n * 2], "to-room", target.id, t);
    await deliveries(all, [target], "room-msg", t, serverIds[n]);
    const second = all[((n + 2) % nodes.length) * 2 + 1];
    t = token("sid2");
    await call(all[n * 2], "to-room", [target.id, second.id], t);
    await deliveries(all, [target, second], "room-msg", t, serverIds[n]);
  }
});

await check("local-all", async () => {
  const all = await everywhere(2);
  for (let n = 0; n < nodes.length; n++) {
    const t = token("local");
    await call(all[n * 2], "local-to-all", t);
    await deliveries(all, all.filter((c) => c.node === n), "local-msg", t, serverIds[n]);
  }
});

await check("local-room", async () => {
  const all = await everywhere(2);
  const r = room("lr");
  for (const c of all.filter((_, i) => i % 2 === 0)) await call(c, "join", r);
  await sleep(250);
  for (let n = 0; n < nodes.length; n++) {
    const t = token("localroom");
    await call(all[n * 2 + 1], "local-to-room", r, t);
    await deliveries(all, [all[n * 2]], "local-msg", t, serverIds[n]);
  }
});

await check("binary-broadcast", async () => {
  const all = await everywhere(2);
  const r = room("bin");
  for (const c of all.filter((_, i) => i % 2 === 1)) await call(c, "join", r);
  await sleep(250);
  for (let n = 0; n < nodes.length; n++) {
    for (const size of [0, 1, 8192]) {
      const bin = Buffer.alloc(size, n + size);
      let t = token("binall");
      await call(all[n * 2], "to-all", { t, bin, nested: [{ bin }] });
      await deliveries(all, all, "all-msg", t);
      t = token("binroom");
      await call(all[n * 2], "to-room", r, { t, bin });
      const members = all.filter((_, i) => i % 2 === 1);
      await deliveries(all, members, "room-msg", t);
      for (const c of members) {
        const got = hits(c, "room-msg", t)[0].args[0].bin;
        if (!Buffer.from(got).equals(bin)) throw new Error(`${c.label}: binary of ${size} bytes altered`);
      }
    }
  }
});

await check("broadcast-order", async () => {
  const all = await everywhere(1);
  for (let n = 0; n < nodes.length; n++) {
    const base = token("order");
    const sends = [];
    for (let k = 0; k < 30; k++) sends.push(call(all[n], "to-all", `${base}:${k}`));
    await Promise.all(sends);
    const deadline = Date.now() + 5000;
    const seen = (c) => c.got.filter((m) => m.event === "all-msg" && String(m.args[0]).startsWith(`${base}:`));
    while (Date.now() < deadline && !all.every((c) => seen(c).length >= 30)) await sleep(20);
    await sleep(300);
    for (const c of all) {
      const order = seen(c).map((m) => Number(String(m.args[0]).split(":")[1]));
      eq(order, [...Array(30).keys()], `${c.label} order from node ${n}`);
    }
  }
});

await check("leave-and-rejoin", async () => {
  const all = await everywhere(1);
  const r = room("lj");
  for (const c of all) await call(c, "join", r);
  await call(all[1], "leave", r);
  await sleep(250);
  let t = token("left");
  await call(all[0], "to-room", r, t);
  await deliveries(all, all.filter((c) => c !== all[1]), "room-msg", t);
  await call(all[1], "join", r);
  await sleep(250);
  t = token("rejoined");
  await call(all[all.length - 1], "to-room", r, t);
  await deliveries(all, all, "room-msg", t);
});

await check("room-names", async () => {
  const all = await everywhere(1);
  const names = ["with space", "näme-ü-日本", "a#b#", "12345", "glob*?[x]", "abcdefghijklmnopqrst"];
  for (const name of names) {
    const r = `${name}`;
    // Members: every node but the first.
    const members = all.slice(1);
    for (const c of members) await call(c, "join", r);
    await sleep(250);
    for (let n = 0; n < nodes.length; n++) {
      const t = token("name");
      await call(all[n], "to-room", r, t);
      await deliveries(all, members, "room-msg", t);
    }
    for (const c of members) await call(c, "leave", r);
  }
});

await check("sockets-join", async () => {
  const all = await everywhere(2);
  const [r, x, nr, nr2, nr3] = [room("sj"), room("sjx"), room("sjnew"), room("sjall"), room("sjexc")];
  const members = all.filter((_, i) => i % 2 === 0);
  for (const c of members) await call(c, "join", r);
  await call(all[2], "join", x);
  await sleep(250);
  // From the last node: the room's sockets, cluster-wide, join `nr`.
  await call(all[all.length - 1], "sockets-join", r, null, nr);
  await sleep(500);
  let t = token("sj");
  await call(all[1], "to-room", nr, t);
  await deliveries(all, members, "room-msg", t);
  // Whole namespace.
  await call(all[0], "sockets-join", null, null, nr2);
  await sleep(500);
  t = token("sjall");
  await call(all[3], "to-room", nr2, t);
  await deliveries(all, all, "room-msg", t);
  // With except.
  await call(all[1], "sockets-join", r, x, nr3);
  await sleep(500);
  t = token("sjexc");
  await call(all[1], "to-room", nr3, t);
  await deliveries(all, members.filter((c) => c !== all[2]), "room-msg", t);
});

await check("sockets-leave", async () => {
  const all = await everywhere(2);
  const [r, x, r2] = [room("sl"), room("slx"), room("sl2")];
  for (const c of all) await call(c, "join", [r, r2]);
  await call(all[3], "join", x);
  await sleep(250);
  await call(all[0], "sockets-leave", null, x, r);
  await sleep(500);
  let t = token("sl");
  await call(all[1], "to-room", r, t);
  await deliveries(all, [all[3]], "room-msg", t);
  await call(all[all.length - 1], "sockets-leave", r2, null, r2);
  await sleep(500);
  t = token("sl2");
  await call(all[1], "to-room", r2, t);
  await deliveries(all, [], "room-msg", t);
});

async function waitReason(clients, reason) {
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline && !clients.every((c) => c.reason)) await sleep(20);
  await sleep(300);
  for (const c of clients) {
    if (c.reason !== reason) throw new Error(`${c.label}: disconnect reason ${c.reason}, want ${reason}`);
  }
}

await check("disconnect-sockets", async () => {
  // close = false, with except: only `/` of the targeted pairs goes.
  let pairs = [];
  for (let n = 0; n < nodes.length; n++) pairs.push(await pair(n));
  const [r, x] = [room("ds"), room("dsx")];
  const roots = pairs.map((p) => p[0]);
  const chats = pairs.map((p) => p[1]);
  for (const c of roots) await call(c, "join", r);
  await call(roots[0], "join", x);
  await sleep(250);
  await call(roots[roots.length - 1], "disconnect-sockets", r, x, false);
  await waitReason(roots.slice(1), "io server disconnect");
  if (!roots[0].connected) throw new Error(`${roots[0].label}: excepted socket disconnected`);
  for (const c of chats) {
    if (!c.connected) throw new Error(`${c.label}: the other namespace was disconnected`);
  }
  closeAll();
  // close = true: the whole connection of each targeted socket.
  pairs = [];
  for (let n = 0; n < nodes.length; n++) pairs.push(await pair(n));
  const r2 = room("dsc");
  for (const [root] of pairs) await call(root, "join", r2);
  const bystander = await client(0);
  await sleep(250);
  await call(bystander, "disconnect-sockets", r2, null, true);
  await waitReason(pairs.map((p) => p[0]), "io server disconnect");
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline && pairs.some((p) => p[1].connected)) await sleep(20);
  for (const [, chat] of pairs) {
    if (chat.connected) throw new Error(`${chat.label}: connection not closed`);
  }
  if (!bystander.connected) throw new Error("a socket outside the room was disconnected");
});

function described(c, rooms) {
  return { id: c.id, rooms: [...rooms, c.id].sort(), data: { name: c.label }, auth: { name: c.label } };
}
function normalise(list) {
  if (!Array.isArray(list)) throw new Error(`fetch-sockets answered ${JSON.stringify(list)}`);
  return list
    .map((s) => ({ id: s.id, rooms: [...s.rooms].sort(), data: s.data, auth: s.auth }))
    .sort((a, b) => (a.id < b.id ? -1 : 1));
}

await check("fetch-sockets", async () => {
  const all = await everywhere(2);
  const [r1, r2, x] = [room("f1"), room("f2"), room("fx")];
  const rooms = new Map(all.map((c) => [c, []]));
  const join = async (c, r) => { await call(c, "join", r); rooms.get(c).push(r); };
  await join(all[0], r1);
  await join(all[3], r1);
  await join(all[4], r2);
  await join(all[3], x);
  await sleep(250);
  const want = (cs) => cs.map((c) => described(c, rooms.get(c))).sort((a, b) => (a.id < b.id ? -1 : 1));
  for (let n = 0; n < nodes.length; n++) {
    const asker = all[n * 2 + 1];
    eq(normalise(await call(asker, "fetch-sockets", r1, null)), want([all[0], all[3]]), `room from node ${n}`);
    eq(normalise(await call(asker, "fetch-sockets", [r1, r2], null)), want([all[0], all[3], all[4]]), `rooms from node ${n}`);
    eq(normalise(await call(asker, "fetch-sockets", [r1, r2], x)), want([all[0], all[4]]), `except from node ${n}`);
    eq(normalise(await call(asker, "fetch-sockets", null, null)), want(all), `namespace from node ${n}`);
  }
});

if (classic) {
  await check("all-rooms", async () => {
    const all = await everywhere(1);
    const [r1, r2] = [room("ar1"), room("ar2")];
    await call(all[0], "join", r1);
    await call(all[1], "join", [r1, r2]);
    await sleep(250);
    const want = [...all.map((c) => c.id), r1, r2].sort();
    for (let n = 0; n < nodes.length; n++) {
      eq(await call(all[n], "all-rooms"), want, `allRooms from node ${n}`);
    }
    await call(all[1], "leave", r2);
    await sleep(250);
    eq(await call(all[0], "all-rooms"), [...all.map((c) => c.id), r1].sort(), "after the last member left");
  });
}

await check("server-side-emit", async () => {
  for (const nsp of ["/", "/chat"]) {
    const all = await everywhere(1, nsp);
    for (let n = 0; n < nodes.length; n++) {
      const t = token("sse");
      await call(all[n], "sse", t);
      const others = all.filter((c) => c.node !== n);
      await deliveries(all, others, "sse-got", t, serverIds[n]);
      for (const c of others) {
        const got = hits(c, "sse-got", t)[0].args[2];
        if (got !== serverIds[c.node]) throw new Error(`${c.label}: receiving server ${got}`);
      }
    }
    closeAll();
  }
});

await check("server-side-emit-ack", async () => {
  for (const nsp of ["/", "/chat"]) {
    const all = await everywhere(1, nsp);
    for (let n = 0; n < nodes.length; n++) {
      const payload = classic ? { t: token("sseack") } : { t: token("sseack"), bin: Buffer.from([1, 2, 3]) };
      const reply = await call(all[n], "sse-ack", payload);
      if (reply.err !== null) throw new Error(`${nsp} from node ${n}: ${reply.err}`);
      const servers = reply.responses.map((r) => r.server).sort();
      eq(servers, serverIds.filter((_, i) => i !== n).sort(), `${nsp} answering servers from node ${n}`);
      for (const r of reply.responses) {
        if (r.from !== serverIds[n] || r.payload.t !== payload.t) throw new Error(`answer ${JSON.stringify(r)}`);
        if (payload.bin && !Buffer.from(r.payload.bin).equals(payload.bin)) throw new Error("binary altered");
      }
    }
    closeAll();
  }
});

await check("broadcast-ack", async () => {
  for (const nsp of ["/", "/chat"]) {
    const all = await everywhere(2, nsp);
    for (let n = 0; n < nodes.length; n++) {
      const t = token("ack");
      const started = Date.now();
      const reply = await call(all[n * 2], "ack-broadcast", null, { t }, 4000);
      if (reply.err !== null) throw new Error(`${nsp} all from node ${n}: ${reply.err}`);
      eq(reply.responses.map((r) => r.name).sort(), all.map((c) => c.label).sort(), `${nsp} acks from node ${n}`);
      if (Date.now() - started > 3000) throw new Error("acks to all waited for the timeout");
    }
    // A room on one node only, from every node.
    const r = room("ackroom");
    const members = all.filter((c) => c.node === 1);
    for (const c of members) await call(c, "join", r);
    await sleep(250);
    for (let n = 0; n < nodes.length; n++) {
      const bin = Buffer.from([n, 0, 255]);
      const reply = await call(all[n * 2], "ack-broadcast", r, { t: token("ackr"), bin }, 4000);
      if (reply.err !== null) throw new Error(`${nsp} room from node ${n}: ${reply.err}`);
      eq(reply.responses.map((x) => x.name).sort(), members.map((c) => c.label).sort(), `${nsp} room acks from node ${n}`);
      for (const x of reply.responses) {
        if (!Buffer.from(x.payload.bin).equals(bin)) throw new Error("binary ack altered");
      }
    }
    // An empty room completes at once.
    for (let n = 0; n < nodes.length; n++) {
      const started = Date.now();
      const reply = await call(all[n * 2], "ack-broadcast", room("empty"), { t: token("acke") }, 4000);
      eq(reply, { err: null, responses: [] }, `${nsp} empty room from node ${n}`);
      if (Date.now() - started > 2000) throw new Error(`${nsp} empty room from node ${n} waited for the timeout`);
    }
    closeAll();
  }
});

await check("namespace-isolation", async () => {
  const root = await everywhere(1, "/");
  const chat = await everywhere(1, "/chat");
  const r = room("iso");
  for (const c of [...root, ...chat]) await call(c, "join", r);
  await sleep(250);
  for (let n = 0; n < nodes.length; n++) {
    let t = token("iso");
    await call(root[n], "to-room", r, t);
    await deliveries([...root, ...chat], root, "room-msg", t);
    t = token("isochat");
    await call(chat[n], "to-all", t);
    await deliveries([...root, ...chat], chat, "all-msg", t);
  }
});

if (classic) {
  // The legacy requests, published here as an old node would.
  await check("legacy-requests", async () => {
    const all = await everywhere(1);
    const r = room("legacy");
    await call(all[0], "join", r);
    await call(all[1], "join", r);
    await sleep(250);
    const sub = redis.duplicate();
    await sub.connect();
    const answers = [];
    await sub.subscribe("socket.io-response#/#", (m) => answers.push(JSON.parse(m)));
    const ask = async (request, count) => {
      const before = answers.length;
      await redis.publish("socket.io-request#/#", JSON.stringify({ uid: "legacy", ...request }));
      const deadline = Date.now() + 3000;
      while (Date.now() < deadline && answers.slice(before).filter((a) => a.requestId === request.requestId).length < count) await sleep(20);
      return answers.slice(before).filter((a) => a.requestId === request.requestId);
    };
    try {
      const sockets = await ask({ requestId: token("rq"), type: 0, rooms: [r] }, nodes.length);
      eq(sockets.length, nodes.length, "SOCKETS answers");
      eq(sockets.flatMap((a) => a.sockets).sort(), [all[0].id, all[1].id].sort(), "SOCKETS ids");
      const nr = room("legacyjoin");
      const joined = await ask({ requestId: token("rq"), type: 2, sid: all[2].id, room: nr }, 1);
      eq(joined.length, 1, "sid-form REMOTE_JOIN answers");
      let t = token("lj");
      await call(all[0], "to-room", nr, t);
      await deliveries(all, [all[2]], "room-msg", t);
      const left = await ask({ requestId: token("rq"), type: 3, sid: all[1].id, room: r }, 1);
      eq(left.length, 1, "sid-form REMOTE_LEAVE answers");
      t = token("ll");
      await call(all[2], "to-room", r, t);
      await deliveries(all, [all[0]], "room-msg", t);
      const gone = await ask({ requestId: token("rq"), type: 4, sid: all[0].id, close: false }, 1);
      eq(gone.length, 1, "sid-form REMOTE_DISCONNECT answers");
      await waitReason([all[0]], "io server disconnect");
    } finally {
      await sub.disconnect();
    }
  });

  // @socket.io/redis-emitter, from a process that is no Socket.IO server.
  await check("node-emitter", async () => {
    const emitter = new Emitter(redis);
    const all = await everywhere(1);
    const chat = await everywhere(1, "/chat");
    const r = room("em");
    await call(all[1], "join", r);
    await call(all[2], "join", r);
    await sleep(250);
    let t = token("emall");
    emitter.emit("all-msg", t, "emitter");
    await deliveries([...all, ...chat], all, "all-msg", t, "emitter");
    t = token("emroom");
    emitter.to(r).emit("room-msg", t, "emitter");
    await deliveries([...all, ...chat], [all[1], all[2]], "room-msg", t, "emitter");
    t = token("emchat");
    emitter.of("/chat").emit("all-msg", t, "emitter");
    await deliveries([...all, ...chat], chat, "all-msg", t, "emitter");
    const nr = room("emjoin");
    emitter.in(r).socketsJoin(nr);
    await sleep(500);
    t = token("emjoined");
    await call(all[0], "to-room", nr, t);
    await deliveries(all, [all[1], all[2]], "room-msg", t);
    t = token("emsse");
    emitter.serverSideEmit("sse", t, "emitter");
    await deliveries(all, all, "sse-got", t, "emitter");
  });
}

if (rustEmitter) {
  // duplex-redis's Emitter, from a process that is no Socket.IO server.
  const emit = (...args) => new Promise((resolve, reject) => {
    execFile(rustEmitter, [redisUrl, mode, ...args], { timeout: 10000 }, (err, _out, stderr) => {
      if (err) reject(new Error(`emit ${args.join(" ")}: ${err.message} ${stderr}`));
      else resolve();
    });
  });
  await check("rust-emitter", async () => {
    const all = await everywhere(1);
    const chat = await everywhere(1, "/chat");
    const [r, x] = [room("rem"), room("remx")];
    await call(all[1], "join", r);
    await call(all[2], "join", [r, x]);
    await sleep(250);
    let t = token("remall");
    await emit("/", "to", "-", "-", "all-msg", t, "rust-emitter");
    await deliveries([...all, ...chat], all, "all-msg", t, "rust-emitter");
    t = token("remroom");
    await emit("/", "to", r, "-", "room-msg", t, "rust-emitter");
    await deliveries([...all, ...chat], [all[1], all[2]], "room-msg", t, "rust-emitter");
    t = token("remexcept");
    await emit("/", "to", r, x, "room-msg", t, "rust-emitter");
    await deliveries([...all, ...chat], [all[1]], "room-msg", t, "rust-emitter");
    t = token("remchat");
    await emit("/chat", "to", "-", "-", "all-msg", t, "rust-emitter");
    await deliveries([...all, ...chat], chat, "all-msg", t, "rust-emitter");
    const nr = room("remjoin");
    await emit("/", "join", r, "-", nr);
    await sleep(500);
    t = token("remjoined");
    await call(all[0], "to-room", nr, t);
    await deliveries(all, [all[1], all[2]], "room-msg", t);
    await emit("/", "leave", "-", x, nr);
    await sleep(500);
    t = token("remleft");
    await call(all[0], "to-room", nr, t);
    await deliveries(all, [all[2]], "room-msg", t);
    t = token("remsse");
    await emit("/", "server-side", "sse", t, "rust-emitter");
    await deliveries(all, all, "sse-got", t, "rust-emitter");
    await emit("/", "disconnect", x, "-", "false");
    await waitReason([all[2]], "io server disconnect");
    if (!all[1].connected) throw new Error(`${all[1].label}: disconnected outside the room`);
  });
}

if (restartPidfile) {
  await check("redis-restart", async () => {
    const port = new URL(redisUrl).port;
    const all = await everywhere(1);
    await redis.sendCommand(["SHUTDOWN", "NOSAVE"]).catch(() => {});
    await sleep(500);
    // Redis away: local delivery goes on, nothing crashes.
    for (let n = 0; n < nodes.length; n++) {
      const t = token("away");
      await call(all[n], "local-to-all", t);
      await deliveries(all, [all[n]], "local-msg", t);
      // A cluster broadcast reaches the local clients at once in classic
      // mode. Node's sharded adapter (socket.io-adapter's ClusterAdapter)
      // delivers locally only once its SPUBLISH went through, so not while
      // Redis is away: not checked there.
      if (classic) {
        const t2 = token("awayall");
        await call(all[n], "to-all", t2);
        const deadline = Date.now() + 3000;
        while (Date.now() < deadline && !hits(all[n], "all-msg", t2).length) await sleep(20);
        if (hits(all[n], "all-msg", t2).length !== 1) throw new Error(`node ${n}: no local delivery while Redis is away`);
      }
    }
    const child = spawn("redis-server", ["--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
    writeFileSync(restartPidfile, String(child.pid));
    child.unref();
    // Cluster-wide delivery resumes once every node is back.
    const deadline = Date.now() + 30000;
    let last;
    while (Date.now() < deadline) {
      try {
        await waitSubscribers(nodes.length, 1);
        const t = token("back");
        await call(all[0], "to-all", t);
        await deliveries(all, all, "all-msg", t);
        return;
      } catch (e) {
        last = e;
        await sleep(500);
      }
    }
    throw new Error(`cluster-wide delivery did not resume in 30 s: ${last?.message}`);
  });
}

if (killPid) {
  await check("node-killed", async () => {
    const all = await everywhere(1);
    process.kill(Number(killPid), "SIGKILL");
    const dead = nodes.length - 1;
    await sleep(1000);
    const alive = all.filter((c) => c.node !== dead);
    const started = Date.now();
    const list = normalise(await call(alive[0], "fetch-sockets", null, null));
    eq(list.map((s) => s.id), alive.map((c) => c.id).sort(), "fetchSockets after the kill");
    const reply = await call(alive[0], "sse-ack", { t: token("afterkill") });
    if (reply.err !== null) throw new Error(`serverSideEmitWithAck after the kill: ${reply.err}`);
    eq(reply.responses.length, alive.length - 1, "answers after the kill");
    if (Date.now() - started > 4000) throw new Error("requests waited for the dead node");
    nodes = nodes.slice(0, dead);
  });
}

await redis.disconnect().catch(() => {});
finish(`cluster-${mode}`);
