#!/usr/bin/env bash
# Socket.IO echo load: the Node reference server (npm socket.io 4.8.1,
# socketio-echo-server.mjs, with the heartbeat settings of the duplex
# conformance server) next to `duplex conformance-server`, both on one
# thread, both driven by the same Node load client
# (socketio-echo-client.mjs, npm socket.io-client) over loopback.
#
#   crates/duplex-bench/scenarios/socketio-echo.sh [seconds] [rounds]
#
# For each transport (websocket, polling) and client count (1, 100) it runs
# the client for <seconds> (default 5) against each server in turn,
# <rounds> times (default 2), interleaved, and prints one JSON line per run.
# Everything listens on 127.0.0.1; every process it starts is killed on exit;
# each run is bounded by `timeout`. Needs node and npm; installs the two npm
# packages from the conformance lock file into .cache/bench/socketio.
set -euo pipefail

seconds="${1:-5}"
rounds="${2:-2}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
helpers="$root/scripts/conformance/socketio"
cache="$root/.cache/bench/socketio"
duplex="${DUPLEX_BIN:-$root/target/release/duplex}"
pids=()

cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT

mkdir -p "$cache"
if [[ ! -d "$cache/node_modules/socket.io-client" ]]; then
    cp "$helpers/package.json" "$helpers/package-lock.json" "$cache/"
    (cd "$cache" && timeout 600 npm ci --no-audit --no-fund >/dev/null)
fi
cp "$here/socketio-echo-server.mjs" "$here/socketio-echo-client.mjs" "$cache/"

if [[ -z "${DUPLEX_BIN:-}" ]]; then
    (cd "$root" && cargo build --release -q -p duplex-cli)
fi

free_port() {
    node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

wait_port() {
    local port=$1 deadline=$((SECONDS + 30))
    while ((SECONDS < deadline)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "nothing listens on 127.0.0.1:$port" >&2
    return 1
}

node_port="$(free_port)"
(cd "$cache" && exec node socketio-echo-server.mjs "$node_port") >"$cache/node-server.log" 2>&1 &
node_pid=$!
pids+=("$node_pid")
duplex_port="$(free_port)"
"$duplex" conformance-server --addr "127.0.0.1:$duplex_port" --stomp-addr 127.0.0.1:0 >"$cache/duplex-server.log" 2>&1 &
duplex_pid=$!
pids+=("$duplex_pid")
wait_port "$node_port"
wait_port "$duplex_port"

for ((round = 1; round <= rounds; round++)); do
    for transport in websocket polling; do
        for clients in 1 100; do
            for server in node duplex; do
                port=node_port
                [[ $server == duplex ]] && port=duplex_port
                line="$(cd "$cache" && timeout $((seconds + 90)) node socketio-echo-client.mjs \
                    "http://127.0.0.1:${!port}" "$transport" "$clients" "$seconds" 16)"
                echo "{\"server\":\"$server\",\"round\":$round,${line#\{}"
            done
        done
    done
done
