//! The `/engine.io/` and `/socket.io/` endpoints of `duplex serve` and
//! `duplex conformance-server`, and the Socket.IO handlers of
//! shared/conformance/socketio-suites.md; the conformance server's
//! `/recovery/` (shared/conformance/socketio-recovery.md).

use std::sync::OnceLock;
use std::time::Duration;

use duplex_tokio::engineio::{self, EngineIoConfig, EngineIoService};
use duplex_tokio::polling::ResponseBody;
use duplex_tokio::socketio::{
    AckSender, Args, Event, NamespaceHandlers, Operator, RecoveryConfig, Socket, SocketIo,
    SocketIoConfig, Value,
};
use hyper::body::Incoming;

pub(crate) use crate::socketio_suites::conformance_handlers;
use crate::socketio_suites::recovery_handlers;

/// Which settings the endpoints run with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Settings {
    /// The reference server's defaults (`duplex serve`).
    Reference,
    /// The official suites' settings: ping 300/200, connectTimeout 1000.
    Conformance,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();
static ENGINEIO: OnceLock<EngineIoService> = OnceLock::new();
static SOCKETIO: OnceLock<SocketIo> = OnceLock::new();

/// Chooses the settings; call once before serving.
pub(crate) fn init(settings: Settings) {
    let _ = SETTINGS.set(settings);
}

fn settings() -> Settings {
    *SETTINGS.get().unwrap_or(&Settings::Reference)
}

fn engineio_config() -> EngineIoConfig {
    match settings() {
        Settings::Reference => EngineIoConfig::default(),
        Settings::Conformance => EngineIoConfig {
            ping_interval: Duration::from_millis(300),
            ping_timeout: Duration::from_millis(200),
            max_http_buffer_size: 1_000_000,
            ..EngineIoConfig::default()
        },
    }
}

/// `/engine.io/`: a raw Engine.IO echo endpoint.
pub(crate) async fn engineio(req: http::Request<Incoming>) -> http::Response<ResponseBody> {
    ENGINEIO
        .get_or_init(|| engineio::echo(engineio_config(), "/engine.io"))
        .handle(req)
        .await
}

fn socketio_config() -> SocketIoConfig {
    let mut config = match settings() {
        Settings::Reference => SocketIoConfig::default(),
        Settings::Conformance => SocketIoConfig {
            ping_interval: Duration::from_millis(300),
            ping_timeout: Duration::from_millis(200),
            max_http_buffer_size: 1_000_000,
            connect_timeout: Duration::from_millis(1000),
            ..SocketIoConfig::default()
        },
    };
    crate::cors::apply(&mut config.cors);
    config
}

fn socketio_server() -> &'static SocketIo {
    SOCKETIO.get_or_init(|| {
        SocketIo::builder(socketio_config())
            .namespace("/", conformance_handlers)
            .namespace("/custom", conformance_handlers)
            .build()
    })
}

/// Serves `io` at `/socket.io/` instead of the conformance-only server
/// (`duplex serve` adds the chat's events); call before serving.
pub(crate) fn install(io: SocketIo) {
    let _ = SOCKETIO.set(io);
}

/// How long the transports get to write their closes after a Socket.IO
/// shutdown (a WebSocket's close frame, a parked GET's `1`): the listener
/// stops right after.
const CLOSE_WRITES: Duration = Duration::from_millis(250);

/// Closes every client of the Socket.IO servers in use (`/socket.io/`,
/// `/recovery/`) as Node's `io.close()`: their disconnect handlers run with
/// `server shutting down` (recovery keeps their sessions), their
/// transports close and they reconnect. Waits for the handlers until
/// `deadline`, then a moment for the closes to be written.
pub(crate) async fn shutdown(deadline: std::time::Instant) {
    let servers = [SOCKETIO.get(), RECOVERY.get()];
    for io in servers.into_iter().flatten() {
        match tokio::time::timeout_at(deadline.into(), io.shutdown()).await {
            Ok(closed) => tracing::info!(mount = io.mount(), closed, "Socket.IO clients closed"),
            Err(_) => tracing::warn!(
                mount = io.mount(),
                "Socket.IO clients closed; disconnect handlers still running"
            ),
        }
    }
    let settle = (std::time::Instant::now() + CLOSE_WRITES).min(deadline);
    tokio::time::sleep_until(settle.into()).await;
}

/// `/socket.io/`: the Socket.IO endpoint.
pub(crate) async fn socketio(req: http::Request<Incoming>) -> http::Response<ResponseBody> {
    socketio_server().handle(req).await
}

// ---- connection state recovery (shared/conformance/socketio-recovery.md) --

static RECOVERY: OnceLock<SocketIo> = OnceLock::new();

/// Where the recovery contract's endpoint is mounted.
const RECOVERY_PATH: &str = "/recovery";

/// Whether `path` is the recovery endpoint's: served by
/// `duplex conformance-server` only, so that `duplex serve` stays as it was.
pub(crate) fn is_recovery_path(path: &str) -> bool {
    settings() == Settings::Conformance
        && path
            .strip_prefix(RECOVERY_PATH)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// `/recovery/`: Socket.IO with connection state recovery on, the settings
/// and handlers of shared/conformance/socketio-recovery.md (`/socket.io/`
/// stays byte-exact for the official suites).
pub(crate) async fn recovery(req: http::Request<Incoming>) -> http::Response<ResponseBody> {
    recovery_server().handle(req).await
}

/// The recovery endpoint's server, built at its first use.
fn recovery_server() -> &'static SocketIo {
    RECOVERY.get_or_init(|| {
        let mut config = SocketIoConfig {
            ping_interval: Duration::from_millis(1000),
            ping_timeout: Duration::from_millis(1000),
            max_http_buffer_size: 1_000_000,
            connect_timeout: Duration::from_secs(5),
            connection_state_recovery: Some(RecoveryConfig {
                max_disconnection_duration: Duration::from_secs(10),
                skip_middlewares: true,
                ..RecoveryConfig::default()
            }),
            ..SocketIoConfig::default()
        };
        crate::cors::apply(&mut config.cors);
        SocketIo::builder(config)
            .mount(RECOVERY_PATH)
            .namespace("/", recovery_handlers)
            .build()
    })
}

/// The streams adapter of the recovery endpoint, kept for its life.
static RECOVERY_REDIS: OnceLock<duplex_redis::RedisAdapter> = OnceLock::new();

/// `--recovery-redis URL`: the recovery endpoint joins a cluster on that
/// Redis with the streams adapter (sessions and missed packets in Redis),
/// at once, so that it reads the stream from the start.
pub(crate) fn install_recovery_cluster(url: &str) -> Result<(), ClusterSetupError> {
    let mut config = duplex_redis::RedisAdapterConfig::new(url);
    config.mode = duplex_redis::RedisMode::Streams;
    let adapter =
        duplex_redis::RedisAdapter::attach(recovery_server(), config).map_err(|source| {
            ClusterSetupError::Redis {
                url: url.to_owned(),
                source,
            }
        })?;
    let _ = RECOVERY_REDIS.set(adapter);
    Ok(())
}

// ---- the cluster contract (shared/conformance/socketio-cluster.md) -------

/// This process's `SERVER_ID` in the cluster contract.
static SERVER_ID: OnceLock<String> = OnceLock::new();

/// The Redis adapter of the served Socket.IO server, kept for its life.
static REDIS: OnceLock<duplex_redis::RedisAdapter> = OnceLock::new();

fn server_id() -> Value {
    Value::from(SERVER_ID.get().map(String::as_str).unwrap_or("duplex"))
}

/// A `room` argument: a string, an array of strings, or null (none).
fn rooms_arg(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect(),
        // Node's rooms may be numbers; the adapter names them by their text.
        Some(Value::Number(n)) => vec![n.to_string()],
        _ => Vec::new(),
    }
}

/// Whose sockets a contract event selects before its room arguments.
#[derive(Clone, Copy)]
enum Base {
    /// The namespace's (`nsp`).
    Namespace,
    /// This server's sockets of the namespace (`nsp.local`).
    Local,
    /// The namespace's but the sender's (`socket.broadcast`).
    Others,
}

/// What a contract event's first `room_args` arguments select from `base`
/// (the rooms to send to, then the rooms to leave out: Node's
/// `in(rooms).except(except)`), and the arguments after them.
fn select<'a>(
    socket: &Socket,
    base: Base,
    room_args: usize,
    args: &'a [Value],
) -> (Operator, &'a [Value]) {
    let mut op = match base {
        Base::Namespace => socket.io().of(socket.namespace()),
        Base::Local => socket.io().of(socket.namespace()).local(),
        Base::Others => socket.broadcast(),
    };
    let (named, rest) = args.split_at(room_args.min(args.len()));
    let mut named = named.iter();
    for room in rooms_arg(named.next()) {
        op = op.to(&room);
    }
    for room in rooms_arg(named.next()) {
        op = op.except(&room);
    }
    (op, rest)
}

/// The handler of a contract event that emits its payload (the argument
/// after its `room_args` room arguments) as `event`, with this server's
/// id, to what they select from `base`, and acks `"ok"`.
fn broadcast(
    base: Base,
    room_args: usize,
    event: &'static str,
) -> impl Fn(Socket, Args, Option<AckSender>) + Send + Sync + 'static {
    move |socket: Socket, Args(args): Args, ack: Option<AckSender>| {
        let (op, rest) = select(&socket, base, room_args, &args);
        let payload = rest.first().cloned().unwrap_or(Value::Null);
        let _ = op.emit_args(event, vec![payload, server_id()]);
        ok(ack);
    }
}

fn ok(ack: Option<AckSender>) {
    reply(ack, Value::from("ok"));
}

/// Acks with `value`, if the client asked for an ack.
fn reply(ack: Option<AckSender>, value: Value) {
    if let Some(ack) = ack {
        let _ = ack.send_args(vec![value]);
    }
}

/// The contract's `{"error": message}`.
fn error_value(message: &str) -> Value {
    Value::Object(vec![("error".to_owned(), Value::from(message))])
}

/// The contract's answer to a request for acks: `{"err", "responses"}`.
fn responses_value(err: Value, responses: Vec<Value>) -> Value {
    Value::Object(vec![
        ("err".to_owned(), err),
        ("responses".to_owned(), Value::Array(responses)),
    ])
}

/// A fetched socket as the contract shows it: id, rooms, data and auth.
fn remote_socket_value(s: duplex_tokio::socketio::RemoteSocket) -> Value {
    let auth = s.auth().cloned().unwrap_or(Value::Null);
    let rooms = s.rooms.iter().map(|r| Value::from(r.as_str())).collect();
    Value::Object(vec![
        ("id".to_owned(), Value::from(s.id.as_str())),
        ("rooms".to_owned(), Value::Array(rooms)),
        ("data".to_owned(), s.data),
        ("auth".to_owned(), auth),
    ])
}

/// The handlers of shared/conformance/socketio-cluster.md, on `/` and
/// `/chat`; an event outside the contract is acked `{"error"}`.
pub(crate) fn cluster_handlers(ns: NamespaceHandlers) -> NamespaceHandlers {
    ns.on_connect(|socket: Socket| {
        let name = socket
            .handshake()
            .auth
            .get("name")
            .cloned()
            .unwrap_or(Value::Null);
        let data = Value::Object(vec![("name".to_owned(), name)]);
        socket
            .extensions()
            .insert(duplex_tokio::socketio::SocketData(data));
    })
    .on(
        "fetch-sockets",
        |socket: Socket, Args(args): Args, ack: Option<AckSender>| {
            let (op, _) = select(&socket, Base::Namespace, 2, &args);
            tokio::spawn(async move {
                let value = match op.fetch_sockets().await {
                    Ok(sockets) => {
                        Value::Array(sockets.into_iter().map(remote_socket_value).collect())
                    }
                    Err(e) => error_value(&e.to_string()),
                };
                reply(ack, value);
            });
        },
    )
    .on(
        "all-rooms",
        |socket: Socket, _: Args, ack: Option<AckSender>| {
            let Some(io) = SOCKETIO.get().cloned() else {
                return;
            };
            let namespace = socket.namespace().to_owned();
            tokio::spawn(async move {
                let value = match io.all_rooms(&namespace).await {
                    Ok(rooms) => {
                        Value::Array(rooms.iter().map(|r| Value::from(r.as_str())).collect())
                    }
                    Err(e) => error_value(&e.to_string()),
                };
                reply(ack, value);
            });
        },
    )
    .on(
        "sse",
        |socket: Socket, Args(args): Args, ack: Option<AckSender>| {
            let payload = args.into_iter().next().unwrap_or(Value::Null);
            if let Some(io) = SOCKETIO.get() {
                io.server_side_emit(socket.namespace(), "sse", vec![payload, server_id()]);
            }
            ok(ack);
        },
    )
    .on(
        "sse-ack",
        |socket: Socket, Args(args): Args, ack: Option<AckSender>| {
            let Some(io) = SOCKETIO.get().cloned() else {
                return;
            };
            let payload = args.into_iter().next().unwrap_or(Value::Null);
            let namespace = socket.namespace().to_owned();
            tokio::spawn(async move {
                let value = match io
                    .server_side_emit_with_ack(&namespace, "sse-ack", vec![payload, server_id()])
                    .await
                {
                    Ok(responses) => responses_value(Value::Null, responses),
                    Err(e) => responses_value(Value::from(e.to_string().as_str()), Vec::new()),
                };
                reply(ack, value);
            });
        },
    )
    .on(
        "ack-broadcast",
        |socket: Socket, Args(args): Args, ack: Option<AckSender>| {
            let (op, rest) = select(&socket, Base::Namespace, 1, &args);
            let payload = rest.first().cloned().unwrap_or(Value::Null);
            let ms = match rest.get(1) {
                Some(Value::Number(n)) => n.as_u64().unwrap_or(5000),
                _ => 5000,
            };
            tokio::spawn(async move {
                let result = op
                    .emit_with_acks(
                        "ack-req",
                        vec![payload, server_id()],
                        Duration::from_millis(ms),
                    )
                    .await;
                let value = match result {
                    Ok(responses) => responses_value(Value::Null, responses),
                    // Node's text for a broadcast whose acks did not all come.
                    Err((duplex_tokio::Error::Timeout, partial)) => {
                        responses_value(Value::from("operation has timed out"), partial)
                    }
                    Err((e, partial)) => {
                        responses_value(Value::from(e.to_string().as_str()), partial)
                    }
                };
                reply(ack, value);
            });
        },
    )
    .on(
        "whoami",
        |socket: Socket, _: Args, ack: Option<AckSender>| {
            let value = Value::Object(vec![
                ("server".to_owned(), server_id()),
                ("id".to_owned(), Value::from(socket.id().as_str())),
                ("nsp".to_owned(), Value::from(socket.namespace())),
            ]);
            reply(ack, value);
        },
    )
    .on(
        "join",
        |socket: Socket, Args(args): Args, ack: Option<AckSender>| {
            let rooms = rooms_arg(args.first());
            socket.join_all(&rooms.iter().map(String::as_str).collect::<Vec<_>>());
            ok(ack);
        },
    )
    .on(
        "leave",
        |socket: Socket, Args(args): Args, ack: Option<AckSender>| {
            for room in rooms_arg(args.first()) {
                socket.leave(&room);
            }
            ok(ack);
        },
    )
    .on("to-all", broadcast(Base::Namespace, 0, "all-msg"))
    .on("to-room", broadcast(Base::Namespace, 1, "room-msg"))
    .on("to-room-except", broadcast(Base::Namespace, 2, "room-msg"))
    .on("socket-to-room", broadcast(Base::Others, 1, "room-msg"))
    .on("socket-broadcast", broadcast(Base::Others, 0, "all-msg"))
    .on("local-to-all", broadcast(Base::Local, 0, "local-msg"))
    .on("local-to-room", broadcast(Base::Local, 1, "local-msg"))
    .on(
        "sockets-join",
        |socket: Socket, Args(args): Args, ack: Option<AckSender>| {
            let (op, rest) = select(&socket, Base::Namespace, 2, &args);
            let new = rooms_arg(rest.first());
            op.sockets_join(&new.iter().map(String::as_str).collect::<Vec<_>>());
            ok(ack);
        },
    )
    .on(
        "sockets-leave",
        |socket: Socket, Args(args): Args, ack: Option<AckSender>| {
            let (op, rest) = select(&socket, Base::Namespace, 2, &args);
            let old = rooms_arg(rest.first());
            op.sockets_leave(&old.iter().map(String::as_str).collect::<Vec<_>>());
            ok(ack);
        },
    )
    .on(
        "disconnect-sockets",
        |socket: Socket, Args(args): Args, ack: Option<AckSender>| {
            let (op, rest) = select(&socket, Base::Namespace, 2, &args);
            let close = matches!(rest.first(), Some(Value::Bool(true)));
            // Acked before: the sender may be among the disconnected.
            ok(ack);
            op.disconnect_sockets_with(close);
        },
    )
    .on_any(|Event(name): Event, ack: Option<AckSender>| {
        let message = format!("{name}: not supported by duplex yet");
        reply(ack, error_value(&message));
    })
}

/// The server-side listeners of the cluster contract on `namespace`.
fn server_side_handlers(ns: NamespaceHandlers, namespace: &'static str) -> NamespaceHandlers {
    ns.on_server_side("sse", move |args, _| {
        let Some(io) = SOCKETIO.get() else {
            return;
        };
        let mut args = args.into_iter();
        let payload = args.next().unwrap_or(Value::Null);
        let from = args.next().unwrap_or(Value::Null);
        let _ = io
            .of(namespace)
            .local()
            .emit_args("sse-got", vec![payload, from, server_id()]);
    })
    .on_server_side("sse-ack", |args, reply| {
        let mut args = args.into_iter();
        let payload = args.next().unwrap_or(Value::Null);
        let from = args.next().unwrap_or(Value::Null);
        if let Some(reply) = reply {
            reply.send(Value::Object(vec![
                ("server".to_owned(), server_id()),
                ("from".to_owned(), from),
                ("payload".to_owned(), payload),
            ]));
        }
    })
}

/// Serves the cluster contract's namespaces `/` and `/chat` at
/// `/socket.io/`, in the cluster on the Redis at `url`. Call before
/// serving, inside the runtime.
pub(crate) fn install_cluster(
    url: &str,
    mode: duplex_redis::RedisMode,
    addr: std::net::SocketAddr,
) -> Result<(), ClusterSetupError> {
    let _ = SERVER_ID.set(format!("duplex-{}-{}", std::process::id(), addr.port()));
    let mut config = SocketIoConfig::default();
    crate::cors::apply(&mut config.cors);
    let io = SocketIo::builder(config)
        .namespace("/", |ns| server_side_handlers(cluster_handlers(ns), "/"))
        .namespace("/chat", |ns| {
            server_side_handlers(cluster_handlers(ns), "/chat")
        })
        .build();
    attach_redis(&io, url, &["/", "/chat"], mode)?;
    install(io);
    Ok(())
}

/// `--redis-subscription-mode`: Node's names of the sharded adapter's
/// `subscriptionMode`.
pub(crate) fn parse_subscription_mode(
    s: &str,
) -> Result<duplex_redis::SubscriptionMode, ClusterSetupError> {
    use duplex_redis::SubscriptionMode;
    match s {
        "static" => Ok(SubscriptionMode::Static),
        "dynamic" => Ok(SubscriptionMode::Dynamic),
        "dynamic-private" => Ok(SubscriptionMode::DynamicPrivate),
        other => Err(ClusterSetupError::SubscriptionMode(other.to_owned())),
    }
}

/// Why `--redis` could not join the cluster.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClusterSetupError {
    /// Not one of Node's subscription modes.
    #[error("unknown subscription mode {0:?} (static, dynamic or dynamic-private)")]
    SubscriptionMode(String),
    /// The Redis adapter refused the URL or could not start.
    #[error("--redis {url}: {source}")]
    Redis {
        /// The `--redis` value.
        url: String,
        /// What duplex-redis said.
        source: duplex_redis::Error,
    },
}

/// Joins `io`'s `namespaces` to the cluster on the Redis at `url`.
pub(crate) fn attach_redis(
    io: &SocketIo,
    url: &str,
    namespaces: &[&str],
    mode: duplex_redis::RedisMode,
) -> Result<(), ClusterSetupError> {
    let mut config = duplex_redis::RedisAdapterConfig::new(url);
    config.mode = mode;
    config.namespaces = namespaces.iter().map(|n| (*n).to_owned()).collect();
    let adapter = duplex_redis::RedisAdapter::attach(io, config).map_err(|source| {
        ClusterSetupError::Redis {
            url: url.to_owned(),
            source,
        }
    })?;
    let _ = REDIS.set(adapter);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use duplex_tokio::socketio::client::{ClientConfig, ClientEvent, ClientSocket, Manager};

    const WAIT: Duration = Duration::from_secs(5);

    /// The cluster contract's handlers on `/`, alone (no Redis), served on
    /// loopback.
    async fn serve() -> String {
        let io = SocketIo::builder(SocketIoConfig::default())
            .namespace("/", cluster_handlers)
            .build();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tcp), io.clone())
                        .with_upgrades(),
                );
            }
        });
        format!("http://{addr}")
    }

    async fn client(url: &str) -> (Manager, ClientSocket) {
        let m = Manager::new(ClientConfig::new(url));
        let mut s = m.socket("/", None);
        match tokio::time::timeout(WAIT, s.next_event()).await {
            Ok(Some(ClientEvent::Connect { .. })) => {}
            other => panic!("expected a connect, got {other:?}"),
        }
        (m, s)
    }

    /// Emits `event` with `args` and waits for its ack.
    async fn ask(s: &ClientSocket, event: &str, args: Vec<Value>) -> Vec<Value> {
        s.emit_with_ack(event, args, Some(WAIT)).await.unwrap()
    }

    /// The arguments of the next `name` within `wait`, if one comes.
    async fn event(s: &mut ClientSocket, name: &str, wait: Duration) -> Option<Vec<Value>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, s.next_event()).await {
                Ok(Some(ClientEvent::Event { name: n, args, .. })) if n == name => {
                    return Some(args);
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return None,
            }
        }
    }

    fn values(items: &[&str]) -> Vec<Value> {
        items.iter().map(|i| Value::from(*i)).collect()
    }

    /// Each broadcast event of the contract takes its rooms, its excepted
    /// rooms and its payload from the right arguments, and starts from the
    /// right sockets (the namespace, this server's, or all but the sender).
    #[tokio::test]
    async fn cluster_events_select_their_rooms_exceptions_and_payload() {
        let url = serve().await;
        let (_ma, mut a) = client(&url).await;
        let (_mb, mut b) = client(&url).await;
        let (_mc, mut c) = client(&url).await;
        assert_eq!(ask(&b, "join", values(&["r1"])).await, values(&["ok"]));
        ask(&c, "join", vec![Value::Array(values(&["r1", "r2"]))]).await;
        let quiet = Duration::from_millis(300);

        // In r1 but not r2: b only; the sender is not in r1.
        ask(&a, "to-room-except", values(&["r1", "r2", "p"])).await;
        assert_eq!(
            event(&mut b, "room-msg", WAIT).await,
            Some(values(&["p", "duplex"]))
        );
        assert_eq!(event(&mut c, "room-msg", quiet).await, None);
        assert_eq!(event(&mut a, "room-msg", quiet).await, None);

        // From b to r1: c, never the sender itself.
        ask(&b, "socket-to-room", values(&["r1", "q"])).await;
        assert_eq!(
            event(&mut c, "room-msg", WAIT).await,
            Some(values(&["q", "duplex"]))
        );
        assert_eq!(event(&mut b, "room-msg", quiet).await, None);

        // This server's sockets, the sender included.
        ask(&a, "local-to-all", values(&["x"])).await;
        for s in [&mut a, &mut b, &mut c] {
            assert_eq!(
                event(s, "local-msg", WAIT).await,
                Some(values(&["x", "duplex"]))
            );
        }
        ask(&a, "local-to-room", values(&["r2", "y"])).await;
        assert_eq!(
            event(&mut c, "local-msg", WAIT).await,
            Some(values(&["y", "duplex"]))
        );
        assert_eq!(event(&mut b, "local-msg", quiet).await, None);

        // fetchSockets in r1 except r2: b alone.
        let found = ask(&a, "fetch-sockets", values(&["r1", "r2"])).await;
        let Some(Value::Array(found)) = found.first() else {
            panic!("fetch-sockets answered {found:?}");
        };
        assert_eq!(found.len(), 1, "{found:?}");
        let rooms = found[0].get("rooms").cloned();
        assert_eq!(
            rooms.map(|r| r.to_json().to_string().contains("r1")),
            Some(true)
        );

        // An event outside the contract is acked with an error.
        let refused = ask(&a, "nonsense", vec![]).await;
        assert!(refused[0].get("error").is_some(), "{refused:?}");
    }
}
