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

function select(nsp, room, except) {
  let op = nsp;
  if (room !== null && room !== undefined) op = op.in(room);
  if (except !== null && except !== undefined) op = op.except(except);
  return op;
}

function handlers(nsp) {
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
    socket.on("leave", guard((ack, room) => {
      for (const r of [].concat(room)) socket.leave(r);
      ack("ok");
    }));
    socket.on("to-all", guard((ack, payload) => { nsp.emit("all-msg", payload, SERVER_ID); ack("ok"); }));
    socket.on("to-room", guard((ack, room, payload) => {
      nsp.to(room).emit("room-msg", payload, SERVER_ID);
      ack("ok");
    }));
    socket.on("to-room-except", guard((ack, room, except, payload) => {
      nsp.to(room).except(except).emit("room-msg", payload, SERVER_ID);
      ack("ok");
    }));
    socket.on("socket-to-room", guard((ack, room, payload) => {
      socket.to(room).emit("room-msg", payload, SERVER_ID);
      ack("ok");
    }));
    socket.on("socket-broadcast", guard((ack, payload) => {
      socket.broadcast.emit("all-msg", payload, SERVER_ID);
      ack("ok");
    }));
    socket.on("local-to-all", guard((ack, payload) => {
      nsp.local.emit("local-msg", payload, SERVER_ID);
      ack("ok");
    }));
    socket.on("local-to-room", guard((ack, room, payload) => {
      nsp.local.to(room).emit("local-msg", payload, SERVER_ID);
      ack("ok");
    }));
    socket.on("sockets-join", guard((ack, room, except, newRoom) => {
      select(nsp, room, except).socketsJoin(newRoom);
      ack("ok");
    }));
    socket.on("sockets-leave", guard((ack, room, except, oldRoom) => {
      select(nsp, room, except).socketsLeave(oldRoom);
      ack("ok");
    }));
    socket.on("disconnect-sockets", guard((ack, room, except, close) => {
      // Acked first: the sender may be among the disconnected.
      ack("ok");
      select(nsp, room, except).disconnectSockets(close === true);
    }));
    socket.on("fetch-sockets", guard(async (ack, room, except) => {
      const sockets = await select(nsp, room, except).fetchSockets();
      ack(sockets.map((s) => ({
        id: s.id,
        rooms: [...s.rooms].sort(),
        data: s.data,
        auth: s.handshake.auth,
      })));
    }));
    socket.on("all-rooms", guard(async (ack) => {
      const rooms = await nsp.adapter.allRooms();
      ack([...rooms].sort());
    }));
    socket.on("sse", guard((ack, payload) => {
      nsp.serverSideEmit("sse", payload, SERVER_ID);
      ack("ok");
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
  nsp.on("sse", (payload, from) => {
    nsp.local.emit("sse-got", payload, from, SERVER_ID);
  });
  nsp.on("sse-ack", (payload, from, callback) => {
    callback({ server: SERVER_ID, from, payload });
  });
}

handlers(io.of("/"));
handlers(io.of("/chat"));

httpServer.listen(port, "127.0.0.1", () => console.log(`${SERVER_ID} listening on ${port}`));
process.on("SIGTERM", () => process.exit(0));
