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
helpers="$here/browser"
DUPLEX_ROOT="${DUPLEX_ROOT:-$(cd "$here/../.." && pwd)}"
DUPLEX_CACHE="${DUPLEX_CACHE:-$DUPLEX_ROOT/.cache/conformance}"
DUPLEX_OUT="${DUPLEX_OUT:-$DUPLEX_ROOT/conformance-out}"
DUPLEX_BIN="${DUPLEX_BIN:-$DUPLEX_ROOT/target/release/duplex}"
run_timeout="${BROWSER_TIMEOUT:-300}"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

cache="$DUPLEX_CACHE/browser"
out="$DUPLEX_OUT/browser"
mkdir -p "$cache" "$out"

groups=(browser-chat browser-deflate browser-socketio browser-sockjs-stomp browser-shutdown)

say() { echo "browser: $*"; }

fail_all() {
    local g
    for g in "${groups[@]}"; do
        echo "$g: 0 passed, 1 failed"
    done
    exit 1
}

# shellcheck source=lib.sh
source "$here/lib.sh"

apt_updated=""
apt_install() {
    if [[ -z "$apt_updated" ]]; then
        apt-get update -qq >>"$out/install.log" 2>&1 || return 1
        apt_updated=yes
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >>"$out/install.log" 2>&1
}

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    say "installing nodejs and npm (apt-get)"
    apt_install nodejs npm || { say "could not install nodejs/npm (see $out/install.log)"; fail_all; }
fi
if [[ ! -x "$CHROMIUM" ]]; then
    say "installing chromium (apt-get)"
    apt_install chromium || { say "could not install chromium (see $out/install.log)"; fail_all; }
fi
if [[ ! -x "$CHROMIUM" ]]; then
    say "no browser at $CHROMIUM"
    fail_all
fi

if [[ ! -x "$DUPLEX_BIN" ]]; then
    say "no duplex binary at $DUPLEX_BIN (run through scripts/conformance.sh, which builds it)"
    fail_all
fi

# npm packages, from the committed lock file.
key="$(cat "$helpers/package.json" "$helpers/package-lock.json" | sha256sum | cut -d' ' -f1)"
if [[ ! -d "$cache/node_modules/playwright-core" || "$(cat "$cache/.npm-key" 2>/dev/null)" != "$key" ]]; then
    say "installing playwright-core, socket.io-client, sockjs-client and @stomp/stompjs into $cache"
    cp "$helpers/package.json" "$helpers/package-lock.json" "$cache/"
    rm -rf "$cache/node_modules"
    if ! (cd "$cache" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 timeout 600 npm ci --no-audit --no-fund) >>"$out/install.log" 2>&1; then
        say "npm ci failed (see $out/install.log)"
        tail -n 15 "$out/install.log"
        fail_all
    fi
    echo "$key" >"$cache/.npm-key"
fi
cp "$helpers"/*.mjs "$cache/"

port="$(node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });')"
RUST_LOG=info "$DUPLEX_BIN" serve --addr "127.0.0.1:$port" >"$out/server.log" 2>&1 &
server=$!
pids+=("$server")
up=""
for _ in $(seq 1 300); do
    kill -0 "$server" 2>/dev/null || break
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        up=yes
        break
    fi
    sleep 0.1
done
if [[ -z "$up" ]]; then
    say "duplex serve did not listen on 127.0.0.1:$port (see $out/server.log)"
    tail -n 15 "$out/server.log"
    fail_all
fi

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
