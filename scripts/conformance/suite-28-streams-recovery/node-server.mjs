// A Node member of the streams cluster: npm socket.io 4.8 with
// @socket.io/redis-streams-adapter 0.3.1 on node-redis 5, connection state
// recovery on, and the handlers of shared/conformance/socketio-recovery.md
// at /recovery/ (as duplex conformance-server --recovery-redis serves them):
//
//   node node-server.mjs <port> <redis url>
//
// Listens on 127.0.0.1 only.
import { createServer } from "node:http";
import { Server } from "socket.io";
import { createClient } from "redis";
import { createAdapter } from "@socket.io/redis-streams-adapter";
import { recoveryOptions, serveRecovery } from "./recovery-server.mjs";

const port = Number(process.argv[2]);
const redisClient = createClient({ url: process.argv[3] });
redisClient.on("error", (e) => console.error("redis:", e.message));
await redisClient.connect();

const httpServer = createServer();
serveRecovery(new Server(httpServer, recoveryOptions({ adapter: createAdapter(redisClient) })));

httpServer.listen(port, "127.0.0.1");
