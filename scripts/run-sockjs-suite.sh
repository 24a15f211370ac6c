#!/usr/bin/env bash
# Runs the sockjs-protocol suite against `duplex conformance-server`.
#
#   scripts/run-sockjs-suite.sh <sockjs-protocol checkout>
#
# The suite is sockjs-protocol.py of the public repository
# sockjs/sockjs-protocol (not in a registry); nothing of it is kept in this
# repository. This script:
#
#   1. builds a Python 2.7 environment for it in .cache/sockjs-suite (reused
#      while intact): pyenv's 2.7.18, a virtualenv made by virtualenv<20.22
#      from a Python 3 venv (the last virtualenv that still makes 2.7
#      environments, as scripts/conformance/suite-10-autobahn.sh does), and
#      the suite's dependencies pinned as below;
#   2. starts `duplex conformance-server` on a free loopback port (it serves
#      the suite's four services under /sockjs/ with the 4096-byte streaming
#      limit: /sockjs/echo, /sockjs/close, /sockjs/disabled_websocket_echo,
#      /sockjs/cookie_needed_echo);
#   3. runs every test of the suite with SOCKJS_URL=http://127.0.0.1:PORT/sockjs,
#      except Websocket.test_haproxy, the legacy hixie-76 handshake (a 2010
#      draft no browser speaks; duplex speaks RFC 6455 only), which is
#      reported as skipped by name; and prints
#        sockjs suite: N passed, N failed, N skipped
#      followed by the names of failed tests, if any.
#
# Exits non-zero if a test failed or something could not be installed or
# started. Environment (all optional):
#   DUPLEX_BIN             the duplex binary (default: builds and uses
#                          target/release/duplex)
#   SOCKJS_SUITE_RUNS      run the suite this many times, each against a
#                          fresh server (default 1); each run prints its line
#   SOCKJS_SUITE_CACHE     install folder (default .cache/sockjs-suite)
#   SOCKJS_SUITE_TIMEOUT   seconds one run may take (default 300)
#   SOCKJS_SUITE_PYTHON27  Python 2.7 (default: pyenv's 2.7.18)
#   SOCKJS_SUITE_PYTHON3   Python 3 that runs virtualenv (default: python3)
set -uo pipefail
export PYTHONDONTWRITEBYTECODE=1

root="$(cd "$(dirname "$0")/.." && pwd)"
if (($# != 1)); then
    echo "usage: $0 <sockjs-protocol checkout>" >&2
    exit 2
fi
suite="$(cd "$1" 2>/dev/null && pwd)"
if [[ -z "$suite" || ! -f "$suite/sockjs-protocol.py" || ! -f "$suite/utils.py" ]]; then
    echo "no sockjs-protocol.py and utils.py in $1" >&2
    exit 2
fi
cache="${SOCKJS_SUITE_CACHE:-$root/.cache/sockjs-suite}"
runs="${SOCKJS_SUITE_RUNS:-1}"
run_timeout="${SOCKJS_SUITE_TIMEOUT:-300}"
python3="${SOCKJS_SUITE_PYTHON3:-python3}"
if [[ -z "${SOCKJS_SUITE_PYTHON27:-}" ]]; then
    if command -v pyenv >/dev/null 2>&1; then
        SOCKJS_SUITE_PYTHON27="$(pyenv root)/versions/2.7.18/bin/python"
    else
        SOCKJS_SUITE_PYTHON27="${PYENV_ROOT:-$HOME/.pyenv}/versions/2.7.18/bin/python"
    fi
fi
python27="$SOCKJS_SUITE_PYTHON27"
tools_env="$cache/venv3"
py27_env="$cache/py27"
virtualenv_pin="virtualenv==20.21.1"
logs="$cache/logs"
mkdir -p "$cache" "$logs"

# The suite's requirements, pinned: the set the reference server passes
# 68/68 with (shared/conformance/sockjs-suite.md). argparse is what
# unittest2 asks pip for on 2.7.
requirements="unittest2==1.1.0
six==1.17.0
traceback2==1.4.0
linecache2==1.0.0
argparse==1.4.0
websocket-client==0.59.0
ws4py==0.5.1"

bin="${DUPLEX_BIN:-}" # none given: built below
# The conformance suites' setup: the cleanup trap, stop_pids, spawn,
# wait_port.
# shellcheck source=conformance/lib.sh
source "$root/scripts/conformance/lib.sh"

# A free port, by Python: this script needs no node.
free_port() {
    "$python3" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

install_key() {
    echo "$requirements $python27 $virtualenv_pin" | sha256sum | cut -d' ' -f1
}

py27_env_ok() {
    [[ "$(cat "$py27_env/.duplex-install-key" 2>/dev/null)" == "$(install_key)" ]] &&
        "$py27_env/bin/python" -W ignore -c 'import unittest2, websocket, ws4py' >/dev/null 2>&1
}

install() {
    local log="$logs/install.log"
    : >"$log"
    if [[ ! -x "$python27" ]] || ! "$python27" -c 'import sys; sys.exit(sys.version_info[:2] != (2, 7))' 2>/dev/null; then
        echo "sockjs suite: no Python 2.7 at $python27 (install it with 'pyenv install 2.7.18' or set SOCKJS_SUITE_PYTHON27)"
        return 1
    fi
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$cache/.install.lock"
        flock -w 600 9 || { echo "sockjs suite: $cache is locked by another install"; return 1; }
    fi
    py27_env_ok && return 0
    echo "sockjs suite: installing the Python 2.7 environment into $cache (log: $log)"
    if ! "$tools_env/bin/python" -m pip show virtualenv 2>/dev/null | grep -qx "Version: ${virtualenv_pin#*==}"; then
        rm -rf "$tools_env"
        if ! { "$python3" -m venv "$tools_env" &&
            "$tools_env/bin/python" -m pip install "$virtualenv_pin"; } >>"$log" 2>&1; then
            echo "sockjs suite: could not install $virtualenv_pin into a Python 3 venv (see $log)"
            return 1
        fi
    fi
    rm -rf "$py27_env"
    # shellcheck disable=SC2086
    if ! { "$tools_env/bin/python" -m virtualenv -p "$python27" "$py27_env" &&
        "$py27_env/bin/python" -m pip install $requirements; } >>"$log" 2>&1; then
        echo "sockjs suite: could not install the suite's requirements (see $log)"
        rm -rf "$py27_env"
        return 1
    fi
    install_key >"$py27_env/.duplex-install-key"
    py27_env_ok || { echo "sockjs suite: the fresh environment does not import (see $log)"; return 1; }
}

# The runner: every test of the suite, in its own order, with the hixie-76
# test replaced by a skip naming the reason.
runner="$cache/run_suite.py"
cat >"$runner" <<'PY'
import imp
import os
import sys

import unittest2 as unittest

suite_dir = sys.argv[1]
sys.path.insert(0, suite_dir)
module = imp.load_source('sockjs_protocol', os.path.join(suite_dir, 'sockjs-protocol.py'))

SKIPPED = {
    'Websocket.test_haproxy':
        'hixie-76 handshake (2010 draft, no browser speaks it); duplex speaks RFC 6455',
}


def flatten(suite):
    for test in suite:
        if isinstance(test, unittest.TestSuite):
            for t in flatten(test):
                yield t
        else:
            yield test


def name_of(test):
    return '%s.%s' % (test.__class__.__name__, test._testMethodName)


def skipper(reason):
    def skipped():
        raise unittest.SkipTest(reason)
    return skipped


tests = list(flatten(unittest.TestLoader().loadTestsFromModule(module)))
for test in tests:
    reason = SKIPPED.get(name_of(test))
    if reason:
        setattr(test, test._testMethodName, skipper(reason))

result = unittest.TextTestRunner(stream=sys.stderr, verbosity=2).run(unittest.TestSuite(tests))
failed = [name_of(t) for t, _ in result.failures + result.errors]
skipped = len(result.skipped)
passed = result.testsRun - len(failed) - skipped
print('sockjs suite: %d passed, %d failed, %d skipped' % (passed, len(failed), skipped))
for name in failed:
    print('  FAILED %s' % name)
sys.exit(1 if failed or result.testsRun == 0 else 0)
PY

install || exit 1

if [[ -z "$bin" ]]; then
    echo "sockjs suite: building the release binary"
    (cd "$root" && cargo build --release -p duplex-cli --quiet) || exit 1
    bin="$root/target/release/duplex"
fi

status=0
for ((run = 1; run <= runs; run++)); do
    port="$(free_port)" || exit 1
    server_log="$logs/server-$run.log"
    suite_log="$logs/suite-$run.log"
    # STOMP over TCP on a port of its own: 61613 may be taken.
    spawn "$server_log" "$bin" conformance-server --addr "127.0.0.1:$port" --stomp-addr 127.0.0.1:0
    server=$spawned
    if ! wait_port "$server" "$port" 10; then
        echo "sockjs suite: the server did not start (see $server_log)"
        echo "sockjs suite: 0 passed, 1 failed, 0 skipped"
        exit 1
    fi
    SOCKJS_URL="http://127.0.0.1:$port/sockjs" timeout -k 10 "$run_timeout" \
        "$py27_env/bin/python" -W ignore "$runner" "$suite" 2>"$suite_log"
    rc=$?
    if ((rc != 0)); then
        status=1
        ((rc == 124)) && echo "  the run did not finish within $run_timeout s"
        echo "  details: $suite_log, $server_log"
    fi
    stop_pids "$server"
done
exit "$status"
