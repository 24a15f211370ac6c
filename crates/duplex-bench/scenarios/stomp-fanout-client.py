#!/usr/bin/env python3
"""STOMP fan-out load client (Python standard library only), the same for
every broker under test:

    stomp-fanout-client.py HOST:PORT SUBSCRIBERS MESSAGES BODY_BYTES [SECONDS]

Opens SUBSCRIBERS connections subscribed to /topic/duplex-bench (each
subscription confirmed by a RECEIPT), then one publisher connection SENDs
MESSAGES frames of BODY_BYTES as fast as the broker takes them, while every
subscriber's bytes are read and its MESSAGE frames counted (one NUL ends
each frame; bodies have none). Stops when every subscriber has every message
or after SECONDS (default 120). Prints one JSON line: deliveries, seconds
from the first SEND to the last delivery, deliveries per second."""

import json
import selectors
import socket
import sys
import time

DEST = "/topic/duplex-bench"


def frame(command, headers, body=b""):
    head = command + "\n" + "".join(f"{k}:{v}\n" for k, v in headers) + "\n"
    return head.encode() + body + b"\0"


def read_frame(sock, buf):
    while b"\0" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed during setup")
        buf += chunk
    end = buf.index(b"\0")
    return buf[:end].lstrip(b"\r\n"), buf[end + 1 :]


def connect(addr):
    host, port = addr.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(
        frame(
            "CONNECT",
            [("accept-version", "1.2"), ("host", "/"), ("login", "guest"),
             ("passcode", "guest"), ("heart-beat", "0,0")],
        )
    )
    reply, rest = read_frame(sock, b"")
    if not reply.startswith(b"CONNECTED"):
        raise ConnectionError(reply[:200])
    return sock, rest


def main():
    addr, subs, messages, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    limit = float(sys.argv[5]) if len(sys.argv) > 5 else 120.0
    sel = selectors.DefaultSelector()
    counts = []
    for i in range(subs):
        sock, rest = connect(addr)
        sock.sendall(frame("SUBSCRIBE", [("id", "0"), ("destination", DEST), ("ack", "auto"), ("receipt", f"s{i}")]))
        reply, rest = read_frame(sock, rest)
        if not reply.startswith(b"RECEIPT"):
            raise ConnectionError(reply[:200])
        # RabbitMQ ends each frame with an EOL after the NUL.
        if rest.strip(b"\r\n"):
            raise ConnectionError("unexpected bytes after the receipt")
        sock.setblocking(False)
        sel.register(sock, selectors.EVENT_READ, i)
        counts.append(0)
    pub, _ = connect(addr)
    pub.setblocking(False)
    body = b"x" * size
    one = frame("SEND", [("destination", DEST), ("content-type", "text/plain"), ("content-length", str(size))], body)
    batch = one * 64
    pending = b""
    sent = 0
    sel.register(pub, selectors.EVENT_WRITE, -1)
    want = subs * messages
    got = 0
    start = time.monotonic()
    last = start
    deadline = start + limit
    while got < want and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1.0):
            if key.data == -1:
                if not pending:
                    if sent >= messages:
                        sel.unregister(pub)
                        continue
                    n = min(64, messages - sent)
                    pending = batch if n == 64 else one * n
                    sent += n
                try:
                    written = pub.send(pending)
                except BlockingIOError:
                    written = 0
                pending = pending[written:]
            else:
                try:
                    data = key.fileobj.recv(1 << 20)
                except BlockingIOError:
                    continue
                if not data:
                    raise ConnectionError("a subscriber was closed")
                n = data.count(b"\0")
                counts[key.data] += n
                got += n
                last = time.monotonic()
    elapsed = last - start
    print(json.dumps({
        "subscribers": subs, "messages": messages, "body": size,
        "deliveries": got, "expected": want,
        "seconds": round(elapsed, 3),
        "deliveries_per_s": round(got / elapsed) if elapsed > 0 else 0,
        "complete": got == want,
    }))
    sys.exit(0 if got == want else 1)


if __name__ == "__main__":
    main()
