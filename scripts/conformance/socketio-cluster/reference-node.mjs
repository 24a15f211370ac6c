// The Node reference node of shared/conformance/socketio-cluster.md:
// npm socket.io with @socket.io/redis-adapter (classic `createAdapter`, or
// `createShardedAdapter` with --sharded), serving the contract's handlers
// on `/` and `/chat`:
//
//   node reference-node.mjs --port PORT --redis redis://127.0.0.1:RPORT \
//        --name NAME [--sharded]
//
// Listens on 127.0.0.1 only; exits on SIGTERM.
import { createServer } from "node:http";
import { Server } from "socket.io";
import { createClient } from "redis";
import { createAdapter, createShardedAdapter } from "@socket.io/redis-adapter";
import { serveClusterContract } from "./cluster-handlers.mjs";

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const port = Number(arg("--port"));
const redisUrl = arg("--redis");
const SERVER_ID = arg("--name", `node-${process.pid}`);
const sharded = process.argv.includes("--sharded");

// node-redis reconnects by itself (and resubscribes); errors while Redis is
// away are logged, not fatal.
const pub = createClient({ url: redisUrl });
const sub = pub.duplicate();
for (const c of [pub, sub]) c.on("error", (e) => console.error("redis:", e.message));
await Promise.all([pub.connect(), sub.connect()]);

const httpServer = createServer();
const io = new Server(httpServer, {
  adapter: sharded ? createShardedAdapter(pub, sub) : createAdapter(pub, sub),
});

serveClusterContract(io.of("/"), SERVER_ID);
serveClusterContract(io.of("/chat"), SERVER_ID);

httpServer.listen(port, "127.0.0.1", () => console.log(`${SERVER_ID} listening on ${port}`));
process.on("SIGTERM", () => process.exit(0));
