#!/usr/bin/env bash
# STOMP interop: the duplex-stomp client session against RabbitMQ's STOMP
# plugin (Debian's rabbitmq-server).
#
# Installs rabbitmq-server with apt-get when it is missing (without starting
# the system service), then runs a private broker: every listener (AMQP,
# STOMP, Erlang distribution, epmd) on 127.0.0.1, every bit of state (Mnesia,
# logs, config, cookie) in a temporary folder, stopped again on exit. Runs
# `cargo run --release -p duplex-stomp --example rabbitmq_interop` against
# it, which prints `stomp rabbitmq: N passed, N failed`.
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
stomp_port="$(free_port 61613)"
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
cleanup() {
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
exit "$status"
