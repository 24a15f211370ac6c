#!/usr/bin/env bash
# Autobahn|Testsuite against duplex, in both roles:
#
#   server role: Autobahn's fuzzingclient tests the /echo endpoint of
#                `duplex conformance-server`;
#   client role: Autobahn's fuzzingserver is driven by `duplex autobahn-client`
#                (getCaseCount, runCase?case=N&agent=duplex, updateReports).
#
# Run it through the driver:  DUPLEX_SUITES=autobahn scripts/conformance.sh
# It installs Autobahn|Testsuite (Python 2.7 code) into $DUPLEX_CACHE/autobahn
# (reused while intact), runs everything on 127.0.0.1 and prints one line per
# role:
#   autobahn server: N ok, N non-strict, N informational, N unimplemented, N failed
#   autobahn client: N ok, N non-strict, N informational, N unimplemented, N failed
# followed by the offending case ids, if any. It exits non-zero if a case is
# FAILED, NON-STRICT or UNIMPLEMENTED, a close behaviour is not OK or
# INFORMATIONAL, a role did not produce exactly the expected number of cases,
# or anything could not be installed or started. Reports (HTML and JSON) go
# to $DUPLEX_OUT/autobahn/{server,client}/, logs to $DUPLEX_OUT/autobahn/logs/.
# docs/conformance.md tells how to read them.
#
# Environment, besides the driver's DUPLEX_ROOT, DUPLEX_CACHE, DUPLEX_OUT and
# DUPLEX_BIN (all optional):
#   AUTOBAHN_CASES       case patterns to run (default: 1.* to 10.*, all of
#                        12.1.* and the first case of every 13.x
#                        configuration: 326 cases, the CI subset; "*" with
#                        AUTOBAHN_EXCLUDE="" is the full 517-case run)
#   AUTOBAHN_EXCLUDE     case patterns to leave out (default none)
#   AUTOBAHN_ROLES       roles to run (default "server client")
#   AUTOBAHN_TIMEOUT     seconds one role may take before it is stopped and
#                        counted as failed (default 600)
#   AUTOBAHN_SERVER_CMD  command that starts the server under test; the suite
#                        appends `--addr 127.0.0.1:PORT` and tests
#                        ws://127.0.0.1:PORT/echo
#                        (default: "$DUPLEX_BIN" conformance-server)
#   AUTOBAHN_CLIENT_CMD  command that runs the client under test to the end;
#                        the suite appends `ws://127.0.0.1:PORT`, and the
#                        client must use agent=duplex
#                        (default: "$DUPLEX_BIN" autobahn-client)
#                        Both commands are shell words (quote a path with
#                        spaces), e.g. for stand-ins while developing:
#                        AUTOBAHN_SERVER_CMD="python3 /tmp/echo_server.py"
#   AUTOBAHN_PYTHON27    Python 2.7 interpreter
#                        (default: $(pyenv root)/versions/2.7.18/bin/python)
#   AUTOBAHN_PYTHON3     Python 3 that runs virtualenv and the report parser
#                        (default: python3)
set -uo pipefail
export PYTHONDONTWRITEBYTECODE=1

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"
helpers="$here/autobahn"

cases="${AUTOBAHN_CASES-1.* 2.* 3.* 4.* 5.* 6.* 7.* 8.* 9.* 10.* 12.1.* 13.1.1 13.2.1 13.3.1 13.4.1 13.5.1 13.6.1 13.7.1}"
exclude="${AUTOBAHN_EXCLUDE-}"
roles="${AUTOBAHN_ROLES:-server client}"
role_timeout="${AUTOBAHN_TIMEOUT:-600}"
server_cmd="${AUTOBAHN_SERVER_CMD:-$(printf '%q' "$DUPLEX_BIN") conformance-server --stomp-addr 127.0.0.1:0}"
client_cmd="${AUTOBAHN_CLIENT_CMD:-$(printf '%q' "$DUPLEX_BIN") autobahn-client}"
python3="${AUTOBAHN_PYTHON3:-python3}"
if [[ -z "${AUTOBAHN_PYTHON27:-}" ]]; then
    if command -v pyenv >/dev/null 2>&1; then
        AUTOBAHN_PYTHON27="$(pyenv root)/versions/2.7.18/bin/python"
    else
        AUTOBAHN_PYTHON27="${PYENV_ROOT:-$HOME/.pyenv}/versions/2.7.18/bin/python"
    fi
fi
python27="$AUTOBAHN_PYTHON27"

agent=duplex
cache="$DUPLEX_CACHE/autobahn"
tools_env="$cache/venv3"      # Python 3 venv holding virtualenv
py27_env="$cache/py27"        # Python 2.7 virtualenv holding wstest
requirements="$helpers/requirements-py27.txt"
virtualenv_pin="virtualenv==20.21.1" # the last <20.22, which still makes 2.7 envs
out="$DUPLEX_OUT/autobahn"
logs="$out/logs"
mkdir -p "$cache" "$logs"

# A free port, by Python: this suite needs no node.
free_port() {
    "$python3" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

show_log() {
    echo "  last lines of $1:"
    tail -n "${2:-15}" "$1" 2>/dev/null | sed 's/^/    /'
}

# Patterns -> JSON list; only digits, dots and stars are accepted.
patterns_json() {
    local p words list=()
    read -r -a words <<<"$1" # no pathname expansion of the stars
    for p in "${words[@]}"; do
        if [[ ! $p =~ ^[0-9.*]+$ ]]; then
            echo "autobahn: bad case pattern '$p'" >&2
            return 1
        fi
        list+=("\"$p\"")
    done
    local IFS=,
    echo "[${list[*]}]"
}

# write_spec TEMPLATE PORT OUTDIR DEST
write_spec() {
    local cases_json exclude_json
    cases_json="$(patterns_json "$cases")" || return 1
    exclude_json="$(patterns_json "$exclude")" || return 1
    sed -e "s|@PORT@|$2|g" -e "s|@OUTDIR@|$3|g" -e "s|@AGENT@|$agent|g" \
        -e "s|@CASES@|$cases_json|g" -e "s|@EXCLUDE@|$exclude_json|g" \
        "$helpers/$1" >"$4"
}

# The set of installed versions is keyed by the pin file and the interpreter.
install_key() {
    {
        cat "$requirements"
        echo "$python27 $virtualenv_pin"
    } | sha256sum | cut -d' ' -f1
}

py27_env_ok() {
    [[ -x "$py27_env/bin/wstest" ]] &&
        [[ "$(cat "$py27_env/.duplex-install-key" 2>/dev/null)" == "$(install_key)" ]] &&
        "$py27_env/bin/python" -W ignore -c \
            'import autobahntestsuite.fuzzing, autobahn, twisted, wsaccel' >/dev/null 2>&1
}

install() {
    local log="$logs/install.log"
    : >"$log"
    if [[ ! -x "$python27" ]] || ! "$python27" -c 'import sys; sys.exit(sys.version_info[:2] != (2, 7))' 2>/dev/null; then
        echo "autobahn: no Python 2.7 at $python27; autobahntestsuite is Python 2.7 code and needs it."
        echo "autobahn: install it with 'pyenv install 2.7.18' (or point AUTOBAHN_PYTHON27 at a 2.7 interpreter)."
        return 1
    fi
    # Two runs sharing one cache install one after the other.
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$cache/.install.lock"
        flock -w 900 9 || { echo "autobahn: $cache is locked by another install"; return 1; }
    fi
    if py27_env_ok; then
        return 0
    fi
    echo "autobahn: installing Autobahn|Testsuite into $cache (log: $log)"
    if ! "$tools_env/bin/python" -m virtualenv --version >/dev/null 2>&1 ||
        ! "$tools_env/bin/python" -m pip show virtualenv 2>/dev/null | grep -qx "Version: ${virtualenv_pin#*==}"; then
        rm -rf "$tools_env"
        if ! { "$python3" -m venv "$tools_env" &&
            "$tools_env/bin/python" -m pip install "$virtualenv_pin"; } >>"$log" 2>&1; then
            echo "autobahn: could not install $virtualenv_pin into a Python 3 venv"
            show_log "$log"
            return 1
        fi
    fi
    rm -rf "$py27_env"
    if ! { "$tools_env/bin/python" -m virtualenv -p "$python27" "$py27_env" &&
        "$py27_env/bin/python" -m pip install -r "$requirements"; } >>"$log" 2>&1; then
        echo "autobahn: could not install autobahntestsuite into a Python 2.7 virtualenv"
        show_log "$log"
        rm -rf "$py27_env"
        return 1
    fi
    install_key >"$py27_env/.duplex-install-key"
    if ! py27_env_ok; then
        echo "autobahn: the fresh install does not import; see $log"
        return 1
    fi
}

# expected_cases SPEC: how many cases the spec selects, by Autobahn's rules.
expected_cases() {
    "$py27_env/bin/python" -W ignore "$helpers/count_cases.py" "$1" 2>>"$logs/install.log"
}

report() { # ROLE EXPECTED
    "$python3" "$helpers/report.py" --role "$1" --agent "$agent" \
        --expected "$2" "$out/$1/index.json"
}

# Autobahn is the client; our server echoes.
run_server_role() {
    local port spec expected pid wpid rc ok=0
    local server_log="$logs/server-role-duplex.log" wstest_log="$logs/server-role-wstest.log"
    rm -rf "$out/server" && mkdir -p "$out/server"
    port="$(free_port)" || return 1
    spec="$out/server/fuzzingclient.json"
    write_spec fuzzingclient.json.in "$port" "$out/server" "$spec" || return 1
    expected="$(expected_cases "$spec")" || { echo "autobahn server: could not count the cases of $spec"; return 1; }

    bash -c "exec $server_cmd \"\$@\"" autobahn-server --addr "127.0.0.1:$port" >"$server_log" 2>&1 &
    pid=$!
    pids+=("$pid")
    wait_port "$pid" "$port" 30
    case $? in
        1) echo "autobahn server: not run: the server under test did not listen on 127.0.0.1:$port within 30 s"
           show_log "$server_log"; return 1 ;;
        2) echo "autobahn server: not run: the server under test exited at start ($server_cmd)"
           show_log "$server_log"; return 1 ;;
    esac

    (cd "$out/server" && exec timeout -k 10 "$role_timeout" "$py27_env/bin/python" "$helpers/wstest_loopback.py" -m fuzzingclient -s "$spec") >"$wstest_log" 2>&1 &
    wpid=$!
    pids+=("$wpid")
    wait "$wpid"
    rc=$?

    report server "$expected" || ok=1
    if ((rc == 124)); then
        echo "  wstest fuzzingclient did not finish within $role_timeout s (AUTOBAHN_TIMEOUT)"
        ok=1
    elif ((rc != 0)); then
        echo "  wstest fuzzingclient exited with status $rc"
        show_log "$wstest_log"
        ok=1
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "  the server under test exited during the run"
        show_log "$server_log"
        ok=1
    fi
    stop_pids "$pid"
    return $ok
}

# Autobahn is the server; our client drives it.
run_client_role() {
    local port spec expected spid cpid rc ok=0 i
    local client_log="$logs/client-role-duplex.log" wstest_log="$logs/client-role-wstest.log"
    rm -rf "$out/client" && mkdir -p "$out/client"
    port="$(free_port)" || return 1
    spec="$out/client/fuzzingserver.json"
    write_spec fuzzingserver.json.in "$port" "$out/client" "$spec" || return 1
    expected="$(expected_cases "$spec")" || { echo "autobahn client: could not count the cases of $spec"; return 1; }

    (cd "$out/client" && exec "$py27_env/bin/python" "$helpers/wstest_loopback.py" -m fuzzingserver -s "$spec" --webport 0) >"$wstest_log" 2>&1 &
    spid=$!
    pids+=("$spid")
    wait_port "$spid" "$port" 60
    case $? in
        1) echo "autobahn client: not run: wstest fuzzingserver did not listen on 127.0.0.1:$port within 60 s"
           show_log "$wstest_log"; return 1 ;;
        2) echo "autobahn client: not run: wstest fuzzingserver exited at start"
           show_log "$wstest_log"; return 1 ;;
    esac

    timeout -k 10 "$role_timeout" bash -c "exec $client_cmd \"\$@\"" autobahn-client "ws://127.0.0.1:$port" >"$client_log" 2>&1 &
    cpid=$!
    pids+=("$cpid")
    wait "$cpid"
    rc=$?
    # updateReports writes the report before its connection closes; allow a
    # moment anyway in case the client exits without waiting for the close.
    for ((i = 0; i < 50 && rc == 0; i++)); do
        [[ -s "$out/client/index.json" ]] && break
        sleep 0.1
    done
    stop_pids "$spid"

    report client "$expected" || ok=1
    if ((rc == 124)); then
        echo "  the client under test did not finish within $role_timeout s (AUTOBAHN_TIMEOUT)"
        show_log "$client_log"
        ok=1
    elif ((rc != 0)); then
        echo "  the client under test exited with status $rc ($client_cmd)"
        show_log "$client_log"
        ok=1
    fi
    if [[ ! -s "$out/client/index.json" ]]; then
        echo "  (the report is written when the client connects to /updateReports?agent=$agent)"
    fi
    return $ok
}

# The parser is what decides pass or fail, so it is tested first.
if ! "$python3" -m unittest discover -s "$helpers" -p 'test_*.py' >"$logs/report-tests.log" 2>&1; then
    echo "autobahn: the report parser's own tests fail"
    show_log "$logs/report-tests.log" 30
    exit 1
fi

if ! patterns_json "$cases" >/dev/null || ! patterns_json "$exclude" >/dev/null; then
    exit 1
fi
for role in $roles; do
    if [[ $role != server && $role != client ]]; then
        echo "autobahn: unknown role '$role' in AUTOBAHN_ROLES (server, client)"
        exit 1
    fi
done
if [[ -z "${AUTOBAHN_SERVER_CMD:-}${AUTOBAHN_CLIENT_CMD:-}" && ! -x "$DUPLEX_BIN" ]]; then
    echo "autobahn: no duplex binary at $DUPLEX_BIN (run through scripts/conformance.sh, which builds it)"
    exit 1
fi

started=$SECONDS
if ! install; then
    for role in $roles; do
        echo "autobahn $role: not run: Autobahn|Testsuite could not be installed"
    done
    exit 1
fi
exec 9>&- # release the install lock
timings="install $((SECONDS - started)) s"

status=0
for role in $roles; do
    started=$SECONDS
    if ! "run_${role}_role"; then
        status=1
    fi
    timings+=", $role role $((SECONDS - started)) s"
done
echo "autobahn: $timings; reports in $out"
exit $status
