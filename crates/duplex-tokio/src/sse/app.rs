//! The Server-Sent Events [`Application`] on the HTTP driver: it tells
//! each session's handle when the session closes, and hands new sessions
//! to the service (outside the driver's lock) to wrap for the handler.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use duplex_polling::{CloseReason, Event, OpenInfo, SessionId, SseServer};
use tokio::sync::oneshot;

use crate::http::{Application, Deferred, PollingService};

/// The driver serving a Server-Sent Events endpoint.
pub(crate) type Driver = PollingService<SseServer, SseApp>;

/// Called outside the driver's lock for each new session, with the
/// receiver that learns why it closed.
pub(crate) type OnOpen =
    Arc<dyn Fn(SessionId, OpenInfo, oneshot::Receiver<CloseReason>) + Send + Sync>;

/// The Server-Sent Events application: who to tell when a session closes.
#[derive(Default)]
pub(crate) struct SseApp {
    sessions: HashMap<SessionId, oneshot::Sender<CloseReason>>,
    on_open: Option<OnOpen>,
}

impl SseApp {
    /// Sets what runs for each new session (once the driver exists, as
    /// sessions hold a handle to it).
    pub(crate) fn set_on_open(&mut self, on_open: OnOpen) {
        self.on_open = Some(on_open);
    }

    /// The sessions open, for closing them all.
    pub(crate) fn open_sessions(&self) -> Vec<SessionId> {
        self.sessions.keys().cloned().collect()
    }
}

impl Application<SseServer> for SseApp {
    fn on_event(&mut self, _: &mut SseServer, event: Event, _: Instant, deferred: &mut Deferred) {
        match event {
            Event::Opened { session, info } => {
                let Some(on_open) = self.on_open.clone() else {
                    return;
                };
                let (tx, rx) = oneshot::channel();
                self.sessions.insert(session.clone(), tx);
                // The handler is user code: outside the lock.
                deferred.push(move || on_open(session, info, rx));
            }
            Event::Closed { session, reason } => {
                if let Some(tx) = self.sessions.remove(&session) {
                    let _ = tx.send(reason);
                }
            }
            // The dialect has no client-to-server messages.
            Event::Message { .. } => {}
        }
    }
}
