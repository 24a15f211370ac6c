// The Node reference Socket.IO server (npm socket.io 4.8) with connection
// state recovery on and the handlers of
// shared/conformance/socketio-recovery.md, at /recovery/, for the duplex
// Rust client (crates/duplex-tokio/examples/socketio_recovery_interop.rs):
//
//   node reference-server.mjs <port>
//
// Listens on 127.0.0.1 only.
import { createServer } from "node:http";
import { Server } from "socket.io";
import { recoveryOptions, serveRecovery } from "./recovery-server.mjs";

const port = Number(process.argv[2]);
const httpServer = createServer();
serveRecovery(new Server(httpServer, recoveryOptions()));

httpServer.listen(port, "127.0.0.1");
