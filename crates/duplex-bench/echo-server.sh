# Sourced by run-echo.sh and run-echo-large.sh: one echo server at a time on
# 127.0.0.1:$PORT, started from $BIN (default target/release/duplex-bench,
# from the checkout's root) on WORKERS runtime threads (default 1, a
# current-thread runtime; N > 1 a multi-thread runtime of N workers, for
# every implementation alike), optionally pinned with the command in the
# SERVER_CPU array, waited for, and stopped (also on exit).

BIN=${BIN:-target/release/duplex-bench}
WORKERS=${WORKERS:-1}

if ! declare -p SERVER_CPU >/dev/null 2>&1; then
    SERVER_CPU=()
fi
server_pid=

# start_server IMPL MAX_SECONDS: the server's process id in $server_pid once
# it accepts connections; fails after 5 s.
start_server() {
    "${SERVER_CPU[@]}" "$BIN" echo-server --impl "$1" --workers "$WORKERS" \
        --addr "127.0.0.1:$PORT" --max-seconds "$2" >/dev/null 2>&1 &
    server_pid=$!
    for _ in $(seq 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "server $1 did not start" >&2
    return 1
}

stop_server() {
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
}
trap stop_server EXIT
