#!/usr/bin/env bash
# Socket.IO across servers: a MIXED cluster sharing one Redis, checked with
# shared/conformance/socketio-cluster.md: two `duplex conformance-server
# --redis` nodes and one Node reference node (npm socket.io with
# @socket.io/redis-adapter 8.3.0,
# scripts/conformance/socketio-cluster/reference-node.mjs), in the order
# duplex, Node, duplex, with npm socket.io-client clients on every node
# (WebSocket, polling, polling upgraded), in two modes:
#
#   classic  createAdapter: PUBLISH / SUBSCRIBE / PSUBSCRIBE
#   sharded  createShardedAdapter: SPUBLISH / SSUBSCRIBE (Redis 7)
#
# scripts/conformance/socketio-cluster/cluster-test.mjs runs every check of
# the contract's §4 (broadcasts of every kind from every node, exactly once
# at exactly the intended clients; binary; ordering; room names;
# socketsJoin/Leave and disconnectSockets everywhere; fetchSockets;
# allRooms; serverSideEmit with and without acks; broadcast acks; namespace
# isolation; the legacy requests and @socket.io/redis-emitter in classic
# mode; duplex-redis's Rust Emitter, through its `emit` example built here
# in release, in both modes), then stops Redis mid-run and starts it again (local delivery goes
# on, every node reconnects, cluster-wide delivery resumes), and finally
# kills the last node (a duplex one) and checks that the others stop
# counting it. Each mode prints
#   cluster-<mode>: N passed, N failed
#
# Run it through the driver:  DUPLEX_SUITES=cluster scripts/conformance.sh
# It installs Debian's redis-server if missing (7.x, for sharded pub/sub),
# the npm packages pinned in scripts/conformance/socketio-cluster/
# (package-lock.json) into $DUPLEX_CACHE/socketio-cluster with `npm ci`,
# starts Redis on its own free 127.0.0.1 port (no persistence), bounds every
# run with a timeout and stops everything it started on exit. Logs go to
# $DUPLEX_OUT/cluster/. Exits non-zero on any failure.
#
# Environment, besides the driver's DUPLEX_ROOT, DUPLEX_CACHE, DUPLEX_OUT
# and DUPLEX_BIN (all optional):
#   DUPLEX_EMITTER_BIN  duplex-redis's `emit` example, built already (skips its build)
#   CLUSTER_MODES     modes to run (default "classic sharded")
#   CLUSTER_TIMEOUT   seconds one mode may take (default 600)
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
helpers="$here/socketio-cluster"
DUPLEX_ROOT="${DUPLEX_ROOT:-$(cd "$here/../.." && pwd)}"
DUPLEX_CACHE="${DUPLEX_CACHE:-$DUPLEX_ROOT/.cache/conformance}"
DUPLEX_OUT="${DUPLEX_OUT:-$DUPLEX_ROOT/conformance-out}"
DUPLEX_BIN="${DUPLEX_BIN:-$DUPLEX_ROOT/target/release/duplex}"
modes="${CLUSTER_MODES:-classic sharded}"
mode_timeout="${CLUSTER_TIMEOUT:-600}"

cache="$DUPLEX_CACHE/socketio-cluster"
out="$DUPLEX_OUT/cluster"
mkdir -p "$cache" "$out"

say() { echo "cluster: $*"; }

fail_all() {
    local mode
    for mode in $modes; do
        echo "cluster-$mode: 0 passed, 1 failed"
    done
    exit 1
}

# shellcheck source=lib.sh
source "$here/lib.sh"

if ! ensure_node "$out/install.log"; then
    say "could not install nodejs/npm (see $out/install.log)"
    fail_all
fi
if ! command -v redis-server >/dev/null 2>&1; then
    say "installing redis-server (apt-get)"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; } >>"$out/install.log" 2>&1; then
        say "could not install redis-server (see $out/install.log)"
        fail_all
    fi
fi
if [[ ! -x "$DUPLEX_BIN" ]]; then
    say "no duplex binary at $DUPLEX_BIN (run through scripts/conformance.sh, which builds it)"
    fail_all
fi

# duplex-redis's Emitter, as a program the test runs (DUPLEX_EMITTER_BIN:
# one built already). Built with -p duplex-cli too, so that the features
# are unified as for the duplex binary and its dependencies are reused
# instead of built again.
emitter="${DUPLEX_EMITTER_BIN:-$(dirname "$DUPLEX_BIN")/examples/emit}"
if [[ -n "${DUPLEX_EMITTER_BIN:-}" ]]; then
    :
elif ! (cd "$DUPLEX_ROOT" && cargo build --release -p duplex-cli -p duplex-redis --example emit --quiet) >"$out/emitter-build.log" 2>&1; then
    say "could not build the duplex-redis emit example (see $out/emitter-build.log)"
    tail -n 15 "$out/emitter-build.log"
    fail_all
fi
if [[ ! -x "$emitter" ]]; then
    # A debug DUPLEX_BIN (a developer's run): the example is in release.
    emitter="$(cd "$DUPLEX_ROOT" && cargo metadata --format-version 1 --no-deps | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')/release/examples/emit"
fi

key="$(cat "$helpers/package.json" "$helpers/package-lock.json" | sha256sum | cut -d' ' -f1)"
if [[ ! -d "$cache/node_modules/@socket.io/redis-adapter" || "$(cat "$cache/.install-key" 2>/dev/null)" != "$key" ]]; then
    say "installing socket.io, @socket.io/redis-adapter, socket.io-client and redis into $cache"
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

# wait_polling PID PORT SECONDS: 0 once the Engine.IO handshake answers,
# 1 timeout, 2 PID exited.
wait_polling() {
    local pid=$1 port=$2 deadline=$((SECONDS + $3))
    while ((SECONDS < deadline)); do
        kill -0 "$pid" 2>/dev/null || return 2
        if curl -sf --max-time 2 "http://127.0.0.1:$port/socket.io/?EIO=4&transport=polling" 2>/dev/null | grep -q '^0{'; then
            return 0
        fi
        sleep 0.2
    done
    return 1
}

# Stops the pids started for one mode (TERM, then KILL after 5 s).
stop() {
    local pid i
    for pid in "$@"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "$@"; do
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
}

restarted_pidfile="$out/redis-restarted.pid"
stop_restarted_redis() {
    if [[ -s "$restarted_pidfile" ]]; then
        stop "$(cat "$restarted_pidfile")"
        rm -f "$restarted_pidfile"
    fi
}
trap 'stop_restarted_redis; cleanup' EXIT

status=0
for mode in $modes; do
    sharded=()
    ref_sharded=()
    if [[ $mode == sharded ]]; then
        sharded=(--redis-sharded)
        ref_sharded=(--sharded)
    fi
    rport="$(free_port)"
    redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no >"$out/redis-$mode.log" 2>&1 &
    redis_pid=$!
    pids+=("$redis_pid")
    for ((i = 0; i < 50; i++)); do
        redis-cli -p "$rport" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    url="redis://127.0.0.1:$rport"
    mode_pids=("$redis_pid")
    urls=()
    up=1
    for n in 0 1 2; do
        port="$(free_port)"
        if ((n == 1)); then
            node "$cache/reference-node.mjs" --port "$port" --redis "$url" --name "node-ref-$n" "${ref_sharded[@]}" >"$out/node-$mode-$n.log" 2>&1 &
        else
            "$DUPLEX_BIN" conformance-server --addr "127.0.0.1:$port" --redis "$url" "${sharded[@]}" >"$out/node-$mode-$n.log" 2>&1 &
        fi
        pid=$!
        # The last node is SIGKILLed by the test (node-killed): out of the
        # job table, so that bash does not report it as "Killed".
        ((n == 2)) && disown "$pid"
        pids+=("$pid")
        mode_pids+=("$pid")
        last_pid=$pid
        urls+=("http://127.0.0.1:$port")
        if ! wait_polling "$pid" "$port" 30; then
            say "$mode: node $n did not start (see $out/node-$mode-$n.log)"
            tail -n 10 "$out/node-$mode-$n.log"
            up=0
            break
        fi
    done
    if ((up)); then
        log="$out/test-$mode.log"
        nodes_arg="$(IFS=,; echo "${urls[*]}")"
        timeout -k 5 "$mode_timeout" node "$cache/cluster-test.mjs" --mode "$mode" --redis "$url" \
            --nodes "$nodes_arg" --restart-redis "$restarted_pidfile" --kill "$last_pid" --rust-emitter "$emitter" >"$log" 2>&1
        rc=$?
        grep -E '^FAIL ' "$log"
        if ! grep -E "^cluster-$mode: [0-9]+ passed, [0-9]+ failed$" "$log"; then
            echo "cluster-$mode: 0 passed, 1 failed"
            ((rc == 124)) && say "$mode: did not finish within $mode_timeout s"
            tail -n 10 "$log"
            status=1
        elif ((rc != 0)); then
            status=1
        fi
        # The first two nodes must have lived through everything.
        for pid in "${mode_pids[@]:1:2}"; do
            if ! kill -0 "$pid" 2>/dev/null; then
                say "$mode: a node exited during the run"
                status=1
            fi
        done
    else
        echo "cluster-$mode: 0 passed, 1 failed"
        status=1
    fi
    stop "${mode_pids[@]}"
    stop_restarted_redis
done
exit $status
