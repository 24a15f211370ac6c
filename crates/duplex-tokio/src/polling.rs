//! [`PollingService`]: any `duplex-polling` [`duplex_polling::Endpoint`]
//! served over hyper, with an [`Application`] on top. The driver itself
//! lives in `crate::http` (shared by Engine.IO, SockJS and Server-Sent
//! Events); this module keeps its public names where they always were.
//!
//! The service is plumbing only. It turns each HTTP request into a
//! [`duplex_polling::Request`] with a fresh [`duplex_polling::RequestId`],
//! hands WebSocket upgrades to [`crate::upgrade`] and their messages to
//! the endpoint, parks each request until the endpoint answers it (a
//! long-poll waits there for data, a stream is fed chunk by chunk), runs
//! one timer task that sleeps until `poll_timeout()` and then calls
//! `handle_timeout(now)`, and passes the endpoint's events to an
//! [`Application`]. Every protocol decision (status codes, heartbeats, the
//! upgrade, what a second GET means) is the endpoint's.
//!
//! Application code that may call back into the service (user handlers) is
//! not run under the service's lock: the application queues it on
//! [`Deferred`], and the service runs the queue after releasing the lock,
//! one closure at a time, in order, whatever task happens to be first.

pub use crate::http::{
    Application, Deferred, Echo, HttpBody, PollingService, ResponseBody, WeakPollingService,
};
