//! What runs on top of an endpoint in the driver: the [`Application`]
//! hook and the [`Deferred`] queue of work that must run outside the
//! driver's lock.

use std::collections::VecDeque;
use std::time::Instant;

use duplex_polling::{Endpoint, Event};

/// Work to run after the service's lock is released: user handlers, which
/// may call back into the service.
#[derive(Default)]
pub struct Deferred(pub(crate) VecDeque<Box<dyn FnOnce() + Send>>);

impl Deferred {
    /// Queues `f`; it runs after the current operation, in order.
    pub fn push(&mut self, f: impl FnOnce() + Send + 'static) {
        self.0.push_back(Box::new(f));
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Deferred {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deferred")
            .field("queued", &self.0.len())
            .finish()
    }
}

/// What runs on top of an endpoint: it gets the endpoint's events (with the
/// endpoint at hand to answer), and may keep timers of its own.
///
/// Called with the service's lock held: do the bookkeeping here and push
/// anything that may call back into the service onto `deferred`.
pub trait Application<E>: Send + 'static {
    /// An event of the endpoint.
    fn on_event(&mut self, endpoint: &mut E, event: Event, now: Instant, deferred: &mut Deferred);

    /// When the application next wants [`Application::handle_timeout`].
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    /// The application's timers are due.
    fn handle_timeout(&mut self, _endpoint: &mut E, _now: Instant, _deferred: &mut Deferred) {}

    /// Called once the endpoint's transmits are written, when its queues
    /// may have room again: the application hands over work it held back
    /// (sends waiting for room) and reads what the endpoint reports outside
    /// its events (Engine.IO's answers to a probe), and returns whether it
    /// did anything, in which case the driver drains the endpoint again.
    fn flush(&mut self, _endpoint: &mut E, _now: Instant, _deferred: &mut Deferred) -> bool {
        false
    }
}

/// The application that sends every message back on its session: the
/// engine.io-protocol suite's server.
#[derive(Clone, Copy, Debug, Default)]
pub struct Echo;

impl<E: Endpoint> Application<E> for Echo {
    fn on_event(&mut self, endpoint: &mut E, event: Event, now: Instant, _: &mut Deferred) {
        if let Event::Message { session, message } = event {
            // A full queue or a closing session: the echo is dropped, as
            // the reference drops sends to a closed socket.
            let _ = endpoint.send(&session, message, now);
        }
    }
}
