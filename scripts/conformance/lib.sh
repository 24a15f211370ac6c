# Shared by the conformance suites (sourced, not run): the setup every suite
# repeats, one function a job. A suite sources it first, then names its
# folders:
#
#   here="$(cd "$(dirname "$0")" && pwd)"
#   source "$here/lib.sh"      # DUPLEX_ROOT, DUPLEX_CACHE, DUPLEX_OUT, DUPLEX_BIN
#   out="$DUPLEX_OUT/<suite>"  # logs: the functions below write under $out
#   say() { echo "<suite>: $*"; }
#
# Everything a suite starts in the background goes into `pids` (spawn and
# start do it), and is stopped when the suite exits, however it exits:
# first the `at_exit` commands, the last registered first, then every pid
# (TERM first, KILL after 5 s, then reaped).

# The driver's environment (scripts/conformance.sh), with the defaults of a
# suite run on its own.
DUPLEX_ROOT="${DUPLEX_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
DUPLEX_CACHE="${DUPLEX_CACHE:-$DUPLEX_ROOT/.cache/conformance}"
DUPLEX_OUT="${DUPLEX_OUT:-$DUPLEX_ROOT/conformance-out}"
DUPLEX_BIN="${DUPLEX_BIN:-$DUPLEX_ROOT/target/release/duplex}"

# A suite that has no `say` of its own says things plainly.
declare -F say >/dev/null || say() { echo "$*"; }

# ---- stopping what was started ----------------------------------------------
pids=()
exit_hooks=()

# stop_pids PID...: TERM to all, then each gets 5 s before KILL, then reaped,
# and off `pids`, so that the exit trap never signals a reused PID.
stop_pids() {
    local pid i p keep=()
    for pid in "$@"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "$@"; do
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    for p in "${pids[@]}"; do
        for pid in "$@"; do
            [[ $p == "$pid" ]] && continue 2
        done
        keep+=("$p")
    done
    pids=("${keep[@]}")
    return 0
}

# at_exit COMMAND: runs COMMAND (a function of the suite) on exit, before the
# pids are stopped, for what `pids` cannot hold (a process the peer started,
# a broker stopped by its own tool).
at_exit() {
    exit_hooks+=("$1")
}

cleanup() {
    local i
    for ((i = ${#exit_hooks[@]} - 1; i >= 0; i--)); do
        "${exit_hooks[i]}"
    done
    stop_pids "${pids[@]}"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# ---- installing peers ---------------------------------------------------------

# need_apt LOG PKG...: installs Debian packages with apt-get (output to LOG),
# with one `apt-get update` per suite run. Says so, and non-zero, if that
# fails.
apt_updated=""
need_apt() {
    local log=$1
    shift
    say "installing $* (apt-get)"
    if [[ -z "$apt_updated" ]] && apt-get update -qq >>"$log" 2>&1; then
        apt_updated=yes
    fi
    if [[ -z "$apt_updated" ]] ||
        ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >>"$log" 2>&1; then
        say "could not install $* (see $log)"
        return 1
    fi
}

# ensure_node LOG: nodejs and npm, from apt-get when either is missing.
ensure_node() {
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 && return 0
    need_apt "$1" nodejs npm
}

# ensure_redis LOG: Debian's redis-server (7.x: sharded pub/sub) when missing.
ensure_redis() {
    command -v redis-server >/dev/null 2>&1 || need_apt "$1" redis-server
}

# ensure_chromium LOG: a browser at $CHROMIUM (exported for the Node
# checks; default Debian's /usr/bin/chromium, installed when missing).
# Says so, and non-zero, when there is none.
ensure_chromium() {
    export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
    [[ -x "$CHROMIUM" ]] || need_apt "$1" chromium
    [[ -x "$CHROMIUM" ]] && return 0
    say "no browser at $CHROMIUM"
    return 1
}

# need_duplex_bin: is there a duplex binary at $DUPLEX_BIN? Says so if not.
need_duplex_bin() {
    [[ -x "$DUPLEX_BIN" ]] && return 0
    say "no duplex binary at $DUPLEX_BIN (run through scripts/conformance.sh, which builds it)"
    return 1
}

# npm_ci SRC CACHE MODULE LOG: the npm packages pinned in SRC (package.json
# and package-lock.json) installed into CACHE with `npm ci`, reused while
# CACHE/node_modules/MODULE is there from the same two files (playwright-core
# never downloads a browser). Output to LOG; says why on failure.
npm_ci() {
    local src=$1 cache=$2 module=$3 log=$4 key
    key="$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -d' ' -f1)"
    if [[ -d "$cache/node_modules/$module" && "$(cat "$cache/.install-key" 2>/dev/null)" == "$key" ]]; then
        return 0
    fi
    say "installing the npm packages of ${src#"$DUPLEX_ROOT"/} into $cache"
    mkdir -p "$cache"
    cp "$src/package.json" "$src/package-lock.json" "$cache/"
    rm -rf "$cache/node_modules"
    if ! (cd "$cache" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 timeout 600 npm ci --no-audit --no-fund) >>"$log" 2>&1; then
        say "npm ci failed (see $log)"
        tail -n 15 "$log"
        return 1
    fi
    echo "$key" >"$cache/.install-key"
}

# copy_mjs DEST DIR...: the .mjs files of each DIR, and the shared modules of
# js/ they import, into DEST (next to node_modules, where imports resolve).
copy_mjs() {
    local dest=$1 dir
    shift
    mkdir -p "$dest"
    for dir in "$@" "$DUPLEX_ROOT/scripts/conformance/js"; do
        cp "$dir"/*.mjs "$dest/"
    done
}

# ---- starting servers and waiting for them ---------------------------------

# free_port: a loopback port nobody listens on (the kernel's pick, by node).
free_port() {
    node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

# port_open PORT: does 127.0.0.1:PORT accept a connection?
port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# engineio_open PORT: does 127.0.0.1:PORT answer an Engine.IO handshake?
engineio_open() {
    curl -sf --max-time 2 "http://127.0.0.1:$1/socket.io/?EIO=4&transport=polling" 2>/dev/null | grep -q '^0{'
}

# wait_until PID SECONDS CHECK...: runs CHECK every 0.1 s; 0 once it
# succeeds, 1 after SECONDS, 2 as soon as PID has exited.
wait_until() {
    local pid=$1 deadline=$((SECONDS + $2))
    shift 2
    while ((SECONDS < deadline)); do
        kill -0 "$pid" 2>/dev/null || return 2
        "$@" && return 0
        sleep 0.1
    done
    return 1
}

# wait_port PID PORT SECONDS: 0 listening, 1 timeout, 2 PID exited.
wait_port() {
    wait_until "$1" "$3" port_open "$2"
}

# spawn LOG CMD...: CMD in the background, its output to LOG, its pid in
# `pids` (stopped on exit) and in $spawned.
spawned=""
spawn() {
    local log=$1
    shift
    "$@" >"$log" 2>&1 &
    spawned=$!
    pids+=("$spawned")
}

# ready NAME PORT [CHECK]: waits 30 s for $spawned to answer CHECK PORT
# (default port_open); on failure says why, shows the end of $out/NAME.log
# and returns non-zero.
ready() {
    local name=$1 port=$2 check=${3:-port_open}
    wait_until "$spawned" 30 "$check" "$port"
    case $? in
        0) return 0 ;;
        1) say "$name did not listen on 127.0.0.1:$port within 30 s" ;;
        *) say "$name exited at start" ;;
    esac
    tail -n 15 "$out/$name.log"
    return 1
}

# start NAME PORT CMD...: spawn CMD logged to $out/NAME.log, then ready.
start() {
    local name=$1 port=$2
    shift 2
    spawn "$out/$name.log" "$@"
    ready "$name" "$port"
}

# start_duplex NAME PORT ARGS...: `duplex conformance-server` on
# 127.0.0.1:PORT with ARGS, as start does.
start_duplex() {
    local name=$1 port=$2
    shift 2
    start "$name" "$port" "$DUPLEX_BIN" conformance-server --addr "127.0.0.1:$port" "$@"
}

# start_redis NAME: a Redis of its own on a free port, no persistence, as
# start does; its URL in $redis_url.
redis_url=""
start_redis() {
    local port
    port="$(free_port)"
    redis_url="redis://127.0.0.1:$port"
    start "$1" "$port" redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no
}

# wait_for_line FILE REGEX: waits up to 20 s for a line of FILE matching the
# extended REGEX; prints the first such line.
wait_for_line() {
    local i
    for ((i = 0; i < 200; i++)); do
        grep -m1 -E "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# start_serve: `duplex serve` on ports of its own choosing (RUST_LOG=warn,
# stdout to $out/server.log, stderr to $out/server.err), its pid in
# $spawned; once it has announced both, its HTTP address (host:port) in
# $addr and its STOMP one in $stomp_addr. Non-zero if it does not within
# 20 s.
addr=""
stomp_addr=""
start_serve() {
    local http_line stomp_line
    RUST_LOG=warn "$DUPLEX_BIN" serve --addr 127.0.0.1:0 --stomp-addr 127.0.0.1:0 \
        >"$out/server.log" 2>"$out/server.err" &
    spawned=$!
    pids+=("$spawned")
    http_line="$(wait_for_line "$out/server.log" 'listening on http://')" || return 1
    stomp_line="$(wait_for_line "$out/server.log" '^STOMP over TCP on ')" || return 1
    addr="$(sed -E 's#.*http://([^/]+)/.*#\1#' <<<"$http_line")"
    stomp_addr="${stomp_line#STOMP over TCP on }"
}

# ---- a private RabbitMQ ---------------------------------------------------------
rabbit_bin=/usr/lib/rabbitmq/bin
rabbit_pid=""
rabbit_dir=""
rabbit_log=""
stomp_port=""
web_stomp_port=""
epmd_port=""

# port_from PORT: the first port from PORT up that nobody listens on.
port_from() {
    local port=$1
    while port_open "$port"; do
        port=$((port + 1))
    done
    echo "$port"
}

# start_rabbitmq DIR NODENAME LOG STOMP AMQP EPMD [WEB_STOMP]: boots a
# private RabbitMQ in the background (Debian's rabbitmq-server, installed
# first when missing, without starting the system service): every listener
# (STOMP, AMQP, Erlang distribution, epmd, and Web-STOMP when WEB_STOMP is
# given and the plugin is there) on 127.0.0.1 at the first free port from
# the one given, every bit of state in DIR, which is its HOME too (the
# Erlang cookie). Sets rabbit_pid, stomp_port, web_stomp_port (else empty)
# and epmd_port; stopped on exit, and DIR removed. Output to LOG. It boots
# (tens of seconds on a busy machine) while the suite goes on:
# wait_rabbitmq waits for it.
start_rabbitmq() {
    local dir=$1 amqp_port dist_port plugins=rabbitmq_stomp
    rabbit_log=$3
    if [[ ! -x "$rabbit_bin/rabbitmq-server" ]]; then
        # RUNLEVEL=1 keeps invoke-rc.d from starting the system-wide service.
        RUNLEVEL=1 need_apt "$rabbit_log" rabbitmq-server || return 1
    fi
    mkdir -p "$dir"
    rabbit_dir=$dir
    stomp_port="$(port_from "$4")"
    amqp_port="$(port_from "$5")"
    dist_port="$(port_from $((amqp_port + 1)))"
    epmd_port="$(port_from "$6")"
    web_stomp_port=""
    # shellcheck disable=SC2010
    if [[ -n "${7:-}" ]] && ls "$(dirname "$rabbit_bin")"/lib/*/plugins 2>/dev/null | grep -q '^rabbitmq_web_stomp-'; then
        web_stomp_port="$(port_from "$7")"
        plugins="rabbitmq_stomp,rabbitmq_web_stomp"
    fi
    export RABBITMQ_CONF_ENV_FILE="$dir/rabbitmq-env.conf"
    export RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf"
    export RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins"
    export RABBITMQ_MNESIA_BASE="$dir/mnesia"
    export RABBITMQ_LOG_BASE="$dir/log"
    export RABBITMQ_NODENAME="$2"
    export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    export RABBITMQ_NODE_PORT="$amqp_port"
    export RABBITMQ_DIST_PORT="$dist_port"
    export ERL_EPMD_ADDRESS=127.0.0.1
    export ERL_EPMD_PORT="$epmd_port"
    export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    : >"$RABBITMQ_CONF_ENV_FILE"
    echo "[$plugins]." >"$RABBITMQ_ENABLED_PLUGINS_FILE"
    {
        echo "listeners.tcp.1 = 127.0.0.1:$amqp_port"
        echo "stomp.listeners.tcp.1 = 127.0.0.1:$stomp_port"
        if [[ -n "$web_stomp_port" ]]; then
            echo "web_stomp.tcp.ip = 127.0.0.1"
            echo "web_stomp.tcp.port = $web_stomp_port"
        fi
        echo "loopback_users.guest = true"
        echo "log.console = true"
        echo "log.console.level = warning"
        echo "log.file = false"
    } >"$RABBITMQ_CONFIG_FILE"
    at_exit stop_rabbitmq
    HOME="$dir" "$rabbit_bin/rabbitmq-server" >>"$rabbit_log" 2>&1 &
    rabbit_pid=$!
}

# wait_rabbitmq SECONDS: 0 once the STOMP port is open, non-zero if the
# broker exits or SECONDS pass first; then up to 10 s for Web-STOMP's port,
# emptied when that plugin does not come up.
wait_rabbitmq() {
    [[ -n "$rabbit_pid" ]] || return 1
    wait_until "$rabbit_pid" "$1" port_open "$stomp_port" || return 1
    if [[ -n "$web_stomp_port" ]] && ! wait_until "$rabbit_pid" 10 port_open "$web_stomp_port"; then
        web_stomp_port=""
    fi
    return 0
}

# stop_rabbitmq: the broker of start_rabbitmq stopped (rabbitmqctl, else
# TERM; KILL after 30 s), its epmd too, its folder removed.
stop_rabbitmq() {
    local i
    [[ -n "$rabbit_pid" ]] || return 0
    HOME="$rabbit_dir" "$rabbit_bin/rabbitmqctl" stop >>"$rabbit_log" 2>&1 || kill "$rabbit_pid" 2>/dev/null
    for ((i = 0; i < 30; i++)); do
        kill -0 "$rabbit_pid" 2>/dev/null || break
        sleep 1
    done
    kill -9 "$rabbit_pid" 2>/dev/null
    # The epmd on our private port was started for this broker only.
    command -v epmd >/dev/null && epmd -port "$epmd_port" -kill >/dev/null 2>&1
    rm -rf "$rabbit_dir"
    rabbit_pid=""
}

# ---- results --------------------------------------------------------------------

# fail_with NAME...: `NAME: 0 passed, 1 failed` for each NAME (a group that
# could not run counts as one failure), then exit 1.
fail_with() {
    local name
    for name in "$@"; do
        echo "$name: 0 passed, 1 failed"
    done
    exit 1
}

# report NAME LOG RC LINES: the LOG of one timed run (RC its exit code, 124
# a timeout of $run_timeout s): prints its lines matching the regex LINES
# and its `NAME: N passed, N failed` line, or a failure line of that form
# if it printed none. Non-zero unless the run passed.
report() {
    local name=$1 log=$2 rc=$3
    grep -E "$4" "$log"
    if ! grep -E "^$name: [0-9]+ passed, [0-9]+ failed$" "$log"; then
        echo "$name: 0 passed, 1 failed"
        ((rc == 124)) && say "$name: did not finish within $run_timeout s"
        tail -n 10 "$log"
        return 1
    fi
    ((rc == 0))
}
