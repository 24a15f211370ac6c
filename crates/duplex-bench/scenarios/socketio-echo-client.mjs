// Socket.IO echo load client (npm socket.io-client), the same for every
// server under test:
//
//   node socketio-echo-client.mjs <url> <websocket|polling> <clients> <seconds> <bytes>
//
// Opens <clients> connections with the one transport given (no upgrade),
// then each loops for <seconds>: emit `message-with-ack` with a string of
// <bytes> characters and wait for the ack carrying it back (the handler
// both servers have). Prints one JSON line: acks, seconds, acks per second,
// p50/p99 round trip in microseconds, any wrong echo (which fails), the
// clients dropped on the way (closed, or no ack within 10 s) and the CPU
// this process used over the run, in cores (1.0 = one core busy).
import { io } from "socket.io-client";

const [url, transport, clients, seconds, bytes] = process.argv.slice(2);
const count = Number(clients);
const payload = "x".repeat(Number(bytes));
const hardStop = setTimeout(() => {
  console.error("load client: hard time limit reached");
  process.exit(2);
}, (Number(seconds) + 60) * 1000);

function connect() {
  return new Promise((resolve, reject) => {
    const socket = io(url, {
      transports: [transport],
      upgrade: false,
      forceNew: true,
      reconnection: false,
      timeout: 20000,
    });
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", reject);
  });
}

const sockets = [];
// Connect in batches so a hundred handshakes do not all time out at once.
for (let i = 0; i < count; i += 20) {
  const batch = await Promise.all(
    Array.from({ length: Math.min(20, count - i) }, connect),
  );
  sockets.push(...batch);
}

let acks = 0;
let wrong = 0;
let dropped = 0;
const rtt = [];
const cpuBefore = process.cpuUsage();
const start = performance.now();
const end = start + Number(seconds) * 1000;
await Promise.all(
  sockets.map(async (socket) => {
    while (performance.now() < end) {
      const t0 = performance.now();
      let back;
      try {
        back = await socket.timeout(10000).emitWithAck("message-with-ack", payload);
      } catch {
        // Closed (a missed heartbeat under load) or no ack in 10 s: this
        // client stops; the run reports it.
        dropped++;
        return;
      }
      rtt.push(performance.now() - t0);
      if (back !== payload) wrong++;
      acks++;
    }
  }),
);
const elapsed = (performance.now() - start) / 1000;
const cpu = process.cpuUsage(cpuBefore);
rtt.sort((a, b) => a - b);
const pct = (p) => Math.round(1000 * (rtt[Math.min(rtt.length - 1, Math.floor(p * rtt.length))] ?? 0));
for (const socket of sockets) socket.disconnect();
clearTimeout(hardStop);
console.log(
  JSON.stringify({
    transport,
    clients: count,
    acks,
    seconds: Number(elapsed.toFixed(3)),
    acks_per_s: Math.round(acks / elapsed),
    p50_us: pct(0.5),
    p99_us: pct(0.99),
    wrong,
    dropped,
    client: "node",
    client_cpu: Number(((cpu.user + cpu.system) / 1e6 / elapsed).toFixed(3)),
  }),
);
process.exit(wrong === 0 ? 0 : 1);
