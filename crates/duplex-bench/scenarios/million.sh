#!/usr/bin/env bash
# Up to a million idle WebSocket connections held by the duplex echo server
# over loopback (docs/benchmarks.md, "One million idle connections").
#
#   cargo build --release -p duplex-bench
#   flock /tmp/duplex-heavy.lock bash crates/duplex-bench/scenarios/million.sh [TARGET]
#
# Needs root (sysctls, /proc/slabinfo). The server is `duplex-bench
# echo-server --impl duplex`, the one the idle benchmark measures (one
# current-thread tokio runtime). The client, `duplex-bench idle`, binds
# every socket to an explicit (address, port) among SOURCE_ADDRS addresses
# from 127.0.0.2 up (ports 10000-60999 on each), so that source pairs never
# run out, and opens CONCURRENCY handshakes at a time.
#
# One process can hold only as many connections as its RLIMIT_NOFILE allows.
# The script first tries to raise the hard limit to TARGET + a margin; where
# that is refused (no CAP_SYS_RESOURCE) it splits the run into PAIRS
# server/client process pairs, each under the hard limit, ramped one pair
# after the other, and sums their figures. PAIRS=1 with a raisable limit is
# the one-process run.
#
# After each pair the machine is sampled (connections held, summed server
# RSS, MemAvailable, Slab, SUnreclaim, /proc/net/sockstat, the socket slab
# caches). Ramping stops at TARGET, at a client that fails, or when
# MemAvailable would fall below MIN_AVAILABLE_MIB (the machine is shared;
# nothing may be OOM-killed). With every connection held for HOLD seconds
# the machine is measured once more, then the clients are released: each
# echoes one message on a sample of its connections (VERIFY in all) and
# closes. Every process is bounded in time; sysctls this script changed are
# restored on exit.
set -euo pipefail
cd "$(dirname "$0")/../../.."

BIN=${BIN:-target/release/duplex-bench}
TARGET=${1:-1000000}
SOURCE_ADDRS=${SOURCE_ADDRS:-128}
PORT=${PORT:-9701}
CONCURRENCY=${CONCURRENCY:-256}
MIN_AVAILABLE_MIB=${MIN_AVAILABLE_MIB:-3072}
HOLD=${HOLD:-10}
VERIFY=${VERIFY:-1000}
RAMP_TIMEOUT=${RAMP_TIMEOUT:-1800}
LOG=${LOG:-/tmp/million-$TARGET.log}
WORK=$(mktemp -d /tmp/million.XXXXXX)

[ "$(id -u)" = 0 ] || { echo "million.sh needs root" >&2; exit 1; }
[ -x "$BIN" ] || { echo "no $BIN: cargo build --release -p duplex-bench" >&2; exit 1; }

log() { echo "$*" | tee -a "$LOG"; }
: >"$LOG"
log "== million.sh $(date -u +%FT%TZ) target=$TARGET source_addrs=$SOURCE_ADDRS concurrency=$CONCURRENCY min_available=${MIN_AVAILABLE_MIB}MiB"
log "kernel $(uname -r), $(nproc) cpus, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM"

# Sysctls: raised only where below what the run needs; the old values are
# restored on exit.
declare -A SAVED=()
raise() { # name minimum
    local name=$1 min=$2 cur
    cur=$(sysctl -n "$name" | awk '{print $1}')
    if [ "$cur" -lt "$min" ]; then
        SAVED[$name]=$(sysctl -n "$name")
        sysctl -qw "$name=$min"
        log "sysctl $name: $cur -> $min"
    else
        log "sysctl $name: $cur (kept, >= $min)"
    fi
}
# fs.nr_open caps any one process's descriptor limit.
raise fs.nr_open $(( TARGET + 65536 ))
raise fs.file-max $(( 2 * TARGET + 262144 ))
# Both ends of every connection are epoll-registered by root.
raise fs.epoll.max_user_watches $(( 2 * TARGET + 262144 ))
raise net.core.somaxconn 65535
raise net.ipv4.tcp_max_syn_backlog 65535
# Not changed, recorded: the client binds explicit source ports (so the
# ephemeral range is not used), and idle sockets hold no buffer pages (so
# tcp_mem, in pages, is not approached).
for name in net.ipv4.ip_local_port_range net.ipv4.tcp_mem net.ipv4.tcp_max_tw_buckets \
    net.ipv4.tcp_tw_reuse net.netfilter.nf_conntrack_max; do
    log "sysctl $name: $(sysctl -n "$name" 2>/dev/null | tr '\t' ' ' || echo absent) (kept)"
done

# How many descriptors one process may hold.
hard_before=$(ulimit -Hn)
if ulimit -Hn $(( TARGET + 4096 )) 2>/dev/null; then
    log "RLIMIT_NOFILE hard limit raised: $hard_before -> $(ulimit -Hn)"
else
    log "RLIMIT_NOFILE hard limit stays $hard_before: raising it was refused ($(grep CapEff /proc/self/status | tr -s '\t' ' '); CAP_SYS_RESOURCE is bit 24)"
fi
ulimit -Sn "$(ulimit -Hn)"
per_process=$(( $(ulimit -Hn) - 100 ))
PAIRS=${PAIRS:-$(( (TARGET + per_process - 1) / per_process ))}
share=$(( (TARGET + PAIRS - 1) / PAIRS ))
[ "$SOURCE_ADDRS" -ge "$PAIRS" ] || SOURCE_ADDRS=$PAIRS
log "per process: at most $per_process connections; $PAIRS server/client pair(s) of $share connections"

server_pids=()
client_pids=()
monitor_pid=
cleanup() {
    touch "$WORK/release"
    for pid in "${client_pids[@]}" $monitor_pid "${server_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${client_pids[@]}" $monitor_pid "${server_pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    for name in "${!SAVED[@]}"; do
        sysctl -qw "$name=${SAVED[$name]}" && log "sysctl $name restored to ${SAVED[$name]}"
    done
    [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

sum_rss_kib() { # pids...
    local total=0 pid v
    for pid in "$@"; do
        v=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
        total=$(( total + ${v:-0} ))
    done
    echo "$total"
}
slab_mib() { # cache
    awk -v n="$1" '$1 == n {printf "%.1f", $15 * $6 * 4096 / 1048576}' /proc/slabinfo
}
held_total() {
    { cat "$WORK"/held.* 2>/dev/null || true; } | awk '{s += $1} END {print s + 0}'
}
# One line describing the machine now.
sample() {
    local label=$1 held rss
    held=$(held_total)
    rss=$(sum_rss_kib "${server_pids[@]}")
    printf '%s connections=%s t=%ss servers=%s server_rss=%.1fMiB client_rss=%.1fMiB %s tcp:%s slab_TCP=%sMiB slab_sock_inode_cache=%sMiB slab_filp=%sMiB slab_dentry=%sMiB slab_eventpoll_epi=%sMiB\n' \
        "$label" "$held" $(( SECONDS - start )) "${#server_pids[@]}" \
        "$(echo "$rss" | awk '{print $1/1024}')" \
        "$(sum_rss_kib "${client_pids[@]}" | awk '{print $1/1024}')" \
        "$(awk '/MemAvailable|^Slab|SUnreclaim/ {printf "%s%.0fMiB ", $1, $2/1024}' /proc/meminfo)" \
        "$(grep '^TCP:' /proc/net/sockstat | cut -d: -f2)" \
        "$(slab_mib TCP)" "$(slab_mib sock_inode_cache)" "$(slab_mib filp)" \
        "$(slab_mib dentry)" "$(slab_mib eventpoll_epi)" | tee -a "$LOG"
}
mem_available_mib() { awk '/MemAvailable/ {print int($2/1024)}' /proc/meminfo; }
slab_kib() { awk '/^Slab:/ {print $2}' /proc/meminfo; }

dmesg_before=$(dmesg | wc -l)
start=$SECONDS
max_seconds=$(( RAMP_TIMEOUT + HOLD + 900 ))
baseline_slab_kib=$(slab_kib)
baseline_server_kib=0
stop_reason="reached the target"
ramp_start=$SECONDS
ramp_t0=$(date +%s.%N)
sample baseline
for i in $(seq 0 $(( PAIRS - 1 ))); do
    if [ $(( SECONDS - ramp_start )) -ge "$RAMP_TIMEOUT" ]; then
        stop_reason="ramp timeout"; break
    fi
    if [ "$(mem_available_mib)" -lt $(( MIN_AVAILABLE_MIB + 512 )) ]; then
        stop_reason="MemAvailable $(mem_available_mib) MiB < floor $MIN_AVAILABLE_MIB MiB + 512 MiB for the next pair"; break
    fi
    port=$(( PORT + i ))
    "$BIN" echo-server --impl duplex --addr "127.0.0.1:$port" --max-seconds "$max_seconds" \
        --backlog 65535 --nofile $(( share + 4096 )) >"$WORK/server.$i" 2>"$WORK/server.$i.err" &
    spid=$!
    server_pids+=("$spid")
    for _ in $(seq 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
    sleep 0.3
    baseline_server_kib=$(( baseline_server_kib + $(sum_rss_kib "$spid") ))
    [ "$i" = 0 ] && log "server 0: $(head -1 "$WORK/server.0")"
    "$BIN" idle --url "ws://127.0.0.1:$port/" --connections $(( share * PAIRS )) \
        --shard "$i/$PAIRS" --source-addrs "$SOURCE_ADDRS" --concurrency "$CONCURRENCY" \
        --server-pid "$spid" --min-available-mib "$MIN_AVAILABLE_MIB" \
        --hold-secs "$max_seconds" --hold-until "$WORK/release" --timeout-secs "$RAMP_TIMEOUT" \
        --verify $(( (VERIFY + PAIRS - 1) / PAIRS )) --nofile $(( share + 1024 )) \
        >"$WORK/client.$i" 2>&1 &
    cpid=$!
    client_pids+=("$cpid")
    pair_start=$SECONDS
    # Wait (bounded) for this client's ramp to end: its "ramped" line.
    while ! grep -qs '^ramped ' "$WORK/client.$i" && kill -0 "$cpid" 2>/dev/null \
        && [ $(( SECONDS - pair_start )) -lt "$RAMP_TIMEOUT" ]; do
        sleep 0.2
    done
    ramped=$(sed -n 's/^ramped connections=\([0-9]*\) elapsed=\([0-9.]*\)s.*/\1 \2/p' "$WORK/client.$i")
    echo "${ramped%% *}" >"$WORK/held.$i"
    sample "pair=$i ramped=${ramped:-none}"
    if [ "${ramped%% *}" != "$share" ]; then
        stop_reason="client $i ramped ${ramped%% *} of $share: $( (grep -h '^idle\|error' "$WORK/client.$i" || true) | tail -2 | tr '\n' ' ')"
        break
    fi
done
ramp_seconds=$(echo "$ramp_t0 $(date +%s.%N)" | awk '{printf "%.1f", $2 - $1}')
log "ramp ended after ${ramp_seconds}s: $stop_reason"
sleep "$HOLD"
sample "held"
held=$(held_total)
rss_now=$(sum_rss_kib "${server_pids[@]}")
if [ "$held" -gt 0 ]; then
    log "$(awk -v h="$held" -v r0="$baseline_server_kib" -v r1="$rss_now" -v s0="$baseline_slab_kib" \
        -v s1="$(slab_kib)" -v t="$ramp_seconds" -v p="${#server_pids[@]}" \
        'BEGIN {printf "summary: connections=%d server_processes=%d server_rss=%.1fMiB rss_per_conn=%.0fB (baseline %.1fMiB subtracted) slab_growth=%.1fMiB slab_per_conn=%.0fB (both ends) ramp=%.1fs handshakes/s=%.0f (wall, process starts included)", h, p, r1/1024, (r1-r0)*1024/h, r0/1024, (s1-s0)/1024, (s1-s0)*1024/h, t, h/(t>0?t:1)}')"
fi

# Release the clients: each verifies its sample, prints its report, closes.
touch "$WORK/release"
status=0
for pid in "${client_pids[@]}"; do
    wait "$pid" || status=1
done
client_pids=()
for i in $(seq 0 $(( ${#server_pids[@]} - 1 ))); do
    (grep -h '^connections=\|^slab growth\|^error' "$WORK/client.$i" || true) | sed "s/^/client=$i /" >>"$LOG"
done
log "verified: $(cat "$WORK"/client.* | sed -n 's/.* verified=\([0-9]*\)\/\([0-9]*\).*/\1 \2/p' | awk '{a += $1; b += $2} END {printf "%d/%d", a, b}') echoed after the hold"
log "client 0 report:"
sed 's/^/  /' "$WORK/client.0" | tee -a "$LOG"
sleep 2
rm -f "$WORK"/held.*
sample "closed"
log "server accept failures (EMFILE and the like): $(cat "$WORK"/server.*.err | grep -c '^accept failed' || true)"
log "kernel messages during the run:"
dmesg | tail -n +$(( dmesg_before + 1 )) | tail -20 | tee -a "$LOG"
exit "$status"
