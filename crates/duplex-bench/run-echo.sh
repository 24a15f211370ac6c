#!/usr/bin/env bash
# The loopback echo and idle-connection figures of docs/benchmarks.md.
#
#   cargo build --release -p duplex-bench
#   bash crates/duplex-bench/run-echo.sh [rounds]
#
# For each round and each server (duplex, tokio-tungstenite, fastwebsockets,
# interleaved so that a change in machine load hits all three alike): a fresh
# echo server and the load client (each one thread; with PIN=1 pinned to CPU 0
# and CPU 1, which on a machine shared with other jobs costs more than it
# saves, so it is off by default), then
#   C=1   connection  x 20000 messages of 16 B (latency),
#   C=100 connections x  2000 messages of 16 B (throughput),
#   10000 idle connections on a fresh server (handshakes/s, RSS/connection).
# Every process is bounded in time; only 127.0.0.1 is used.
set -euo pipefail
cd "$(dirname "$0")/../.."

SERVER_CPU=()
CLIENT_CPU=()
if [ "${PIN:-0}" = 1 ]; then
    SERVER_CPU=(taskset -c 0)
    CLIENT_CPU=(taskset -c 1)
fi
# BIN and WORKERS: see echo-server.sh.
# shellcheck source=echo-server.sh
source crates/duplex-bench/echo-server.sh
ROUNDS=${1:-3}
IDLE=${IDLE:-10000}
PORT=${PORT:-9301}
# 10,000 idle connections need 10,000 descriptors in the server and the client.
ulimit -n "$(ulimit -Hn)"

for round in $(seq "$ROUNDS"); do
    for impl in duplex tungstenite fastwebsockets; do
        start_server "$impl" 120
        for c in "1 20000" "100 2000"; do
            set -- $c
            printf 'round=%s impl=%s ' "$round" "$impl"
            "${CLIENT_CPU[@]}" "$BIN" load --url "ws://127.0.0.1:$PORT/" \
                --connections "$1" --messages "$2" --size 16 --timeout-secs 60
        done
        stop_server
        start_server "$impl" 120
        # Let the server settle before its baseline RSS is read.
        sleep 0.5
        printf 'round=%s impl=%s idle ' "$round" "$impl"
        "${CLIENT_CPU[@]}" "$BIN" idle --url "ws://127.0.0.1:$PORT/" --connections "$IDLE" \
            --concurrency 64 --server-pid "$server_pid" --hold-secs 2 --timeout-secs 60
        stop_server
        PORT=$((PORT + 1))
    done
done
