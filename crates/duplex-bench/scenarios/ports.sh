#!/usr/bin/env bash
# Port helpers the scenarios share (sourced, not run): one copy, so that
# every scenario picks and waits for its listeners the same way.

# Prints a port that is free on 127.0.0.1: with BASE, the first from BASE up
# that nothing listens on; without, one node got by binding port 0.
free_port() {
    if (($# > 0)); then
        local port="$1"
        while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
            port=$((port + 1))
        done
        echo "$port"
        return 0
    fi
    node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

# wait_port PORT [LIMIT [PID]]: waits up to LIMIT seconds (default 30) for
# something to listen on 127.0.0.1:PORT; fails at once if process PID (when
# given) has exited.
wait_port() {
    local port=$1 limit=${2:-30} pid=${3:-}
    local deadline=$((SECONDS + limit))
    while ((SECONDS < deadline)); do
        if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "nothing listens on 127.0.0.1:$port after $limit s" >&2
    return 1
}
