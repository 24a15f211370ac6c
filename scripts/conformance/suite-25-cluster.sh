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
# shellcheck source=lib.sh
source "$here/lib.sh"
helpers="$here/socketio-cluster"
modes="${CLUSTER_MODES:-classic sharded}"
run_timeout="${CLUSTER_TIMEOUT:-600}"

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

ensure_node "$out/install.log" || fail_all
ensure_redis "$out/install.log" || fail_all
need_duplex_bin || fail_all

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

npm_ci "$helpers" "$cache" @socket.io/redis-adapter "$out/install.log" || fail_all
copy_mjs "$cache" "$helpers"

# The Redis the test restarts itself mid-run (its pid in a file).
restarted_pidfile="$out/redis-restarted.pid"
stop_restarted_redis() {
    if [[ -s "$restarted_pidfile" ]]; then
        stop_pids "$(cat "$restarted_pidfile")"
        rm -f "$restarted_pidfile"
    fi
}
at_exit stop_restarted_redis

status=0
for mode in $modes; do
    sharded=()
    ref_sharded=()
    if [[ $mode == sharded ]]; then
        sharded=(--redis-sharded)
        ref_sharded=(--sharded)
    fi
    mode_pids=()
    urls=()
    up=0
    if start_redis "redis-$mode"; then
        mode_pids+=("$spawned")
        up=1
    fi
    for n in 0 1 2; do
        ((up)) || break
        port="$(free_port)"
        name="node-$mode-$n"
        if ((n == 1)); then
            spawn "$out/$name.log" node "$cache/reference-node.mjs" --port "$port" --redis "$redis_url" --name "node-ref-$n" "${ref_sharded[@]}"
        else
            spawn "$out/$name.log" "$DUPLEX_BIN" conformance-server --addr "127.0.0.1:$port" --redis "$redis_url" "${sharded[@]}"
        fi
        # The last node is SIGKILLed by the test (node-killed): out of the
        # job table, so that bash does not report it as "Killed".
        ((n == 2)) && disown "$spawned"
        mode_pids+=("$spawned")
        urls+=("http://127.0.0.1:$port")
        ready "$name" "$port" engineio_open || up=0
    done
    if ((up)); then
        log="$out/test-$mode.log"
        nodes_arg="$(IFS=,; echo "${urls[*]}")"
        timeout -k 5 "$run_timeout" node "$cache/cluster-test.mjs" --mode "$mode" --redis "$redis_url" \
            --nodes "$nodes_arg" --restart-redis "$restarted_pidfile" --kill "${mode_pids[3]}" --rust-emitter "$emitter" >"$log" 2>&1
        report "cluster-$mode" "$log" $? '^FAIL ' || status=1
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
    stop_pids "${mode_pids[@]}"
    stop_restarted_redis
done
exit $status
