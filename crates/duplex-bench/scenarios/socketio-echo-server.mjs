// The Node reference Socket.IO server (npm socket.io) for the echo load,
// with the heartbeat given (default: the settings `duplex
// conformance-server` uses, pingInterval 300 ms, pingTimeout 200 ms) and
// maxHttpBufferSize 1e6, so both servers run the same heartbeat; like the
// duplex servers of the scenario it runs on one thread.
//
//   node socketio-echo-server.mjs <port> [pingInterval ms] [pingTimeout ms] [--rooms]
//
// Listens on 127.0.0.1 only; `message-with-ack` acks with its arguments.
// With --rooms (the broadcast scenario, socketio-broadcast.sh) it serves
// `join` and `to-room` too, as `duplex-bench sio-server --rooms` does: those
// of shared/conformance/socketio-cluster.md, `room-msg` carrying the
// payload alone. Off by default: each handler is a listener on every
// socket, which the idle-memory row would count.
import { createServer } from "node:http";
import { Server } from "socket.io";

const port = Number(process.argv[2]);
const pingInterval = Number(process.argv[3] ?? 300);
const pingTimeout = Number(process.argv[4] ?? 200);
const rooms = process.argv.includes("--rooms");
const httpServer = createServer();
const io = new Server(httpServer, {
  pingInterval,
  pingTimeout,
  maxHttpBufferSize: 1e6,
});
io.on("connection", (socket) => {
  socket.on("message-with-ack", (...args) => {
    const ack = args.pop();
    if (typeof ack === "function") ack(...args);
  });
  if (!rooms) return;
  socket.on("join", (room, ack) => {
    socket.join(room);
    if (typeof ack === "function") ack("ok");
  });
  socket.on("to-room", (room, payload, ack) => {
    io.to(room).emit("room-msg", payload);
    if (typeof ack === "function") ack("ok");
  });
});
httpServer.listen(port, "127.0.0.1", () => {
  console.log(`socket.io echo server on http://127.0.0.1:${port} (ping ${pingInterval}/${pingTimeout} ms)`);
});
