#!/usr/bin/env bash
# Runs the official Engine.IO and Socket.IO protocol test suites against
# `duplex conformance-server`.
#
#   scripts/run-socketio-suites.sh <engine.io-protocol checkout> <socket.io-protocol checkout>
#
# The suites are the `test-suite/` folders of the public repositories
# socketio/engine.io-protocol and socketio/socket.io-protocol; nothing of
# them is kept in this repository. For each suite this script:
#
#   1. copies the suite's files (package.json, package-lock.json,
#      test-suite.js, node-imports.js) into .cache/socketio-suites/<suite>/
#      and installs its npm dependencies there with `npm ci` (reused while
#      package-lock.json is unchanged);
#   2. rewrites the hard-coded http://localhost:3000 in test-suite.js to the
#      server under test (the tests are otherwise unmodified);
#   3. replaces the suite's node-imports.js (the module that hands the tests
#      `WebSocket` and `fetch`) with one whose WebSocket delivers the 2nd and
#      later messages of a burst one macrotask apart, so that the suite's
#      one-shot `waitFor()` listeners, re-armed after each `await`, lose no
#      frame (shared/conformance/socketio-suites.md, section 6; set
#      SOCKETIO_SUITES_ORIGINAL_IMPORTS=1 to keep the suite's own file);
#   4. starts `duplex conformance-server --addr 127.0.0.1:PORT` on a free
#      loopback port, runs mocha, and prints
#        engine.io suite: N passed, N failed
#        socket.io suite: N passed, N failed
#      followed by the titles of failed tests, if any.
#
# Exits non-zero if a test failed or something could not be installed or
# started. Environment (all optional):
#   DUPLEX_BIN                 the duplex binary (default: builds and uses
#                              target/release/duplex)
#   SOCKETIO_SUITES_RUNS       run both suites this many times (default 1);
#                              each run prints its own two lines
#   SOCKETIO_SUITES_CACHE      install folder (default .cache/socketio-suites)
#   SOCKETIO_SUITES_TIMEOUT    seconds one mocha run may take (default 300)
#   SOCKETIO_SUITES_ORIGINAL_IMPORTS=1   keep the suites' node-imports.js
set -uo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
if (($# != 2)); then
    echo "usage: $0 <engine.io-protocol checkout> <socket.io-protocol checkout>" >&2
    exit 2
fi
eio_src="$(cd "$1" && pwd)/test-suite"
sio_src="$(cd "$2" && pwd)/test-suite"
for src in "$eio_src" "$sio_src"; do
    if [[ ! -f "$src/test-suite.js" || ! -f "$src/package-lock.json" ]]; then
        echo "no test-suite/test-suite.js and package-lock.json under ${src%/test-suite}" >&2
        exit 2
    fi
done
cache="${SOCKETIO_SUITES_CACHE:-$root/.cache/socketio-suites}"
runs="${SOCKETIO_SUITES_RUNS:-1}"
mocha_timeout="${SOCKETIO_SUITES_TIMEOUT:-300}"
mkdir -p "$cache"
logs="$cache/logs"
mkdir -p "$logs"

for tool in node npm; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "socketio suites: $tool is not installed (apt-get install nodejs npm)" >&2
        exit 1
    fi
done

if [[ -z "${DUPLEX_BIN:-}" ]]; then
    echo "socketio suites: building the release binary"
    if ! (cd "$root" && cargo build --release -p duplex-cli --quiet); then
        echo "socketio suites: release build failed" >&2
        exit 1
    fi
    DUPLEX_BIN="$root/target/release/duplex"
fi

# The driver's setup: the cleanup trap, free_port, start_duplex.
# shellcheck source=conformance/lib.sh
source "$root/scripts/conformance/lib.sh"
say() { echo "socketio suites: $*"; }
out="$logs" # where start_duplex writes server.log

# The replacement node-imports.js (see the header).
write_imports() {
    cat >"$1" <<'EOF'
// Written by duplex's scripts/run-socketio-suites.sh in place of the suite's
// node-imports.js. `ws` dispatches every frame of one TCP read
// synchronously, and the suite re-arms its one-shot listeners only after an
// `await`, so a second frame arriving in the same read would be lost. This
// WebSocket hands out message and close events one macrotask apart, in
// order; nothing else changes.
import fetch from "node-fetch";
import { WebSocket as WsWebSocket } from "ws";
import chai from "chai";
import chaiString from "chai-string";

chai.use(chaiString);

class WebSocket extends WsWebSocket {
  emit(event, ...args) {
    if (event !== "message" && event !== "close") {
      return super.emit(event, ...args);
    }
    if (!this._duplexQueue) {
      this._duplexQueue = [];
    }
    this._duplexQueue.push([event, args]);
    if (!this._duplexBusy) {
      this._duplexDrain();
    }
    return true;
  }

  _duplexDrain() {
    const next = this._duplexQueue.shift();
    if (!next) {
      this._duplexBusy = false;
      return;
    }
    this._duplexBusy = true;
    super.emit(next[0], ...next[1]);
    setImmediate(() => this._duplexDrain());
  }
}

globalThis.fetch = fetch;
globalThis.WebSocket = WebSocket;
globalThis.chai = chai;
EOF
}

# prepare NAME SRC: copy and install one suite; echo its folder.
prepare() {
    local name=$1 src=$2 dir="$cache/$1" key
    mkdir -p "$dir"
    key="$(cat "$src/package-lock.json" | sha256sum | cut -d' ' -f1)"
    if [[ ! -d "$dir/node_modules" || "$(cat "$dir/.install-key" 2>/dev/null)" != "$key" ]]; then
        echo "socketio suites: installing the $name suite's npm dependencies into $dir" >&2
        cp "$src/package.json" "$src/package-lock.json" "$dir/"
        rm -rf "$dir/node_modules"
        if ! (cd "$dir" && timeout 600 npm ci --no-audit --no-fund) >"$logs/$name-install.log" 2>&1; then
            echo "socketio suites: npm ci failed for $name (see $logs/$name-install.log)" >&2
            tail -n 15 "$logs/$name-install.log" >&2
            return 1
        fi
        echo "$key" >"$dir/.install-key"
    fi
    cp "$src/test-suite.js" "$dir/test-suite.js"
    cp "$src/node-imports.js" "$dir/node-imports.js"
    if [[ "${SOCKETIO_SUITES_ORIGINAL_IMPORTS:-0}" != 1 ]]; then
        write_imports "$dir/node-imports.js"
    fi
    echo "$dir"
}

# run_suite LABEL DIR URL: runs mocha, prints the summary line; returns 1 on failures.
run_suite() {
    local label=$1 dir=$2 url=$3 report="$logs/$1.json"
    sed -i "s|http://localhost:3000|$url|g" "$dir/test-suite.js"
    (cd "$dir" && timeout -k 10 "$mocha_timeout" node node_modules/mocha/bin/mocha --reporter json --exit test-suite.js) >"$report" 2>"$logs/$label.stderr"
    node -e '
const fs = require("fs");
const label = process.argv[1];
let r;
try {
  r = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
} catch (e) {
  console.log(`${label} suite: 0 passed, 1 failed`);
  console.log(`  mocha produced no report: ${e.message}`);
  process.exit(1);
}
// A test can be reported twice (a failure after it passed, a late error);
// count each title once, failed if it failed at all.
const failedTitles = new Set(r.failures.map((f) => f.fullTitle));
const passedTitles = new Set(r.passes.map((p) => p.fullTitle).filter((t) => !failedTitles.has(t)));
const passed = passedTitles.size;
const failed = failedTitles.size;
console.log(`${label} suite: ${passed} passed, ${failed} failed`);
const seen = new Set();
for (const f of r.failures) {
  if (seen.has(f.fullTitle)) continue;
  seen.add(f.fullTitle);
  console.log(`  FAILED ${f.fullTitle}: ${(f.err && f.err.message || "").split("\n")[0]}`);
}
process.exit(failed === 0 && passed > 0 ? 0 : 1);
' "$label" "$report"
}

eio_dir="$(prepare engine.io "$eio_src")" || exit 1
sio_dir="$(prepare socket.io "$sio_src")" || exit 1

status=0
for ((run = 1; run <= runs; run++)); do
    port="$(free_port)"
    start_duplex server "$port" --stomp-addr 127.0.0.1:0 || exit 1
    url="http://127.0.0.1:$port"
    ((runs > 1)) && echo "run $run of $runs:"
    # Fresh copies each run: the URL rewrite is per port.
    cp "$eio_src/test-suite.js" "$eio_dir/test-suite.js"
    cp "$sio_src/test-suite.js" "$sio_dir/test-suite.js"
    run_suite engine.io "$eio_dir" "$url" || status=1
    run_suite socket.io "$sio_dir" "$url" || status=1
    stop_pids "$spawned"
done
exit $status
