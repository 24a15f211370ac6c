// The client side of shared/conformance/socketio-recovery.md, shared by
// suite-27-recovery/client-checks.mjs and
// suite-28-streams-recovery/cross-checks.mjs: npm socket.io-client 4.8 at
// /recovery/, the contract's events, and what a client records of a stream.
import { io } from "socket.io-client";

export const PATH = "/recovery/";

/// A client of 127.0.0.1:`port` (a node, or a proxy in front of one) that
/// reconnects fast.
export function connect(port, opts = {}) {
  return io(`http://127.0.0.1:${port}`, {
    path: PATH,
    forceNew: true,
    reconnectionDelay: 100,
    reconnectionDelayMax: 500,
    ...opts,
  });
}

export const ack = (s, event, ...args) => s.timeout(5000).emitWithAck(event, ...args);

/// Records the ticks of stream `id` on `s`.
export function record(s, id) {
  const got = { ticks: [], ends: 0 };
  s.on("tick", (sid, seq) => sid === id && got.ticks.push(seq));
  s.on("stream-end", (sid) => sid === id && (got.ends += 1));
  return got;
}

/// Throws unless `got` holds ticks 0..n-1 once each, in order, and one end;
/// `what` (if given) names the stream in the message.
export function exactly(got, n, what) {
  const prefix = what ? `${what}: ` : "";
  const want = [...Array(n).keys()];
  if (JSON.stringify(got.ticks) !== JSON.stringify(want)) {
    throw new Error(`${prefix}ticks ${JSON.stringify(got.ticks)}, want 0..${n - 1} once each`);
  }
  if (got.ends !== 1) throw new Error(`${prefix}stream-end came ${got.ends} times`);
}
