#!/usr/bin/env bash
# Instructions per frame for every decode contender and workload, counted
# by callgrind over the measured loop of examples/decode_count.rs only.
# Prints "<workload> <contender> <total> <per frame>". Repeatable to the
# instruction whatever else the machine is doing.
set -euo pipefail
cd "$(dirname "$0")/../../.."
cargo build --profile bench -p duplex-bench --example decode_count >&2
bin="${CARGO_TARGET_DIR:-target}/release/examples/decode_count"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
for w in "text_16B 409600" "text_125B 409600" "binary_16KiB 6400" "binary_1MiB 100"; do
  set -- $w
  for c in duplex-frame duplex-connection duplex-connection-ref duplex-connection-drain \
           tungstenite fastwebsockets soketto websocket-codec; do
    total=$(valgrind --tool=callgrind --callgrind-out-file="$out" --collect-atstart=no \
              --toggle-collect='*measured_batches*' "$bin" "$c" "$2" "$1" 2>&1 \
            | sed -n 's/.*Collected : //p')
    echo "$1 $c $total $(awk -v t="$total" -v n="$2" 'BEGIN { printf "%.1f", t / n }')"
  done
done
