//! The SockJS [`Application`] on the HTTP driver: it keeps, per session,
//! the inbox of the application's socket and the sends waiting for room
//! in the session's queue. Sockets are made by the service (see
//! `service.rs`) from the [`Opened`] this hands out.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use duplex_polling::{CloseReason, Event, Message, OpenInfo, SessionId, SockJsServer};
use tokio::sync::{mpsc, oneshot};

use super::error::SockJsError;
use crate::http::{Application, Deferred, PollingService};

/// The driver serving a SockJS endpoint.
pub(crate) type Driver = PollingService<SockJsServer, SockJsApp>;

/// Messages received on one session waiting for the application; past it
/// the application is too slow and the session is closed.
const INBOX: usize = 1024;

/// A new session, for the service to wrap in a socket and hand to the
/// application's handler.
pub(crate) struct Opened {
    pub(crate) session: SessionId,
    pub(crate) info: OpenInfo,
    pub(crate) incoming: mpsc::Receiver<Message>,
    pub(crate) closed: Arc<OnceLock<CloseReason>>,
}

/// Called outside the driver's lock for each new session.
pub(crate) type OnOpen = Arc<dyn Fn(Opened) + Send + Sync>;

type Reply = oneshot::Sender<Result<(), SockJsError>>;

/// One session as the application keeps it for its socket.
struct SessionSlot {
    inbox: mpsc::Sender<Message>,
    closed: Arc<OnceLock<CloseReason>>,
    /// Sends waiting for room in the session's queue, oldest first.
    pending: VecDeque<(Message, Reply)>,
}

/// The SockJS application: sessions' inboxes and waiting sends.
#[derive(Default)]
pub(crate) struct SockJsApp {
    sessions: HashMap<SessionId, SessionSlot>,
    /// Sessions with sends waiting for queue room.
    waiting: HashSet<SessionId>,
    on_open: Option<OnOpen>,
}

impl SockJsApp {
    /// Sets what runs for each new session (once the driver exists, as
    /// sockets hold a handle to it).
    pub(crate) fn set_on_open(&mut self, on_open: OnOpen) {
        self.on_open = Some(on_open);
    }

    /// Queues `message` behind the session's waiting sends; the receiver
    /// answers once it is in the session's queue (or refused).
    pub(crate) fn queue_send(
        &mut self,
        session: &SessionId,
        message: Message,
    ) -> Result<oneshot::Receiver<Result<(), SockJsError>>, SockJsError> {
        let slot = self.sessions.get_mut(session).ok_or(SockJsError::Closed)?;
        let (reply, rx) = oneshot::channel();
        slot.pending.push_back((message, reply));
        self.waiting.insert(session.clone());
        Ok(rx)
    }

    /// The sessions open, for closing them all.
    pub(crate) fn open_sessions(&self) -> Vec<SessionId> {
        self.sessions.keys().cloned().collect()
    }
}

impl Application<SockJsServer> for SockJsApp {
    fn on_event(
        &mut self,
        server: &mut SockJsServer,
        event: Event,
        now: Instant,
        deferred: &mut Deferred,
    ) {
        match event {
            Event::Opened { session, info } => {
                let Some(on_open) = self.on_open.clone() else {
                    return;
                };
                let (inbox, incoming) = mpsc::channel(INBOX);
                let closed = Arc::new(OnceLock::new());
                self.sessions.insert(
                    session.clone(),
                    SessionSlot {
                        inbox,
                        closed: closed.clone(),
                        pending: VecDeque::new(),
                    },
                );
                let opened = Opened {
                    session,
                    info,
                    incoming,
                    closed,
                };
                // The handler is user code: outside the lock.
                deferred.push(move || on_open(opened));
            }
            Event::Message { session, message } => {
                let Some(slot) = self.sessions.get(&session) else {
                    return;
                };
                match slot.inbox.try_send(message) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        tracing::debug!(%session, "SockJS application too slow: inbox full");
                        let _ = server.close_application_too_slow(&session, now);
                    }
                    // The application stopped reading; its sends may go on.
                    Err(mpsc::error::TrySendError::Closed(_)) => {}
                }
            }
            Event::Closed { session, reason } => {
                if let Some(slot) = self.sessions.remove(&session) {
                    let _ = slot.closed.set(reason);
                    for (_, reply) in slot.pending {
                        let _ = reply.send(Err(SockJsError::Closed));
                    }
                }
                self.waiting.remove(&session);
            }
        }
    }

    /// Moves waiting sends into session queues as far as they have room.
    fn flush(&mut self, server: &mut SockJsServer, now: Instant, _: &mut Deferred) -> bool {
        let mut progressed = false;
        let waiting: Vec<SessionId> = self.waiting.iter().cloned().collect();
        for session in waiting {
            let Some(slot) = self.sessions.get_mut(&session) else {
                self.waiting.remove(&session);
                continue;
            };
            while !slot.pending.is_empty() {
                match server.send_capacity(&session) {
                    Some(0) => break,
                    Some(_) => {
                        let Some((message, reply)) = slot.pending.pop_front() else {
                            break;
                        };
                        let result = server
                            .send(&session, message, now)
                            .map_err(SockJsError::Session);
                        let _ = reply.send(result);
                        progressed = true;
                    }
                    None => {
                        for (_, reply) in slot.pending.drain(..) {
                            let _ = reply.send(Err(SockJsError::Closed));
                        }
                    }
                }
            }
            if slot.pending.is_empty() {
                self.waiting.remove(&session);
            }
        }
        progressed
    }
}
