#!/usr/bin/env python3
"""Hostile clients against one running `duplex serve` (Python 3 standard
library only, nothing to build).

    hostile.py --addr 127.0.0.1:8080 --stomp-addr 127.0.0.1:61613 --pid PID [--only NAME,...]
    hostile.py --addr ... --pid PID flood-sockjs N     # the memory reproduction
    hostile.py --addr ... --pid PID flood-engineio N

Each attack checks three things: the protocol's answer (a status, a close
code, a close), that a well-behaved client is served meanwhile (GET /stats
and a WebSocket echo round trip on /echo), and that the server's RSS is
back within 16 MiB of its baseline within 15 s of the attack ending.
Prints one line per check and `hostile: N passed, N failed`. Every socket
has a timeout; every loop is bounded.
"""

import argparse
import base64
import http.client
import json
import os
import random
import resource
import socket
import struct
import sys
import threading
import time
import zlib

RSS_SLACK_KIB = 16 * 1024
RSS_WAIT = 15.0
STEP = 10.0

ARGS = None
RESULTS = {"passed": 0, "failed": 0}


def check(name, ok, detail=""):
    RESULTS["passed" if ok else "failed"] += 1
    print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}", flush=True)
    return ok


def rss_kib():
    with open(f"/proc/{ARGS.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def host_port(addr):
    host, port = addr.rsplit(":", 1)
    return host, int(port)


def connect(addr=None, timeout=STEP):
    s = socket.create_connection(host_port(addr or ARGS.addr), timeout=timeout)
    s.settimeout(timeout)
    return s


def read_until_close(s, limit=1 << 20, timeout=STEP):
    """Reads until EOF; returns (bytes, closed)."""
    s.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    try:
        while len(data) < limit and time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                return data, True
            data += chunk
    except (socket.timeout, TimeoutError):
        return data, False
    except (ConnectionResetError, BrokenPipeError):
        return data, True
    return data, False


def http_get(path, timeout=STEP):
    conn = http.client.HTTPConnection(*host_port(ARGS.addr), timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def stats():
    status, body = http_get("/stats")
    return json.loads(body) if status == 200 else {}


# --- a minimal WebSocket client -----------------------------------------

def ws_open(path="/echo", extra_headers="", addr=None):
    s = connect(addr)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra_headers}\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError(f"closed during the handshake: {head!r}")
        head += chunk
    head, rest = head.split(b"\r\n\r\n", 1)
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(f"no 101: {head[:80]!r}")
    return s, rest


def ws_frame(opcode, payload, fin=True, rsv1=False, masked=True):
    mask = os.urandom(4) if masked else b""
    n = len(payload)
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    bit = 0x80 if masked else 0
    if n < 126:
        head = struct.pack("!BB", first, bit | n)
    elif n < 65536:
        head = struct.pack("!BBH", first, bit | 126, n)
    else:
        head = struct.pack("!BBQ", first, bit | 127, n)
    if not masked:
        return head + payload
    # XOR as one big integer: a byte loop in Python takes seconds per MiB.
    key = (mask * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big") if n else b""
    return head + mask + masked


def ws_read_frame(s, buf=b""):
    """Reads one frame: (opcode, payload, rest)."""
    def need(n):
        nonlocal buf
        while len(buf) < n:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
    need(2)
    opcode = buf[0] & 0x0F
    n = buf[1] & 0x7F
    off = 2
    if n == 126:
        need(4)
        n = struct.unpack("!H", buf[2:4])[0]
        off = 4
    elif n == 127:
        need(10)
        n = struct.unpack("!Q", buf[2:10])[0]
        off = 10
    need(off + n)
    return opcode, buf[off:off + n], buf[off + n:]


def ws_close_code(s, rest=b"", timeout=STEP):
    """Reads frames until a close frame or EOF; returns the close code (or
    None at EOF without one, 'timeout' if neither comes)."""
    s.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            opcode, payload, rest = ws_read_frame(s, rest)
            if opcode == 8:
                return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
    except (ConnectionError, OSError):
        return None
    return "timeout"


def well_behaved(label):
    """GET /stats and an echo round trip, each within STEP."""
    try:
        t0 = time.monotonic()
        status, _ = http_get("/stats")
        s, rest = ws_open("/echo")
        msg = f"hello {random.random()}".encode()
        s.sendall(ws_frame(1, msg))
        s.settimeout(STEP)
        opcode, payload, _ = ws_read_frame(s, rest)
        s.sendall(ws_frame(8, struct.pack("!H", 1000)))
        s.close()
        ok = status == 200 and opcode == 1 and payload == msg
        return check(f"{label}: a well-behaved client is served", ok,
                     f"{(time.monotonic() - t0) * 1000:.0f} ms")
    except Exception as e:  # noqa: BLE001 - any failure is the finding
        return check(f"{label}: a well-behaved client is served", False, repr(e))


def rss_back(label, baseline):
    deadline = time.monotonic() + RSS_WAIT
    now = rss_kib()
    while now > baseline + RSS_SLACK_KIB and time.monotonic() < deadline:
        time.sleep(0.5)
        now = rss_kib()
    return check(f"{label}: RSS back within 16 MiB", now <= baseline + RSS_SLACK_KIB,
                 f"baseline {baseline // 1024} MiB, now {now // 1024} MiB")


class Background:
    """Runs `fn` in a thread; join() re-raises nothing, returns its result."""

    def __init__(self, fn, *args):
        self.result = None
        self.thread = threading.Thread(target=self._run, args=(fn, args), daemon=True)
        self.thread.start()

    def _run(self, fn, args):
        try:
            self.result = fn(*args)
        except Exception as e:  # noqa: BLE001
            self.result = e

    def join(self, timeout):
        self.thread.join(timeout)
        return self.result


# --- the attacks ----------------------------------------------------------

def attack_slow_and_half_handshakes():
    """20 heads trickled a byte a second, 20 heads stopped half way: the
    server drops them after its 10 s header read timeout."""
    label = "slow and half handshakes"

    def trickle():
        s = connect()
        s.settimeout(1.0)
        head = b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        t0 = time.monotonic()
        for b in head * 4:
            if time.monotonic() - t0 > 20:
                return "still open after 20 s"
            try:
                s.send(bytes([b]))
                if s.recv(1, socket.MSG_PEEK) == b"":
                    return time.monotonic() - t0
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                return time.monotonic() - t0
        return "still open"

    def half():
        s = connect()
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: web")
        t0 = time.monotonic()
        _, closed = read_until_close(s, timeout=20)
        return time.monotonic() - t0 if closed else "still open after 20 s"

    jobs = [Background(trickle) for _ in range(20)] + [Background(half) for _ in range(20)]
    time.sleep(2)
    well_behaved(label)
    results = [j.join(30) for j in jobs]
    dropped = [r for r in results if isinstance(r, float) and r <= 13]
    check(f"{label}: dropped by the header read timeout (10 s)", len(dropped) == len(results),
          f"{len(dropped)}/{len(results)} dropped, slowest {max(dropped, default=0):.1f} s; others {[r for r in results if r not in dropped][:3]}")


def attack_oversized_heads():
    label = "oversized heads"
    answers = []
    for path, upgrade in [("/echo", True), ("/stats", False), ("/socket.io/?EIO=4&transport=polling", False)]:
        s = connect()
        extra = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" if upgrade else ""
        big = "".join(f"X-Pad-{i}: {'a' * 1000}\r\n" for i in range(64))
        try:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{extra}{big}\r\n".encode())
        except OSError:
            pass
        data, closed = read_until_close(s)
        answers.append((path, data[:12].decode(errors="replace"), closed))
    ok = all(a[1] == "HTTP/1.1 431" and a[2] for a in answers)
    check(f"{label}: 64 KiB heads get 431 and a close", ok, str(answers))
    s = connect()
    many = "".join(f"X-H{i}: v\r\n" for i in range(200))
    s.sendall(f"GET /stats HTTP/1.1\r\nHost: x\r\n{many}\r\n".encode())
    data, closed = read_until_close(s)
    check(f"{label}: 200 headers get 431 and a close", data.startswith(b"HTTP/1.1 431") and closed,
          repr(data[:12]))
    well_behaved(label)


def attack_huge_frames():
    label = "frames announcing 2^63 bytes"
    codes = []
    for opcode in (2, 1, 0x9):
        s, rest = ws_open()
        # 127 + a 64-bit length with the top bit clear: 2^63 - 1 bytes.
        s.sendall(struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, (1 << 63) - 1) + os.urandom(4) + b"x" * 100)
        codes.append(ws_close_code(s, rest))
        s.close()
    # The top bit set (2^63 exactly) is a protocol error.
    s, rest = ws_open()
    s.sendall(struct.pack("!BBQ", 0x82, 0x80 | 127, 1 << 63) + os.urandom(4))
    codes.append(ws_close_code(s, rest))
    s.close()
    check(f"{label}: closed with 1009 (too big) or 1002 (protocol error)",
          all(c in (1009, 1002) for c in codes), str(codes))
    # A 100 MiB message in 1 MiB fragments: more than max_message_size (64 MiB).
    s, rest = ws_open()
    chunk = b"\0" * (1 << 20)
    code = None
    try:
        s.sendall(ws_frame(2, chunk, fin=False))
        for _ in range(99):
            s.sendall(ws_frame(0, chunk, fin=False))
    except OSError:
        pass
    code = ws_close_code(s, rest)
    s.close()
    check("100 MiB fragmented message: closed with 1009", code == 1009, str(code))
    well_behaved(label)


def attack_ping_flood():
    """Pings the server cannot answer because the client never reads the pongs."""
    label = "ping flood with unread pongs"
    baseline = rss_kib()
    socks = []
    sent_total = 0
    for _ in range(4):
        s, _ = ws_open()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(0.2)
        ping = ws_frame(9, b"p" * 125)
        sent = 0
        t0 = time.monotonic()
        try:
            while sent < 50_000 and time.monotonic() - t0 < 5:
                s.send(ping)
                sent += 1
        except (socket.timeout, TimeoutError):
            pass  # the server stopped reading: back-pressure
        except OSError:
            pass  # the server closed
        sent_total += sent
        socks.append(s)
    peak = rss_kib()
    check(f"{label}: the server's memory stays bounded while flooded",
          peak <= baseline + RSS_SLACK_KIB * 2, f"{sent_total} pings sent, RSS {baseline // 1024} -> {peak // 1024} MiB")
    well_behaved(label)
    for s in socks:
        s.close()
    rss_back(label, baseline)


def attack_idle_connections(n):
    label = f"{n} idle connections"
    baseline = rss_kib()
    socks = []
    opened = 0
    for i in range(n):
        try:
            if i % 2 == 0:
                s = connect()
            else:
                s, _ = ws_open()
            socks.append(s)
            opened += 1
        except OSError as e:
            check(f"{label}: opened", False, f"{opened} opened, then {e!r}")
            break
    else:
        check(f"{label}: opened (half bare TCP, half WebSockets)", True)
    time.sleep(1)
    held = rss_kib()
    well_behaved(label)
    # Bare TCP connections that never send a head are dropped by the header
    # read timeout; WebSockets stay (the server pings them).
    time.sleep(11)
    bare_closed = 0
    for s in socks[0::2]:
        s.settimeout(0.01)
        try:
            if s.recv(1) == b"":
                bare_closed += 1
        except (socket.timeout, TimeoutError, BlockingIOError):
            pass
        except OSError:
            bare_closed += 1
    check(f"{label}: idle bare connections dropped after the header read timeout",
          bare_closed == len(socks[0::2]), f"{bare_closed}/{len(socks[0::2])}")
    for s in socks:
        s.close()
    print(f"     {label}: RSS {baseline // 1024} -> {held // 1024} MiB while held", flush=True)
    rss_back(label, baseline)


SAMPLES = {"sockjs": [], "engineio": []}


def flood_sockjs(n):
    """Opens n xhr sessions at /sockjs/echo and abandons them."""
    conn = http.client.HTTPConnection(*host_port(ARGS.addr), timeout=STEP)
    opened = 0
    for i in range(n):
        sid = f"h{os.getpid()}x{i}x{random.randrange(1 << 30)}"
        conn.request("POST", f"/sockjs/echo/000/{sid}/xhr", body=b"")
        resp = conn.getresponse()
        if resp.read() == b"o\n":
            opened += 1
            if i % (n // 10 or 1) == 0:
                SAMPLES["sockjs"].append(sid)
    conn.close()
    return opened


def flood_engineio(n):
    """Opens n Engine.IO polling sessions at /socket.io/ and abandons them."""
    conn = http.client.HTTPConnection(*host_port(ARGS.addr), timeout=STEP)
    opened = 0
    for i in range(n):
        conn.request("GET", "/socket.io/?EIO=4&transport=polling")
        resp = conn.getresponse()
        body = resp.read()
        if resp.status == 200 and body.startswith(b"0{"):
            opened += 1
            if i % (n // 10 or 1) == 0:
                SAMPLES["engineio"].append(json.loads(body[1:])["sid"])
    conn.close()
    return opened


def attack_abandoned_sessions(n):
    label = f"{n} abandoned SockJS and {n} Engine.IO sessions"
    baseline = rss_kib()
    sj = Background(flood_sockjs, n)
    eio = Background(flood_engineio, n)
    sj_opened, eio_opened = sj.join(120), eio.join(120)
    check(f"{label}: opened", sj_opened == n and eio_opened == n, f"sockjs {sj_opened}, engine.io {eio_opened}")
    peak = rss_kib()
    well_behaved(label)
    # SockJS sessions expire 5 s after their last request; Engine.IO ones
    # after ping interval + ping timeout (25 + 20 s). A sample of each
    # must then be unknown: SockJS answers a send to it 404, Engine.IO a
    # poll of it 400.
    # Any request to a live session keeps it alive, so each sample is
    # probed once, after its expiry is due (+3 s).
    flood_end = time.monotonic()

    def probe(kind, method, path, body, want):
        conn = http.client.HTTPConnection(*host_port(ARGS.addr), timeout=3)
        left = []
        for sid in SAMPLES[kind]:
            try:
                conn.request(method, path.format(sid=sid), body=body)
                r = conn.getresponse()
                r.read()
                if r.status != want:
                    left.append(r.status)
            except OSError as e:
                left.append(repr(e))
                conn.close()
                conn = http.client.HTTPConnection(*host_port(ARGS.addr), timeout=3)
        conn.close()
        return left

    time.sleep(max(0.0, flood_end + 8 - time.monotonic()))
    left = probe("sockjs", "POST", "/sockjs/echo/000/{sid}/xhr_send", b'["x"]', 404)
    check(f"{label}: SockJS sessions expired 5 s after their last request (a sample answers 404)",
          not left and bool(SAMPLES["sockjs"]), f"{len(SAMPLES['sockjs'])} probed, still there: {left[:4]}")
    time.sleep(max(0.0, flood_end + 48 - time.monotonic()))
    left = probe("engineio", "GET", "/socket.io/?EIO=4&transport=polling&sid={sid}", None, 400)
    check(f"{label}: Engine.IO sessions expired after ping interval + timeout (a sample answers 400)",
          not left and bool(SAMPLES["engineio"]), f"{len(SAMPLES['engineio'])} probed, still there: {left[:4]}")
    print(f"     {label}: RSS {baseline // 1024} -> {peak // 1024} MiB at the peak", flush=True)
    rss_back(label, baseline)


def attack_socketio_attachments():
    label = "Socket.IO packets announcing 10^6 attachments"
    answers = []
    # Over WebSocket: the Engine.IO message 4 carries the Socket.IO packet.
    s, rest = ws_open("/socket.io/?EIO=4&transport=websocket")
    s.settimeout(STEP)
    opcode, payload, rest = ws_read_frame(s, rest)  # the Engine.IO open
    s.sendall(ws_frame(1, b"40"))
    opcode, payload, rest = ws_read_frame(s, rest)  # the namespace connect
    s.sendall(ws_frame(1, b'451000000-["x",{"_placeholder":true,"num":0}]'))
    frames = []
    s.settimeout(STEP)
    try:
        while True:
            opcode, payload, rest = ws_read_frame(s, rest)
            frames.append((opcode, payload[:40]))
            if opcode == 8:
                break
    except (ConnectionError, OSError):
        pass
    answers.append(frames[-1:] if frames else "closed")
    closed = not frames or frames[-1][0] == 8 or any(p.startswith(b"41") or p.startswith(b"1") for _, p in frames)
    check(f"{label}: over WebSocket the client is disconnected", closed, str(frames[:3]))
    # Over polling: the packet in a POST.
    conn = http.client.HTTPConnection(*host_port(ARGS.addr), timeout=STEP)
    conn.request("GET", "/socket.io/?EIO=4&transport=polling")
    resp = conn.getresponse()
    body = resp.read()
    sid = json.loads(body[1:]).get("sid") if body.startswith(b"0{") else None
    ok = False
    detail = repr(body[:40])
    if sid:
        conn.request("POST", f"/socket.io/?EIO=4&transport=polling&sid={sid}", body=b"40")
        conn.getresponse().read()
        conn.request("GET", f"/socket.io/?EIO=4&transport=polling&sid={sid}")
        conn.getresponse().read()
        conn.request("POST", f"/socket.io/?EIO=4&transport=polling&sid={sid}",
                     body=b'451000000-["x",{"_placeholder":true,"num":0}]')
        r = conn.getresponse()
        r.read()
        conn.request("GET", f"/socket.io/?EIO=4&transport=polling&sid={sid}")
        r2 = conn.getresponse()
        b2 = r2.read()
        detail = f"POST {r.status}, then GET {r2.status} {b2[:40]!r}"
        # The session is closed: the next poll answers 400 or a close
        # packet, which may follow what the connect handler emitted (it
        # runs concurrently, so its event can reach this poll or the one
        # before).
        ok = r.status == 400 or r2.status == 400 or b"1" in b2.split(b"\x1e")
    conn.close()
    check(f"{label}: over polling the session is closed", ok, detail)
    well_behaved(label)


def stomp_connect(extra=b"", heart_beat=b"0,0"):
    s = connect(ARGS.stomp_addr)
    s.sendall(b"CONNECT\naccept-version:1.2\nhost:x\nheart-beat:" + heart_beat + b"\n" + extra + b"\n\0")
    data = b""
    while b"\0" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return s, data


def attack_stomp():
    label = "STOMP"
    # A header flood: one SEND with 100,000 headers.
    s, data = stomp_connect()
    ok_connected = data.startswith(b"CONNECTED")
    flood = b"SEND\ndestination:/queue/x\n" + b"".join(b"h%d:v\n" % i for i in range(100_000)) + b"\nx\0"
    try:
        s.sendall(flood)
    except OSError:
        pass
    answer, closed = read_until_close(s)
    check(f"{label} header flood: an ERROR frame and a close",
          ok_connected and answer.startswith(b"ERROR") and closed, repr(answer[:60]))
    # Both silent peers at once (they only wait).
    def no_connect():
        s = connect(ARGS.stomp_addr)
        t0 = time.monotonic()
        _, closed = read_until_close(s, timeout=15)
        return closed, time.monotonic() - t0

    def heart_beat_then_silence():
        s, data = stomp_connect(heart_beat=b"1000,0")
        t0 = time.monotonic()
        sy = 0
        for line in data.split(b"\n"):
            if line.startswith(b"heart-beat:"):
                sy = int(line.split(b",")[1])
        interval = max(1000, sy) / 1000 if sy else None
        bound = 2 * interval + 1 if interval else 0
        _, closed = read_until_close(s, timeout=bound + 5)
        return data.startswith(b"CONNECTED") and closed, time.monotonic() - t0, interval, bound

    silent = Background(no_connect)
    beating = Background(heart_beat_then_silence)
    well_behaved(label)
    result = silent.join(20)
    closed, took = result if isinstance(result, tuple) else (False, repr(result))
    # A silent peer that never sends CONNECT: dropped within 10 s (+1).
    check(f"{label} silent peer (no CONNECT): dropped by the 10 s connect timeout",
          closed and took <= 11.5, f"{took:.1f} s" if closed else str(took))
    # A peer that promises heart-beats every second and goes silent: dropped
    # within twice the negotiated interval (the larger of its 1 s and the
    # server's wish, from CONNECTED's heart-beat header) plus 1 s.
    result = beating.join(40)
    if isinstance(result, tuple):
        ok, took, interval, bound = result
        check(f"{label} silent peer after heart-beat:1000,0: dropped within 2 x the negotiated interval",
              ok and took <= bound, f"interval {interval} s, dropped after {took:.1f} s")
    else:
        check(f"{label} silent peer after heart-beat:1000,0: dropped", False, repr(result))
    well_behaved(label)


def deflate_bomb(inflated_mib):
    """A raw-deflate (RFC 7692) message of `inflated_mib` MiB of zeros:
    about 1,000 times smaller on the wire."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = b"\0" * (1 << 20)
    out = [c.compress(zeros) for _ in range(inflated_mib)]
    out.append(c.flush(zlib.Z_SYNC_FLUSH))
    body = b"".join(out)
    # The message ends without the 00 00 ff ff tail (RFC 7692 7.2.1).
    return body[:-4] if body.endswith(b"\0\0\xff\xff") else body


def attack_deflate_bombs():
    """permessage-deflate messages inflating far beyond max_message_size
    (64 MiB): 1 GiB in one frame, and 256 MiB spread over fragments, on
    four connections at once, two on the echo and two on the demo chat's
    /ws (text frames: NULs are valid UTF-8, so only the size can stop them).
    The server must stop inflating at the limit and close 1009, without
    holding the inflated bytes, and serve a good client while it inflates."""
    label = "deflate bombs"
    baseline = rss_kib()
    one_frame = deflate_bomb(1024)
    fragmented = deflate_bomb(256)
    ext = "Sec-WebSocket-Extensions: permessage-deflate\r\n"

    def bomb(path, opcode, fragments):
        s, rest = ws_open(path, ext)
        if fragments == 1:
            frames = [ws_frame(opcode, one_frame, rsv1=True)]
        else:
            step = len(fragmented) // fragments + 1
            parts = [fragmented[i:i + step] for i in range(0, len(fragmented), step)]
            # RSV1 on the first frame only; continuations carry none.
            frames = [ws_frame(opcode if i == 0 else 0, p, fin=i == len(parts) - 1, rsv1=i == 0)
                      for i, p in enumerate(parts)]
        try:
            for f in frames:
                s.sendall(f)
        except OSError:
            pass  # closed while sending: the answer is read below
        code = ws_close_code(s, rest)
        s.close()
        return code

    jobs = [Background(bomb, "/echo", 1, 1), Background(bomb, "/echo", 2, 64),
            Background(bomb, "/ws", 1, 1), Background(bomb, "/ws", 1, 64)]
    # Meanwhile: a good client is served while the bombs are inflated.
    meanwhile = Background(well_behaved, f"{label} (while they inflate)")
    peak = baseline
    while any(j.thread.is_alive() for j in jobs + [meanwhile]):
        peak = max(peak, rss_kib())
        time.sleep(0.05)
    codes = [j.join(STEP * 3) for j in jobs]
    check(f"{label}: 1 GiB in {len(one_frame) // 1024} KiB and 256 MiB in 64 fragments"
          " (/echo binary, /ws text) closed with 1009",
          all(c == 1009 for c in codes), str(codes))
    check(f"{label}: the server never holds the inflated message",
          peak <= baseline + 4 * 64 * 1024 + RSS_SLACK_KIB,
          f"RSS {baseline // 1024} -> {peak // 1024} MiB at the peak (4 x 64 MiB allowed)")
    # A message within the limit still inflates and echoes.
    try:
        s, rest = ws_open("/echo", ext)
        small = deflate_bomb(1)
        s.sendall(ws_frame(2, small, rsv1=True))
        s.settimeout(STEP)
        opcode, payload, rest = ws_read_frame(s, rest)
        s.close()
        d = zlib.decompressobj(-15)
        echoed = d.decompress(payload + b"\0\0\xff\xff")
        check(f"{label}: a 1 MiB compressed message is echoed", echoed == b"\0" * (1 << 20),
              f"{len(payload)} bytes compressed, {len(echoed)} inflated")
    except Exception as e:  # noqa: BLE001
        check(f"{label}: a 1 MiB compressed message is echoed", False, repr(e))
    well_behaved(label)
    rss_back(label, baseline)


def attack_protocol_violations():
    """Frames RFC 6455 forbids; each gets its close code."""
    label = "protocol violations"
    cases = [
        ("an unmasked client frame", ws_frame(1, b"hi", masked=False), 1002),
        ("reserved opcode 3", ws_frame(3, b"x"), 1002),
        ("RSV1 without an extension", ws_frame(1, b"x", rsv1=True), 1002),
        ("a fragmented ping", ws_frame(9, b"x", fin=False), 1002),
        ("a continuation with nothing to continue", ws_frame(0, b"x"), 1002),
        ("a text message that is not UTF-8", ws_frame(1, b"\xff\xfe\xc0"), 1007),
        ("a close with code 999", ws_frame(8, struct.pack("!H", 999)), 1002),
        ("a 126-byte ping", ws_frame(9, b"p" * 126), 1002),
    ]
    answers = []
    for name, frame, want in cases:
        try:
            s, rest = ws_open()
            s.sendall(frame)
            code = ws_close_code(s, rest)
            s.close()
        except Exception as e:  # noqa: BLE001
            code = repr(e)
        answers.append((name, code, want))
    bad = [a for a in answers if a[1] != a[2]]
    check(f"{label}: each closed with its code (1002, 1007)", not bad,
          f"{len(answers) - len(bad)}/{len(answers)}; wrong: {bad}")
    well_behaved(label)


def attack_slow_and_large_bodies():
    """Request bodies: one announcing 1,000 bytes and trickling a byte a
    second (Engine.IO polling, SockJS xhr_send, the demo's /sse/send), and
    bodies over each endpoint's limit (Engine.IO 1,000,000 bytes, SockJS
    1 MiB, /sse/send 64 KiB)."""
    label = "slow and large bodies"

    def engineio_sid():
        conn = http.client.HTTPConnection(*host_port(ARGS.addr), timeout=STEP)
        conn.request("GET", "/socket.io/?EIO=4&transport=polling")
        body = conn.getresponse().read()
        conn.close()
        return json.loads(body[1:])["sid"]

    def sockjs_sid():
        sid = f"b{os.getpid()}x{random.randrange(1 << 30)}"
        conn = http.client.HTTPConnection(*host_port(ARGS.addr), timeout=STEP)
        conn.request("POST", f"/sockjs/echo/000/{sid}/xhr", body=b"")
        conn.getresponse().read()
        conn.close()
        return sid

    def sse_sid():
        s = connect()
        s.sendall(b"GET /sse/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        data = b""
        while b'"session"' not in data or b"}" not in data.split(b'"session"', 1)[1]:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        sid = data.split(b'"session"', 1)[1].split(b'"')[1].decode()
        return s, sid

    def trickle(path):
        s = connect()
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                  f"Content-Length: 1000\r\n\r\n".encode())
        t0 = time.monotonic()
        s.settimeout(1.0)
        data = b""
        while time.monotonic() - t0 < 40:
            try:
                s.send(b"x")
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
                if b"\r\n\r\n" in data:
                    rest, closed = read_until_close(s, timeout=3)
                    data += rest
                    break
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                break
        return data[:12].decode(errors="replace"), time.monotonic() - t0

    def large(path, n):
        s = connect()
        try:
            s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                      f"Content-Length: {n}\r\n\r\n".encode())
            chunk = b"4" + b"x" * ((1 << 16) - 1)
            sent = 0
            while sent < n:
                part = chunk[:n - sent]
                s.sendall(part)
                sent += len(part)
        except OSError:
            pass  # answered and closed before the end
        data, _ = read_until_close(s, limit=4096, timeout=5)
        s.close()
        return data[:12].decode(errors="replace")

    sse_stream, sse = sse_sid()
    eio, sj = engineio_sid(), sockjs_sid()
    paths = [f"/socket.io/?EIO=4&transport=polling&sid={eio}", f"/sockjs/echo/000/{sj}/xhr_send",
             f"/sse/send?session={sse}"]
    slow = [Background(trickle, p) for p in paths]
    big = [large(paths[0], 1_000_001), large(paths[1], (1 << 20) + 1), large(paths[2], (64 << 10) + 1)]
    check(f"{label}: bodies over the endpoint's limit get 413", all(b == "HTTP/1.1 413" for b in big), str(big))
    well_behaved(label)
    answers = [j.join(45) for j in slow]
    ok = all(isinstance(a, tuple) and a[0] == "HTTP/1.1 408" and 29 <= a[1] <= 34 for a in answers)
    check(f"{label}: a body trickled a byte a second gets 408 at the 30 s body read timeout", ok,
          str([(a[0], round(a[1], 1)) if isinstance(a, tuple) else repr(a) for a in answers]))
    sse_stream.close()


ATTACKS = {
    "handshakes": attack_slow_and_half_handshakes,
    "heads": attack_oversized_heads,
    "frames": attack_huge_frames,
    "violations": attack_protocol_violations,
    "deflate": attack_deflate_bombs,
    "bodies": attack_slow_and_large_bodies,
    "pings": attack_ping_flood,
    "idle": lambda: attack_idle_connections(ARGS.idle),
    "sessions": lambda: attack_abandoned_sessions(ARGS.sessions),
    "attachments": attack_socketio_attachments,
    "stomp": attack_stomp,
}


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--addr", required=True)
    p.add_argument("--stomp-addr")
    p.add_argument("--pid", required=True, type=int)
    p.add_argument("--only", default="")
    p.add_argument("--idle", type=int, default=2000)
    p.add_argument("--sessions", type=int, default=2000)
    p.add_argument("mode", nargs="?", default="suite")
    p.add_argument("count", nargs="?", type=int, default=5000)
    ARGS = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, ARGS.idle + 512))
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if ARGS.mode == "flood-sockjs":
        print(flood_sockjs(ARGS.count), "sockjs sessions opened")
        return 0
    if ARGS.mode == "flood-engineio":
        print(flood_engineio(ARGS.count), "engine.io sessions opened")
        return 0
    names = [n for n in ARGS.only.split(",") if n] or list(ATTACKS)
    baseline = rss_kib()
    print(f"     server RSS at the start: {baseline // 1024} MiB", flush=True)
    for name in names:
        t0 = time.monotonic()
        try:
            ATTACKS[name]()
        except Exception as e:  # noqa: BLE001 - an attack that crashes is a failure
            check(f"{name}: ran to the end", False, repr(e))
        print(f"     ({name}: {time.monotonic() - t0:.1f} s)", flush=True)
    alive = os.path.exists(f"/proc/{ARGS.pid}")
    check("the server is still running", alive)
    print(f"hostile: {RESULTS['passed']} passed, {RESULTS['failed']} failed", flush=True)
    return 0 if RESULTS["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
