//! The Socket.IO handlers of the conformance contracts:
//! shared/conformance/socketio-suites.md (`conformance_handlers`) and
//! shared/conformance/socketio-recovery.md §2 (`recovery_handlers`).
//!
//! Written once for `duplex conformance-server` and for duplex-tokio's
//! client tests (`tests/socketio_client.rs` and
//! `tests/socketio_client_recovery.rs` include this file by path), so that
//! the tests run against the handlers the conformance server serves.
//! It uses only duplex-tokio's public API, serde_json and tokio.

use std::time::Duration;

use duplex_tokio::socketio::{AckSender, Args, NamespaceHandlers, Socket, Value};

/// How long `please-ack` waits for the client's ack.
const PLEASE_ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// The handlers of shared/conformance/socketio-suites.md, on `/` and `/custom`.
pub(crate) fn conformance_handlers(ns: NamespaceHandlers) -> NamespaceHandlers {
    ns.on_connect(|socket: Socket| {
        let auth = socket.handshake().auth.clone();
        let _ = socket.emit_args("auth", vec![auth]);
    })
    .on("message", |socket: Socket, Args(args): Args| {
        let _ = socket.emit_args("message-back", args);
    })
    .on("message-with-ack", |Args(args): Args, ack: AckSender| {
        let _ = ack.send_args(args);
    })
    .on("server-ack", |socket: Socket, Args(args): Args| {
        // A callback rather than awaiting the ack here: the socket's later
        // events need not wait for the client's answer.
        let back = socket.clone();
        socket.emit_with_ack_callback("please-ack", args, Some(PLEASE_ACK_TIMEOUT), move |reply| {
            if let Ok(reply) = reply {
                let _ = back.emit_args("client-acked", reply);
            }
        });
    })
}

/// The longest `stream` the recovery endpoint runs, in ticks (the contract
/// uses at most 400).
const MAX_STREAM_TICKS: u64 = 10_000;

/// An ack of `{"error": message}`, the contract's answer to nonsense.
fn refuse(ack: AckSender, message: &str) {
    let _ = ack.send(&serde_json::json!({ "error": message }));
}

/// What `stream` asks for.
struct Stream {
    id: String,
    n: u64,
    interval: Duration,
    room: Option<String>,
}

impl Stream {
    fn parse(args: &[Value]) -> Result<Self, &'static str> {
        let spec = args.first().ok_or("no argument")?;
        let id = spec
            .get("id")
            .and_then(Value::as_str)
            .ok_or("id must be a string")?
            .to_owned();
        let n = match spec.get("n") {
            Some(Value::Number(n)) => n.as_u64().filter(|n| (1..=MAX_STREAM_TICKS).contains(n)),
            _ => None,
        }
        .ok_or("n must be an integer from 1 to 10000")?;
        let interval = match spec.get("intervalMs") {
            Some(Value::Number(n)) => n.as_u64().filter(|ms| (1..=10_000).contains(ms)),
            _ => None,
        }
        .map(Duration::from_millis)
        .ok_or("intervalMs must be an integer from 1 to 10000")?;
        let room = match spec.get("room") {
            None | Some(Value::Null) => None,
            Some(Value::String(room)) => Some(room.clone()),
            Some(_) => return Err("room must be a string"),
        };
        Ok(Self {
            id,
            n,
            interval,
            room,
        })
    }

    /// Emits the ticks, then `stream-end`, to the socket (by its id, so
    /// that a restored socket gets the later ones live and the missed ones
    /// replayed) or to the room; it keeps running while the socket is away.
    async fn run(self, socket: Socket) {
        let emit = |event: &str, args: Vec<Value>| {
            let _ = match &self.room {
                Some(room) => socket.within(room).emit_args(event, args).map(|_| ()),
                None => socket.emit_args(event, args),
            };
        };
        let mut at = tokio::time::Instant::now();
        for seq in 0..self.n {
            at += self.interval;
            tokio::time::sleep_until(at).await;
            emit(
                "tick",
                vec![Value::from(self.id.as_str()), Value::from(seq)],
            );
        }
        emit(
            "stream-end",
            vec![Value::from(self.id.as_str()), Value::from(self.n)],
        );
    }
}

/// The handlers of shared/conformance/socketio-recovery.md §2.
pub(crate) fn recovery_handlers(ns: NamespaceHandlers) -> NamespaceHandlers {
    ns.on(
        "join",
        |socket: Socket, Args(args): Args, ack: AckSender| match args
            .first()
            .and_then(Value::as_str)
        {
            Some(room) => {
                socket.join(room);
                let _ = ack.send(&serde_json::json!({ "rooms": socket.rooms() }));
            }
            None => refuse(ack, "room must be a string"),
        },
    )
    .on(
        "set-data",
        |socket: Socket, Args(args): Args, ack: AckSender| match args.into_iter().next() {
            Some(value @ Value::Object(_)) => {
                let _ = ack.send(&socket.set_data(value));
            }
            _ => refuse(ack, "data must be an object"),
        },
    )
    .on("get-data", |socket: Socket, ack: AckSender| {
        let data = socket.data().unwrap_or(Value::Object(Vec::new()));
        let _ = ack.send_args(vec![data]);
    })
    .on("whoami", |socket: Socket, ack: AckSender| {
        let _ = ack.send(&serde_json::json!({
            "id": socket.id().as_str(),
            "rooms": socket.rooms(),
            "recovered": socket.recovered(),
        }));
    })
    .on(
        "stream",
        |socket: Socket, Args(args): Args, ack: AckSender| match Stream::parse(&args) {
            Ok(stream) => {
                let _ = ack.send(&serde_json::json!({ "ok": true }));
                tokio::spawn(stream.run(socket));
            }
            Err(e) => refuse(ack, e),
        },
    )
}
