#!/usr/bin/env bash
# STOMP fan-out load: 1 publisher, N subscribers on one /topic/
# destination, messages delivered per second, duplex conformance-server's
# embedded broker (STOMP over TCP) next to RabbitMQ's STOMP plugin, both
# driven by the same client (stomp-fanout-client.py, Python stdlib).
#
#   crates/duplex-bench/scenarios/stomp-fanout.sh [subscribers] [messages] [rounds]
#
# Defaults: 100 subscribers, 20000 messages of 200 bytes, 2 rounds
# (interleaved). RabbitMQ and duplex are started by the conformance
# suites' own helpers (scripts/conformance/lib.sh: a private RabbitMQ node
# on 127.0.0.1 with its state in a temporary folder, duplex on a free
# loopback port), and stopped on exit. Every client run is bounded by
# `timeout`. Logs go to $DUPLEX_OUT/stomp-fanout (default: a temporary
# folder).
set -uo pipefail

subs="${1:-100}"
messages="${2:-20000}"
rounds="${3:-2}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
export DUPLEX_OUT="${DUPLEX_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/duplex-stomp-fanout.XXXXXX")}"
# Without DUPLEX_BIN the binary is built (a no-op when it is up to date) on
# every run, so that the figures are never a stale binary's.
bin_given="${DUPLEX_BIN:+yes}"
say() { echo "stomp-fanout: $*" >&2; }
# shellcheck source=../../../scripts/conformance/lib.sh
source "$root/scripts/conformance/lib.sh"
out="$DUPLEX_OUT/stomp-fanout"
mkdir -p "$out"

start_rabbitmq "$out/rabbitmq" "duplex-bench@localhost" "$out/rabbitmq.log" 61663 25682 24379 || exit 1
if [[ -z "$bin_given" ]]; then
    (cd "$root" && cargo build --release -q -p duplex-cli) || exit 1
fi
[[ -x "$DUPLEX_BIN" ]] || { say "no duplex binary at $DUPLEX_BIN"; exit 1; }
duplex_stomp="$(free_port)"
start_duplex duplex "$(free_port)" --stomp-addr "127.0.0.1:$duplex_stomp" || exit 1
wait_port "$spawned" "$duplex_stomp" 30 || { say "duplex's STOMP port did not open"; exit 1; }
wait_rabbitmq 120 || { say "RabbitMQ did not start"; tail -n 20 "$rabbit_log" >&2; exit 1; }

for ((round = 1; round <= rounds; round++)); do
    for broker in rabbitmq duplex; do
        port=$stomp_port
        [[ $broker == duplex ]] && port=$duplex_stomp
        line="$(timeout 180 python3 "$here/stomp-fanout-client.py" "127.0.0.1:$port" "$subs" "$messages" 200 120 || true)"
        echo "{\"broker\":\"$broker\",\"round\":$round,${line#\{}"
    done
done
