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
own="$here/suite-28-streams-recovery"
DUPLEX_ROOT="${DUPLEX_ROOT:-$(cd "$here/../.." && pwd)}"
DUPLEX_CACHE="${DUPLEX_CACHE:-$DUPLEX_ROOT/.cache/conformance}"
DUPLEX_OUT="${DUPLEX_OUT:-$DUPLEX_ROOT/conformance-out}"
DUPLEX_BIN="${DUPLEX_BIN:-$DUPLEX_ROOT/target/release/duplex}"
run_timeout="${STREAMS_TIMEOUT:-300}"

cache="$DUPLEX_CACHE/socketio-streams"
out="$DUPLEX_OUT/streams-recovery"
mkdir -p "$cache" "$out"

say() { echo "streams-recovery: $*"; }

fail_all() {
    echo "socketio-streams-recovery: 0 passed, 1 failed"
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

key="$(cat "$own/package.json" "$own/package-lock.json" | sha256sum | cut -d' ' -f1)"
if [[ ! -d "$cache/node_modules/@socket.io/redis-streams-adapter" || "$(cat "$cache/.install-key" 2>/dev/null)" != "$key" ]]; then
    say "installing socket.io, @socket.io/redis-streams-adapter, redis and socket.io-client into $cache"
    cp "$own/package.json" "$own/package-lock.json" "$cache/"
    rm -rf "$cache/node_modules"
    if ! (cd "$cache" && timeout 600 npm ci --no-audit --no-fund) >"$out/install.log" 2>&1; then
        say "npm ci failed (see $out/install.log)"
        tail -n 15 "$out/install.log"
        fail_all
    fi
    echo "$key" >"$cache/.install-key"
fi
cp "$own"/*.mjs "$cache/"

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

# start NAME PORT CMD...: runs CMD in the background, logged to NAME.log,
# and waits until it listens on PORT.
start() {
    local name=$1 port=$2
    shift 2
    "$@" >"$out/$name.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    wait_port "$pid" "$port" 30
    case $? in
        1) say "$name did not listen on 127.0.0.1:$port within 30 s"; tail -n 15 "$out/$name.log"; fail_all ;;
        2) say "$name exited at start"; tail -n 15 "$out/$name.log"; fail_all ;;
    esac
}

redis_port="$(free_port)"
start redis "$redis_port" redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no
redis_url="redis://127.0.0.1:$redis_port"

d1="$(free_port)"
start duplex1 "$d1" "$DUPLEX_BIN" conformance-server --addr "127.0.0.1:$d1" --recovery-redis "$redis_url"
d2="$(free_port)"
start duplex2 "$d2" "$DUPLEX_BIN" conformance-server --addr "127.0.0.1:$d2" --recovery-redis "$redis_url"
nd="$(free_port)"
start node "$nd" node "$cache/node-server.mjs" "$nd" "$redis_url"
# Every node reads the stream from `$`: let them all be reading (and
# subscribed to the request channels) before the first check.
sleep 1

log="$out/checks.log"
# shellcheck disable=SC2086
timeout -k 5 "$run_timeout" node "$cache/cross-checks.mjs" \
    "duplex1=http://127.0.0.1:$d1" "duplex2=http://127.0.0.1:$d2" "node=http://127.0.0.1:$nd" \
    ${STREAMS_CHECKS:-} >"$log" 2>&1
rc=$?
grep -E '^  (FAIL|PASS) ' "$log"
status=0
if ! grep -E '^socketio-streams-recovery: [0-9]+ passed, [0-9]+ failed$' "$log"; then
    echo "socketio-streams-recovery: 0 passed, 1 failed"
    ((rc == 124)) && say "did not finish within $run_timeout s"
    tail -n 10 "$log"
    status=1
fi
((rc == 0)) || status=1
# The request checks, on a Redis of their own (pub/sub channels are not
# per database): started now so that their nodes run beside the others.
redis2_port="$(free_port)"
start redis2 "$redis2_port" redis-server --port "$redis2_port" --bind 127.0.0.1 --save "" --appendonly no
redis2_url="redis://127.0.0.1:$redis2_port"
c1="$(free_port)"
start cluster-duplex1 "$c1" "$DUPLEX_BIN" conformance-server --addr "127.0.0.1:$c1" --redis "$redis2_url" --redis-streams
cn="$(free_port)"
start cluster-node "$cn" node "$cache/cluster-node.mjs" "$cn" "$redis2_url" node-streams
c2="$(free_port)"
start cluster-duplex2 "$c2" "$DUPLEX_BIN" conformance-server --addr "127.0.0.1:$c2" --redis "$redis2_url" --redis-streams
sleep 1
rlog="$out/request-checks.log"
timeout -k 5 "$run_timeout" node "$cache/request-checks.mjs" \
    "duplex1=http://127.0.0.1:$c1" "node=http://127.0.0.1:$cn" "duplex2=http://127.0.0.1:$c2" >"$rlog" 2>&1
rrc=$?
grep -E '^  (FAIL|PASS) ' "$rlog"
if ! grep -E '^socketio-streams-requests: [0-9]+ passed, [0-9]+ failed$' "$rlog"; then
    echo "socketio-streams-requests: 0 passed, 1 failed"
    ((rrc == 124)) && say "request checks did not finish within $run_timeout s"
    tail -n 10 "$rlog"
    status=1
fi
((rrc == 0)) || status=1
# A node that died during the run is a failure too (pids: redis, duplex1,
# duplex2, node, redis2, then the request checks' three nodes).
for i in 1 2 3 5 6 7; do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
        say "a server exited during the run (pid ${pids[$i]})"
        status=1
    fi
done
exit $status
