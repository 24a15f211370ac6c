// npm `ws` with permessage-deflate against duplex, in both roles.
//
//   node interop.mjs client ws://127.0.0.1:PORT/echo
//       ws is the client of duplex's echo endpoint, once per deflate
//       configuration; prints "ws-deflate ws-client: N passed, N failed".
//   node interop.mjs server
//       ws is an echo server with permessage-deflate on 127.0.0.1; prints
//       "listening PORT" and serves until killed (the duplex client runs
//       against it).
import { WebSocket, WebSocketServer } from "ws";

const configs = {
  "defaults": {},
  "no context takeover": { serverNoContextTakeover: true, clientNoContextTakeover: true },
  "small windows": { serverMaxWindowBits: 9, clientMaxWindowBits: 10 },
};

function messages() {
  const chat = JSON.stringify({ type: "chat", room: "general", user: "ann", text: "hello, everyone ".repeat(20) });
  const binary = Buffer.alloc(64 * 1024);
  for (let i = 0; i < binary.length; i++) binary[i] = (i * 7) % 251;
  return [
    ["short text", "hello"],
    ["empty text", ""],
    ["UTF-8 beyond the BMP and U+2028", "𝄞 κόσμε \u2028 end"],
    ["JSON chat", chat],
    ["64 KiB binary", binary],
    ["1 MiB text", "duplex ".repeat(150_000)],
    ["empty binary", Buffer.alloc(0)],
  ];
}

function same(a, b) {
  if (typeof a === "string") return typeof b === "string" && a === b;
  return Buffer.isBuffer(b) && Buffer.compare(a, b) === 0;
}

async function runClient(url) {
  let passed = 0, failed = 0;
  const check = (ok, what) => {
    if (ok) passed++; else { failed++; console.log(`FAIL ${what}`); }
  };
  for (const [name, options] of Object.entries(configs)) {
    try {
      const ws = new WebSocket(url, { perMessageDeflate: { threshold: 0, ...options } });
      const inbox = [];
      let wake = null;
      ws.on("message", (data, isBinary) => {
        inbox.push(isBinary ? Buffer.from(data) : data.toString("utf8"));
        if (wake) wake();
      });
      await new Promise((resolve, reject) => { ws.once("open", resolve); ws.once("error", reject); });
      check(/permessage-deflate/.test(ws.extensions), `${name}: negotiated (${ws.extensions})`);
      for (const [what, payload] of messages()) {
        ws.send(payload, { binary: typeof payload !== "string", compress: true });
        if (!inbox.length) await new Promise((resolve) => { wake = resolve; setTimeout(resolve, 5000); });
        wake = null;
        check(inbox.length && same(payload, inbox.shift()), `${name}: ${what} echoed`);
      }
      const closed = new Promise((resolve) => ws.once("close", (code) => resolve(code)));
      ws.close(1000, "done");
      check((await closed) === 1000, `${name}: clean close`);
    } catch (e) {
      check(false, `${name}: ${e}`);
    }
  }
  console.log(`ws-deflate ws-client: ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

function runServer() {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: { threshold: 0 } });
  wss.on("listening", () => console.log(`listening ${wss.address().port}`));
  wss.on("connection", (ws) => {
    ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary, compress: true }));
  });
}

const [mode, url] = process.argv.slice(2);
if (mode === "client") await runClient(url);
else if (mode === "server") runServer();
else { console.error("usage: interop.mjs client URL | server"); process.exit(2); }
