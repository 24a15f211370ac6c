#!/usr/bin/env bash
# Broadcast load (issue #19): one emit to a room of C clients (default
# 1000), three servers in the same run, each on one thread, each serving
# `join` and `to-room` (emit `room-msg` to the room) as the cluster
# contract has them:
#
#   duplex        duplex-bench sio-server --rooms (duplex-tokio's SocketIo)
#   socketioxide  duplex-bench sio-server --impl socketioxide --rooms
#   node          socketio-echo-server.mjs --rooms (npm socket.io 4.8.x)
#
#   crates/duplex-bench/scenarios/socketio-broadcast.sh [clients] [broadcasts] [rounds] [windows]
#
# The load is `duplex-bench cluster-load --node <server>` (src/clusterload.rs):
# the C clients (lean WebSocket clients, one thread) join the room, then one
# more client asks for B broadcasts (default 100) of SIZE characters
# (default 64), at most W not yet delivered to every client at a time, for
# each W in <windows> (default "1 0": 1 is each emit's fan-out alone, 0 all
# B back to back). It prints deliveries/s (first request to last delivery),
# the request-to-last-delivery times and the server's CPU time per delivery
# over the same span (steadier than the rates on a shared machine: the
# clients, on one thread, can be the limit of the rates). WORKERS=N runs the two Rust
# servers on N-worker multi-thread runtimes instead.
#
# Servers start once (with a warm-up run each, not recorded); each round
# runs every server (the order rotates between rounds) and prints one JSON
# line per run, then the medians and the ratios. Everything listens on
# 127.0.0.1; every process it starts is stopped on exit; each run is
# bounded by `timeout`. Needs node and npm (installed with apt-get if
# missing). Set DUPLEX_BENCH_BIN to skip the release build. Hold
# /tmp/duplex-heavy.lock around it (flock) on a shared machine.
set -euo pipefail

clients="${1:-1000}" broadcasts="${2:-100}" rounds="${3:-3}" windows="${4:-1 0}"
size="${SIZE:-64}"
workers="${WORKERS:-1}"
# shellcheck source=socketio-setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/socketio-setup.sh" socketio
# As cluster-broadcast.sh: lib.sh's cleanup must not stop at a pid gone.
trap 'set +e; cleanup' EXIT
npm_ci_once "$root/scripts/conformance/socketio" socket.io
cp "$here/socketio-echo-server.mjs" "$cache/"
if [[ -z "${DUPLEX_BENCH_BIN:-}" ]]; then
    (cd "$root" && cargo build --release -q -p duplex-bench)
fi

declare -A port pid
port[node]="$(free_port)"
(cd "$cache" && exec node socketio-echo-server.mjs "${port[node]}" 25000 20000 --rooms) \
    >"$cache/broadcast-node.log" 2>&1 &
pid[node]=$!
pids+=($!)
for impl in duplex socketioxide; do
    port[$impl]="$(free_port)"
    "$bench" sio-server --impl "$impl" --workers "$workers" --rooms \
        --addr "127.0.0.1:${port[$impl]}" --max-seconds 3600 >"$cache/broadcast-$impl.log" 2>&1 &
    pid[$impl]=$!
    pids+=($!)
done
for server in node duplex socketioxide; do
    wait_port "${port[$server]}"
    # Warm-up, not recorded (Node's JIT, the servers' first allocations).
    timeout 120 "$bench" cluster-load --node "127.0.0.1:${port[$server]}" --clients 200 \
        --broadcasts 50 --size "$size" >/dev/null
done

results="$cache/broadcast-$(date -u +%Y%m%dT%H%M%SZ).jsonl"
echo "# clients=$clients broadcasts=$broadcasts rounds=$rounds windows=$windows size=$size workers=$workers; $(cut -d' ' -f1-3 /proc/loadavg) load; lines also in $results" >&2
orders=("node duplex socketioxide" "duplex socketioxide node" "socketioxide node duplex")
for ((round = 1; round <= rounds; round++)); do
    for window in $windows; do
        for server in ${orders[$(((round - 1) % 3))]}; do
            line="$(timeout 300 "$bench" cluster-load --node "127.0.0.1:${port[$server]}" \
                --clients "$clients" --broadcasts "$broadcasts" --size "$size" --window "$window" \
                --server-pid "${pid[$server]}")"
            echo "{\"server\":\"$server\",\"round\":$round,${line#\{}" | tee -a "$results"
            # Let the server close this run's sessions.
            sleep 1
        done
    done
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

# Medians per window and server, and duplex ÷ each peer.
node - "$results" <<'JS'
const lines = require("fs").readFileSync(process.argv[2], "utf8").trim().split("\n").map(JSON.parse);
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
console.log("window | server | deliveries/s | p50 ms | p99 ms | server CPU us/delivery | short clients");
const rate = {};
for (const w of [...new Set(lines.map((l) => l.window))]) {
  for (const server of ["duplex", "socketioxide", "node"]) {
    const of = lines.filter((l) => l.window === w && l.server === server);
    if (!of.length) continue;
    const r = median(of.map((l) => l.deliveries_per_s));
    rate[`${w} ${server}`] = r;
    const ms = (k) => (median(of.map((l) => l[k])) / 1000).toFixed(1);
    const cpu = median(of.map((l) => l.server_cpu_us_per_delivery ?? NaN));
    console.log(`${w} | ${server} | ${r} | ${ms("p50_us")} | ${ms("p99_us")} | ${cpu.toFixed(2)} | ${of.reduce((a, l) => a + l.short_clients, 0)}`);
  }
  const d = rate[`${w} duplex`];
  console.log(`${w} | duplex ÷ socketioxide ${(d / rate[`${w} socketioxide`]).toFixed(2)}, duplex ÷ node ${(d / rate[`${w} node`]).toFixed(2)}`);
}
JS
