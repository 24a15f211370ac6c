#!/usr/bin/env bash
# What the Socket.IO scenarios share (sourced, not run), so that each finds
# its binaries, its cache and its helpers the same way:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/socketio-setup.sh" NAME
#
# sets here (this folder), root (the checkout), target (the cargo target
# dir), bench (duplex-bench; DUPLEX_BENCH_BIN overrides it) and cache
# (.cache/bench/NAME, created); sources scripts/conformance/lib.sh (pids
# stopped on exit, ensure_node) and ports.sh; raises the descriptor limit
# to the hard one (a thousand clients hold a thousand sockets on each
# side); and defines npm_ci_once.

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
bench="${DUPLEX_BENCH_BIN:-$target/release/duplex-bench}"
cache="$root/.cache/bench/$1"
mkdir -p "$cache"
# shellcheck source=../../../scripts/conformance/lib.sh
source "$root/scripts/conformance/lib.sh"
# shellcheck source=ports.sh
source "$here/ports.sh"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || echo "could not raise ulimit -n above $(ulimit -n)" >&2

# npm_ci_once HELPERS PACKAGE: node and npm (apt-get if missing), then the
# lock file of the conformance helpers folder HELPERS installed into the
# cache, unless node_modules/PACKAGE is there already.
npm_ci_once() {
    ensure_node "$cache/install.log"
    if [[ ! -d "$cache/node_modules/$2" ]]; then
        cp "$1/package.json" "$1/package-lock.json" "$cache/"
        (cd "$cache" && timeout 600 npm ci --no-audit --no-fund >/dev/null)
    fi
}
