#!/usr/bin/env bash
# A 150-second soak of `duplex serve` with `duplex-bench soak` (built here in
# release): WebSocket echo, STOMP over TCP, WebSocket and SockJS (websocket,
# xhr polling, xhr_streaming) with client acks, Socket.IO over WebSocket,
# polling and upgrades with acks, SSE with Last-Event-ID reconnections, some
# clients killed mid-session and some mid-message (half a frame, half a
# STOMP SEND, half a request body); every promised message exactly once,
# /stats back to zero, RSS flat after warm-up. Prints "soak: N passed, N failed".
#
# Run it through the driver:  DUPLEX_SUITES=soak scripts/conformance.sh
# DUPLEX_SOAK_SECONDS changes the length (docs/reliability.md has a longer
# run). Everything listens on 127.0.0.1; the server is stopped on exit.
# Logs go to $DUPLEX_OUT/soak/.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"
# 150 s, not less: with every client kind running, RSS climbs for about a
# minute before it levels off (the 30-minute run in docs/reliability.md:
# 42-52 MiB with no trend after the first minute), and the check compares
# the last third of the run with the second.
seconds="${DUPLEX_SOAK_SECONDS:-150}"
out="$DUPLEX_OUT/soak"
mkdir -p "$out"

fail() {
    echo "soak: $*"
    echo "soak: 0 passed, 1 failed"
    exit 1
}

[[ -x "$DUPLEX_BIN" ]] || fail "no duplex binary at $DUPLEX_BIN"
if ! (cd "$DUPLEX_ROOT" && cargo build --release --quiet -p duplex-bench) >"$out/build.log" 2>&1; then
    fail "building duplex-bench failed (see $out/build.log)"
fi
# Where cargo put it: CARGO_TARGET_DIR moves the target folder.
target_dir="${CARGO_TARGET_DIR:-$DUPLEX_ROOT/target}"
case "$target_dir" in /*) ;; *) target_dir="$DUPLEX_ROOT/$target_dir" ;; esac
bench="$target_dir/release/duplex-bench"

start_serve || fail "duplex serve did not announce its HTTP and STOMP listeners (see $out/server.log, $out/server.err)"
server=$spawned

timeout $((seconds + 180)) "$bench" soak --url "http://$addr" --stomp-addr "$stomp_addr" \
    --seconds "$seconds" --server-pid "$server" 2>&1 | tee "$out/soak.log"
status=${PIPESTATUS[0]}
grep -q '^soak: [0-9]* passed, [0-9]* failed' "$out/soak.log" \
    || echo "soak: 0 passed, 1 failed (no summary: timed out or crashed, status $status)"
exit "$status"
