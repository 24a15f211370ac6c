// Node peers of suite-65-tls-http2.sh against `duplex conformance-server
// --tls-cert … --tls-key …` (shared/conformance/tls-http2.md):
//
//   tls-ws        npm `ws` over wss:// (no ALPN, so HTTP/1.1): text, binary,
//                 1 MiB, ping/pong, close 1000
//   tls-socketio  socket.io-client over https:// polling, wss:// and the
//                 polling → websocket upgrade (cert trusted through
//                 NODE_EXTRA_CA_CERTS)
//   h2-http       Node's http2 client: SETTINGS_ENABLE_CONNECT_PROTOCOL,
//                 Engine.IO polling with a parked GET and a POST on one
//                 connection, SockJS info/xhr_streaming/xhr_send
//   tls-timeouts  idle connections closed within 15 s (no ClientHello; ALPN
//                 http/1.1 and no request; ALPN h2 and no preface), a
//                 cleartext request to the TLS port closed within 5 s, and
//                 the next client served
//   h2-websocket  RFC 8441: extended CONNECT on /echo (text, binary, 1 MiB),
//                 /stomp (v12.stomp), /socket.io/, SockJS websocket; 10 at
//                 once on one connection, one reset by the client, the rest
//                 working; bad CONNECTs refused with 405/400/426/404
//
// Usage: node tls-tests.mjs https://127.0.0.1:PORT CERT.pem GROUP...
// Prints `<group>: N passed, N failed` per group and `FAIL <group> <what>`.
//
// Node 20's HTTP/2 client can spin forever when a session is destroyed in
// the same tick as a peer's RST_STREAM: every session here waits a few
// milliseconds before it is closed, and the script runs under ulimit -v.

import crypto from "node:crypto";
import fs from "node:fs";
import http2 from "node:http2";
import https from "node:https";
import net from "node:net";
import tls from "node:tls";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const [base, certFile, ...groups] = process.argv.slice(2);
const ca = fs.readFileSync(certFile);
const url = new URL(base);
const authority = `localhost:${url.port}`;
const origin = `https://localhost:${url.port}`;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const within = (ms, p, what) =>
  Promise.race([p, sleep(ms).then(() => { throw new Error(`timeout: ${what}`); })]);

// ---------------------------------------------------------------- frames

function frame(opcode, payload, fin = true) {
  const len = payload.length;
  let header;
  if (len < 126) {
    header = Buffer.alloc(2);
    header[1] = 0x80 | len;
  } else if (len < 65536) {
    header = Buffer.alloc(4);
    header[1] = 0x80 | 126;
    header.writeUInt16BE(len, 2);
  } else {
    header = Buffer.alloc(10);
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(BigInt(len), 2);
  }
  header[0] = (fin ? 0x80 : 0) | opcode;
  const mask = crypto.randomBytes(4);
  const body = Buffer.alloc(len);
  for (let i = 0; i < len; i++) body[i] = payload[i] ^ mask[i & 3];
  return Buffer.concat([header, mask, body]);
}

/** A WebSocket over one HTTP/2 stream (client side, RFC 8441). */
class H2WebSocket {
  constructor(session, path, headers = {}) {
    this.buf = Buffer.alloc(0);
    this.messages = [];
    this.waiters = [];
    this.fragments = null;
    this.ended = false;
    this.stream = session.request({
      ":method": "CONNECT",
      ":protocol": "websocket",
      ":scheme": "https",
      ":path": path,
      ":authority": authority,
      "sec-websocket-version": "13",
      origin,
      ...headers,
    });
    this.response = new Promise((resolve, reject) => {
      this.stream.once("response", resolve);
      this.stream.once("error", reject);
    });
    this.stream.on("data", (d) => this.onData(d));
    this.stream.on("end", () => { this.ended = true; this.wake(); });
    this.stream.on("close", () => { this.ended = true; this.wake(); });
    this.stream.on("error", () => {});
  }
  onData(d) {
    this.buf = Buffer.concat([this.buf, d]);
    for (;;) {
      if (this.buf.length < 2) return;
      const fin = (this.buf[0] & 0x80) !== 0;
      const opcode = this.buf[0] & 0x0f;
      if (this.buf[1] & 0x80) throw new Error("server frame masked");
      let len = this.buf[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (this.buf.length < 4) return;
        len = this.buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return;
        len = Number(this.buf.readBigUInt64BE(2));
        off = 10;
      }
      if (this.buf.length < off + len) return;
      const payload = this.buf.subarray(off, off + len);
      this.buf = this.buf.subarray(off + len);
      if (opcode === 0) {
        this.fragments.data.push(payload);
        if (fin) this.push(this.fragments.opcode, Buffer.concat(this.fragments.data));
      } else if (opcode >= 8 || fin) {
        this.push(opcode, Buffer.from(payload));
      } else {
        this.fragments = { opcode, data: [payload] };
      }
    }
  }
  push(opcode, data) {
    this.messages.push({ opcode, data });
    this.wake();
  }
  wake() {
    for (const w of this.waiters.splice(0)) w();
  }
  async next(ms = 5000) {
    const deadline = Date.now() + ms;
    while (this.messages.length === 0) {
      if (this.ended) throw new Error("stream ended");
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("no message in time");
      await Promise.race([new Promise((r) => this.waiters.push(r)), sleep(left)]);
    }
    return this.messages.shift();
  }
  send(opcode, payload) {
    this.stream.write(frame(opcode, Buffer.from(payload)));
  }
  text(s) { this.send(1, Buffer.from(s)); }
  async close() {
    const code = Buffer.alloc(2);
    code.writeUInt16BE(1000);
    this.send(8, code);
    const m = await this.next();
    if (m.opcode !== 8 || m.data.readUInt16BE(0) !== 1000) throw new Error(`close answered with ${m.opcode}`);
    const deadline = Date.now() + 5000;
    while (!this.ended && Date.now() < deadline) await sleep(10);
    if (!this.ended) throw new Error("no END_STREAM after the close");
    this.stream.end();
  }
}

async function h2session() {
  const session = http2.connect(base, { ca, servername: "localhost" });
  session.on("error", () => {});
  await within(5000, new Promise((r) => session.once("remoteSettings", r)), "SETTINGS");
  return session;
}

async function closeSession(session) {
  // Node 20: never destroy a session in the tick a peer's RST arrives.
  await sleep(20);
  session.close();
  await sleep(5);
}

function h2request(session, headers, body) {
  return new Promise((resolve, reject) => {
    const req = session.request({ ":scheme": "https", ":authority": authority, ...headers });
    const chunks = [];
    let status = 0;
    req.on("response", (h) => { status = h[":status"]; });
    req.on("data", (d) => chunks.push(d));
    req.on("end", () => resolve({ status, body: Buffer.concat(chunks).toString() }));
    req.on("error", reject);
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

// ---------------------------------------------------------------- runner

const results = {};
async function check(group, name, fn, ms = 20000) {
  results[group] ??= { passed: 0, failed: 0 };
  try {
    await within(ms, fn(), name);
    results[group].passed++;
    console.log(`ok   ${group} ${name}`);
  } catch (e) {
    results[group].failed++;
    console.log(`FAIL ${group} ${name}: ${e && e.message}`);
  }
}
function assert(cond, what) {
  if (!cond) throw new Error(what);
}

// ---------------------------------------------------------------- tls-ws

async function tlsWs() {
  const WebSocket = require("ws");
  const open = () =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(`wss://localhost:${url.port}/echo`, { ca });
      ws.once("open", () => resolve(ws));
      ws.once("error", reject);
    });
  const reply = (ws) => new Promise((r) => ws.once("message", (data, binary) => r({ data, binary })));
  await check("tls-ws", "text and binary echoed", async () => {
    const ws = await open();
    ws.send("hello over wss");
    const t = await reply(ws);
    assert(!t.binary && t.data.toString() === "hello over wss", "text");
    ws.send(Buffer.from([1, 2, 3]));
    const b = await reply(ws);
    assert(b.binary && Buffer.compare(b.data, Buffer.from([1, 2, 3])) === 0, "binary");
    ws.close(1000);
    const code = await new Promise((r) => ws.once("close", r));
    assert(code === 1000, `close ${code}`);
  });
  await check("tls-ws", "1 MiB message", async () => {
    const ws = await open();
    const big = crypto.randomBytes(1 << 20);
    ws.send(big);
    const b = await reply(ws);
    assert(Buffer.compare(b.data, big) === 0, "1 MiB differs");
    ws.close(1000);
  });
  await check("tls-ws", "ping answered with the same payload", async () => {
    const ws = await open();
    ws.ping("abc");
    const data = await new Promise((r) => ws.once("pong", r));
    assert(data.toString() === "abc", "pong payload");
    ws.close(1000);
  });
}

// ---------------------------------------------------------------- tls-socketio

async function tlsSocketio() {
  const { io } = require("socket.io-client");
  for (const [name, transports, upgrade] of [
    ["https polling", ["polling"], false],
    ["wss websocket", ["websocket"], false],
    ["polling upgraded to wss", ["polling", "websocket"], true],
  ]) {
    await check("tls-socketio", name, async () => {
      const socket = io(`https://localhost:${url.port}`, { transports, upgrade, forceNew: true, reconnection: false, ca });
      try {
        await new Promise((resolve, reject) => {
          socket.once("connect", resolve);
          socket.once("connect_error", reject);
        });
        if (upgrade) {
          const engine = socket.io.engine;
          if (engine.transport.name !== "websocket") await new Promise((r) => engine.once("upgrade", r));
        }
        const back = new Promise((r) => socket.once("message-back", (...args) => r(args)));
        socket.emit("message", 1, "two", { three: 3 });
        const args = await back;
        assert(JSON.stringify(args) === JSON.stringify([1, "two", { three: 3 }]), `message-back ${JSON.stringify(args)}`);
        const acked = await socket.timeout(5000).emitWithAck("message-with-ack", "x", 2);
        assert(acked === "x", `ack ${JSON.stringify(acked)}`);
        assert(socket.io.engine.transport.name === transports[transports.length - 1], socket.io.engine.transport.name);
      } finally {
        socket.close();
      }
    });
  }
}

// ---------------------------------------------------------------- h2-http

async function h2Http() {
  await check("h2-http", "SETTINGS_ENABLE_CONNECT_PROTOCOL = 1", async () => {
    const s = await h2session();
    assert(s.remoteSettings.enableConnectProtocol === true, "extended CONNECT not announced");
    assert(s.alpnProtocol === "h2", `ALPN ${s.alpnProtocol}`);
    await closeSession(s);
  });
  await check("h2-http", "Engine.IO: a POST answered while a GET is parked on the same connection", async () => {
    const s = await h2session();
    const open = await h2request(s, { ":method": "GET", ":path": "/socket.io/?EIO=4&transport=polling" });
    assert(open.status === 200 && open.body.startsWith("0{"), `handshake ${open.status} ${open.body}`);
    const sid = JSON.parse(open.body.slice(1)).sid;
    const path = `/socket.io/?EIO=4&transport=polling&sid=${sid}`;
    const post = (body) => h2request(s, { ":method": "POST", ":path": path, "content-type": "text/plain" }, body);
    assert((await post("40")).status === 200, "connect POST");
    const connected = await h2request(s, { ":method": "GET", ":path": path });
    assert(connected.body.startsWith("40"), `connect ${connected.body}`);
    const parked = h2request(s, { ":method": "GET", ":path": path });
    await sleep(100);
    const posted = await within(2000, post('42["message","over h2"]'), "POST beside a parked GET");
    assert(posted.status === 200, `POST ${posted.status}`);
    const got = await within(3000, parked, "parked GET");
    assert(got.body.includes('42["message-back","over h2"]'), `parked GET got ${got.body}`);
    await closeSession(s);
  });
  await check("h2-http", "SockJS info, xhr_streaming with xhr_send on one connection", async () => {
    const s = await h2session();
    const info = await h2request(s, { ":method": "GET", ":path": "/sockjs/echo/info" });
    assert(info.status === 200 && JSON.parse(info.body).websocket === true, `info ${info.status}`);
    const sess = crypto.randomBytes(6).toString("hex");
    const prefix = `/sockjs/echo/000/${sess}`;
    const stream = s.request({ ":method": "POST", ":path": `${prefix}/xhr_streaming`, ":scheme": "https", ":authority": authority });
    stream.end();
    let text = "";
    stream.on("data", (d) => { text += d.toString(); });
    stream.on("error", () => {});
    const until = async (pred, what) => {
      const deadline = Date.now() + 5000;
      while (!pred()) {
        if (Date.now() > deadline) throw new Error(what);
        await sleep(10);
      }
    };
    await until(() => text.includes("o\n"), "xhr_streaming open frame");
    assert(text.startsWith("h".repeat(2048) + "\n"), "2048-byte prelude");
    const sent = await h2request(s, { ":method": "POST", ":path": `${prefix}/xhr_send`, "content-type": "text/plain" }, '["over h2"]');
    assert(sent.status === 204, `xhr_send ${sent.status}`);
    await until(() => text.includes('a["over h2"]\n'), "message on the open stream");
    stream.close(http2.constants.NGHTTP2_CANCEL);
    await closeSession(s);
  });
}

// ---------------------------------------------------------------- h2-websocket

async function h2Websocket() {
  await check("h2-websocket", "/echo: text, binary and 1 MiB over one stream, close 1000 then END_STREAM", async () => {
    const s = await h2session();
    const ws = new H2WebSocket(s, "/echo");
    const h = await ws.response;
    assert(h[":status"] === 200, `status ${h[":status"]}`);
    assert(h["sec-websocket-accept"] === undefined, "sec-websocket-accept on HTTP/2");
    ws.text("hello over h2");
    let m = await ws.next();
    assert(m.opcode === 1 && m.data.toString() === "hello over h2", "text");
    ws.send(2, Buffer.from([0, 255, 7]));
    m = await ws.next();
    assert(m.opcode === 2 && Buffer.compare(m.data, Buffer.from([0, 255, 7])) === 0, "binary");
    const big = crypto.randomBytes(1 << 20);
    ws.send(2, big);
    m = await ws.next(15000);
    assert(m.opcode === 2 && Buffer.compare(m.data, big) === 0, "1 MiB");
    // A fragmented text message and a ping.
    ws.stream.write(frame(1, Buffer.from("frag"), false));
    ws.stream.write(frame(0, Buffer.from("mented"), true));
    m = await ws.next();
    assert(m.data.toString() === "fragmented", "fragments");
    ws.send(9, Buffer.from("p!"));
    m = await ws.next();
    assert(m.opcode === 10 && m.data.toString() === "p!", "pong");
    await ws.close();
    await closeSession(s);
  });
  await check("h2-websocket", "10 at once on one connection; one reset, the others go on, a new one opens", async () => {
    const s = await h2session();
    const all = [];
    for (let i = 0; i < 10; i++) all.push(new H2WebSocket(s, "/echo"));
    for (const ws of all) { const st = (await ws.response)[":status"]; assert(st === 200, `status ${st}`); }
    all.forEach((ws, i) => ws.text(`n${i}`));
    for (const [i, ws] of all.entries()) assert((await ws.next()).data.toString() === `n${i}`, `echo ${i}`);
    all[3].stream.close(http2.constants.NGHTTP2_CANCEL);
    await sleep(50);
    for (const [i, ws] of all.entries()) {
      if (i === 3) continue;
      ws.text(`again${i}`);
      assert((await ws.next()).data.toString() === `again${i}`, `echo after reset ${i}`);
    }
    const fresh = new H2WebSocket(s, "/echo");
    assert((await fresh.response)[":status"] === 200, "new stream after a reset");
    fresh.text("fresh");
    assert((await fresh.next()).data.toString() === "fresh", "fresh echo");
    for (const [i, ws] of all.entries()) if (i !== 3) await ws.close();
    await fresh.close();
    assert(!s.destroyed && !s.closed, "session still open (no GOAWAY)");
    await closeSession(s);
  });
  await check("h2-websocket", "/stomp with v12.stomp: CONNECT, SUBSCRIBE, SEND, MESSAGE, DISCONNECT", async () => {
    const s = await h2session();
    const ws = new H2WebSocket(s, "/stomp", { "sec-websocket-protocol": "v12.stomp" });
    const h = await ws.response;
    assert(h[":status"] === 200 && h["sec-websocket-protocol"] === "v12.stomp", `${h[":status"]} ${h["sec-websocket-protocol"]}`);
    const nextFrame = async () => {
      for (;;) {
        const m = await ws.next();
        const t = m.data.toString();
        if (t.trim() !== "") return t;
      }
    };
    ws.text("CONNECT\naccept-version:1.2\nhost:localhost\n\n\0");
    assert((await nextFrame()).startsWith("CONNECTED\n"), "CONNECTED");
    ws.text("SUBSCRIBE\nid:s1\ndestination:/topic/h2\nreceipt:r1\n\n\0");
    assert((await nextFrame()).includes("receipt-id:r1"), "RECEIPT");
    ws.text("SEND\ndestination:/topic/h2\ncontent-type:text/plain\n\nover h2\0");
    const msg = await nextFrame();
    assert(msg.startsWith("MESSAGE\n") && msg.includes("subscription:s1") && msg.includes("over h2"), msg);
    ws.text("DISCONNECT\nreceipt:r2\n\n\0");
    assert((await nextFrame()).includes("receipt-id:r2"), "DISCONNECT receipt");
    await closeSession(s);
  });
  await check("h2-websocket", "/socket.io/ websocket transport over an HTTP/2 stream", async () => {
    const s = await h2session();
    const ws = new H2WebSocket(s, "/socket.io/?EIO=4&transport=websocket");
    { const st = (await ws.response)[":status"]; assert(st === 200, `status ${st}`); }
    assert((await ws.next()).data.toString().startsWith("0{"), "Engine.IO open");
    // The conformance server pings every 300 ms: answered, not counted.
    const next = async () => {
      for (;;) {
        const t = (await ws.next()).data.toString();
        // Pings, and the conformance handlers' own `auth` event on connect.
        if (t !== "2" && !t.startsWith('42["auth"')) return t;
        if (t === "2") ws.text("3");
      }
    };
    ws.text("40");
    assert((await next()).startsWith("40"), "Socket.IO connect");
    ws.text('42["message","h2"]');
    const back = await next();
    assert(back === '42["message-back","h2"]', `message-back: ${back}`);
    await ws.close();
    await closeSession(s);
  });
  await check("h2-websocket", "SockJS websocket transport over an HTTP/2 stream", async () => {
    const s = await h2session();
    const ws = new H2WebSocket(s, `/sockjs/echo/000/${crypto.randomBytes(6).toString("hex")}/websocket`);
    { const st = (await ws.response)[":status"]; assert(st === 200, `status ${st}`); }
    assert((await ws.next()).data.toString() === "o", "open frame");
    ws.text('["sockjs over h2"]');
    assert((await ws.next()).data.toString() === 'a["sockjs over h2"]', "echo");
    await closeSession(s);
  });
  await check("h2-websocket", "bad extended CONNECTs refused, the connection still usable", async () => {
    const s = await h2session();
    const status = (headers) =>
      new Promise((resolve, reject) => {
        const req = s.request(headers);
        req.on("response", (h) => { resolve(h[":status"]); req.close(); });
        req.on("error", reject);
      });
    const noProtocol = await status({ ":method": "CONNECT", ":authority": authority });
    assert(noProtocol === 405, `no :protocol: ${noProtocol}`);
    const base = { ":method": "CONNECT", ":scheme": "https", ":authority": authority, ":path": "/echo", "sec-websocket-version": "13" };
    const other = await status({ ...base, ":protocol": "chat" });
    assert(other === 400, `unknown :protocol: ${other}`);
    const version = await status({ ...base, ":protocol": "websocket", "sec-websocket-version": "8" });
    assert(version === 426 || version === 400, `version 8: ${version}`);
    const nowhere = await status({ ...base, ":protocol": "websocket", ":path": "/nowhere" });
    assert(nowhere === 404, `no endpoint: ${nowhere}`);
    const ws = new H2WebSocket(s, "/echo");
    assert((await ws.response)[":status"] === 200, "a WebSocket after the refusals");
    ws.text("still here");
    assert((await ws.next()).data.toString() === "still here", "echo");
    await ws.close();
    await closeSession(s);
  });
}

// ---------------------------------------------------------------- tls-timeouts

/** Resolves with the seconds until the server closed `socket`. */
function closedAfter(socket, limitMs) {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`still open after ${limitMs / 1000} s`)); }, limitMs);
    socket.on("error", () => {});
    socket.once("close", () => { clearTimeout(timer); resolve((Date.now() - start) / 1000); });
  });
}

function tlsConnect(alpn) {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port: Number(url.port), ca, servername: "localhost", ALPNProtocols: alpn });
    socket.once("secureConnect", () => resolve(socket));
    socket.once("error", reject);
  });
}

async function tlsTimeouts() {
  // The four run at once: each waits up to 15 s.
  const checks = [
    check("tls-timeouts", "TCP without a ClientHello closed within 15 s", async () => {
      const socket = net.connect(Number(url.port), "127.0.0.1");
      await closedAfter(socket, 15000);
    }),
    check("tls-timeouts", "ALPN http/1.1 without a request closed within 15 s", async () => {
      const socket = await tlsConnect(["http/1.1"]);
      assert(socket.alpnProtocol === "http/1.1", `ALPN ${socket.alpnProtocol}`);
      await closedAfter(socket, 15000);
    }),
    check("tls-timeouts", "ALPN h2 without the preface closed within 15 s", async () => {
      const socket = await tlsConnect(["h2", "http/1.1"]);
      assert(socket.alpnProtocol === "h2", `ALPN ${socket.alpnProtocol}`);
      await closedAfter(socket, 15000);
    }),
    check("tls-timeouts", "a cleartext request to the TLS port closed within 5 s", async () => {
      const socket = net.connect(Number(url.port), "127.0.0.1");
      socket.write(`GET /echo HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
      socket.resume();
      await closedAfter(socket, 5000);
    }),
  ];
  await Promise.all(checks);
  await check("tls-timeouts", "the next client is served (no ALPN: HTTP/1.1)", async () => {
    const body = await new Promise((resolve, reject) => {
      https.get(`https://localhost:${url.port}/sockjs/echo/info`, { ca }, (res) => {
        let text = "";
        res.on("data", (d) => { text += d; });
        res.on("end", () => resolve({ status: res.statusCode, version: res.httpVersion, text }));
      }).on("error", reject);
    });
    assert(body.status === 200 && body.version === "1.1", `${body.status} HTTP/${body.version}`);
    const missing = await h2session().then(async (s) => {
      const r = await h2request(s, { ":method": "GET", ":path": "/no/such/endpoint" });
      await closeSession(s);
      return r.status;
    });
    assert(missing === 404, `unknown path over h2: ${missing}`);
  });
}

const all = {
  "tls-timeouts": tlsTimeouts, "tls-ws": tlsWs, "tls-socketio": tlsSocketio, "h2-http": h2Http, "h2-websocket": h2Websocket };
for (const g of groups) {
  results[g] ??= { passed: 0, failed: 0 };
  try {
    await all[g]();
  } catch (e) {
    results[g].failed++;
    console.log(`FAIL ${g} (group died): ${e && e.message}`);
  }
  console.log(`${g}: ${results[g].passed} passed, ${results[g].failed} failed`);
}
await sleep(20);
process.exit(0);
