#!/usr/bin/env bash
# STOMP fan-out load: 1 publisher, N subscribers on one /topic/
# destination, messages delivered per second, duplex conformance-server's
# embedded broker (STOMP over TCP) next to RabbitMQ's STOMP plugin, both
# driven by the same client (stomp-fanout-client.py, Python stdlib).
#
#   crates/duplex-bench/scenarios/stomp-fanout.sh [subscribers] [messages] [rounds]
#
# Defaults: 100 subscribers, 20000 messages of 200 bytes, 2 rounds
# (interleaved). RabbitMQ is started as in
# scripts/conformance/suite-30-stomp-rabbitmq.sh: a private node on
# 127.0.0.1 with its state in a temporary folder, stopped on exit; duplex on
# a free loopback port. Every client run is bounded by `timeout`.
set -euo pipefail

subs="${1:-100}"
messages="${2:-20000}"
rounds="${3:-2}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
duplex="${DUPLEX_BIN:-$root/target/release/duplex}"
rabbit_bin="${RABBITMQ_SBIN:-/usr/lib/rabbitmq/bin}"
[[ -x "$rabbit_bin/rabbitmq-server" ]] || rabbit_bin="$(dirname "$(command -v rabbitmq-server)")"

# shellcheck source=ports.sh
source "$here/ports.sh"

state="$(mktemp -d "${TMPDIR:-/tmp}/duplex-bench-rabbitmq.XXXXXX")"
log="$state/rabbitmq.out"
rabbit_stomp="$(free_port 61663)"
amqp_port="$(free_port 25682)"
dist_port="$(free_port $((amqp_port + 1)))"
epmd_port="$(free_port 24379)"
rabbit_pid=""
duplex_pid=""

cleanup() {
    if [[ -n "$duplex_pid" ]]; then
        kill "$duplex_pid" 2>/dev/null || true
        wait "$duplex_pid" 2>/dev/null || true
    fi
    if [[ -n "$rabbit_pid" ]]; then
        HOME="$state" "$rabbit_bin/rabbitmqctl" stop >>"$log" 2>&1 || kill "$rabbit_pid" 2>/dev/null || true
        for _ in $(seq 1 30); do
            kill -0 "$rabbit_pid" 2>/dev/null || break
            sleep 1
        done
        kill -9 "$rabbit_pid" 2>/dev/null || true
    fi
    if command -v epmd >/dev/null; then
        epmd -port "$epmd_port" -kill >/dev/null 2>&1 || true
    fi
    rm -rf "$state"
}
trap cleanup EXIT

export RABBITMQ_CONF_ENV_FILE="$state/rabbitmq-env.conf"
export RABBITMQ_CONFIG_FILE="$state/rabbitmq.conf"
export RABBITMQ_ENABLED_PLUGINS_FILE="$state/enabled_plugins"
export RABBITMQ_MNESIA_BASE="$state/mnesia"
export RABBITMQ_LOG_BASE="$state/log"
export RABBITMQ_NODENAME="duplex-bench@localhost"
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
export RABBITMQ_NODE_PORT="$amqp_port"
export RABBITMQ_DIST_PORT="$dist_port"
export ERL_EPMD_ADDRESS=127.0.0.1
export ERL_EPMD_PORT="$epmd_port"
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
: >"$RABBITMQ_CONF_ENV_FILE"
echo "[rabbitmq_stomp]." >"$RABBITMQ_ENABLED_PLUGINS_FILE"
cat >"$RABBITMQ_CONFIG_FILE" <<CONF
listeners.tcp.1 = 127.0.0.1:$amqp_port
stomp.listeners.tcp.1 = 127.0.0.1:$rabbit_stomp
loopback_users.guest = true
log.console = true
log.console.level = warning
log.file = false
CONF
HOME="$state" "$rabbit_bin/rabbitmq-server" >>"$log" 2>&1 &
rabbit_pid=$!

if [[ -z "${DUPLEX_BIN:-}" ]]; then
    (cd "$root" && cargo build --release -q -p duplex-cli)
fi
duplex_http="$(free_port 3300)"
duplex_stomp="$(free_port 61700)"
"$duplex" conformance-server --addr "127.0.0.1:$duplex_http" --stomp-addr "127.0.0.1:$duplex_stomp" >"$state/duplex.out" 2>&1 &
duplex_pid=$!

wait_port "$duplex_stomp" 30 "$duplex_pid"
wait_port "$rabbit_stomp" 120 "$rabbit_pid" || { tail -n 20 "$log" >&2; exit 1; }

for ((round = 1; round <= rounds; round++)); do
    for broker in rabbitmq duplex; do
        port=$rabbit_stomp
        [[ $broker == duplex ]] && port=$duplex_stomp
        line="$(timeout 180 python3 "$here/stomp-fanout-client.py" "127.0.0.1:$port" "$subs" "$messages" 200 120 || true)"
        echo "{\"broker\":\"$broker\",\"round\":$round,${line#\{}"
    done
done
