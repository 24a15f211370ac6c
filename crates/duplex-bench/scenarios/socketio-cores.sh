#!/usr/bin/env bash
# Socket.IO echo on one core and two, duplex beside socketioxide (issues #18,
# #19): `duplex-bench sio-server --impl duplex|socketioxide --workers 1|2`,
# four servers started once, driven in turn by `duplex-bench sio-load`
# (`message-with-ack` acked with its argument) over loopback.
#
#   crates/duplex-bench/scenarios/socketio-cores.sh [seconds] [rounds]
#
# Cells: WebSocket C=100 16 B and 1 KiB, WebSocket C=1000 16 B, polling
# C=100 16 B. Each cell runs every server for <seconds> (default 3),
# <rounds> times (default 3), interleaved (the server order rotates between
# rounds). With taskset the client is pinned on CPU 0 and the one-worker
# servers on CPU 1; the two-worker servers are not pinned (as in issue #19).
# Prints one JSON line per run, then medians and the ratios duplex ÷
# socketioxide and 2 workers ÷ 1.
#
# Set DUPLEX_BENCH_BIN to a copy of the release binary (the default builds
# one). Every process it starts is stopped on exit; each run is bounded by
# `timeout`; everything listens on 127.0.0.1. Hold /tmp/duplex-heavy.lock
# around it (flock) on a shared machine.
set -euo pipefail

seconds="${1:-3}"
rounds="${2:-3}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
if [[ -z "${DUPLEX_BENCH_BIN:-}" ]]; then
    (cd "$root" && cargo build --release -q -p duplex-bench)
fi
bench="${DUPLEX_BENCH_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/duplex-bench}"
out="${OUT:-$(mktemp -d)}"
mkdir -p "$out"
results="$out/socketio-cores-$(date -u +%Y%m%dT%H%M%SZ).jsonl"

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# The command prefix that pins to CPUs $1 (nothing without taskset). An
# array, not a function: a backgrounded function would be a subshell, and
# $! its pid rather than the server's.
pin_to() {
    pin=()
    if command -v taskset >/dev/null; then pin=(taskset -c "$1"); fi
}
pin_to 0
client_pin=("${pin[@]}")

pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

declare -A port pid
base=$((39400 + RANDOM % 500))
i=0
for server in duplex-1 socketioxide-1 duplex-2 socketioxide-2; do
    impl="${server%-*}" workers="${server##*-}"
    port[$server]=$((base + i))
    i=$((i + 1))
    cpus=0-1
    [[ $workers == 1 ]] && cpus=1
    pin_to "$cpus"
    "${pin[@]}" "$bench" sio-server --impl "$impl" --workers "$workers" \
        --addr "127.0.0.1:${port[$server]}" --max-seconds 3600 >"$out/$server.log" 2>&1 &
    pid[$server]=$!
    pids+=("$!")
done
sleep 1

cells=("websocket 100 16" "websocket 100 1024" "websocket 1000 16" "polling 100 16")
servers=(duplex-1 socketioxide-1 duplex-2 socketioxide-2)

# Warm-up, not recorded.
for server in "${servers[@]}"; do
    "${client_pin[@]}" timeout 60 "$bench" sio-load --url "http://127.0.0.1:${port[$server]}" \
        --transport websocket --clients 100 --seconds 1 --size 16 >/dev/null
done

echo "# seconds=$seconds rounds=$rounds; $(uptime)" | tee "$results.txt" >&2
for ((round = 1; round <= rounds; round++)); do
    for cell in "${cells[@]}"; do
        read -r transport clients size <<<"$cell"
        for ((k = 0; k < ${#servers[@]}; k++)); do
            server="${servers[$(((k + round - 1) % ${#servers[@]}))]}"
            line="$("${client_pin[@]}" timeout $((seconds + 120)) "$bench" sio-load \
                --url "http://127.0.0.1:${port[$server]}" --transport "$transport" \
                --clients "$clients" --seconds "$seconds" --size "$size" \
                --server-pid "${pid[$server]}")"
            line="{\"server\":\"$server\",\"round\":$round,\"size\":$size,${line#\{}"
            echo "$line" | tee -a "$results"
            sleep 1
        done
    done
done
echo "# end: $(uptime)" | tee -a "$results.txt" >&2

python3 - "$results" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
med = lambda xs: statistics.median(xs)
cells = []
for r in rows:
    c = (r["transport"], r["clients"], r["size"])
    if c not in cells:
        cells.append(c)
print("cell | server | events/s (median; rounds) | p99 ms | server cpu | client cpu | dropped")
summary = {}
for c in cells:
    for s in ["duplex-1", "socketioxide-1", "duplex-2", "socketioxide-2"]:
        xs = [r for r in rows if (r["transport"], r["clients"], r["size"]) == c and r["server"] == s]
        if not xs:
            continue
        rate = med([x["acks_per_s"] for x in xs])
        summary[(c, s)] = rate
        print(f'{c[0]} C={c[1]} {c[2]} B | {s} | {rate:.0f} ({", ".join(str(x["acks_per_s"]) for x in xs)}) | '
              f'{med([x["p99_us"] for x in xs]) / 1000:.1f} | {med([x["server_cpu"][0] or 0 for x in xs]):.2f} | '
              f'{med([x["client_cpu"] for x in xs]):.2f} | {sum(x["dropped"] for x in xs)}')
print()
print("cell | duplex/socketioxide 1 worker | 2 workers | duplex 2w/1w | socketioxide 2w/1w")
for c in cells:
    g = lambda s: summary.get((c, s), float("nan"))
    print(f'{c[0]} C={c[1]} {c[2]} B | {g("duplex-1") / g("socketioxide-1"):.2f} | '
          f'{g("duplex-2") / g("socketioxide-2"):.2f} | {g("duplex-2") / g("duplex-1"):.2f} | '
          f'{g("socketioxide-2") / g("socketioxide-1"):.2f}')
EOF
