#!/usr/bin/env bash
# `duplex connect` against servers that are not duplex (issue #21): the
# release binary at $DUPLEX_BIN driven as a subprocess, stdin in, stdout
# and the exit code checked. Each group prints `<group>: N passed, N failed`:
#
#   connect-ws           the Node `ws` server (scripts/conformance/connect/
#                        ws-server.mjs): text, binary in base64 and hex, JSON
#                        lines both ways, subprotocol, headers,
#                        permessage-deflate, pings, the close code sent and
#                        the server's close code received
#   connect-wss          the same server over TLS with a certificate made here
#                        by openssl: trusted with --ca, skipped with
#                        --insecure (and its warning), refused otherwise
#   connect-socketio-<transport>   the Node socket.io 4.8 reference server
#                        (scripts/conformance/socketio/reference-server.mjs)
#                        with --transport websocket, polling and upgrade:
#                        acks both ways, binary arguments, auth, namespaces,
#                        the transport in use, reconnection, a refused
#                        namespace
#   connect-stomp-tcp    RabbitMQ's STOMP plugin (started here as the
#                        stomp-rabbitmq suite does, on 127.0.0.1 only):
#                        receipts, subscribe/send, headers, heart-beats, the
#                        ack modes auto, client, client-individual (checked by
#                        what a later subscriber is redelivered), a refused
#                        login
#   connect-stomp-ws     the same over RabbitMQ's Web-STOMP plugin
#   connect-interactive  a person at a terminal, played with tmux (send-keys,
#                        capture-pane): the prompt, typed lines emitted, events
#                        shown as they arrive, Ctrl-C closing cleanly (exit 0)
#
# Run it through the driver:  DUPLEX_SUITES=connect scripts/conformance.sh
# or on its own with DUPLEX_BIN set to a release binary. It installs the npm
# packages pinned in scripts/conformance/connect/ (package-lock.json) into
# $DUPLEX_CACHE/connect with `npm ci` (reused while the lock is unchanged),
# and nodejs, tmux and rabbitmq-server with apt-get where they are missing.
# Every `duplex connect` run is bounded by a timeout. Logs and outputs go to
# $DUPLEX_OUT/connect/. Exits non-zero on any failure.
#
# Environment, besides the driver's DUPLEX_ROOT, DUPLEX_CACHE, DUPLEX_OUT and
# DUPLEX_BIN (all optional):
#   CONNECT_GROUPS   the groups to run (default "ws socketio stomp interactive";
#                    "ws" covers ws and wss)
set -uo pipefail
# `printf … | dc …` runs dc in this shell, so that it sets $rc and $last.
shopt -s lastpipe

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"
helpers="$here/connect"
groups="${CONNECT_GROUPS:-ws socketio stomp interactive}"

cache="$DUPLEX_CACHE/connect"
out="$DUPLEX_OUT/connect"
mkdir -p "$cache" "$out"
rm -f "$out"/*.out "$out"/*.err

say() { echo "connect: $*"; }

# ---- what this suite starts besides `pids` ---------------------------------
state="$(mktemp -d "${TMPDIR:-/tmp}/duplex-connect.XXXXXX")"
remove_state() { rm -rf "$state"; }
at_exit remove_state
tmux_sessions=()
kill_tmux_sessions() {
    local s
    for s in "${tmux_sessions[@]}"; do
        tmux kill-session -t "$s" 2>/dev/null
    done
}
at_exit kill_tmux_sessions

# ---- counting ---------------------------------------------------------------
group="" passed=0 failed=0 status=0
begin() { group="$1" passed=0 failed=0; }
# check NAME COMMAND…: one check of the current group, passing when COMMAND
# succeeds; a failure names the check and the files of its last run.
check() {
    local name="$1"
    shift
    if "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "  FAIL $group: $name (rc=$rc; see $last.out, $last.err)"
    fi
}
end() {
    echo "$group: $passed passed, $failed failed"
    ((failed == 0)) || status=1
}
# A whole group that could not run.
give_up() {
    echo "  FAIL $1: $2"
    echo "$1: 0 passed, 1 failed"
    status=1
}

# dc NAME ARGS…: runs `duplex connect ARGS…` (stdin from the caller), stdout
# in $out/NAME.out, stderr in $out/NAME.err, exit code in $rc.
rc=0 last=""
dc() {
    last="$out/$1"
    shift
    RUST_LOG=warn timeout -k 2 20 "$DUPLEX_BIN" connect --timeout 5 "$@" >"$last.out" 2>"$last.err"
    rc=$?
}
rc_is() { ((rc == $1)); }
out_is() { [[ "$(cat "$last.out")" == "$1" ]]; }
out_has() { grep -qF -- "$1" "$last.out"; }
# A whole line of the last stdout.
out_line() { grep -qxF -- "$1" "$last.out"; }
err_has() { grep -qF -- "$1" "$last.err"; }
# jsonl_ok SCRIPT: runs a JavaScript expression over `rows` (the JSON lines
# of the last stdout, parsed) and passes when it is true.
jsonl_ok() {
    node -e '
        const rows = require("fs").readFileSync(process.argv[1], "utf8")
            .trim().split("\n").map((l) => JSON.parse(l));
        process.exit(('"$1"') ? 0 : 1);
    ' "$last.out" 2>>"$last.err"
}
# until_in FILE TEXT SECONDS: waits until FILE contains TEXT.
until_in() {
    local deadline=$((SECONDS + $3))
    while ((SECONDS < deadline)); do
        grep -qF -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

fail_everything() {
    local g
    for g in $groups; do
        case $g in
            ws) give_up connect-ws "$1"; give_up connect-wss "$1" ;;
            socketio) for t in websocket polling upgrade; do give_up "connect-socketio-$t" "$1"; done ;;
            stomp) give_up connect-stomp-tcp "$1"; give_up connect-stomp-ws "$1" ;;
            *) give_up "connect-$g" "$1" ;;
        esac
    done
    exit 1
}

# ---- peers ------------------------------------------------------------------
if [[ ! -x "$DUPLEX_BIN" ]] || ! "$DUPLEX_BIN" connect --help >/dev/null 2>&1; then
    say "no duplex binary with \`duplex connect\` at $DUPLEX_BIN (run through scripts/conformance.sh, which builds it)"
    fail_everything "no binary"
fi
if ! ensure_node "$out/install.log"; then
    say "could not install nodejs/npm (see $out/install.log)"
    fail_everything "no node"
fi
key="$(cat "$helpers/package.json" "$helpers/package-lock.json" | sha256sum | cut -d' ' -f1)"
if [[ ! -d "$cache/node_modules/ws" || "$(cat "$cache/.install-key" 2>/dev/null)" != "$key" ]]; then
    say "installing ws and socket.io into $cache"
    cp "$helpers/package.json" "$helpers/package-lock.json" "$cache/"
    rm -rf "$cache/node_modules"
    if ! (cd "$cache" && timeout 600 npm ci --no-audit --no-fund) >"$out/install.log" 2>&1; then
        say "npm ci failed (see $out/install.log)"
        tail -n 15 "$out/install.log"
        fail_everything "npm ci failed"
    fi
    echo "$key" >"$cache/.install-key"
fi
cp "$helpers"/*.mjs "$here/socketio/reference-server.mjs" "$cache/"

# ==== WebSocket: the Node ws server, plain and TLS ===========================
ws_groups() {
    # A private CA and a server certificate for 127.0.0.1 and localhost.
    local tls="$state/tls"
    mkdir -p "$tls"
    if ! {
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=duplex test CA" \
            -keyout "$tls/ca.key" -out "$tls/ca.pem" \
            -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign &&
            openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
                -keyout "$tls/server.key" -out "$tls/server.csr" &&
            printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$tls/ext.cnf" &&
            openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
                -CAcreateserial -days 2 -extfile "$tls/ext.cnf" -out "$tls/server.pem"
    } >"$out/openssl.log" 2>&1; then
        give_up connect-ws "openssl could not make the test certificate (see $out/openssl.log)"
        give_up connect-wss "no certificate"
        return
    fi

    local port tls_port
    port="$(free_port)"
    tls_port="$(free_port)"
    node "$cache/ws-server.mjs" "$port" "$tls_port" "$tls/server.pem" "$tls/server.key" >"$out/ws-server.log" 2>&1 &
    local server_pid=$!
    pids+=("$server_pid")
    if ! wait_port "$server_pid" "$port" 30 || ! wait_port "$server_pid" "$tls_port" 30; then
        tail -n 15 "$out/ws-server.log"
        give_up connect-ws "the ws server did not start"
        give_up connect-wss "the ws server did not start"
        return
    fi
    local ws="ws://127.0.0.1:$port" wss="wss://127.0.0.1:$tls_port"
    server_log_has() { until_in "$out/ws-server.log" "$1" 5; }

    begin connect-ws
    printf 'hello\nworld, with ünïcödé\n' | dc ws-text "$ws/echo"
    check "text lines echoed" out_is $'hello\nworld, with ünïcödé'
    check "text: exit 0" rc_is 0
    check "text: closed with 1000" server_log_has "close ws/echo 1000 "
    check "text: the open and the close shown" err_has "connected to $ws/echo"

    printf 'AAEC/w==\naGk=\n' | dc ws-base64 "$ws/echo" --binary
    check "binary base64 echoed" out_is $'AAEC/w==\naGk='
    check "binary base64: exit 0" rc_is 0

    printf '00017f80ff\nDEADBEEF\n' | dc ws-hex "$ws/echo" --binary hex
    check "binary hex echoed (lower case)" out_is $'00017f80ff\ndeadbeef'

    printf '%s\n' 'plain text' '{"type":"binary","data":"AQID"}' '{"type":"text","data":"t"}' |
        dc ws-jsonl "$ws/echo" --jsonl
    check "jsonl: exit 0" rc_is 0
    check "jsonl: open, text, binary, text, close records with timestamps" jsonl_ok '
        rows.map((r) => r.type).join() === "open,text,binary,text,close" &&
        rows.every((r) => typeof r.timestamp === "number") &&
        rows[1].data === "plain text" && rows[2].data === "AQID" &&
        rows[2].encoding === "base64" && rows[3].data === "t" && rows[4].code === 1000'

    echo hi | dc ws-protocol "$ws/protocol" --subprotocol chat.v2 --subprotocol other
    check "subprotocol: the first offered is chosen" out_is $'protocol chat.v2\nhi'
    check "subprotocol: shown on connect" err_has "(subprotocol chat.v2)"

    echo hi | dc ws-no-protocol "$ws/protocol"
    check "no subprotocol offered, none chosen" out_is $'protocol none\nhi'

    echo hi | dc ws-header "$ws/headers" --header 'X-Duplex-Test: yes please'
    check "--header reaches the server" out_is $'header yes please\nhi'

    printf '%s\n' 'compressible compressible compressible compressible' |
        dc ws-deflate "$ws/echo" --deflate --jsonl
    check "deflate: negotiated and echoed" jsonl_ok '
        rows[0].type === "open" && rows[0].extensions.some((e) => e.startsWith("permessage-deflate")) &&
        rows[1].data === "compressible compressible compressible compressible"'

    dc ws-ping "$ws/echo" --ping-interval 0.2 --wait 1 </dev/null
    check "pings every --ping-interval" server_log_has "ping ws/echo"
    check "pings: exit 0" rc_is 0

    echo bye | dc ws-close-code "$ws/echo" --close-code 4000 --close-reason done
    check "--close-code and --close-reason reach the server" server_log_has "close ws/echo 4000 done"
    check "close code: exit 0" rc_is 0

    dc ws-server-close "$ws/close" </dev/null
    check "the server's close code 4001: exit 1" rc_is 1
    check "the server's close code shown" err_has "4001 going now"

    dc ws-count "$ws/push" --count 3 </dev/null
    check "--count 3 of a pushed stream" out_is $'push 1\npush 2\npush 3'
    check "count: exit 0" rc_is 0
    end

    begin connect-wss
    printf 'over tls\n' | dc wss-ca "$wss/echo" --ca "$tls/ca.pem"
    check "--ca: echoed" out_is "over tls"
    check "--ca: exit 0" rc_is 0
    check "--ca: closed with 1000" server_log_has "close wss/echo 1000 "

    printf 'AAEC/w==\n' | dc wss-binary "$wss/echo" --ca "$tls/ca.pem" --binary
    check "--ca: binary echoed" out_is "AAEC/w=="

    echo hi | dc wss-localhost "wss://localhost:$tls_port/protocol" --ca "$tls/ca.pem" --subprotocol chat
    check "--ca by host name, with a subprotocol" out_is $'protocol chat\nhi'

    printf 'unchecked\n' | dc wss-insecure "$wss/echo" --insecure
    check "--insecure: echoed" out_is "unchecked"
    check "--insecure: exit 0" rc_is 0
    check "--insecure: a warning on stderr" err_has "certificate is not verified"

    echo never | dc wss-untrusted "$wss/echo"
    check "an unknown CA: exit 1" rc_is 1
    check "an unknown CA: nothing sent" out_is ""
    check "an unknown CA: one line on stderr" test "$(wc -l <"$last.err")" -eq 1

    echo bye | dc wss-close-code "$wss/echo" --ca "$tls/ca.pem" --close-code 4002 --close-reason tls
    check "wss: close code reaches the server" server_log_has "close wss/echo 4002 tls"
    end
}

# ==== Socket.IO: the Node reference server ===================================
socketio_groups() {
    local port
    port="$(free_port)"
    node "$cache/reference-server.mjs" "$port" >"$out/socketio-server.log" 2>&1 &
    local server_pid=$!
    pids+=("$server_pid")
    if ! wait_port "$server_pid" "$port" 30; then
        tail -n 15 "$out/socketio-server.log"
        for t in websocket polling upgrade; do give_up "connect-socketio-$t" "the reference server did not start"; done
        return
    fi
    local url="http://127.0.0.1:$port"
    local t expected
    for t in websocket polling upgrade; do
        begin "connect-socketio-$t"
        local sio=(--socketio --transport "$t")

        dc "sio-$t-ack" "$url/" "${sio[@]}" --emit message-with-ack '"hi"' 42 '{"a":[1,null]}' --ack </dev/null
        check "an ack with JSON arguments" out_line 'ack message-with-ack "hi" 42 {"a":[1,null]}'
        check "ack: exit 0" rc_is 0

        dc "sio-$t-binary-ack" "$url/" "${sio[@]}" --emit message-with-ack '{"$base64":"AAEC/w=="}' '[{"$base64":""}]' --ack </dev/null
        check "binary arguments in an ack" out_line 'ack message-with-ack "AAEC/w==" [""]'

        dc "sio-$t-binary-event" "$url/" "${sio[@]}" --emit message '{"$base64":"aGk="}' '"x"' --count 2 </dev/null
        check "binary arguments in an event" out_has 'message-back "aGk=" "x"'
        check "binary event: exit 0" rc_is 0

        dc "sio-$t-server-ack" "$url/" "${sio[@]}" --emit server-ack '"s"' 2 --count 3 </dev/null
        check "the server's ack request answered" out_is $'auth {}\nplease-ack "s" 2\nclient-acked'

        dc "sio-$t-auth" "$url/custom" "${sio[@]}" --auth '{"token":"t"}' --count 1 </dev/null
        check "auth payload, namespace /custom" out_is 'auth {"token":"t"}'
        check "namespace: connect shown" err_has "connected to /custom"

        case $t in polling) expected=polling ;; *) expected=websocket ;; esac
        (sleep 1.5; echo transport) | dc "sio-$t-transport" "$url/" "${sio[@]}" --ack
        check "the transport in use is $expected" out_line "ack transport \"$expected\""

        printf '%s\n' 'message "line" {"n":1}' | dc "sio-$t-jsonl" "$url/" "${sio[@]}" --jsonl --count 2
        check "jsonl: connect, events with args" jsonl_ok '
            rows.map((r) => r.type).join() === "connect,event,event,close" &&
            rows[2].event === "message-back" && rows[2].args[1].n === 1 &&
            typeof rows[0].sid === "string"'

        (echo kill; sleep 3; echo 'message "after"') | dc "sio-$t-reconnect" "$url/" "${sio[@]}" --wait 1
        check "reconnected after the server dropped the connection" err_has "reconnected to /"
        check "reconnect: emits go on" out_line 'message-back "after"'
        check "reconnect: exit 0" rc_is 0

        dc "sio-$t-bad-ns" "$url/nope" "${sio[@]}" </dev/null
        check "a refused namespace: exit 1" rc_is 1
        check "a refused namespace: the server's reason" err_has "Invalid namespace"
        end
    done
}

# ==== STOMP: RabbitMQ's STOMP and Web-STOMP plugins ==========================
# stomp_group GROUP URL: the checks of one STOMP transport; destinations
# are named after the group so that the two groups share nothing.
auto_rest_ok() {
    grep -qx 'receipt subscribe-1' "$last.out" && ! grep -qxv -e 'receipt subscribe-1' -e two "$last.out"
}
stomp_group() {
    local name="$1" url="$2" q="/queue/duplex-$1" topic="/topic/duplex-$1"
    local login=(--stomp --login guest --passcode guest)
    begin "$name"

    dc "$name-send" "$url" "${login[@]}" --send "$q-a" hello --send "$q-a" again </dev/null
    check "--send awaits and prints receipts" out_is $'receipt send-1\nreceipt send-2'
    check "send: exit 0" rc_is 0
    check "send: connected and disconnected shown" err_has "disconnected"

    dc "$name-drain" "$url" "${login[@]}" --subscribe "$q-a" --count 2 </dev/null
    check "a queue subscriber receives what was sent before" out_is $'receipt subscribe-1\nhello\nagain'

    # A topic subscriber running while lines from stdin are sent.
    local sub="$out/$name-topic-sub"
    RUST_LOG=warn timeout -k 2 20 "$DUPLEX_BIN" connect --timeout 5 "$url" "${login[@]}" \
        --subscribe "$topic" --count 2 </dev/null >"$sub.out" 2>"$sub.err" &
    local sub_pid=$!
    until_in "$sub.out" "receipt subscribe-1" 10
    printf '%s\n' "$topic first line" "$topic second line" | dc "$name-topic-pub" "$url" "${login[@]}"
    check "stdin lines DEST BODY sent with receipts" out_is $'receipt send-1\nreceipt send-2'
    wait "$sub_pid"
    local sub_rc=$?
    check "a topic subscriber sees them as they arrive" test "$(cat "$sub.out")" = $'receipt subscribe-1\nfirst line\nsecond line'
    check "topic subscriber: exit 0" test "$sub_rc" -eq 0

    dc "$name-headers" "$url" "${login[@]}" -H 'x-duplex-trace: abc' --send "$q-h" 'with headers' </dev/null
    dc "$name-headers-sub" "$url" "${login[@]}" --subscribe "$q-h" --jsonl --count 1 </dev/null
    check "--header on SEND arrives on MESSAGE (jsonl)" jsonl_ok '
        rows.some((m) => m.type === "message" && m.headers["x-duplex-trace"] === "abc" &&
            m.body === "with headers" && m.destination === "'"$q-h"'") &&
        rows[0].type === "connected" && rows[0].version === "1.2"'

    # Ack modes: two messages queued, a subscriber takes one and leaves; what
    # it acknowledged is gone, the other is delivered to the next one.
    local mode
    for mode in auto client client-individual; do
        dc "$name-ack-$mode-fill" "$url" "${login[@]}" --send "$q-$mode" one --send "$q-$mode" two </dev/null
        dc "$name-ack-$mode-take" "$url" "${login[@]}" --subscribe "$q-$mode" --ack "$mode" --count 1 </dev/null
        check "--ack $mode: the first message" out_is $'receipt subscribe-1\none'
        check "--ack $mode: exit 0" rc_is 0
        dc "$name-ack-$mode-rest" "$url" "${login[@]}" --subscribe "$q-$mode" --ack "$mode" --wait 1 </dev/null
        if [[ $mode == auto ]]; then
            # RabbitMQ may have sent "two" to the first subscriber already:
            # with auto it counts as consumed, so at most "two" is left.
            check "--ack auto: the first message is not delivered again" auto_rest_ok
        else
            check "--ack $mode: the acknowledged message is gone, the other redelivered" \
                out_is $'receipt subscribe-1\ntwo'
        fi
    done

    dc "$name-heart-beat" "$url" "${login[@]}" --heart-beat 200,200 --subscribe "$topic-hb" --wait 1.5 </dev/null
    check "heart-beats of 200 ms keep the connection up" rc_is 0

    dc "$name-bad-login" "$url" --stomp --login guest --passcode wrong --send "$q-a" x </dev/null
    check "a refused login: exit 1" rc_is 1
    check "a refused login: the server's ERROR on stderr" err_has "server error"
    end
}

stomp_groups() {
    if ! wait_rabbitmq 120; then
        tail -n 20 "$out/rabbitmq.log"
        give_up connect-stomp-tcp "RabbitMQ did not start (see $out/rabbitmq.log)"
        give_up connect-stomp-ws "RabbitMQ did not start"
        return
    fi
    stomp_group connect-stomp-tcp "tcp://127.0.0.1:$stomp_port"
    if [[ -n "$web_stomp_port" ]]; then
        stomp_group connect-stomp-ws "ws://127.0.0.1:$web_stomp_port/ws"
    else
        say "the Web-STOMP plugin is not available: connect-stomp-ws skipped"
    fi
}

# ==== the interactive mode in a terminal =====================================
interactive_group() {
    if ! command -v tmux >/dev/null 2>&1 && ! need_apt "$out/install.log" tmux; then
        give_up connect-interactive "could not install tmux (see $out/install.log)"
        return
    fi
    local ws_port sio_port tls="$state/tls-interactive"
    mkdir -p "$tls"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
        -keyout "$tls/key.pem" -out "$tls/cert.pem" >/dev/null 2>&1
    ws_port="$(free_port)"
    sio_port="$(free_port)"
    node "$cache/ws-server.mjs" "$ws_port" "$(free_port)" "$tls/cert.pem" "$tls/key.pem" >"$out/interactive-ws-server.log" 2>&1 &
    pids+=($!)
    wait_port "$!" "$ws_port" 30
    node "$cache/reference-server.mjs" "$sio_port" >"$out/interactive-socketio-server.log" 2>&1 &
    pids+=($!)
    wait_port "$!" "$sio_port" 30

    begin connect-interactive
    local session
    # term_start NAME COMMAND: COMMAND in a 160x40 terminal; once it exits
    # the pane shows EXIT=<code> and stays.
    term_start() {
        session="duplex-connect-$$-$1"
        last="$out/$1"
        rc=""
        tmux_sessions+=("$session")
        tmux new-session -d -s "$session" -x 160 -y 40 \
            "RUST_LOG=warn '$DUPLEX_BIN' connect $2; echo EXIT=\$?; sleep 60"
    }
    # The screen now, kept in $last.out (a file, not a pipe: grep -q
    # leaving early must not turn a match into a failed pipeline).
    screen() { tmux capture-pane -p -t "$session" >"$last.out"; }
    # see PATTERN: the screen matches the extended regex within 10 s.
    see() {
        local deadline=$((SECONDS + 10))
        while ((SECONDS < deadline)); do
            screen && grep -qE -- "$1" "$last.out" && return 0
            sleep 0.1
        done
        return 1
    }
    not_see() { screen && ! grep -qE -- "$1" "$last.out"; }

    term_start ws "ws://127.0.0.1:$ws_port/push"
    check "ws: connected, and the prompt" see '^> ?$'
    check "ws: pushed messages shown as they arrive, nothing typed" see '^push 3$'
    tmux send-keys -t "$session" 'typed by hand' Enter
    check "ws: the typed line echoed on a line of its own" see '^typed by hand$'
    check "ws: the typed line stays above" see '^> typed by hand$'
    check "ws: the prompt comes back under arrivals" see '^push [0-9]+$'
    check "ws: still running" not_see 'EXIT='
    tmux send-keys -t "$session" C-c
    check "ws: Ctrl-C closes with exit 0" see '^EXIT=0$'
    check "ws: closed with 1000" see '^closed \(1000\)'
    check "ws: the server saw 1000" until_in "$out/interactive-ws-server.log" "close ws/push 1000" 5

    term_start sio "--socketio http://127.0.0.1:$sio_port/"
    check "socketio: connected, the first event, the prompt" see '^auth \{\}$'
    check "socketio: the prompt" see '^> ?$'
    tmux send-keys -t "$session" 'message "typed" 42 {"k":[1]}' Enter
    check "socketio: the typed line emitted, the echo shown" see '^message-back "typed" 42 \{"k":\[1\]\}$'
    tmux send-keys -t "$session" 'server-ack "x"' Enter
    check "socketio: a server's ack request answered" see '^client-acked$'
    tmux send-keys -t "$session" 'not json {' Enter
    check "socketio: a bad line is reported, not fatal" see 'line not sent'
    check "socketio: still running" not_see 'EXIT='
    tmux send-keys -t "$session" C-c
    check "socketio: Ctrl-C closes with exit 0" see '^EXIT=0$'
    end
}

# A private broker as suite-30-stomp-rabbitmq.sh has, on other ports; it
# boots while the other groups run.
if [[ " $groups " == *" stomp "* ]]; then
    say "starting RabbitMQ"
    : >"$out/rabbitmq.log"
    start_rabbitmq "$state/rabbit" duplex-connect@localhost "$out/rabbitmq.log" 61663 25682 24379 15684
fi
for g in $groups; do
    case $g in
        ws) ws_groups ;;
        socketio) socketio_groups ;;
        stomp) stomp_groups ;;
        interactive) interactive_group ;;
        *) say "unknown group $g"; status=1 ;;
    esac
done
exit $status
