"""PyPI stomp.py against duplex's STOMP server over TCP.

    python stomppy_interop.py 127.0.0.1:PORT

For STOMP 1.0, 1.1 and 1.2: connect and the negotiated version, subscribe
and send with receipts, header escaping (1.1/1.2) and raw colons (1.0),
NUL octets in bodies, acknowledgement (client-individual ACK and NACK with
redelivery where the version has NACK), and ERROR for a broken frame; then
heart-beats every second keeping an idle 1.2 connection alive. Prints
    stomp.py: N passed, N failed
and exits non-zero if a check failed.
"""
import sys
import threading
import time
import uuid

import stomp

STEP = 15.0
host, port = sys.argv[1].rsplit(":", 1)
target = [(host, int(port))]
passed = 0
failed = 0


class Collector(stomp.ConnectionListener):
    def __init__(self):
        self.cond = threading.Condition()
        self.connected = None
        self.messages = []
        self.receipts = set()
        self.errors = []
        self.heartbeats = 0
        self.disconnected = False

    def _note(self, f):
        with self.cond:
            f()
            self.cond.notify_all()

    def on_connected(self, frame):
        self._note(lambda: setattr(self, "connected", frame))

    def on_message(self, frame):
        self._note(lambda: self.messages.append(frame))

    def on_receipt(self, frame):
        self._note(lambda: self.receipts.add(frame.headers.get("receipt-id")))

    def on_error(self, frame):
        self._note(lambda: self.errors.append(frame))

    def on_heartbeat(self):
        def bump():
            self.heartbeats += 1
        self._note(bump)

    def on_disconnected(self):
        self._note(lambda: setattr(self, "disconnected", True))

    def wait(self, predicate, what):
        deadline = time.time() + STEP
        with self.cond:
            while not predicate():
                left = deadline - time.time()
                if left <= 0:
                    raise AssertionError("timed out waiting for " + what)
                self.cond.wait(left)

    def message(self, index):
        self.wait(lambda: len(self.messages) > index, "message %d" % index)
        return self.messages[index]

    def receipt(self, rid):
        self.wait(lambda: rid in self.receipts, "receipt " + rid)


def connect(version, heartbeats=(0, 0), auto_decode=True):
    if version == "1.0":
        conn = stomp.Connection10(target, auto_decode=auto_decode)
    elif version == "1.1":
        conn = stomp.Connection11(target, heartbeats=heartbeats, auto_decode=auto_decode)
    else:
        conn = stomp.Connection12(target, heartbeats=heartbeats, auto_decode=auto_decode)
    listener = Collector()
    conn.set_listener("collector", listener)
    conn.connect("guest", "guest", wait=True)
    listener.wait(lambda: listener.connected is not None, "CONNECTED")
    return conn, listener


def check(name, fn):
    global passed, failed
    try:
        fn()
        passed += 1
        print("ok    " + name)
    except Exception as e:  # noqa: BLE001 - every failure is reported
        failed += 1
        print("FAIL  %s: %r" % (name, e))
    sys.stdout.flush()


def subscribe(conn, listener, destination, ack="auto"):
    rid = "sub-" + uuid.uuid4().hex
    conn.subscribe(destination, id=uuid.uuid4().hex, ack=ack, headers={"receipt": rid})
    listener.receipt(rid)


def close(conn):
    try:
        conn.disconnect()
    except Exception:  # noqa: BLE001 - the server may have closed already
        pass


def versions():
    for version in ("1.0", "1.1", "1.2"):
        tag = version.replace(".", "") + "-" + uuid.uuid4().hex[:8]

        def connect_and_version():
            conn, listener = connect(version)
            got = listener.connected.headers.get("version")
            assert got == version, "negotiated %s" % got
            assert listener.connected.headers.get("server", "").startswith("duplex"), "server header"
            close(conn)

        def send_receive():
            conn, listener = connect(version)
            dest = "/queue/stomppy-" + tag
            subscribe(conn, listener, dest)
            for i in range(20):
                conn.send(dest, "message %d" % i, headers={"receipt": "r%d" % i})
            for i in range(20):
                listener.receipt("r%d" % i)
                m = listener.message(i)
                assert m.body == "message %d" % i, m.body
                assert m.headers.get("destination") == dest, m.headers
            close(conn)

        def header_values():
            conn, listener = connect(version)
            dest = "/queue/stomppy-h-" + tag
            subscribe(conn, listener, dest)
            if version == "1.0":
                # 1.0 has no escapes: a colon in a value is just a colon.
                conn.send(dest, "x", headers={"x-value": "a:b:c"})
                expected = "a:b:c"
            else:
                # stomp.py escapes on the way out and unescapes on the way
                # in: the value comes back as it was.
                expected = "colon:line\nback\\slash"
                if version == "1.2":
                    expected += "\rcr"
                conn.send(dest, "x", headers={"x-value": expected})
            m = listener.message(0)
            assert m.headers.get("x-value") == expected, repr(m.headers.get("x-value"))
            close(conn)

        def nul_in_body():
            conn, listener = connect(version, auto_decode=False)
            dest = "/queue/stomppy-nul-" + tag
            subscribe(conn, listener, dest)
            body = b"\x00a\x00" + bytes(range(256)) + b"\x00"
            conn.send(dest, body)
            m = listener.message(0)
            assert m.body == body, repr(m.body[:40])
            close(conn)

        def acknowledgement():
            conn, listener = connect(version)
            dest = "/queue/stomppy-ack-" + tag
            sub_id = "s-" + tag
            rid = "sub-" + tag
            conn.subscribe(dest, id=sub_id, ack="client-individual" if version != "1.0" else "client",
                           headers={"receipt": rid})
            listener.receipt(rid)
            conn.send(dest, "one")
            conn.send(dest, "two")
            one = listener.message(0)
            two = listener.message(1)
            assert (one.body, two.body) == ("one", "two"), (one.body, two.body)
            if version == "1.0":
                conn.ack(two.headers["message-id"], receipt="acked")
                listener.receipt("acked")
            elif version == "1.1":
                conn.ack(one.headers["message-id"], sub_id)
                conn.nack(two.headers["message-id"], sub_id)
                again = listener.message(2)
                assert again.body == "two" and again.headers.get("redelivered") == "true", again.headers
                conn.ack(again.headers["message-id"], sub_id, receipt="acked")
                listener.receipt("acked")
            else:
                conn.ack(one.headers["ack"])
                conn.nack(two.headers["ack"])
                again = listener.message(2)
                assert again.body == "two" and again.headers.get("redelivered") == "true", again.headers
                conn.ack(again.headers["ack"], receipt="acked")
                listener.receipt("acked")
            close(conn)
            # Nothing unacknowledged is left to come back.
            conn, listener = connect(version)
            subscribe(conn, listener, dest)
            time.sleep(0.3)
            assert not listener.messages, [m.body for m in listener.messages]
            close(conn)

        def error_for_a_broken_frame():
            conn, listener = connect(version)
            conn.send_frame("SEND", {"receipt": "bad"}, "no destination")
            listener.wait(lambda: listener.errors, "ERROR")
            err = listener.errors[0]
            assert err.headers.get("message"), err.headers
            assert err.headers.get("receipt-id") == "bad", err.headers
            listener.wait(lambda: listener.disconnected, "the server to close")

        check("STOMP %s: connect, version and server headers" % version, connect_and_version)
        check("STOMP %s: subscribe, send, receipts, order" % version, send_receive)
        check("STOMP %s: header values (escaping)" % version, header_values)
        check("STOMP %s: NUL octets in a body" % version, nul_in_body)
        check("STOMP %s: acknowledgement" % version, acknowledgement)
        check("STOMP %s: ERROR with receipt-id, then close" % version, error_for_a_broken_frame)


def heart_beats():
    conn, listener = connect("1.2", heartbeats=(1000, 1000))
    assert listener.connected.headers.get("heart-beat") == "1000,1000", listener.connected.headers
    time.sleep(4)
    assert listener.heartbeats >= 2, "%d heart-beats received" % listener.heartbeats
    assert not listener.disconnected, "dropped while idle"
    rid = "alive-" + uuid.uuid4().hex
    conn.send("/queue/stomppy-hb", "x", headers={"receipt": rid})
    listener.receipt(rid)
    close(conn)


versions()
check("heart-beats every second keep an idle connection alive (both ways)", heart_beats)
print("stomp.py: %d passed, %d failed" % (passed, failed))
sys.exit(0 if failed == 0 else 1)
