// The Node `ws` server that `duplex connect` talks to in
// scripts/conformance/suite-60-connect.sh:
//
//   node ws-server.mjs <port> <tls-port> <cert.pem> <key.pem>
//
// Listens on 127.0.0.1 only, plain on <port> and TLS on <tls-port>, with
// the same paths on both:
//
//   /echo      every message back, text as text and binary as binary
//   /protocol  first says which subprotocol it chose (the first offered,
//              or "none"), then echoes
//   /headers   first sends the request's X-Duplex-Test header, then echoes
//   /close     closes at once with 4001 "going now"
//   /push      sends "push N" every 300 ms until the client closes
//
// permessage-deflate is on (every message compressed), for clients that
// offer it. Every close is logged as `close <scheme><path> <code>
// <reason>` and every ping as `ping <scheme><path>` on stdout, so that the
// suite can check what the client sent.
import { createServer } from "node:http";
import { createServer as createTlsServer } from "node:https";
import { readFileSync } from "node:fs";
import { WebSocketServer } from "ws";

const [port, tlsPort, certFile, keyFile] = process.argv.slice(2);

function attach(server, label) {
  const wss = new WebSocketServer({
    server,
    perMessageDeflate: { threshold: 0 },
    handleProtocols: (protocols) => {
      const [first] = protocols;
      return first ?? false;
    },
  });
  wss.on("connection", (ws, req) => {
    const path = new URL(req.url, "http://x").pathname;
    ws.on("close", (code, reason) => {
      console.log(`close ${label}${path} ${code} ${reason.toString()}`);
    });
    ws.on("ping", () => console.log(`ping ${label}${path}`));
    ws.on("error", (e) => console.log(`error ${label}${path} ${e.message}`));
    const echo = () =>
      ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
    switch (path) {
      case "/echo":
        echo();
        break;
      case "/protocol":
        ws.send(`protocol ${ws.protocol || "none"}`);
        echo();
        break;
      case "/headers":
        ws.send(`header ${req.headers["x-duplex-test"] ?? "missing"}`);
        echo();
        break;
      case "/close":
        ws.close(4001, "going now");
        break;
      case "/push": {
        let n = 0;
        const timer = setInterval(() => ws.send(`push ${++n}`), 300);
        ws.on("close", () => clearInterval(timer));
        echo();
        break;
      }
      default:
        ws.close(4004, "no such path");
    }
  });
}

const plain = createServer();
attach(plain, "ws");
plain.listen(Number(port), "127.0.0.1", () => {
  console.log(`ws server on ws://127.0.0.1:${port}`);
});

const tls = createTlsServer({
  cert: readFileSync(certFile),
  key: readFileSync(keyFile),
});
attach(tls, "wss");
tls.listen(Number(tlsPort), "127.0.0.1", () => {
  console.log(`wss server on wss://127.0.0.1:${tlsPort}`);
});
