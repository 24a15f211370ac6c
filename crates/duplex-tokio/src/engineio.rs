//! A raw Engine.IO endpoint (no Socket.IO on top): duplex-polling's
//! [`EngineIoServer`] (the HTTP binding of duplex-engineio's server session
//! machine) served over hyper by [`PollingService`].
//!
//! ```no_run
//! use duplex_tokio::engineio::{self, EngineIoConfig};
//!
//! # async fn demo() -> std::io::Result<()> {
//! // An echo endpoint at /engine.io/, as the engine.io-protocol suite expects.
//! let service = engineio::echo(EngineIoConfig::default(), "/engine.io");
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! loop {
//!     let (tcp, _) = listener.accept().await?;
//!     let service = service.clone();
//!     tokio::spawn(
//!         hyper::server::conn::http1::Builder::new()
//!             .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
//!             .with_upgrades(),
//!     );
//! }
//! # }
//! ```
//!
//! An application of its own implements [`Application`] for
//! `EngineIoServer`: it sees every [`duplex_polling::Event`] (session
//! opened, message, closed) with the machine at hand to `send` or `close`.

pub use duplex_polling::{EngineIoConfig, EngineIoServer};

use crate::polling::{Application, Echo, PollingService};

/// An Engine.IO endpoint running application `A`.
pub type EngineIoService<A = Echo> = PollingService<EngineIoServer, A>;

/// An Engine.IO endpoint with `config`, mounted at `mount`, running `app`.
pub fn service<A: Application<EngineIoServer>>(
    config: EngineIoConfig,
    app: A,
    mount: &str,
) -> EngineIoService<A> {
    PollingService::new(EngineIoServer::new(config), app, mount)
}

/// An Engine.IO endpoint that sends every message back on its session
/// (text as text, binary as binary).
pub fn echo(config: EngineIoConfig, mount: &str) -> EngineIoService<Echo> {
    service(config, Echo, mount)
}
