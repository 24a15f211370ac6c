#!/usr/bin/env bash
# permessage-deflate interop with npm `ws` (perMessageDeflate on), both roles:
#
#   ws client -> `duplex conformance-server` /echo, in three deflate
#                configurations (defaults, no context takeover, small
#                windows); prints "ws-deflate ws-client: N passed, N failed"
#   duplex client (crates/duplex-tokio/examples/ws_deflate_interop.rs,
#                built here in release) -> a ws echo server, in the same
#                three configurations; prints
#                "ws-deflate duplex-client: N passed, N failed"
#
# Run it through the driver:  DUPLEX_SUITES=ws-deflate scripts/conformance.sh
# npm `ws` (pinned in scripts/conformance/ws-deflate/package.json) goes into
# $DUPLEX_CACHE/ws-deflate; everything listens on 127.0.0.1, every wait is
# bounded, and everything started here is stopped on exit. Logs go to
# $DUPLEX_OUT/ws-deflate/. Exits non-zero on any failure.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"
cache="$DUPLEX_CACHE/ws-deflate"
out="$DUPLEX_OUT/ws-deflate"
mkdir -p "$cache" "$out"

say() { echo "ws-deflate: $*"; }

fail() {
    say "$*"
    echo "ws-deflate ws-client: 0 passed, 1 failed"
    echo "ws-deflate duplex-client: 0 passed, 1 failed"
    exit 1
}

ensure_node "$out/install.log" || fail "could not install nodejs/npm (see $out/install.log)"
cp "$here/ws-deflate/package.json" "$here/ws-deflate/interop.mjs" "$cache/"
if ! (cd "$cache" && timeout 300 npm install --no-audit --no-fund --loglevel=error >"$out/npm.log" 2>&1); then
    fail "npm install failed (see $out/npm.log)"
fi
[[ -x "$DUPLEX_BIN" ]] || fail "no duplex binary at $DUPLEX_BIN"
if ! (cd "$DUPLEX_ROOT" && cargo build --release --quiet -p duplex-tokio --example ws_deflate_interop) >"$out/build.log" 2>&1; then
    fail "building the duplex client failed (see $out/build.log)"
fi
client_bin="$(dirname "$DUPLEX_BIN")/examples/ws_deflate_interop"

status=0

# ws client against the duplex server.
port="$(free_port)"
if start_duplex duplex-server "$port" --stomp-addr 127.0.0.1:0; then
    timeout 120 node "$cache/interop.mjs" client "ws://127.0.0.1:$port/echo" | tee "$out/ws-client.log" || status=1
else
    say "the duplex server did not start (see $out/duplex-server.log)"
    echo "ws-deflate ws-client: 0 passed, 1 failed"
    status=1
fi

# The duplex client against a ws server.
spawn "$out/ws-server.log" node "$cache/interop.mjs" server
if line="$(wait_for_line "$out/ws-server.log" "^listening [0-9]+")"; then
    timeout 120 "$client_bin" "ws://127.0.0.1:${line#listening }/" | tee "$out/duplex-client.log" || status=1
else
    say "the ws server did not start (see $out/ws-server.log)"
    echo "ws-deflate duplex-client: 0 passed, 1 failed"
    status=1
fi
exit $status
