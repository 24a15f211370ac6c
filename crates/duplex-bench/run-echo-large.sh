#!/usr/bin/env bash
# The large-message echo figures of docs/benchmarks.md ("Sending without
# copying"): duplex with its uncopied send path against duplex copying every
# payload (`--impl duplex-copy`, Config::min_shared_payload = usize::MAX,
# same build), with tokio-tungstenite and fastwebsockets alongside.
#
#   cargo build --release -p duplex-bench
#   flock /tmp/duplex-heavy.lock bash crates/duplex-bench/run-echo-large.sh [rounds]
#
# Each round runs every server (interleaved, so a change in machine load hits
# all alike) for each case "connections size messages". Every process is
# bounded in time; only 127.0.0.1 is used. Besides the load client's rates
# and latencies, each line ends with the server's CPU time for that case.
#
# The multi-core row of docs/benchmarks.md (issue #19) is this script with
# every server on a 2-worker multi-thread runtime (the client keeps one
# thread):
#   WORKERS=2 IMPLS="duplex fastwebsockets tungstenite" \
#     CASES="100 16 2000;100 1024 2000;100 65536 200" bash crates/duplex-bench/run-echo-large.sh 3
set -euo pipefail
cd "$(dirname "$0")/../.."

ROUNDS=${1:-3}
PORT=${PORT:-9401}
IMPLS=${IMPLS:-duplex duplex-copy fastwebsockets tungstenite}
CASES=${CASES:-"1 16384 40000;10 16384 4000;1 1048576 1000;10 1048576 100"}

# shellcheck source=echo-server.sh
source crates/duplex-bench/echo-server.sh
TICK_MS=$((1000 / $(getconf CLK_TCK)))
server_cpu_ms() {
    # utime + stime, fields 14 and 15 of /proc/PID/stat, in clock ticks.
    awk -v t="$TICK_MS" '{print ($14 + $15) * t}' "/proc/$server_pid/stat"
}

IFS=';' read -ra cases <<<"$CASES"
for round in $(seq "$ROUNDS"); do
    for impl in $IMPLS; do
        start_server "$impl" 300
        for c in "${cases[@]}"; do
            set -- $c
            printf 'round=%s impl=%s ' "$round" "$impl"
            before=$(server_cpu_ms)
            "$BIN" load --url "ws://127.0.0.1:$PORT/" --connections "$1" --size "$2" \
                --messages "$3" --timeout-secs 120 | tr -d '\n'
            # The server's CPU time (user + system) for this case: steadier
            # than wall-clock rates on a shared machine.
            echo " server_cpu_ms=$(($(server_cpu_ms) - before))"
        done
        stop_server
        PORT=$((PORT + 1))
    done
done
