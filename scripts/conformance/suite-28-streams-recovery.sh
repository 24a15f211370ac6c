#!/usr/bin/env bash
# Socket.IO across nodes with the Redis streams adapter (issue #16): a
# mixed cluster on one Redis, two `duplex conformance-server` nodes and one
# Node node (npm socket.io 4.8.1 with @socket.io/redis-streams-adapter
# 0.3.1, npm's latest, on node-redis 5.10; duplex speaks 0.3.x by
# default), in two parts:
#
#   socketio-streams-recovery   suite-28-streams-recovery/cross-checks.mjs,
#       against `--recovery-redis` nodes and node-server.mjs, each serving
#       the handlers of shared/conformance/socketio-recovery.md at /recovery/:
#       npm socket.io-client 4.8.1 behind a proxy that cuts its connection
#       to one node (FIN on WebSocket, RST on polling) and sends the
#       reconnection to another: duplex->duplex, duplex->Node, Node->duplex
#       and back; the client comes back recovered (same id, its room, its
#       data) with its own stream (emitted by the node it left, by socket
#       id) and a room stream (from a client on a third node) each exactly
#       once and in order, and nothing of another room; a forged pid on
#       another node is a fresh session.
#   socketio-streams-requests   suite-28-streams-recovery/request-checks.mjs,
#       on a second Redis, against `--redis URL --redis-streams` nodes and
#       cluster-node.mjs (the events of shared/conformance/socketio-cluster.md
#       it uses), in the order duplex, Node, duplex, a client on each: from
#       every node, fetchSockets sees the three clients (ids, data, rooms),
#       serverSideEmitWithAck gets the two other servers' answers, a
#       broadcast with acks gets the three clients' acks (0.3.x sends these
#       requests and their responses over pub/sub, and counts servers by
#       PUBSUB NUMSUB), and a broadcast reaches each client once.
#
# Prints `socketio-streams-recovery: N passed, N failed` and
# `socketio-streams-requests: N passed, N failed`.
#
# Run it through the driver:  DUPLEX_SUITES=streams-recovery scripts/conformance.sh
# or alone (DUPLEX_BIN pointing at a built `duplex`). It installs Debian's
# redis-server if missing, the npm packages pinned in
# scripts/conformance/suite-28-streams-recovery/ (package-lock.json) into
# $DUPLEX_CACHE/socketio-streams with `npm ci`, starts Redis on its own free
# 127.0.0.1 port (no persistence), bounds the run with a timeout and stops
# everything it started on exit. Logs go to $DUPLEX_OUT/streams-recovery/.
# Exits non-zero on any failure.
#
# Environment, besides the driver's DUPLEX_ROOT, DUPLEX_CACHE, DUPLEX_OUT
# and DUPLEX_BIN (all optional):
#   STREAMS_CHECKS    checks to run (default: all)
#   STREAMS_TIMEOUT   seconds the run may take (default 300)
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"
own="$here/suite-28-streams-recovery"
run_timeout="${STREAMS_TIMEOUT:-300}"

cache="$DUPLEX_CACHE/socketio-streams"
out="$DUPLEX_OUT/streams-recovery"
mkdir -p "$cache" "$out"

say() { echo "streams-recovery: $*"; }

fail_all() {
    echo "socketio-streams-recovery: 0 passed, 1 failed"
    exit 1
}

ensure_node "$out/install.log" || fail_all
ensure_redis "$out/install.log" || fail_all
need_duplex_bin || fail_all
npm_ci "$own" "$cache" @socket.io/redis-streams-adapter "$out/install.log" || fail_all
copy_mjs "$cache" "$own"

# The duplex and Node servers of the run: one that died during the run is a
# failure too.
servers=()
# serve NAME PORT CMD...: start, or the whole suite fails.
serve() {
    start "$@" || fail_all
    servers+=("$spawned")
}
# serve_duplex NAME PORT ARGS...: start_duplex, or the whole suite fails.
serve_duplex() {
    start_duplex "$@" || fail_all
    servers+=("$spawned")
}

start_redis redis || fail_all
d1="$(free_port)"
serve_duplex duplex1 "$d1" --recovery-redis "$redis_url"
d2="$(free_port)"
serve_duplex duplex2 "$d2" --recovery-redis "$redis_url"
nd="$(free_port)"
serve node "$nd" node "$cache/node-server.mjs" "$nd" "$redis_url"
# Every node reads the stream from `$`: let them all be reading (and
# subscribed to the request channels) before the first check.
sleep 1

status=0
log="$out/checks.log"
# shellcheck disable=SC2086
timeout -k 5 "$run_timeout" node "$cache/cross-checks.mjs" \
    "duplex1=http://127.0.0.1:$d1" "duplex2=http://127.0.0.1:$d2" "node=http://127.0.0.1:$nd" \
    ${STREAMS_CHECKS:-} >"$log" 2>&1
report socketio-streams-recovery "$log" $? '^  (FAIL|PASS) ' || status=1
# The request checks, on a Redis of their own (pub/sub channels are not
# per database): started now so that their nodes run beside the others.
start_redis redis2 || fail_all
c1="$(free_port)"
serve_duplex cluster-duplex1 "$c1" --redis "$redis_url" --redis-streams
cn="$(free_port)"
serve cluster-node "$cn" node "$cache/cluster-node.mjs" "$cn" "$redis_url" node-streams
c2="$(free_port)"
serve_duplex cluster-duplex2 "$c2" --redis "$redis_url" --redis-streams
sleep 1
rlog="$out/request-checks.log"
timeout -k 5 "$run_timeout" node "$cache/request-checks.mjs" \
    "duplex1=http://127.0.0.1:$c1" "node=http://127.0.0.1:$cn" "duplex2=http://127.0.0.1:$c2" >"$rlog" 2>&1
report socketio-streams-requests "$rlog" $? '^  (FAIL|PASS) ' || status=1
for pid in "${servers[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
        say "a server exited during the run (pid $pid)"
        status=1
    fi
done
exit $status
