#!/usr/bin/env bash
# Cluster broadcast load (issue 15): a room of C clients (default 1000)
# spread over two Socket.IO nodes sharing one Redis, B broadcasts to it
# (default 50) asked of the first node, back to back; the figure is
# deliveries per second, from the first request to the last delivery.
# Two clusters in the same run, on the same Redis (one at a time):
#
#   duplex  two `duplex conformance-server --redis` (release), duplex-redis
#   node    two Node reference nodes (npm socket.io 4.8.4 with
#           @socket.io/redis-adapter 8.3.0,
#           scripts/conformance/socketio-cluster/reference-node.mjs)
#
#   crates/duplex-bench/scenarios/cluster-broadcast.sh [clients] [broadcasts] [rounds]
#
# MODE=sharded runs both in the sharded protocol (default classic). Each
# round runs both clusters, the first alternating, and prints one JSON line
# per run (`duplex-bench cluster-load`: a lean WebSocket client per member,
# on one thread), then the medians.
#
# Everything listens on 127.0.0.1; every process it starts is stopped on
# exit; each run is bounded by `timeout`. Needs node and npm, and
# redis-server (installed with apt-get if missing); installs the npm
# packages of the cluster suite's lock file into .cache/bench/cluster. Set
# DUPLEX_BENCH_BIN and DUPLEX_BIN to skip the release builds. Hold
# /tmp/duplex-heavy.lock around it (flock) on a shared machine.
set -euo pipefail

clients="${1:-1000}" broadcasts="${2:-50}" rounds="${3:-3}"
mode="${MODE:-classic}"
# shellcheck source=socketio-setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/socketio-setup.sh" cluster
helpers="$root/scripts/conformance/socketio-cluster"
duplex="${DUPLEX_BIN:-$target/release/duplex}"
# lib.sh's cleanup kills every pid it was given, some already stopped; under
# set -e its first failed kill would end it there (leaving the rest running)
# and make the run's status 1.
trap 'set +e; cleanup' EXIT

npm_ci_once "$helpers" @socket.io/redis-adapter
if ! command -v redis-server >/dev/null 2>&1; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; } >>"$cache/install.log" 2>&1
fi
# reference-node.mjs imports js/cluster-handlers.mjs: copy_mjs brings both.
copy_mjs "$cache" "$helpers"
if [[ -z "${DUPLEX_BENCH_BIN:-}" || -z "${DUPLEX_BIN:-}" ]]; then
    (cd "$root" && cargo build --release -q -p duplex-bench -p duplex-cli)
fi

rport="$(free_port)"
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no >"$cache/redis.log" 2>&1 &
pids+=($!)
wait_port "$rport"
url="redis://127.0.0.1:$rport"

sharded=()
ref_sharded=()
if [[ $mode == sharded ]]; then
    sharded=(--redis-sharded)
    ref_sharded=(--sharded)
fi

# start_cluster duplex|node: two nodes; sets nodes_args and cluster_pids.
start_cluster() {
    local kind=$1 n port
    nodes_args=()
    cluster_pids=()
    for n in 0 1; do
        port="$(free_port)"
        if [[ $kind == duplex ]]; then
            "$duplex" conformance-server --addr "127.0.0.1:$port" --redis "$url" "${sharded[@]}" \
                >"$cache/$kind-$n.log" 2>&1 &
        else
            (cd "$cache" && exec node reference-node.mjs --port "$port" --redis "$url" \
                --name "node-$n" "${ref_sharded[@]}") >"$cache/$kind-$n.log" 2>&1 &
        fi
        cluster_pids+=($!)
        pids+=($!)
        wait_port "$port"
        nodes_args+=(--node "127.0.0.1:$port")
    done
    sleep 1
}

stop_cluster() {
    local pid
    for pid in "${cluster_pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}

results="$cache/results-$(date -u +%Y%m%dT%H%M%SZ).jsonl"
echo "# mode=$mode clients=$clients broadcasts=$broadcasts rounds=$rounds; lines also in $results" >&2
for ((round = 1; round <= rounds; round++)); do
    order="node duplex"
    ((round % 2 == 0)) && order="duplex node"
    for kind in $order; do
        start_cluster "$kind"
        # Warm-up, not recorded (Node's JIT, the first room subscriptions).
        timeout 120 "$bench" cluster-load "${nodes_args[@]}" --clients 100 --broadcasts 10 >/dev/null
        line="$(timeout 300 "$bench" cluster-load "${nodes_args[@]}" --clients "$clients" \
            --broadcasts "$broadcasts")"
        line="{\"cluster\":\"$kind\",\"mode\":\"$mode\",${line#\{}"
        echo "$line" | tee -a "$results"
        stop_cluster
    done
done

for kind in node duplex; do
    grep "\"cluster\":\"$kind\"" "$results" |
        sed -E 's/.*"deliveries_per_s":([0-9.]+).*/\1/' | sort -n |
        awk -v k="$kind" '{ a[NR] = $1 } END { printf "median %s: %s deliveries/s over %d runs\n", k, a[int((NR + 1) / 2)], NR }'
done
