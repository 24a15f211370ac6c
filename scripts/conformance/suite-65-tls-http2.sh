#!/usr/bin/env bash
# TLS, HTTP/2 and WebSockets over HTTP/2 (RFC 8441) against
# `duplex conformance-server --tls-cert … --tls-key …` and
# `duplex serve --tls-cert … --tls-key …` (shared contract:
# tls-http2.md), with a certificate made here by openssl (ECDSA P-256,
# CN=localhost, subjectAltName DNS:localhost and IP:127.0.0.1):
#
#   tls-timeouts   idle TLS connections closed (no ClientHello; ALPN
#                  http/1.1 and no request; ALPN h2 and no preface), cleartext
#                  to the TLS port refused, the next client served
#   tls-ws         npm `ws` over wss:// (text, binary, 1 MiB, ping, close)
#   tls-socketio   socket.io-client over https:// polling, wss:// and the
#                  upgrade (certificate trusted through NODE_EXTRA_CA_CERTS)
#   h2-http        Node's http2 client: SETTINGS_ENABLE_CONNECT_PROTOCOL,
#                  Engine.IO and SockJS over one HTTP/2 connection, streams
#                  served concurrently
#   h2-websocket   Node's http2 client opening WebSockets by extended CONNECT
#                  on /echo (text, binary, 1 MiB), /stomp, /socket.io/ and
#                  SockJS; 10 at once with one reset; bad CONNECTs refused
#   autobahn-wss   Autobahn|Testsuite's fuzzingclient over wss://, cases 1-10
#   h2-browser     Chromium loads the demo page over https:// (HTTP/2), chats
#                  over WebSocket, long-polling and SSE; /stats shows the
#                  WebSocket opened by extended CONNECT and polling on h2
#
# Each prints `<name>: N passed, N failed`; a group that could not run counts
# as one failure. Logs go to $DUPLEX_OUT/tls-http2/. Exits non-zero on any
# failure.
#
# Run it through the driver:  DUPLEX_SUITES=tls-http2 scripts/conformance.sh
# It installs the npm packages pinned in scripts/conformance/tls-http2/
# (package-lock.json, `npm ci`: ws, socket.io-client, playwright-core, which
# never downloads a browser) into $DUPLEX_CACHE/tls-http2, Debian's chromium
# with apt-get when missing, and reuses the autobahn suite's Python 2.7
# install ($DUPLEX_CACHE/autobahn/py27, made by suite-10-autobahn.sh, which
# is run once with a single case when it is missing). Everything listens on
# 127.0.0.1 and is stopped on exit.
#
# Environment, besides the driver's DUPLEX_ROOT, DUPLEX_CACHE, DUPLEX_OUT
# and DUPLEX_BIN (all optional):
#   TLS_HTTP2_TIMEOUT  seconds each Node or browser run may take (default 300)
#   CHROMIUM           the browser binary (default /usr/bin/chromium)
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"
helpers="$here/tls-http2"
run_timeout="${TLS_HTTP2_TIMEOUT:-300}"
export PYTHONDONTWRITEBYTECODE=1

cache="$DUPLEX_CACHE/tls-http2"
out="$DUPLEX_OUT/tls-http2"
mkdir -p "$cache" "$out"

node_groups=(tls-timeouts tls-ws tls-socketio h2-http h2-websocket)
groups=("${node_groups[@]}" autobahn-wss h2-browser)

say() { echo "tls-http2: $*"; }

fail_all() { fail_with "${groups[@]}"; }

# summary GROUP LOG: the group's line from LOG (a failure if missing), and
# its FAIL lines; returns non-zero unless it passed.
summary() {
    local line
    line="$(grep -E "^$1: [0-9]+ passed, [0-9]+ failed$" "$2" | tail -n1)"
    [[ -z "$line" ]] && line="$1: 0 passed, 1 failed"
    echo "$line"
    grep -E "^FAIL $1 " "$2" | sed 's/^/  /'
    [[ "$line" == *" 0 failed" ]]
}

ensure_node "$out/install.log" || fail_all
if ! command -v openssl >/dev/null 2>&1; then
    say "no openssl to make the test certificate"
    fail_all
fi
need_duplex_bin || fail_all

# npm packages, from the committed lock file.
npm_ci "$helpers" "$cache" ws "$out/install.log" || fail_all
copy_mjs "$cache" "$helpers"

# The certificate the clients trust, as the contract describes it.
cert="$out/cert.pem"
tls_key="$out/key.pem"
if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$tls_key" -out "$cert" -days 2 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" >>"$out/install.log" 2>&1; then
    say "openssl could not make the certificate (see $out/install.log)"
    fail_all
fi

status=0

# ---- the conformance server over TLS -----------------------------------------
port="$(free_port)"
stomp_port="$(free_port)"
start conformance-server "$port" env RUST_LOG=info "$DUPLEX_BIN" conformance-server \
    --addr "127.0.0.1:$port" --stomp-addr "127.0.0.1:$stomp_port" --tls-cert "$cert" --tls-key "$tls_key" ||
    fail_all
server=$spawned
if ! grep -q "https://127.0.0.1:$port/" "$out/conformance-server.log"; then
    say "conformance-server did not announce its https:// URL"
    status=1
fi

# Node 20's HTTP/2 client can spin, doubling a buffer, when a session is
# destroyed in the tick of a peer's RST_STREAM: the run is capped at 4 GiB
# of address space so that a repeat fails fast instead of eating the box.
log="$out/node-tests.txt"
(cd "$cache" && ulimit -v 4194304 && NODE_EXTRA_CA_CERTS="$cert" timeout -k 5 "$run_timeout" \
    node tls-tests.mjs "https://127.0.0.1:$port" "$cert" "${node_groups[@]}") >"$log" 2>&1
rc=$?
((rc == 124)) && say "the Node run did not finish within $run_timeout s"
for g in "${node_groups[@]}"; do
    summary "$g" "$log" || status=1
done
((rc != 0)) && status=1

# ---- Autobahn over wss:// ------------------------------------------------------
wstest_env="$DUPLEX_CACHE/autobahn/py27"
ab_out="$out/autobahn"
rm -rf "$ab_out" && mkdir -p "$ab_out"
if [[ ! -x "$wstest_env/bin/wstest" ]]; then
    say "installing Autobahn|Testsuite through suite-10-autobahn.sh (one case)"
    AUTOBAHN_ROLES=server AUTOBAHN_CASES=1.1.1 DUPLEX_OUT="$out/autobahn-install" \
        bash "$here/suite-10-autobahn.sh" >>"$out/install.log" 2>&1
fi
if [[ -x "$wstest_env/bin/wstest" ]]; then
    cat >"$ab_out/fuzzingclient.json" <<EOF
{
  "options": {"failByDrop": false},
  "outdir": "$ab_out",
  "servers": [{"agent": "duplex", "url": "wss://127.0.0.1:$port/echo"}],
  "cases": ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "8.*", "9.*", "10.*"],
  "exclude-cases": [],
  "exclude-agent-cases": {}
}
EOF
    expected="$("$wstest_env/bin/python" -W ignore "$here/autobahn/count_cases.py" "$ab_out/fuzzingclient.json" 2>>"$out/install.log")"
    (cd "$ab_out" && timeout -k 10 "$run_timeout" "$wstest_env/bin/python" \
        "$here/autobahn/wstest_loopback.py" -m fuzzingclient -s "$ab_out/fuzzingclient.json") \
        >"$out/autobahn-wstest.log" 2>&1
    report="$(python3 "$here/autobahn/report.py" --role wss --agent duplex --expected "${expected:-0}" "$ab_out/index.json" 2>&1)"
    ab_rc=$?
    echo "$report" | sed 's/^/  /'
    ok="$(echo "$report" | sed -nE 's/^autobahn wss: ([0-9]+) ok, ([0-9]+) non-strict, ([0-9]+) informational, ([0-9]+) unimplemented, ([0-9]+) failed$/\1 \3 \2 \4 \5/p')"
    if [[ -n "$ok" ]]; then
        read -r n_ok n_info n_ns n_unimpl n_failed <<<"$ok"
        bad=$((n_ns + n_unimpl + n_failed))
        ((ab_rc != 0 && bad == 0)) && bad=1
        echo "autobahn-wss: $((n_ok + n_info)) passed, $bad failed"
        ((bad != 0)) && status=1
    else
        echo "autobahn-wss: 0 passed, 1 failed"
        say "no Autobahn report (see $out/autobahn-wstest.log)"
        status=1
    fi
else
    echo "autobahn-wss: 0 passed, 1 failed"
    say "Autobahn|Testsuite is not installed (see $out/install.log)"
    status=1
fi

kill -TERM "$server" 2>/dev/null

# ---- Chromium over HTTP/2 -------------------------------------------------------
if ensure_chromium "$out/install.log"; then
    demo_port="$(free_port)"
    demo_stomp="$(free_port)"
    if start serve "$demo_port" env RUST_LOG=info "$DUPLEX_BIN" serve --addr "127.0.0.1:$demo_port" \
        --stomp-addr "127.0.0.1:$demo_stomp" --tls-cert "$cert" --tls-key "$tls_key"; then
        blog="$out/browser.txt"
        (cd "$cache" && timeout -k 5 "$run_timeout" node browser-h2.mjs "https://127.0.0.1:$demo_port") >"$blog" 2>&1
        ((rc = $?)) && ((rc == 124)) && say "the browser run did not finish within $run_timeout s"
        summary h2-browser "$blog" || status=1
    else
        echo "h2-browser: 0 passed, 1 failed"
        status=1
    fi
else
    echo "h2-browser: 0 passed, 1 failed"
    status=1
fi

((status != 0)) && say "details in $out/"
exit "$status"
