// A Node member of the streams cluster for the request checks: npm
// socket.io 4.8 with @socket.io/redis-streams-adapter (0.3.x: requests and
// responses over pub/sub) on node-redis, serving on `/` at /socket.io/ the
// events of shared/conformance/socketio-cluster.md (these checks use a few),
// as `duplex conformance-server --redis URL --redis-streams` does:
//
//   node cluster-node.mjs <port> <redis url> <name>
//
// Listens on 127.0.0.1 only.
import { createServer } from "node:http";
import { Server } from "socket.io";
import { createClient } from "redis";
import { createAdapter } from "@socket.io/redis-streams-adapter";
import { serveClusterContract } from "./cluster-handlers.mjs";

const port = Number(process.argv[2]);
const SERVER_ID = process.argv[4] ?? `node-${process.pid}`;
const redisClient = createClient({ url: process.argv[3] });
redisClient.on("error", (e) => console.error("redis:", e.message));
await redisClient.connect();

const httpServer = createServer();
const io = new Server(httpServer, { adapter: createAdapter(redisClient) });
const nsp = io.of("/");

serveClusterContract(nsp, SERVER_ID);

httpServer.listen(port, "127.0.0.1", () => console.log(`${SERVER_ID} listening on ${port}`));
process.on("SIGTERM", () => process.exit(0));
