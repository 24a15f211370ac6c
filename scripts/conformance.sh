#!/usr/bin/env bash
# Runs every outside conformance and interop suite against the release build.
#
# Each suite is one script `scripts/conformance/suite-*.sh`, run in name
# order in its own bash process. A suite installs its own peers (pip, npm,
# apt-get) into $DUPLEX_CACHE, starts what it needs on 127.0.0.1, prints one
# summary line per suite it runs and exits non-zero on any failure. This
# driver prints a final verdict and exits non-zero if any suite failed.
#
# Environment (all optional):
#   DUPLEX_CACHE   where peers are installed (default: .cache/conformance)
#   DUPLEX_OUT     where reports and logs go (default: conformance-out)
#   DUPLEX_SUITES  space-separated suite names to run (e.g. "autobahn"),
#                  default: all
set -uo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
export DUPLEX_ROOT="$root"
export DUPLEX_CACHE="${DUPLEX_CACHE:-$root/.cache/conformance}"
export DUPLEX_OUT="${DUPLEX_OUT:-$root/conformance-out}"
mkdir -p "$DUPLEX_CACHE" "$DUPLEX_OUT"

echo "conformance: building the release binary"
if ! (cd "$root" && cargo build --release -p duplex-cli --quiet); then
    echo "conformance: release build failed"
    exit 1
fi
# Where cargo put it: CARGO_TARGET_DIR moves the target folder.
target_dir="${CARGO_TARGET_DIR:-$root/target}"
case "$target_dir" in /*) ;; *) target_dir="$root/$target_dir" ;; esac
export DUPLEX_BIN="$target_dir/release/duplex"

# A misspelt name must not turn into "all suites passed" with nothing run.
known=()
for suite in "$root"/scripts/conformance/suite-*.sh; do
    name="$(basename "$suite" .sh)"
    name="${name#suite-}"
    known+=("${name#[0-9][0-9]-}")
done
for wanted in ${DUPLEX_SUITES:-}; do
    if [[ " ${known[*]} " != *" $wanted "* ]]; then
        echo "conformance: unknown suite '$wanted' (known: ${known[*]})"
        exit 1
    fi
done

failed=()
for suite in "$root"/scripts/conformance/suite-*.sh; do
    name="$(basename "$suite" .sh)"
    name="${name#suite-}"
    name="${name#[0-9][0-9]-}"
    if [[ -n "${DUPLEX_SUITES:-}" && " $DUPLEX_SUITES " != *" $name "* ]]; then
        continue
    fi
    echo "conformance: running $name"
    if ! bash "$suite"; then
        failed+=("$name")
    fi
done

if ((${#failed[@]})); then
    echo "conformance: FAILED suites: ${failed[*]}"
    exit 1
fi
echo "conformance: all suites passed"
