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
# shellcheck source=lib.sh
source "$here/lib.sh"
helpers="$here/socketio"
own="$here/suite-27-recovery"
modes="${RECOVERY_MODES:-polling websocket upgrade}"
run_timeout="${RECOVERY_TIMEOUT:-180}"

cache="$DUPLEX_CACHE/socketio"
out="$DUPLEX_OUT/recovery"
mkdir -p "$cache" "$out"

say() { echo "recovery: $*"; }

# rust_fail_all: every duplex-client line a failure, and out.
rust_fail_all() {
    for mode in $modes; do
        echo "socketio-rust-client-recovery-$mode: 0 passed, 1 failed"
    done
    exit 1
}

fail_all() {
    echo "socketio-recovery-client: 0 passed, 1 failed"
    [[ "${RECOVERY_RUST_CLIENT:-1}" != 0 ]] && rust_fail_all
    exit 1
}

ensure_node "$out/install.log" || fail_all
need_duplex_bin || fail_all
# The npm packages of suite-20, from the same committed lock file.
npm_ci "$helpers" "$cache" socket.io-client "$out/install.log" || fail_all
copy_mjs "$cache/recovery" "$own"

status=0

# npm socket.io-client against duplex.
port="$(free_port)"
start_duplex server "$port" --stomp-addr 127.0.0.1:0 || fail_all
server_pid=$spawned
log="$out/client.log"
# shellcheck disable=SC2086
timeout -k 5 "$run_timeout" node "$cache/recovery/client-checks.mjs" "http://127.0.0.1:$port" ${RECOVERY_CHECKS:-} >"$log" 2>&1
report socketio-recovery-client "$log" $? '^  (FAIL|PASS) ' || status=1
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
        rust_fail_all
    fi
    ref_port="$(free_port)"
    start reference-server "$ref_port" node "$cache/recovery/reference-server.mjs" "$ref_port" || rust_fail_all
    for mode in $modes; do
        log="$out/rust-client-$mode.log"
        timeout -k 5 "$run_timeout" "$example" "http://127.0.0.1:$ref_port" "$mode" --path /recovery/ >"$log" 2>&1
        report "socketio-rust-client-recovery-$mode" "$log" $? '^  (FAIL|PASS) ' || status=1
    done
fi
exit $status
