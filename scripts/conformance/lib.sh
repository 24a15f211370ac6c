# Shared by the conformance suites (sourced, not run): everything a suite
# starts in the background goes into `pids`, and is stopped when the suite
# exits, however it exits (TERM first, KILL after 5 s, then reaped).
pids=()
cleanup() {
    local pid i
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${pids[@]}"; do
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# Installs nodejs and npm with apt-get when either is missing; logs to $1.
# Returns non-zero if that fails.
ensure_node() {
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 && return 0
    echo "installing nodejs and npm (apt-get)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; } >>"$1" 2>&1
}
