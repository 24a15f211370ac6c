// A Node member of the streams cluster for the request checks: npm
// socket.io 4.8 with @socket.io/redis-streams-adapter (0.3.x: requests and
// responses over pub/sub) on node-redis, serving on `/` at /socket.io/ the
// events of shared/conformance/socketio-cluster.md these checks use, as
// `duplex conformance-server --redis URL --redis-streams` does:
//
//   node cluster-node.mjs <port> <redis url> <name>
//
// Listens on 127.0.0.1 only.
import { createServer } from "node:http";
import { Server } from "socket.io";
import { createClient } from "redis";
import { createAdapter } from "@socket.io/redis-streams-adapter";

const port = Number(process.argv[2]);
const SERVER_ID = process.argv[4] ?? `node-${process.pid}`;
const redisClient = createClient({ url: process.argv[3] });
redisClient.on("error", (e) => console.error("redis:", e.message));
await redisClient.connect();

const httpServer = createServer();
const io = new Server(httpServer, { adapter: createAdapter(redisClient) });
const nsp = io.of("/");

nsp.on("connection", (socket) => {
  socket.data = { name: socket.handshake.auth?.name ?? null };
  const guard = (fn) => async (...args) => {
    const ack = typeof args[args.length - 1] === "function" ? args.pop() : () => {};
    try {
      await fn(ack, ...args);
    } catch (e) {
      ack({ error: e.message });
    }
  };
  socket.on("whoami", guard((ack) => ack({ server: SERVER_ID, id: socket.id, nsp: nsp.name })));
  socket.on("join", guard((ack, room) => { socket.join(room); ack("ok"); }));
  socket.on("to-all", guard((ack, payload) => { nsp.emit("all-msg", payload, SERVER_ID); ack("ok"); }));
  socket.on("fetch-sockets", guard(async (ack, room) => {
    const op = room === null || room === undefined ? nsp : nsp.in(room);
    const sockets = await op.fetchSockets();
    ack(sockets.map((s) => ({
      id: s.id,
      rooms: [...s.rooms].sort(),
      data: s.data,
      auth: s.handshake.auth,
    })));
  }));
  socket.on("sse-ack", guard(async (ack, payload) => {
    try {
      const responses = await nsp.serverSideEmitWithAck("sse-ack", payload, SERVER_ID);
      ack({ err: null, responses });
    } catch (e) {
      ack({ err: e.message, responses: e.responses ?? [] });
    }
  }));
  socket.on("ack-broadcast", guard((ack, room, payload, timeoutMs) => {
    const op = room === null || room === undefined ? nsp : nsp.to(room);
    op.timeout(timeoutMs).emit("ack-req", payload, SERVER_ID, (err, responses) => {
      ack({ err: err ? err.message : null, responses: responses ?? [] });
    });
  }));
});
nsp.on("sse-ack", (payload, from, callback) => {
  callback({ server: SERVER_ID, from, payload });
});

httpServer.listen(port, "127.0.0.1", () => console.log(`${SERVER_ID} listening on ${port}`));
process.on("SIGTERM", () => process.exit(0));
