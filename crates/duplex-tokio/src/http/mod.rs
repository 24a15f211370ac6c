//! The one HTTP driver: any duplex-polling [`duplex_polling::Endpoint`]
//! (Engine.IO, SockJS, Server-Sent Events) served over hyper, with whole
//! responses, streaming responses and upgraded WebSockets.
//!
//! - `driver.rs`: [`PollingService`]: requests in, answers out, the lock,
//!   the deferred queue and the timer task;
//! - `core.rs`: what the lock guards, and the routing loop of events and
//!   transmits to the requests, streams and WebSockets they name;
//! - `app.rs`: the [`Application`] hook run on the endpoint's events;
//! - `body.rs`: [`HttpBody`], whole or streamed;
//! - `websocket.rs`: running one upgraded WebSocket for an endpoint;
//! - `spawn.rs`: handing each new session to the application's handler;
//! - `util.rs`: the small helpers (body reads bounded in size and time,
//!   plain answers);
//! - `serve.rs`: [`serve_http`], one connection served with HTTP/1.1 or
//!   HTTP/2 (extended CONNECT on).
//!
//! The dialect modules ([`crate::engineio`], [`crate::sockjs`],
//! [`crate::sse`], [`crate::socketio`]) only add what their public API
//! needs on top: an [`Application`] and the handles it gives out.
//!
//! # Concurrency model
//!
//! The endpoint and its application sit behind one mutex, and whichever
//! task has an input (the request's own task, a WebSocket's task, the timer
//! task, an application handle) takes the lock, feeds the machine, routes
//! what it transmits to oneshot and mpsc channels (a WebSocket's to its
//! outbox), and lets go. The lock is
//! held for one sans-IO step only: never across an `.await`, and never
//! across user code. User code (Socket.IO handlers, a SockJS or SSE
//! session's task) is queued on [`Deferred`] or spawned, and runs after the
//! lock is released.
//!
//! The other model in the tree before this driver, one actor task owning
//! the machine with commands sent to it over channels, was dropped: every
//! request and every send cost two channel hops to a single task, that task
//! bound all sessions of a service to one core at a time, and a handle's
//! synchronous operation (Socket.IO's `emit`, `join`) would have had to
//! become async or fire-and-forget. With short critical sections any core
//! can drive the machine, and since no lock is held across a handler, the
//! Socket.IO application can later run its handlers as concurrent tasks
//! (ordered per socket) instead of on the [`Deferred`] queue without
//! touching this driver.

mod app;
mod body;
mod core;
mod driver;
mod macros;
mod serve;
// Sessions handed to a handler task: the SockJS and SSE dialects.
#[cfg(any(feature = "sockjs", feature = "sse"))]
mod spawn;
mod util;
mod websocket;

pub use app::{Application, Deferred, Echo};

pub use body::HttpBody;
#[cfg(any(feature = "sockjs", feature = "sse"))]
pub(crate) use driver::Upgrades;
pub use driver::{PollingService, ResponseBody, WeakPollingService};
/// The driver's tables looked up on every request and WebSocket message
/// (and the Socket.IO application's sockets): their keys are request,
/// session and socket ids the server generated, which a client can only
/// look up.
pub(crate) use duplex_core::FastMap;
#[cfg(any(feature = "sockjs", feature = "sse"))]
pub(crate) use macros::mounted_service_accessors;
pub(crate) use macros::service_via_handle;
pub use serve::{HttpProtocol, HttpServerConfig, serve_http};
#[cfg(any(feature = "sockjs", feature = "sse"))]
pub(crate) use spawn::SessionSpawner;
#[cfg(any(feature = "sockjs", feature = "sse"))]
pub(crate) use util::plain;
pub(crate) use util::{BodyFailure, read_limited};

#[cfg(test)]
mod tests;
