#!/usr/bin/env bash
# SockJS and STOMP interop against `duplex conformance-server`:
#
#   sockjs-client-<transport>  npm sockjs-client (Node) with one transport
#                              forced per run: websocket, xhr-streaming,
#                              xhr-polling, eventsource (those sockjs-client
#                              can use in Node), echoing through the
#                              /sockjs/ services (sockjs-stomp/sockjs-interop.mjs)
#   stompjs-websocket          @stomp/stompjs over a WebSocket at /stomp
#   stompjs-sockjs             @stomp/stompjs over sockjs-client at /sockjs/stomp
#                              (sockjs-stomp/stompjs-interop.mjs: subscribe,
#                              send, receipts, ack modes, transactions, binary
#                              bodies, heart-beats)
#   stomp.py                   PyPI stomp.py over TCP (--stomp-addr), STOMP
#                              1.0/1.1/1.2, heart-beats, escaping, NUL in
#                              bodies (sockjs-stomp/stomppy_interop.py)
#
# Each prints `<name>: N passed, N failed`; a run that dies or times out
# counts as one failure. Full output goes to $DUPLEX_OUT/sockjs-stomp/.
#
# Run it through the driver:  DUPLEX_SUITES=sockjs-stomp scripts/conformance.sh
# It installs the npm packages pinned in scripts/conformance/sockjs-stomp/
# (package-lock.json, `npm ci`) and stomp.py (requirements.txt, a Python 3
# venv) into $DUPLEX_CACHE/sockjs-stomp, reused while the pins are
# unchanged; starts the server on free 127.0.0.1 ports; bounds every run
# with a timeout; and stops everything it started on exit. Exits non-zero on
# any failure.
#
# Environment, besides the driver's DUPLEX_ROOT, DUPLEX_CACHE, DUPLEX_OUT
# and DUPLEX_BIN (all optional):
#   SOCKJS_STOMP_TIMEOUT   seconds one run may take (default 180)
#   SOCKJS_TRANSPORTS      sockjs-client transports (default
#                          "websocket xhr-streaming xhr-polling eventsource")
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"
helpers="$here/sockjs-stomp"
run_timeout="${SOCKJS_STOMP_TIMEOUT:-180}"
transports="${SOCKJS_TRANSPORTS:-websocket xhr-streaming xhr-polling eventsource}"

cache="$DUPLEX_CACHE/sockjs-stomp"
out="$DUPLEX_OUT/sockjs-stomp"
mkdir -p "$cache" "$out"

say() { echo "sockjs-stomp: $*"; }

names() {
    local t
    for t in $transports; do echo "sockjs-client-$t"; done
    echo stompjs-websocket stompjs-sockjs stomp.py
}

# shellcheck disable=SC2046
fail_all() { fail_with $(names); }

ensure_node "$out/install.log" || fail_all
if ! python3 -c 'import venv' >/dev/null 2>&1; then
    need_apt "$out/install.log" python3-venv || fail_all
fi
need_duplex_bin || fail_all

# npm packages, from the committed lock file.
npm_ci "$helpers" "$cache" sockjs-client "$out/install.log" || fail_all
copy_mjs "$cache" "$helpers"

# stomp.py, pinned, in a venv of its own.
venv="$cache/stomppy-venv"
key="$(cat "$helpers/requirements.txt" | sha256sum | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" || "$(cat "$venv/.pip-key" 2>/dev/null)" != "$key" ]]; then
    say "installing stomp.py into $venv"
    rm -rf "$venv"
    if ! { python3 -m venv "$venv" &&
        timeout 600 "$venv/bin/python" -m pip install -r "$helpers/requirements.txt"; } >>"$out/install.log" 2>&1; then
        say "pip install stomp.py failed (see $out/install.log)"
        tail -n 15 "$out/install.log"
        fail_all
    fi
    echo "$key" >"$venv/.pip-key"
fi

port="$(free_port)"
stomp_port="$(free_port)"
spawn "$out/server.log" "$DUPLEX_BIN" conformance-server --addr "127.0.0.1:$port" --stomp-addr "127.0.0.1:$stomp_port"
server=$spawned
ready server "$port" && ready server "$stomp_port" || fail_all

status=0
# run NAME COMMAND...: runs one check program, prints its summary line (or
# a failure if it printed none) and its FAIL lines.
run() {
    local name=$1
    shift
    local log="$out/$name.txt"
    (cd "$cache" && timeout -k 5 "$run_timeout" "$@") >"$log" 2>&1
    local rc=$?
    local summary
    summary="$(grep -E "^$name: [0-9]+ passed, [0-9]+ failed$" "$log" | tail -n1)"
    if [[ -z "$summary" ]]; then
        ((rc == 124)) && say "$name did not finish within $run_timeout s"
        summary="$name: 0 passed, 1 failed"
        rc=1
    fi
    echo "$summary"
    grep -E '^FAIL' "$log" | sed 's/^/  /'
    if ((rc != 0)); then
        status=1
        echo "  details: $log"
    fi
}

for t in $transports; do
    run "sockjs-client-$t" node sockjs-interop.mjs "http://127.0.0.1:$port/sockjs" "$t"
done
run stompjs-websocket node stompjs-interop.mjs "http://127.0.0.1:$port" websocket
run stompjs-sockjs node stompjs-interop.mjs "http://127.0.0.1:$port" sockjs
run stomp.py "$venv/bin/python" "$helpers/stomppy_interop.py" "127.0.0.1:$stomp_port"

if ! kill -0 "$server" 2>/dev/null; then
    say "the server died during the runs (see $out/server.log)"
    status=1
fi
exit "$status"
