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
helpers="$here/socketio"
DUPLEX_ROOT="${DUPLEX_ROOT:-$(cd "$here/../.." && pwd)}"
DUPLEX_CACHE="${DUPLEX_CACHE:-$DUPLEX_ROOT/.cache/conformance}"
DUPLEX_OUT="${DUPLEX_OUT:-$DUPLEX_ROOT/conformance-out}"
DUPLEX_BIN="${DUPLEX_BIN:-$DUPLEX_ROOT/target/release/duplex}"
modes="${SOCKETIO_MODES:-polling websocket upgrade}"
mode_timeout="${SOCKETIO_TIMEOUT:-120}"

cache="$DUPLEX_CACHE/socketio"
out="$DUPLEX_OUT/socketio"
mkdir -p "$cache" "$out"

say() { echo "socketio: $*"; }

fail_all() {
    local mode
    for mode in $modes; do
        echo "socketio-client-$mode: 0 passed, 1 failed"
    done
    if [[ "${SOCKETIO_RUST_CLIENT:-1}" != 0 ]]; then
        for mode in $modes; do
            echo "socketio-rust-client-$mode: 0 passed, 1 failed"
        done
    fi
    exit 1
}

# shellcheck source=lib.sh
source "$here/lib.sh"

if ! ensure_node "$out/install.log"; then
    say "could not install nodejs/npm (see $out/install.log)"
    fail_all
fi

if [[ ! -x "$DUPLEX_BIN" ]]; then
    say "no duplex binary at $DUPLEX_BIN (run through scripts/conformance.sh, which builds it)"
    fail_all
fi

# The npm packages, installed from the committed lock file.
key="$(cat "$helpers/package.json" "$helpers/package-lock.json" | sha256sum | cut -d' ' -f1)"
if [[ ! -d "$cache/node_modules/socket.io-client" || "$(cat "$cache/.install-key" 2>/dev/null)" != "$key" ]]; then
    say "installing socket.io-client and socket.io into $cache"
    cp "$helpers/package.json" "$helpers/package-lock.json" "$cache/"
    rm -rf "$cache/node_modules"
    if ! (cd "$cache" && timeout 600 npm ci --no-audit --no-fund) >"$out/install.log" 2>&1; then
        say "npm ci failed (see $out/install.log)"
        tail -n 15 "$out/install.log"
        fail_all
    fi
    echo "$key" >"$cache/.install-key"
fi
cp "$helpers"/*.mjs "$cache/"

free_port() {
    node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

# wait_port PID PORT SECONDS: 0 listening, 1 timeout, 2 PID exited.
wait_port() {
    local pid=$1 port=$2 deadline=$((SECONDS + $3))
    while ((SECONDS < deadline)); do
        kill -0 "$pid" 2>/dev/null || return 2
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

port="$(free_port)"
"$DUPLEX_BIN" conformance-server --addr "127.0.0.1:$port" --stomp-addr 127.0.0.1:0 >"$out/server.log" 2>&1 &
server_pid=$!
pids+=("$server_pid")
wait_port "$server_pid" "$port" 30
case $? in
    1) say "the server did not listen on 127.0.0.1:$port within 30 s"; fail_all ;;
    2) say "the server exited at start"; tail -n 15 "$out/server.log"; fail_all ;;
esac

status=0
for mode in $modes; do
    log="$out/client-$mode.log"
    timeout -k 5 "$mode_timeout" node "$cache/client-interop.mjs" "http://127.0.0.1:$port" "$mode" >"$log" 2>&1
    rc=$?
    grep -E '^  FAIL ' "$log"
    if ! grep -E "^socketio-client-$mode: [0-9]+ passed, [0-9]+ failed$" "$log"; then
        echo "socketio-client-$mode: 0 passed, 1 failed"
        ((rc == 124)) && say "$mode: did not finish within $mode_timeout s"
        tail -n 10 "$log"
        status=1
    elif ((rc != 0)); then
        status=1
    fi
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
        for mode in $modes; do
            echo "socketio-rust-client-$mode: 0 passed, 1 failed"
        done
        exit 1
    fi
    ref_port="$(free_port)"
    node "$cache/reference-server.mjs" "$ref_port" >"$out/reference-server.log" 2>&1 &
    ref_pid=$!
    pids+=("$ref_pid")
    wait_port "$ref_pid" "$ref_port" 30
    case $? in
        0) ;;
        *) say "the Node reference server did not start"
           tail -n 15 "$out/reference-server.log"
           for mode in $modes; do
               echo "socketio-rust-client-$mode: 0 passed, 1 failed"
           done
           exit 1 ;;
    esac
    for mode in $modes; do
        log="$out/rust-client-$mode.log"
        timeout -k 5 "$mode_timeout" "$example" "http://127.0.0.1:$ref_port" "$mode" --reference >"$log" 2>&1
        rc=$?
        grep -E '^  FAIL ' "$log"
        if ! grep -E "^socketio-rust-client-$mode: [0-9]+ passed, [0-9]+ failed$" "$log"; then
            echo "socketio-rust-client-$mode: 0 passed, 1 failed"
            ((rc == 124)) && say "rust client $mode: did not finish within $mode_timeout s"
            tail -n 10 "$log"
            status=1
        elif ((rc != 0)); then
            status=1
        fi
    done
fi
exit $status
