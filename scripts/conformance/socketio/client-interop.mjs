// npm socket.io-client (Node) against a Socket.IO server with the handlers
// of shared/conformance/socketio-suites.md (`duplex conformance-server`).
//
//   node client-interop.mjs <base url> <polling|websocket|upgrade>
//
// Prints one line per test and then `socketio-client-<mode>: N passed, N failed`;
// exits non-zero if any test failed. Every wait is bounded.
import { io } from "socket.io-client";
import assert from "node:assert/strict";
import { tally, withTimeout as bounded } from "./checks.mjs";

const [base, mode] = process.argv.slice(2);
if (!base || !["polling", "websocket", "upgrade"].includes(mode)) {
  console.error("usage: node client-interop.mjs <base url> <polling|websocket|upgrade>");
  process.exit(2);
}

const TEST_TIMEOUT_MS = 5000;

const transportOptions = {
  polling: { transports: ["polling"], upgrade: false },
  websocket: { transports: ["websocket"] },
  upgrade: { transports: ["polling", "websocket"], upgrade: true },
}[mode];

const withTimeout = (promise, what) => bounded(promise, TEST_TIMEOUT_MS, `timed out: ${what}`);

function once(emitter, event) {
  return new Promise((resolve) => emitter.once(event, (...args) => resolve(args)));
}

const sockets = [];

/** A connected socket on `namespace` (its own Manager unless `manager` is given). */
async function connect(namespace = "/", extra = {}) {
  const socket = io(base + namespace, {
    ...transportOptions,
    forceNew: true,
    reconnection: false,
    ...extra,
  });
  sockets.push(socket);
  const [auth] = await withTimeout(once(socket, "auth"), `auth on ${namespace}`);
  assert.ok(socket.connected, "connected");
  if (mode === "upgrade") {
    const engine = socket.io.engine;
    if (engine.transport.name !== "websocket") {
      await withTimeout(once(engine, "upgrade"), "upgrade to websocket");
    }
    assert.equal(engine.transport.name, "websocket");
  } else {
    assert.equal(socket.io.engine.transport.name, mode);
  }
  return { socket, auth };
}

/** Emits `message` with `args` and resolves with the `message-back` arguments. */
async function roundTrip(socket, ...args) {
  const back = once(socket, "message-back");
  socket.emit("message", ...args);
  return withTimeout(back, "message-back");
}

function ackRoundTrip(socket, ...args) {
  return withTimeout(
    new Promise((resolve) => socket.emit("message-with-ack", ...args, (...reply) => resolve(reply))),
    "ack",
  );
}

const tests = [];
function test(name, fn) {
  tests.push({ name, fn });
}

test("connect with an auth payload", async () => {
  const { auth } = await connect("/", { auth: { token: "abc", n: 1 } });
  assert.deepEqual(auth, { token: "abc", n: 1 });
});

test("connect without auth gets {}", async () => {
  const { auth } = await connect("/");
  assert.deepEqual(auth, {});
});

test("events with JSON arguments", async () => {
  const { socket } = await connect();
  const args = [1, "2", { 3: [true, false, null], nested: { a: [1.5, -2, 1e21] } }, [], {}, ""];
  assert.deepEqual(await roundTrip(socket, ...args), args);
});

test("UTF-8 beyond the BMP, U+2028 and U+2029", async () => {
  const { socket } = await connect();
  const text = "h\u00e9llo \u{1F600} \u{1D11E} \u2028 \u2029 \u0000 \uFEFF \u4e2d\u6587";
  const big = "\u{1F680}".repeat(10000);
  assert.deepEqual(await roundTrip(socket, text, { [text]: text }, big), [text, { [text]: text }, big]);
});

test("binary attachments, nested and empty", async () => {
  const { socket } = await connect();
  const args = [
    Buffer.from([1, 2, 3]),
    { a: Buffer.alloc(0), b: [Buffer.from([255, 0, 128]), { c: Buffer.from("\u{1F600}") }] },
    "text between",
    Buffer.alloc(0),
    Buffer.alloc(100000, 7),
  ];
  const back = await roundTrip(socket, ...args);
  assert.deepEqual(back.map(normalize), args.map(normalize));
});

test("ack from the server, with binary", async () => {
  const { socket } = await connect();
  const args = [1, { data: Buffer.from([9, 8, 7]) }, Buffer.alloc(0), "\u{1F600}"];
  const reply = await ackRoundTrip(socket, ...args);
  assert.deepEqual(reply.map(normalize), args.map(normalize));
});

test("ack from the client (server-initiated), with binary", async () => {
  const { socket } = await connect();
  socket.on("please-ack", (...args) => {
    const ack = args.pop();
    ack(...args, Buffer.from([42]));
  });
  const acked = once(socket, "client-acked");
  socket.emit("server-ack", "x", { bin: Buffer.from([1, 2]) });
  const reply = await withTimeout(acked, "client-acked");
  assert.deepEqual(reply.map(normalize), ["x", { bin: Buffer.from([1, 2]) }, Buffer.from([42])].map(normalize));
});

test("namespaces multiplexed on one connection", async () => {
  const main = io(base + "/", { ...transportOptions, forceNew: true, reconnection: false });
  sockets.push(main);
  const mainAuth = once(main, "auth");
  const custom = main.io.socket("/custom", { auth: { ns: "custom" } });
  sockets.push(custom);
  const customAuth = once(custom, "auth");
  const [[a], [b]] = await withTimeout(Promise.all([mainAuth, customAuth]), "both namespaces");
  assert.deepEqual(a, {});
  assert.deepEqual(b, { ns: "custom" });
  assert.equal(main.io, custom.io, "one Manager");
  assert.ok(main.id && custom.id && main.id !== custom.id, "distinct socket ids");
  let crossTalk = 0;
  main.on("message-back", (x) => x === "to custom" && crossTalk++);
  custom.on("message-back", (x) => x === "to main" && crossTalk++);
  const [m, c] = await Promise.all([roundTrip(main, "to main"), roundTrip(custom, "to custom")]);
  assert.deepEqual(m, ["to main"]);
  assert.deepEqual(c, ["to custom"]);
  assert.equal(crossTalk, 0, "each reply only on its own namespace");
  const gone = once(custom, "disconnect");
  custom.disconnect();
  await withTimeout(gone, "custom disconnect");
  assert.deepEqual(await roundTrip(main, "still here"), ["still here"]);
});

test("an unknown namespace is refused with 'Invalid namespace'", async () => {
  const socket = io(base + "/random", { ...transportOptions, forceNew: true, reconnection: false });
  sockets.push(socket);
  const [err] = await withTimeout(once(socket, "connect_error"), "connect_error");
  assert.equal(err.message, "Invalid namespace");
  assert.equal(socket.connected, false);
});

test("many events in order", async () => {
  const { socket } = await connect();
  const received = [];
  const done = new Promise((resolve) =>
    socket.on("message-back", (i) => {
      received.push(i);
      if (received.length === 500) resolve();
    }),
  );
  for (let i = 0; i < 500; i++) socket.emit("message", i);
  await withTimeout(done, "500 events");
  assert.deepEqual(received, [...Array(500).keys()]);
});

test("the client disconnects and the server sees it (a new connection works)", async () => {
  const { socket } = await connect();
  socket.disconnect();
  assert.equal(socket.connected, false);
  const { socket: again } = await connect();
  assert.deepEqual(await roundTrip(again, "after"), ["after"]);
});

/** Buffers, ArrayBuffers and typed arrays as plain arrays of bytes, for comparison. */
function normalize(v) {
  if (Buffer.isBuffer(v)) return { bytes: [...v] };
  if (v instanceof ArrayBuffer) return { bytes: [...new Uint8Array(v)] };
  if (ArrayBuffer.isView(v)) return { bytes: [...new Uint8Array(v.buffer, v.byteOffset, v.byteLength)] };
  if (Array.isArray(v)) return v.map(normalize);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normalize(x)]));
  return v;
}

const { check, finish } = tally({
  pass: `  ok   ${mode}: `,
  fail: `  FAIL ${mode}: `,
  timeoutMs: TEST_TIMEOUT_MS,
  timeoutMessage: (name) => `timed out: ${name}`,
  why: (e) => e.message.split("\n")[0],
  after: () => {
    while (sockets.length) sockets.pop().disconnect();
  },
});
for (const { name, fn } of tests) await check(name, fn);
finish(`socketio-client-${mode}`);
