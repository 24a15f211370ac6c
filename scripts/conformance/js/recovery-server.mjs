// The server side of shared/conformance/socketio-recovery.md for the Node
// servers (npm socket.io 4.8, suite-27's reference-server.mjs and
// suite-28's node-server.mjs): the options and the handlers the contract
// asks for at /recovery/. Imports nothing: the caller hands its Server in.

/// The Server options of the contract: /recovery/, 1 s ping interval and
/// timeout, recovery for 10 s; `extra` (e.g. an adapter) added.
export function recoveryOptions(extra = {}) {
  return {
    path: "/recovery/",
    pingInterval: 1000,
    pingTimeout: 1000,
    maxHttpBufferSize: 1e6,
    connectTimeout: 5000,
    connectionStateRecovery: { maxDisconnectionDuration: 10000, skipMiddlewares: true },
    ...extra,
  };
}

/// The contract's handlers on every connection of `io`'s main namespace.
export function serveRecovery(io) {
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
      // By id, as the contract says: a socket restored with the same id (on
      // this node, or anywhere in a cluster) gets the later ticks live.
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
}
