#!/usr/bin/env bash
# Hostile clients against `duplex serve` (scripts/conformance/hostile/hostile.py,
# Python 3 standard library only; nothing is built or installed here):
# slow and half handshakes, oversized heads, frames announcing 2^63 bytes and
# a 100 MiB fragmented message, protocol violations (unmasked, reserved
# opcodes and bits, bad UTF-8, bad close codes), deflate bombs (1 GiB in one
# frame, 256 MiB over fragments), request bodies trickled past the 30 s body
# read timeout and over each endpoint's size, ping floods with unread pongs, 2,000 idle
# connections, 2,000 abandoned SockJS and 2,000 abandoned Engine.IO sessions,
# Socket.IO packets announcing 10^6 attachments, a STOMP header flood, silent
# STOMP peers. Each attack checks the protocol's answer, that a well-behaved
# client is served meanwhile, and (where it holds memory) that the server's
# RSS is back within 16 MiB of its baseline within 15 s. Prints
# "hostile: N passed, N failed"; about 3 minutes.
#
# Run it through the driver:  DUPLEX_SUITES=hostile scripts/conformance.sh
# Everything listens on 127.0.0.1 (free ports), every wait is bounded, and
# the server is stopped on exit. Logs go to $DUPLEX_OUT/hostile/.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"
out="$DUPLEX_OUT/hostile"
mkdir -p "$out"

fail() {
    echo "hostile: $*"
    echo "hostile: 0 passed, 1 failed"
    exit 1
}

command -v python3 >/dev/null 2>&1 || fail "python3 is missing"
[[ -x "$DUPLEX_BIN" ]] || fail "no duplex binary at $DUPLEX_BIN"
# The idle-connection attack holds 2,000 sockets on each side.
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

start_serve || fail "duplex serve did not announce its HTTP and STOMP listeners (see $out/server.log, $out/server.err)"
server=$spawned
# Let the server settle before its baseline RSS is taken.
sleep 1

timeout 400 python3 "$here/hostile/hostile.py" --addr "$addr" --stomp-addr "$stomp_addr" \
    --pid "$server" 2>&1 | tee "$out/hostile.log"
status=${PIPESTATUS[0]}
grep -q '^hostile: [0-9]* passed, [0-9]* failed' "$out/hostile.log" \
    || echo "hostile: 0 passed, 1 failed (no summary: timed out or crashed, status $status)"
exit "$status"
