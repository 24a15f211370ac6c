#!/usr/bin/env bash
# STOMP interop: the duplex-stomp client session against RabbitMQ's STOMP
# plugin (Debian's rabbitmq-server).
#
# Installs rabbitmq-server with apt-get when it is missing (without starting
# the system service), then runs a private broker: every listener (AMQP,
# STOMP, Erlang distribution, epmd) on 127.0.0.1, every bit of state (Mnesia,
# logs, config, cookie) in a temporary folder, stopped again on exit. Runs
# `cargo run --release -p duplex-stomp --example rabbitmq_interop` against
# it, which prints `stomp rabbitmq: N passed, N failed`. Then the relay:
# two `duplex conformance-server --stomp-relay` processes in front of the
# same RabbitMQ, a subscriber on one and a publisher on the other
# (duplex-tokio's `stomp_relay` test, `relay_to_external_broker`), printing
# `stomp relay: N passed, N failed`.
#
# Environment: DUPLEX_ROOT, DUPLEX_CACHE, DUPLEX_OUT as set by
# scripts/conformance.sh (defaults work when run on its own).
set -uo pipefail

bin="${DUPLEX_BIN:-}" # none given: built below
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"
root="$DUPLEX_ROOT"
out="$DUPLEX_OUT"
mkdir -p "$DUPLEX_CACHE" "$out"
log="$out/stomp-rabbitmq.log"
: >"$log"

say() { echo "stomp-rabbitmq: $*"; }

# Not 61613 for STOMP: `duplex conformance-server` listens there by
# default, and one started meanwhile by another suite would take the port
# from under the broker while it boots.
state="$(mktemp -d "${TMPDIR:-/tmp}/duplex-rabbitmq.XXXXXX")"
if ! start_rabbitmq "$state" duplex-stomp@localhost "$log" 61653 25672 24369; then
    rm -rf "$state"
    echo "stomp rabbitmq: 0 passed, 1 failed"
    exit 1
fi
say "starting RabbitMQ (STOMP on 127.0.0.1:$stomp_port, state in $state)"
if ! wait_rabbitmq 120; then
    say "RabbitMQ did not open its STOMP port (see $log)"
    tail -n 30 "$log"
    echo "stomp rabbitmq: 0 passed, 1 failed"
    exit 1
fi

say "building and running the interop example"
cd "$root" || exit 1
cargo run --release --quiet -p duplex-stomp --example rabbitmq_interop -- "127.0.0.1:$stomp_port" \
    2>>"$log" | tee "$out/stomp-rabbitmq.txt"
status=${PIPESTATUS[0]}
if ((status != 0)); then
    say "FAILED (exit $status; details in $out/stomp-rabbitmq.txt and $log)"
fi

# ---- the relay: two duplex servers sharing this RabbitMQ -------------------
say "relay: two duplex servers relaying to RabbitMQ"
if [[ -z "$bin" ]]; then
    if ! cargo build --release --quiet -p duplex-cli 2>>"$log"; then
        echo "stomp relay: 0 passed, 1 failed"
        exit 1
    fi
    bin="$root/target/release/duplex"
fi
relay_ports=()
relay_pids=()
port=61700
for _ in 1 2; do
    port="$(port_from $((port + 1)))"
    relay_ports+=("$port")
    "$bin" conformance-server --addr 127.0.0.1:0 --stomp-addr "127.0.0.1:$port" \
        --stomp-relay "127.0.0.1:$stomp_port" >>"$log" 2>&1 &
    relay_pids+=($!)
    pids+=($!)
done
for i in 0 1; do
    wait_port "${relay_pids[i]}" "${relay_ports[i]}" 10
done
relay_out="$out/stomp-relay.txt"
DUPLEX_RELAY_SERVERS="127.0.0.1:${relay_ports[0]},127.0.0.1:${relay_ports[1]}" \
    timeout 600 cargo test --quiet -p duplex-tokio --test stomp_relay -- \
    --ignored --exact relay_to_external_broker >"$relay_out" 2>>"$log"
relay_status=$?
passed="$(grep -o '[0-9]* passed' "$relay_out" | tail -n1 | cut -d' ' -f1)"
failed="$(grep -o '[0-9]* failed' "$relay_out" | tail -n1 | cut -d' ' -f1)"
if ((relay_status != 0)); then
    failed="${failed:-1}"
    ((failed == 0)) && failed=1
    say "relay FAILED (exit $relay_status; details in $relay_out and $log)"
fi
echo "stomp relay: ${passed:-0} passed, ${failed:-0} failed"
# The relays before the broker they relay to.
stop_pids "${relay_pids[@]}"
((status != 0 || relay_status != 0)) && exit 1
exit 0
