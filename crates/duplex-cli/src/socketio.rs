//! The `/engine.io/` and `/socket.io/` endpoints of `duplex serve` and
//! `duplex conformance-server`, and the Socket.IO handlers of
//! shared/conformance/socketio-suites.md.

use std::sync::OnceLock;
use std::time::Duration;

use duplex_tokio::engineio::{self, EngineIoConfig, EngineIoService};
use duplex_tokio::polling::ResponseBody;
use duplex_tokio::socketio::{NamespaceHandlers, SocketIo, SocketIoConfig};
use hyper::body::Incoming;

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

/// How long `please-ack` waits for the client's ack.
const PLEASE_ACK_TIMEOUT: Duration = Duration::from_secs(10);

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
    match settings() {
        Settings::Reference => SocketIoConfig::default(),
        Settings::Conformance => SocketIoConfig {
            ping_interval: Duration::from_millis(300),
            ping_timeout: Duration::from_millis(200),
            max_http_buffer_size: 1_000_000,
            connect_timeout: Duration::from_millis(1000),
            ..SocketIoConfig::default()
        },
    }
}

/// The handlers of shared/conformance/socketio-suites.md, on `/` and `/custom`.
pub(crate) fn conformance_handlers(ns: NamespaceHandlers) -> NamespaceHandlers {
    ns.on_connect(|socket| {
        let auth = socket.handshake().auth.clone();
        let _ = socket.emit("auth", vec![auth]);
    })
    .on("message", |socket, args, _| {
        let _ = socket.emit("message-back", args);
    })
    .on("message-with-ack", |_, args, ack| {
        if let Some(ack) = ack {
            let _ = ack.send(args);
        }
    })
    .on("server-ack", |socket, args, _| {
        let back = socket.clone();
        socket.emit_with_ack("please-ack", args, Some(PLEASE_ACK_TIMEOUT), move |reply| {
            if let Ok(reply) = reply {
                let _ = back.emit("client-acked", reply);
            }
        });
    })
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

/// `/socket.io/`: the Socket.IO endpoint.
pub(crate) async fn socketio(req: http::Request<Incoming>) -> http::Response<ResponseBody> {
    socketio_server().handle(req).await
}
