#!/usr/bin/env bash
# Socket.IO interop: npm socket.io-client (Node) against
# `duplex conformance-server`'s /socket.io/ endpoint (the handlers of
# shared/conformance/socketio-suites.md), in three modes:
#
#   polling    transports: ["polling"], no upgrade
#   websocket  transports: ["websocket"]
#   upgrade    polling first, then upgraded to WebSocket (checked)
#
# Each mode runs scripts/conformance/socketio/client-interop.mjs (auth
# payloads, JSON events, UTF-8 beyond the BMP and U+2028, binary attachments
# nested and empty, acks both ways with binary, namespaces multiplexed on one
# connection, the invalid-namespace error, ordering) and prints
#   socketio-client-<mode>: N passed, N failed
#
# Then the other way round: the duplex Socket.IO client (the example
# crates/duplex-tokio/examples/socketio_client_interop.rs, built here in
# release) against the Node reference server (npm socket.io,
# scripts/conformance/socketio/reference-server.mjs, on 127.0.0.1) in the
# same three modes, reconnection included; each prints
#   socketio-rust-client-<mode>: N passed, N failed
#
# Run it through the driver:  DUPLEX_SUITES=socketio scripts/conformance.sh
# It installs the npm packages pinned in scripts/conformance/socketio/
# (package-lock.json) into $DUPLEX_CACHE/socketio with `npm ci` (reused while
# the lock file is unchanged), starts the server on a free 127.0.0.1 port,
# bounds every run with a timeout, and stops everything it started on exit.
# Logs go to $DUPLEX_OUT/socketio/. Exits non-zero on any failure.
#
# Environment, besides the driver's DUPLEX_ROOT, DUPLEX_CACHE, DUPLEX_OUT
# and DUPLEX_BIN (all optional):
#   SOCKETIO_MODES     modes to run (default "polling websocket upgrade")
#   SOCKETIO_RUST_CLIENT=0   skip the duplex client against the Node server
#   SOCKETIO_TIMEOUT   seconds one mode may take (default 120)
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"
helpers="$here/socketio"
modes="${SOCKETIO_MODES:-polling websocket upgrade}"
run_timeout="${SOCKETIO_TIMEOUT:-120}"

cache="$DUPLEX_CACHE/socketio"
out="$DUPLEX_OUT/socketio"
mkdir -p "$cache" "$out"

say() { echo "socketio: $*"; }

# rust_fail_all: every duplex-client line a failure, and out.
rust_fail_all() {
    local mode
    for mode in $modes; do
        echo "socketio-rust-client-$mode: 0 passed, 1 failed"
    done
    exit 1
}

fail_all() {
    local mode
    for mode in $modes; do
        echo "socketio-client-$mode: 0 passed, 1 failed"
    done
    [[ "${SOCKETIO_RUST_CLIENT:-1}" != 0 ]] && rust_fail_all
    exit 1
}

ensure_node "$out/install.log" || fail_all
need_duplex_bin || fail_all
# The npm packages, installed from the committed lock file.
npm_ci "$helpers" "$cache" socket.io-client "$out/install.log" || fail_all
copy_mjs "$cache" "$helpers"

port="$(free_port)"
start_duplex server "$port" --stomp-addr 127.0.0.1:0 || fail_all
server_pid=$spawned

status=0
for mode in $modes; do
    log="$out/client-$mode.log"
    timeout -k 5 "$run_timeout" node "$cache/client-interop.mjs" "http://127.0.0.1:$port" "$mode" >"$log" 2>&1
    report "socketio-client-$mode" "$log" $? '^  FAIL ' || status=1
done

if ! kill -0 "$server_pid" 2>/dev/null; then
    say "the server exited during the run"
    tail -n 15 "$out/server.log"
    status=1
fi

# The duplex client against the Node reference server.
if [[ "${SOCKETIO_RUST_CLIENT:-1}" != 0 ]]; then
    example="$(dirname "$DUPLEX_BIN")/examples/socketio_client_interop"
    if ! (cd "$DUPLEX_ROOT" && cargo build --release -p duplex-tokio --example socketio_client_interop --quiet) >"$out/rust-client-build.log" 2>&1; then
        say "could not build the duplex client example (see $out/rust-client-build.log)"
        tail -n 15 "$out/rust-client-build.log"
        rust_fail_all
    fi
    ref_port="$(free_port)"
    start reference-server "$ref_port" node "$cache/reference-server.mjs" "$ref_port" || rust_fail_all
    for mode in $modes; do
        log="$out/rust-client-$mode.log"
        timeout -k 5 "$run_timeout" "$example" "http://127.0.0.1:$ref_port" "$mode" --reference >"$log" 2>&1
        report "socketio-rust-client-$mode" "$log" $? '^  FAIL ' || status=1
    done
fi
exit $status
