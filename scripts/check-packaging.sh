#!/usr/bin/env bash
# Checks that the crates can be published and used from a registry:
#   1. the library crates (and the binary) build with the `rust-version`
#      of Cargo.toml (rustup installs that toolchain, ~40 s the first time);
#   2. they build with the lowest versions their dependency requirements
#      allow (`-Z direct-minimal-versions`, nightly cargo's resolver);
#   3. every publishable crate packages (LICENSE and README inside), its
#      package builds on its own (`cargo package --workspace`, verify on),
#      and `cargo publish --dry-run` passes for all of them in dependency
#      order;
#   4. duplex-tokio builds with each of its cargo features alone (`cargo
#      check --no-default-features --features X`), so that no feature
#      leans on code or dependencies that only another one brings, and
#      `ws` alone pulls in no hyper server, STOMP or Socket.IO crate.
# Run by .ci/run; each step can be run alone: scripts/check-packaging.sh msrv|minimal|package|features
set -euo pipefail
cd "$(dirname "$0")/.."

# The publishable crates, in dependency order (duplex-bench and duplex-fuzz
# are `publish = false`).
CRATES=(duplex-core duplex-ws duplex-engineio duplex-stomp duplex-socketio duplex-polling duplex-tokio duplex-redis duplex-cli)
PKG_ARGS=()
for c in "${CRATES[@]}"; do PKG_ARGS+=(-p "$c"); done

step() { printf '\n== %s\n' "$*"; }

# A toolchain already installed is used as it is (no channel sync over the
# network); otherwise rustup installs it. The workplace's machines may not
# reach rustup's download host, so a missing toolchain that cannot be
# installed skips its step with a loud line instead of failing CI.
ensure_toolchain() {
    command -v rustup >/dev/null || return 1
    rustup toolchain list | grep "^$1-" >/dev/null && return 0
    rustup toolchain install "$1" --profile minimal >/dev/null 2>&1
}

msrv() {
    local msrv
    msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
    step "MSRV: cargo +$msrv check (rust-version = $msrv)"
    if ! ensure_toolchain "$msrv"; then
        echo "packaging: SKIPPED the MSRV build: the $msrv toolchain is not installed and could not be installed here"
        return 0
    fi
    cargo "+$msrv" check --locked --all-features "${PKG_ARGS[@]}"
}

minimal() {
    step "minimal versions: cargo +nightly update -Z direct-minimal-versions, then cargo check"
    if ! ensure_toolchain nightly; then
        echo "packaging: SKIPPED the lowest-versions build: no nightly toolchain, and none could be installed here"
        return 0
    fi
    # On a copy, so Cargo.lock stays as it is, with only the publishable
    # crates as members and without dev-dependencies: what a user's build
    # resolves. (The benchmark crate's peers and the test-only crates need
    # newer versions than the libraries do; they must not raise the bar.)
    local tmp
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' RETURN
    git ls-files -z -- Cargo.toml Cargo.lock LICENSE README.md \
        $(printf 'crates/%s ' "${CRATES[@]}") | xargs -0 cp --parents -t "$tmp"
    local members
    members=$(printf '"crates/%s", ' "${CRATES[@]}")
    sed -i "s|^members = .*|members = [${members%, }]|" "$tmp/Cargo.toml"
    python3 - "$tmp" <<'PY'
import pathlib, re, sys
for p in pathlib.Path(sys.argv[1]).glob("crates/*/Cargo.toml"):
    s = p.read_text()
    s = re.sub(r"\n\[dev-dependencies\]\n(?:(?!\n\[).)*", "\n", s, flags=re.S)
    p.write_text(s)
PY
    # The workspace's target dir: the dependencies that did not change are
    # not built again.
    local target="${CARGO_TARGET_DIR:-$PWD/target}"
    (cd "$tmp" && cargo +nightly update -Z direct-minimal-versions &&
        CARGO_TARGET_DIR="$target" cargo check --locked --all-features "${PKG_ARGS[@]}")
}

# `cargo package` verifies each crate against an overlay registry of the
# packages being published, all at version 0.1.0, and cargo takes a
# registry crate of a given version to be immutable. What an earlier run
# made from an older tree is reused without comparing contents:
# - the overlay's unpacked sources, in $CARGO_HOME/registry/src/-<hash of
#   the overlay's path>/<name>-<version>/ (CI compiled an older tree's
#   duplex-stomp from there);
# - the verify builds' artifacts in the target dir (a reused target dir
#   compiled duplex-polling against an older duplex-engineio).
# Both are only our own crates: remove them first (`cargo clean -p` takes
# every build of that name, registry copies included).
forget_earlier_packages() {
    local home="${CARGO_HOME:-$HOME/.cargo}" c
    for c in "${CRATES[@]}"; do
        rm -rf "$home"/registry/src/-*/"$c"-[0-9]*
    done
    cargo clean -q "${PKG_ARGS[@]}"
}

package() {
    step "cargo package --workspace (verify on): each crate builds from its .crate alone"
    forget_earlier_packages
    cargo package --workspace --exclude duplex-bench --exclude duplex-fuzz --locked
    for c in "${CRATES[@]}"; do
        cargo package --list -p "$c" | grep -qx LICENSE || { echo "$c: no LICENSE in the package" >&2; exit 1; }
        cargo package --list -p "$c" | grep -qx README.md || { echo "$c: no README.md in the package" >&2; exit 1; }
    done
    step "cargo publish --dry-run, in dependency order"
    # Unpublished path dependencies (duplex-socketio needs duplex-engineio,
    # …) resolve against a local overlay of the packages being published
    # together, so the dry run needs them all in one command; cargo takes
    # them in dependency order.
    cargo publish --dry-run --workspace --locked
}

# duplex-tokio's features, each checked alone (cheap: `cargo check`).
TOKIO_FEATURES=(ws http2 polling socketio sockjs sse stomp tls cluster axum)

features() {
    step "duplex-tokio: cargo check --no-default-features --features X, for each feature"
    cargo check --locked -q -p duplex-tokio --no-default-features
    for f in "${TOKIO_FEATURES[@]}"; do
        echo "-- $f"
        cargo check --locked -q -p duplex-tokio --no-default-features --features "$f"
    done
    step "duplex-tokio with only \`ws\`: no hyper server or client, no STOMP, Socket.IO or polling crate"
    local tree
    tree=$(cargo tree --locked -p duplex-tokio --no-default-features --features ws -e normal,features)
    if grep -E '^.*(hyper feature "(server|client|http1|http2)"|duplex-(stomp|socketio|engineio|polling) |redis |axum)' <<<"$tree"; then
        echo "packaging: duplex-tokio --features ws pulls in the crates or features above" >&2
        exit 1
    fi
}

case "${1:-all}" in
    msrv) msrv ;;
    minimal) minimal ;;
    package) package ;;
    features) features ;;
    all) msrv; minimal; package; features ;;
    *) echo "usage: $0 [msrv|minimal|package|features|all]" >&2; exit 2 ;;
esac
