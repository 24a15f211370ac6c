//! The `/engine.io/` and `/socket.io/` endpoints of `duplex serve` and
//! `duplex conformance-server`, and the Socket.IO handlers of
//! shared/conformance/socketio-suites.md.

use std::sync::OnceLock;
use std::time::Duration;

use duplex_tokio::engineio::{self, EngineIoConfig, EngineIoService};
use duplex_tokio::polling::ResponseBody;
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
