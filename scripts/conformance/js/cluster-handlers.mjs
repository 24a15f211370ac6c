// The handlers of shared/conformance/socketio-cluster.md on one namespace
// of a Node member of a cluster (npm socket.io with any Redis adapter):
// socketio-cluster/reference-node.mjs (on `/` and `/chat`) and
// suite-28-streams-recovery/cluster-node.mjs (on `/`). Imports nothing: the
// caller hands its namespace in.

/// `nsp`, narrowed to `room` and then without `except` where given.
function select(nsp, room, except) {
  let op = nsp;
  if (room !== null && room !== undefined) op = op.in(room);
  if (except !== null && except !== undefined) op = op.except(except);
  return op;
}

/// The contract's handlers on namespace `nsp` of the server named `SERVER_ID`.
export function serveClusterContract(nsp, SERVER_ID) {
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
