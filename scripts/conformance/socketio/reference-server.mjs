// The Node reference Socket.IO server (npm socket.io) with the handlers of
// shared/conformance/socketio-suites.md, for the duplex Rust client:
//
//   node reference-server.mjs <port>
//
// Listens on 127.0.0.1 only. On `/` and `/custom`: `auth` emitted on
// connect with the CONNECT payload, `message` -> `message-back`,
// `message-with-ack` -> ack with the same arguments, `server-ack` ->
// `please-ack` (with an ack) -> `client-acked`; and, for the client's own
// checks, `transport` -> ack with the transport name, `kill` -> the server
// closes the connection (to exercise reconnection).
import { createServer } from "node:http";
import { Server } from "socket.io";

const port = Number(process.argv[2]);
const httpServer = createServer();
const io = new Server(httpServer, {
  pingInterval: 1000,
  pingTimeout: 1000,
  maxHttpBufferSize: 1e6,
  connectTimeout: 5000,
});

function handlers(socket) {
  socket.emit("auth", socket.handshake.auth);
  socket.on("message", (...args) => socket.emit("message-back", ...args));
  socket.on("message-with-ack", (...args) => {
    const ack = args.pop();
    if (typeof ack === "function") ack(...args);
  });
  socket.on("server-ack", (...args) => {
    socket.timeout(10000).emit("please-ack", ...args, (err, ...reply) => {
      if (!err) socket.emit("client-acked", ...reply);
    });
  });
  socket.on("transport", (ack) => ack(socket.conn.transport.name));
  socket.on("kill", () => socket.conn.close());
}

io.on("connection", handlers);
io.of("/custom").on("connection", handlers);

httpServer.listen(port, "127.0.0.1", () => {
  console.log(`reference socket.io server on http://127.0.0.1:${port}`);
});
