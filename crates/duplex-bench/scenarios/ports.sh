#!/usr/bin/env bash
# Port helpers the Socket.IO scenarios share (sourced, not run): one copy,
# so that every scenario picks and waits for its listeners the same way.

# Prints a port that is free on 127.0.0.1 (node binds port 0 and closes).
free_port() {
    node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

# Waits up to 30 s for something to listen on 127.0.0.1:$1.
wait_port() {
    local port=$1 deadline=$((SECONDS + 30))
    while ((SECONDS < deadline)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "nothing listens on 127.0.0.1:$port" >&2
    return 1
}
