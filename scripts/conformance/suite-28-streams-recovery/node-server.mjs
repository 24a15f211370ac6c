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

const port = Number(process.argv[2]);
const redisClient = createClient({ url: process.argv[3] });
redisClient.on("error", (e) => console.error("redis:", e.message));
await redisClient.connect();

const httpServer = createServer();
const io = new Server(httpServer, {
  path: "/recovery/",
  pingInterval: 1000,
  pingTimeout: 1000,
  maxHttpBufferSize: 1e6,
  connectTimeout: 5000,
  connectionStateRecovery: { maxDisconnectionDuration: 10000, skipMiddlewares: true },
  adapter: createAdapter(redisClient),
});

io.on("connection", (socket) => {
  socket.on("join", (room, ack) => {
    socket.join(room);
    ack({ rooms: [...socket.rooms] });
  });
  socket.on("set-data", (value, ack) => {
    socket.data = value;
    ack(true);
  });
  socket.on("get-data", (ack) => ack(socket.data ?? {}));
  socket.on("whoami", (ack) =>
    ack({ id: socket.id, rooms: [...socket.rooms], recovered: socket.recovered }),
  );
  socket.on("stream", (spec, ack) => {
    const { id, n, intervalMs, room } = spec ?? {};
    if (typeof id !== "string" || !Number.isInteger(n) || n < 1 || n > 10000
        || !Number.isInteger(intervalMs) || intervalMs < 1 || intervalMs > 10000) {
      return ack({ error: "bad stream" });
    }
    ack({ ok: true });
    // By id, as the contract says: the socket restored anywhere in the
    // cluster (same id) gets the later ticks live.
    const target = room ? io.to(room) : io.to(socket.id);
    let seq = 0;
    const timer = setInterval(() => {
      target.emit("tick", id, seq);
      seq += 1;
      if (seq === n) {
        clearInterval(timer);
        target.emit("stream-end", id, n);
      }
    }, intervalMs);
  });
});

httpServer.listen(port, "127.0.0.1");
