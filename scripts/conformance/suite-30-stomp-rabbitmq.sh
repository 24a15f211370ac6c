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

root="${DUPLEX_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}"
cache="${DUPLEX_CACHE:-$root/.cache/conformance}"
out="${DUPLEX_OUT:-$root/conformance-out}"
mkdir -p "$cache" "$out"
log="$out/stomp-rabbitmq.log"
: >"$log"

say() { echo "stomp-rabbitmq: $*"; }

rabbit_bin=/usr/lib/rabbitmq/bin
if [[ ! -x "$rabbit_bin/rabbitmq-server" ]]; then
    say "installing rabbitmq-server (apt-get)"
    # RUNLEVEL=1 keeps invoke-rc.d from starting the system-wide service:
    # this suite runs its own broker on loopback only.
    if ! { apt-get update -qq && RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq rabbitmq-server; } >>"$log" 2>&1; then
        say "apt-get install rabbitmq-server failed (see $log)"
        echo "stomp rabbitmq: 0 passed, 1 failed"
        exit 1
    fi
fi

# A port nobody listens on, starting from the preferred one.
free_port() {
    local port="$1"
    while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        port=$((port + 1))
    done
    echo "$port"
}

state="$(mktemp -d "${TMPDIR:-/tmp}/duplex-rabbitmq.XXXXXX")"
# Not 61613: `duplex conformance-server` listens there by default, and
# one started meanwhile by another suite would take the port from under
# the broker while it boots.
stomp_port="$(free_port 61653)"
amqp_port="$(free_port 25672)"
dist_port="$(free_port $((amqp_port + 1)))"
epmd_port="$(free_port 24369)"

# The Erlang cookie goes to $HOME: the broker and rabbitmqctl get the state
# folder as HOME, cargo keeps the real one.
rabbit_home="$state"
export RABBITMQ_CONF_ENV_FILE="$state/rabbitmq-env.conf"
export RABBITMQ_CONFIG_FILE="$state/rabbitmq.conf"
export RABBITMQ_ENABLED_PLUGINS_FILE="$state/enabled_plugins"
export RABBITMQ_MNESIA_BASE="$state/mnesia"
export RABBITMQ_LOG_BASE="$state/log"
export RABBITMQ_NODENAME="duplex-stomp@localhost"
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
export RABBITMQ_NODE_PORT="$amqp_port"
export RABBITMQ_DIST_PORT="$dist_port"
export ERL_EPMD_ADDRESS=127.0.0.1
export ERL_EPMD_PORT="$epmd_port"
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
: >"$RABBITMQ_CONF_ENV_FILE"
echo "[rabbitmq_stomp]." >"$RABBITMQ_ENABLED_PLUGINS_FILE"
cat >"$RABBITMQ_CONFIG_FILE" <<EOF
listeners.tcp.1 = 127.0.0.1:$amqp_port
stomp.listeners.tcp.1 = 127.0.0.1:$stomp_port
loopback_users.guest = true
log.console = true
log.console.level = warning
log.file = false
EOF

rabbit_pid=""
relay_pids=()
cleanup() {
    for pid in "${relay_pids[@]}"; do
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    if [[ -n "$rabbit_pid" ]]; then
        HOME="$rabbit_home" "$rabbit_bin/rabbitmqctl" stop >>"$log" 2>&1 || kill "$rabbit_pid" 2>/dev/null
        for _ in $(seq 1 30); do
            kill -0 "$rabbit_pid" 2>/dev/null || break
            sleep 1
        done
        kill -9 "$rabbit_pid" 2>/dev/null
    fi
    # The epmd on our private port was started for this broker only.
    command -v epmd >/dev/null && epmd -port "$epmd_port" -kill >/dev/null 2>&1
    rm -rf "$state"
}
trap cleanup EXIT

say "starting RabbitMQ (STOMP on 127.0.0.1:$stomp_port, state in $state)"
HOME="$rabbit_home" "$rabbit_bin/rabbitmq-server" >>"$log" 2>&1 &
rabbit_pid=$!

ready=""
for _ in $(seq 1 120); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$stomp_port") 2>/dev/null; then
        ready=yes
        break
    fi
    if ! kill -0 "$rabbit_pid" 2>/dev/null; then
        break
    fi
    sleep 1
done
if [[ -z "$ready" ]]; then
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
bin="${DUPLEX_BIN:-}"
if [[ -z "$bin" ]]; then
    if ! cargo build --release --quiet -p duplex-cli 2>>"$log"; then
        echo "stomp relay: 0 passed, 1 failed"
        exit 1
    fi
    bin="$root/target/release/duplex"
fi
relay_ports=()
port=61700
for _ in 1 2; do
    port="$(free_port $((port + 1)))"
    relay_ports+=("$port")
    "$bin" conformance-server --addr 127.0.0.1:0 --stomp-addr "127.0.0.1:$port" \
        --stomp-relay "127.0.0.1:$stomp_port" >>"$log" 2>&1 &
    relay_pids+=($!)
done
for port in "${relay_ports[@]}"; do
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
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
((status != 0 || relay_status != 0)) && exit 1
exit 0
