#!/usr/bin/env bash
# Browser tests of `duplex serve` in Debian's headless Chromium:
#
#   browser-chat          two pages chat over each transport of the page's
#                         selector (websocket, polling, sse), three pages on
#                         three transports in one room; screenshot of the page
#                         to $DUPLEX_OUT/chat.png
#   browser-deflate       Chromium negotiates permessage-deflate on /ws and
#                         /echo, and compressed frames go both ways (counted by
#                         a loopback proxy that reads the frame headers)
#   browser-socketio      npm socket.io-client in a page: websocket, polling,
#                         polling upgraded; the chat and the conformance handlers
#   browser-sockjs-stomp  npm sockjs-client + @stomp/stompjs in a page, over
#                         websocket, xhr-streaming, eventsource, xhr-polling,
#                         jsonp-polling
#   browser-shutdown      SIGINT with pages on every transport: WebSocket 1001,
#                         polling c[3000], SSE end, Socket.IO close, STOMP
#                         ERROR; then the server must exit 0
#
# Each prints `<name>: N passed, N failed`; a run that dies or times out
# counts as one failure per group it did not report. Logs go to
# $DUPLEX_OUT/browser/.
#
# Run it through the driver:  DUPLEX_SUITES=browser scripts/conformance.sh
# It installs Debian's `chromium` with apt-get when /usr/bin/chromium is
# missing, and the npm packages pinned in scripts/conformance/browser/
# (package-lock.json, `npm ci`: playwright-core, which never downloads a
# browser here, socket.io-client, sockjs-client, @stomp/stompjs) into
# $DUPLEX_CACHE/browser, reused while the pins are unchanged. The server
# listens on a free 127.0.0.1 port; Chromium runs headless with a fresh
# profile folder and reaches nothing but loopback. Everything it started is
# stopped on exit. Exits non-zero on any failure.
#
# Environment, besides the driver's DUPLEX_ROOT, DUPLEX_CACHE, DUPLEX_OUT
# and DUPLEX_BIN (all optional):
#   BROWSER_TIMEOUT   seconds the whole browser run may take (default 300)
#   CHROMIUM          the browser binary (default /usr/bin/chromium)
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"
helpers="$here/browser"
run_timeout="${BROWSER_TIMEOUT:-300}"

cache="$DUPLEX_CACHE/browser"
out="$DUPLEX_OUT/browser"
mkdir -p "$cache" "$out"

groups=(browser-chat browser-deflate browser-socketio browser-sockjs-stomp browser-shutdown)

say() { echo "browser: $*"; }

fail_all() { fail_with "${groups[@]}"; }

ensure_node "$out/install.log" || fail_all
ensure_chromium "$out/install.log" || fail_all
need_duplex_bin || fail_all

# npm packages, from the committed lock file.
npm_ci "$helpers" "$cache" playwright-core "$out/install.log" || fail_all
copy_mjs "$cache" "$helpers"

port="$(free_port)"
start server "$port" env RUST_LOG=info "$DUPLEX_BIN" serve --addr "127.0.0.1:$port" || fail_all
server=$spawned

log="$out/browser-tests.txt"
(cd "$cache" && DUPLEX_SERVER_PID="$server" timeout -k 5 "$run_timeout" \
    node browser-tests.mjs "http://127.0.0.1:$port" "$DUPLEX_OUT" "${groups[@]}") >"$log" 2>&1
rc=$?
((rc == 124)) && say "the browser run did not finish within $run_timeout s"

status=0
for g in "${groups[@]}"; do
    summary="$(grep -E "^$g: [0-9]+ passed, [0-9]+ failed$" "$log" | tail -n1)"
    if [[ -z "$summary" ]]; then
        summary="$g: 0 passed, 1 failed"
        status=1
    elif [[ "$summary" != *" 0 failed" ]]; then
        status=1
    fi
    echo "$summary"
    grep -E "^FAIL $g " "$log" | sed 's/^/  /'
done
grep -E '^  deflate:' "$log"
((rc != 0)) && status=1

# browser-shutdown sent SIGINT: the server must have exited 0 on its own.
for _ in $(seq 1 100); do
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$server" 2>/dev/null; then
    say "duplex serve still running after SIGINT (see $out/server.log)"
    status=1
else
    wait "$server"
    src=$?
    if ((src != 0)); then
        say "duplex serve exited with $src after SIGINT (see $out/server.log)"
        status=1
    fi
fi
if [[ -f "$DUPLEX_OUT/chat.png" ]]; then
    say "screenshot: $DUPLEX_OUT/chat.png"
else
    say "no screenshot was written"
    status=1
fi
((status != 0)) && echo "  details: $log"
exit "$status"
