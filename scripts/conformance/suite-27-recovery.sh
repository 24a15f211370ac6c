#!/usr/bin/env bash
# Socket.IO connection state recovery (issue #16), both ways, on one node:
#
#   socketio-recovery-client       npm socket.io-client 4.8 against
#       `duplex conformance-server`'s /recovery/ endpoint (the contract of
#       shared/conformance/socketio-recovery.md), through a loopback TCP
#       proxy the Node script runs (RST and FIN cuts, refused reconnections):
#       suite-27-recovery/client-checks.mjs, the 13 checks of the contract's
#       §4: RST and FIN cuts on WebSocket, RST on polling and after the
#       upgrade, a blackhole ended by the ping timeout, a room's broadcasts
#       replayed (and nothing of other rooms), a second cut right after a
#       recovery, every tick once and in order; forged pid, bogus offset,
#       malformed auth, expired session and explicit disconnect fresh; 50
#       clients cut at once. The same script passes against npm socket.io.
#   socketio-rust-client-recovery-<mode>   the duplex Rust client
#       (crates/duplex-tokio/examples/socketio_recovery_interop.rs, built
#       here) through its own proxy against the Node server with
#       `connectionStateRecovery` (suite-27-recovery/reference-server.mjs),
#       in the modes polling, websocket and upgrade
#
# Each prints `<name>: N passed, N failed`. Across nodes (Redis streams):
# suite-28-streams-recovery.sh.
#
# Run it through the driver:  DUPLEX_SUITES=27-recovery scripts/conformance.sh
# or alone (DUPLEX_BIN pointing at a built `duplex`). It installs the npm
# packages pinned in scripts/conformance/socketio/ (socket.io and
# socket.io-client 4.8.1, package-lock.json) into $DUPLEX_CACHE/socketio
# with `npm ci`, as suite-20 does (reused while the lock file is unchanged).
# Logs go to $DUPLEX_OUT/recovery/. Exits non-zero on any failure.
#
# Environment, besides the driver's DUPLEX_ROOT, DUPLEX_CACHE, DUPLEX_OUT
# and DUPLEX_BIN (all optional):
#   RECOVERY_CHECKS      client checks to run (default: all)
#   RECOVERY_MODES       Rust client modes (default "polling websocket upgrade")
#   RECOVERY_RUST_CLIENT=0   skip the duplex client against the Node server
#   RECOVERY_TIMEOUT     seconds one run may take (default 180)
#   RECOVERY_PROFILE     debug or release: how the Rust client is built
#                        (default: as DUPLEX_BIN's directory says, else release)
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
helpers="$here/socketio"
own="$here/suite-27-recovery"
DUPLEX_ROOT="${DUPLEX_ROOT:-$(cd "$here/../.." && pwd)}"
DUPLEX_CACHE="${DUPLEX_CACHE:-$DUPLEX_ROOT/.cache/conformance}"
DUPLEX_OUT="${DUPLEX_OUT:-$DUPLEX_ROOT/conformance-out}"
DUPLEX_BIN="${DUPLEX_BIN:-$DUPLEX_ROOT/target/release/duplex}"
modes="${RECOVERY_MODES:-polling websocket upgrade}"
run_timeout="${RECOVERY_TIMEOUT:-180}"

cache="$DUPLEX_CACHE/socketio"
out="$DUPLEX_OUT/recovery"
mkdir -p "$cache" "$out"

say() { echo "recovery: $*"; }

fail_all() {
    echo "socketio-recovery-client: 0 passed, 1 failed"
    if [[ "${RECOVERY_RUST_CLIENT:-1}" != 0 ]]; then
        for mode in $modes; do
            echo "socketio-rust-client-recovery-$mode: 0 passed, 1 failed"
        done
    fi
    exit 1
}

# shellcheck source=lib.sh
source "$here/lib.sh"

if ! ensure_node "$out/install.log"; then
    say "could not install nodejs/npm (see $out/install.log)"
    fail_all
fi
if [[ ! -x "$DUPLEX_BIN" ]]; then
    say "no duplex binary at $DUPLEX_BIN (run through scripts/conformance.sh, which builds it)"
    fail_all
fi

# The npm packages of suite-20, from the same committed lock file.
key="$(cat "$helpers/package.json" "$helpers/package-lock.json" | sha256sum | cut -d' ' -f1)"
if [[ ! -d "$cache/node_modules/socket.io-client" || "$(cat "$cache/.install-key" 2>/dev/null)" != "$key" ]]; then
    say "installing socket.io-client and socket.io into $cache"
    cp "$helpers/package.json" "$helpers/package-lock.json" "$cache/"
    rm -rf "$cache/node_modules"
    if ! (cd "$cache" && timeout 600 npm ci --no-audit --no-fund) >"$out/install.log" 2>&1; then
        say "npm ci failed (see $out/install.log)"
        tail -n 15 "$out/install.log"
        fail_all
    fi
    echo "$key" >"$cache/.install-key"
fi
mkdir -p "$cache/recovery"
cp "$own"/*.mjs "$cache/recovery/"

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

# report NAME LOG RC: prints the summary line (or a failure), 1 on failure.
report() {
    local name=$1 log=$2 rc=$3
    grep -E '^  (FAIL|PASS) ' "$log"
    if ! grep -E "^$name: [0-9]+ passed, [0-9]+ failed$" "$log"; then
        echo "$name: 0 passed, 1 failed"
        ((rc == 124)) && say "$name: did not finish within $run_timeout s"
        tail -n 10 "$log"
        return 1
    fi
    ((rc == 0))
}

status=0

# npm socket.io-client against duplex.
port="$(free_port)"
"$DUPLEX_BIN" conformance-server --addr "127.0.0.1:$port" --stomp-addr 127.0.0.1:0 >"$out/server.log" 2>&1 &
server_pid=$!
pids+=("$server_pid")
wait_port "$server_pid" "$port" 30
case $? in
    1) say "the server did not listen on 127.0.0.1:$port within 30 s"; fail_all ;;
    2) say "the server exited at start"; tail -n 15 "$out/server.log"; fail_all ;;
esac
log="$out/client.log"
# shellcheck disable=SC2086
timeout -k 5 "$run_timeout" node "$cache/recovery/client-checks.mjs" "http://127.0.0.1:$port" ${RECOVERY_CHECKS:-} >"$log" 2>&1
report socketio-recovery-client "$log" $? || status=1
if ! kill -0 "$server_pid" 2>/dev/null; then
    say "the server exited during the run"
    tail -n 15 "$out/server.log"
    status=1
fi

# The duplex client against the Node server.
if [[ "${RECOVERY_RUST_CLIENT:-1}" != 0 ]]; then
    profile_dir="${RECOVERY_PROFILE:-$(basename "$(dirname "$DUPLEX_BIN")")}"
    [[ "$profile_dir" == debug ]] || profile_dir=release
    profile=(--release)
    [[ "$profile_dir" == debug ]] && profile=()
    example="${CARGO_TARGET_DIR:-$DUPLEX_ROOT/target}/$profile_dir/examples/socketio_recovery_interop"
    if ! (cd "$DUPLEX_ROOT" && cargo build "${profile[@]}" -p duplex-tokio --example socketio_recovery_interop --quiet) >"$out/rust-client-build.log" 2>&1; then
        say "could not build the duplex client example (see $out/rust-client-build.log)"
        tail -n 15 "$out/rust-client-build.log"
        for mode in $modes; do
            echo "socketio-rust-client-recovery-$mode: 0 passed, 1 failed"
        done
        exit 1
    fi
    ref_port="$(free_port)"
    node "$cache/recovery/reference-server.mjs" "$ref_port" >"$out/reference-server.log" 2>&1 &
    ref_pid=$!
    pids+=("$ref_pid")
    if ! wait_port "$ref_pid" "$ref_port" 30; then
        say "the Node server did not start"
        tail -n 15 "$out/reference-server.log"
        for mode in $modes; do
            echo "socketio-rust-client-recovery-$mode: 0 passed, 1 failed"
        done
        exit 1
    fi
    for mode in $modes; do
        log="$out/rust-client-$mode.log"
        timeout -k 5 "$run_timeout" "$example" "http://127.0.0.1:$ref_port" "$mode" --path /recovery/ >"$log" 2>&1
        report "socketio-rust-client-recovery-$mode" "$log" $? || status=1
    done
fi
exit $status
