#!/usr/bin/env bash
# Socket.IO echo load (issue 6): the Node reference server (npm socket.io
# 4.8.1, socketio-echo-server.mjs) next to duplex's Socket.IO server
# (`duplex-bench sio-server`: duplex-tokio's SocketIo behind hyper), both on
# one thread, both with the same heartbeat and the same handler
# (`message-with-ack` acks its arguments), driven by the same load client
# over loopback, in the same run.
#
#   crates/duplex-bench/scenarios/socketio-echo.sh [seconds] [rounds] [client counts]
#
# For each transport (websocket, polling) and client count (default
# "1 100 1000") it runs the client for <seconds> (default 5) against each
# server in turn, <rounds> times (default 2), interleaved (the server that
# goes first alternates between rounds), and prints one JSON line per run,
# then the medians and the duplex / Node ratios.
#
# The client (CLIENT=rust, the default) is `duplex-bench sio-load`, a lean
# Engine.IO/Socket.IO client on one thread that reports its own CPU use and
# the server's over the measured window (1.0 = one core), so the table says
# which process was the limit. CLIENT=node uses socketio-echo-client.mjs
# (npm socket.io-client) instead, one process; it was the limit at 100
# clients already.
#
# Heartbeat: PING_INTERVAL / PING_TIMEOUT in ms (default 25000 / 20000,
# Socket.IO's defaults; 300 / 200 are the conformance settings, which a
# thousand clients cannot keep up with: a ping must be answered within
# 200 ms while an event waits longer than that in the queue).
#
# Everything listens on 127.0.0.1; every process it starts is stopped on
# exit; each run is bounded by `timeout`. Needs node and npm (installed
# with apt-get if missing); installs the two npm packages from the
# conformance lock file into .cache/bench/socketio. Set DUPLEX_BENCH_BIN to
# skip the release build. Hold /tmp/duplex-heavy.lock around it
# (flock) on a shared machine.
set -euo pipefail

seconds="${1:-5}" rounds="${2:-2}" counts="${3:-1 100 1000}"
client="${CLIENT:-rust}"
ping_interval="${PING_INTERVAL:-25000}"
ping_timeout="${PING_TIMEOUT:-20000}"
# A thousand polling clients hold two connections each, in the client and
# in the server: socketio-setup.sh raises the descriptor limit.
# shellcheck source=socketio-setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/socketio-setup.sh" socketio
helpers="$root/scripts/conformance/socketio"
npm_ci_once "$helpers" socket.io-client
cp "$here/socketio-echo-server.mjs" "$here/socketio-echo-client.mjs" "$cache/"

if [[ -z "${DUPLEX_BENCH_BIN:-}" ]]; then
    (cd "$root" && cargo build --release -q -p duplex-bench)
fi

# User plus system CPU ticks (1/100 s) of a process, all threads.
cpu_ticks() {
    awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

node_port="$(free_port)"
(cd "$cache" && exec node socketio-echo-server.mjs "$node_port" "$ping_interval" "$ping_timeout") \
    >"$cache/node-server.log" 2>&1 &
node_pid=$!
pids+=("$node_pid")
duplex_port="$(free_port)"
"$bench" sio-server --addr "127.0.0.1:$duplex_port" --ping-interval-ms "$ping_interval" \
    --ping-timeout-ms "$ping_timeout" --max-seconds 3600 >"$cache/duplex-server.log" 2>&1 &
duplex_pid=$!
pids+=("$duplex_pid")
wait_port "$node_port"
wait_port "$duplex_port"

# Warm-up, not recorded: 2 s per transport and server with 100 clients,
# so Node's JIT has compiled the hot paths before the first measured run.
for server in node duplex; do
    port=node_port
    [[ $server == duplex ]] && port=duplex_port
    for transport in websocket polling; do
        if [[ $client == node ]]; then
            (cd "$cache" && timeout 120 node socketio-echo-client.mjs \
                "http://127.0.0.1:${!port}" "$transport" 100 2 16) >/dev/null
        else
            timeout 120 "$bench" sio-load --url "http://127.0.0.1:${!port}" \
                --transport "$transport" --clients 100 --seconds 2 --size 16 >/dev/null
        fi
    done
done
sleep 1

results="$cache/results-$(date -u +%Y%m%dT%H%M%SZ).jsonl"
echo "# client=$client ping=$ping_interval/$ping_timeout seconds=$seconds rounds=$rounds counts=$counts" >&2
echo "# node pid $node_pid, duplex pid $duplex_pid; lines also in $results" >&2
for ((round = 1; round <= rounds; round++)); do
    order="node duplex"
    ((round % 2 == 0)) && order="duplex node"
    for transport in websocket polling; do
        for clients in $counts; do
            for server in $order; do
                port=node_port pid=node_pid
                [[ $server == duplex ]] && port=duplex_port pid=duplex_pid
                if [[ $client == node ]]; then
                    # The Node client cannot see the server: its CPU is taken
                    # here, over the client's whole life (connecting included).
                    ticks0="$(cpu_ticks "${!pid}")" t0="$(date +%s%N)"
                    line="$(cd "$cache" && timeout $((seconds + 120)) node socketio-echo-client.mjs \
                        "http://127.0.0.1:${!port}" "$transport" "$clients" "$seconds" 16)"
                    ticks1="$(cpu_ticks "${!pid}")" t1="$(date +%s%N)"
                    server_cpu="$(awk -v a="$ticks0" -v b="$ticks1" -v t0="$t0" -v t1="$t1" \
                        'BEGIN { printf "%.3f", (b - a) / 100 / ((t1 - t0) / 1e9) }')"
                    line="${line%\}},\"server_cpu\":[$server_cpu]}"
                else
                    line="$(timeout $((seconds + 120)) "$bench" sio-load --url "http://127.0.0.1:${!port}" \
                        --transport "$transport" --clients "$clients" --seconds "$seconds" --size 16 \
                        --server-pid "${!pid}")"
                fi
                line="{\"server\":\"$server\",\"round\":$round,${line#\{}"
                echo "$line" | tee -a "$results"
                # Let the server finish closing the sessions of this run.
                sleep 1
            done
        done
    done
done

# Medians per transport, client count and server, and duplex / Node.
node - "$results" <<'EOF'
const lines = require("fs").readFileSync(process.argv[2], "utf8").trim().split("\n").map(JSON.parse);
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const keys = [...new Set(lines.map((l) => `${l.transport} ${l.clients}`))];
console.log("transport clients | node acks/s | duplex acks/s | duplex/node | p50 node/duplex us | p99 node/duplex us | cpu node srv/cli | cpu duplex srv/cli | dropped");
for (const key of keys) {
  const of = (server) => lines.filter((l) => `${l.transport} ${l.clients}` === key && l.server === server);
  const [n, d] = [of("node"), of("duplex")];
  const med = (xs, f) => median(xs.map(f));
  const cpu = (xs) => xs[0]?.client_cpu === undefined ? "-" : `${med(xs, (l) => l.server_cpu[0]).toFixed(2)}/${med(xs, (l) => l.client_cpu).toFixed(2)}`;
  const drops = [...n, ...d].reduce((a, l) => a + l.dropped, 0);
  console.log(`${key} | ${med(n, (l) => l.acks_per_s)} | ${med(d, (l) => l.acks_per_s)} | ${(med(d, (l) => l.acks_per_s) / med(n, (l) => l.acks_per_s)).toFixed(2)} | ${med(n, (l) => l.p50_us)}/${med(d, (l) => l.p50_us)} | ${med(n, (l) => l.p99_us)}/${med(d, (l) => l.p99_us)} | ${cpu(n)} | ${cpu(d)} | ${drops}`);
}
EOF
