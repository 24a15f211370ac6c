//! The part every dialect's endpoint shares: its session and connection
//! tables, the deadline set, the sessions with output waiting, what is to
//! be written, the application events, and the latest time it was told.
//!
//! A dialect (SockJS, Server-Sent Events) keeps one [`Shell`] and writes
//! only what its protocol decides: which transition a request causes and
//! how frames look. The bookkeeping below is the same for all of them.

use std::collections::VecDeque;
use std::time::Instant;

use rand::RngCore;

use crate::http::Response;
use crate::queue::QueueConfig;
use crate::session::{SessionCore, Timing};
use crate::{Error, Event, HttpTransmit, RequestId, SessionId};
use duplex_core::Deadlines;

/// A dialect's session: the shared [`SessionCore`] (lifecycle, receiver,
/// queue, timers), and `dialect`, what only that dialect keeps per session.
#[derive(Debug)]
pub(crate) struct Session<T, X> {
    /// The shared part, which only `session.rs` moves between states.
    pub(crate) core: SessionCore<T>,
    /// The dialect's own per-session state.
    pub(crate) dialect: X,
}

// The tables looked up on every request and WebSocket message: sessions
// and requests are keyed by ids this side generated, which a client can
// only look up (see `FastMap` for the HashDoS argument).
pub(crate) use duplex_core::FastMap;

/// The tables and queues of one endpoint, with sessions that queue `T` and
/// keep `X` of their own and, per request or connection id, `C`.
pub(crate) struct Shell<T, X, C> {
    pub(crate) sessions: FastMap<SessionId, Session<T, X>>,
    pub(crate) connections: FastMap<RequestId, C>,
    pub(crate) timers: Deadlines<SessionId>,
    /// Sessions whose queue may have something for their receiver.
    pub(crate) dirty: Vec<SessionId>,
    pub(crate) transmits: VecDeque<HttpTransmit>,
    pub(crate) events: VecDeque<Event>,
    /// The latest time an input carried.
    pub(crate) now: Option<Instant>,
}

/// Counts only: a dump of every queued message would say little and be long.
impl<T, X, C> std::fmt::Debug for Shell<T, X, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shell")
            .field("sessions", &self.sessions.len())
            .field("connections", &self.connections.len())
            .finish_non_exhaustive()
    }
}

impl<T, X, C> Default for Shell<T, X, C> {
    fn default() -> Self {
        Self {
            sessions: FastMap::default(),
            connections: FastMap::default(),
            timers: Deadlines::default(),
            dirty: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            now: None,
        }
    }
}

impl<T, X, C> Shell<T, X, C> {
    /// Records the time an input carried; the clock never runs backwards.
    pub(crate) fn touch(&mut self, now: Instant) {
        self.now = Some(self.now.map_or(now, |t| t.max(now)));
    }

    /// A session id not in the table, from `rng`.
    pub(crate) fn new_session_id(&self, rng: &mut dyn RngCore) -> SessionId {
        let mut sid = SessionId::generate(rng);
        while self.sessions.contains_key(&sid) {
            sid = SessionId::generate(rng);
        }
        sid
    }

    /// Opens a session under a new id from `rng`: open, no receiver, its
    /// disconnect delay counting from `now`.
    pub(crate) fn open(
        &mut self,
        rng: &mut dyn RngCore,
        timing: Timing,
        queue: QueueConfig,
        dialect: X,
        now: Instant,
    ) -> SessionId {
        let sid = self.new_session_id(rng);
        let core = SessionCore::new(timing, queue, now);
        self.sessions.insert(sid.clone(), Session { core, dialect });
        sid
    }

    /// Whether `session` is open.
    pub(crate) fn is_open(&self, session: &SessionId) -> bool {
        self.sessions.get(session).is_some_and(|s| s.core.is_open())
    }

    /// How many more messages `session` can queue.
    pub(crate) fn send_capacity(&self, session: &SessionId) -> Option<usize> {
        self.sessions
            .get(session)
            .filter(|s| s.core.is_open())
            .map(|s| s.core.queue.free_slots())
    }

    /// Detaches `session`'s receiver, if it has one: the request to end.
    pub(crate) fn detach(&mut self, session: &SessionId, now: Instant) -> Option<RequestId> {
        let receiver = self.sessions.get_mut(session)?.core.detach(now)?;
        Some(receiver.request())
    }

    /// Files `session` under its next deadline (or none).
    pub(crate) fn reschedule(&mut self, session: &SessionId) {
        let deadline = self.sessions.get(session).and_then(|s| s.core.deadline());
        self.timers.set(session, deadline);
    }

    /// Answers `request` with a complete response.
    pub(crate) fn respond(&mut self, request: RequestId, response: Response) {
        self.transmits
            .push_back(HttpTransmit::Response { request, response });
    }

    /// The sessions to flush, with the time to flush them at; none before
    /// the first input.
    pub(crate) fn take_dirty(&mut self) -> Option<(Instant, Vec<SessionId>)> {
        let now = self.now?;
        Some((now, std::mem::take(&mut self.dirty)))
    }
}

/// `session` in a shell's `sessions`, if open: commands refuse a closed
/// one. It takes the field, not the shell, so that the rest of the shell
/// stays free to use while the session is held.
pub(crate) fn open_session<'a, T, X>(
    sessions: &'a mut FastMap<SessionId, Session<T, X>>,
    session: &SessionId,
) -> Result<&'a mut Session<T, X>, Error> {
    sessions
        .get_mut(session)
        .filter(|s| s.core.is_open())
        .ok_or(Error::NoSuchSession)
}

/// Writes what every dialect's config has alike: `with_rng`, and a `Debug`
/// that names the listed fields (all but the RNG, which has no `Debug`).
macro_rules! dialect_config {
    ($ty:ident { $($field:ident),* $(,)? }) => {
        impl $ty {
            /// Replaces the random source, e.g. with a seeded one in tests.
            pub fn with_rng(mut self, rng: impl rand::RngCore + Send + 'static) -> Self {
                self.rng = Box::new(rng);
                self
            }
        }

        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    $(.field(stringify!($field), &self.$field))*
                    .finish_non_exhaustive()
            }
        }
    };
}
pub(crate) use dialect_config;

/// Writes, inside a dialect server's `impl`, the methods that only hand on
/// to its [`Shell`] (field `shell`) or its config (field `config` of type
/// `$config`, with `cors`): settings, counts and queries, outputs, the timer
/// loop, and the private `touch`/`reschedule`/`respond`. The dialect writes
/// `flush` itself, which `poll_transmit` calls so that queued output leaves
/// before it is asked for; `abort`, which a closed WebSocket is; and
/// `on_due`, what a session's passed deadline means in its protocol.
macro_rules! shell_methods {
    ($config:ty) => {
        /// The settings.
        pub fn config(&self) -> &$config {
            &self.config
        }

        /// The CORS settings and Origin allow-list, which the application may
        /// change at any time; they apply from the next request on.
        pub fn cors_mut(&mut self) -> &mut $crate::Cors {
            &mut self.config.cors
        }

        /// Sessions in the table, open and closing (a closed session still
        /// answers its close until the disconnect delay passes).
        pub fn session_count(&self) -> usize {
            self.shell.sessions.len()
        }

        /// Requests and connections held (parked polls, streams,
        /// WebSockets).
        pub fn connection_count(&self) -> usize {
            self.shell.connections.len()
        }

        /// Whether `session` is open.
        pub fn is_open(&self, session: &$crate::SessionId) -> bool {
            self.shell.is_open(session)
        }

        /// How many more messages `session` can queue before `send`
        /// overflows.
        pub fn send_capacity(&self, session: &$crate::SessionId) -> Option<usize> {
            self.shell.send_capacity(session)
        }

        /// The next thing for the adapter to write.
        pub fn poll_transmit(&mut self) -> Option<$crate::HttpTransmit> {
            self.flush();
            self.shell.transmits.pop_front()
        }

        /// The next application event.
        pub fn poll_event(&mut self) -> Option<$crate::Event> {
            self.shell.events.pop_front()
        }

        /// When [`handle_timeout`](Self::handle_timeout) should next be called.
        pub fn poll_timeout(&self) -> Option<std::time::Instant> {
            self.shell.timers.next()
        }

        /// A WebSocket this endpoint accepted closed or failed: the same as
        /// [`abort`](Self::abort) of its connection.
        pub fn handle_websocket_closed(
            &mut self,
            connection: $crate::RequestId,
            now: std::time::Instant,
        ) {
            self.abort(connection, now);
        }

        /// Advances the timers: heartbeats and disconnect delays.
        pub fn handle_timeout(&mut self, now: std::time::Instant) {
            self.touch(now);
            for sid in self.shell.timers.take_due(now) {
                let Some(s) = self.shell.sessions.get_mut(&sid) else {
                    continue;
                };
                let due = s.core.on_timeout(now);
                self.on_due(&sid, due, now);
                self.reschedule(&sid);
            }
            self.flush();
        }

        fn touch(&mut self, now: std::time::Instant) {
            self.shell.touch(now);
        }

        fn reschedule(&mut self, sid: &$crate::SessionId) {
            self.shell.reschedule(sid);
        }

        fn respond(&mut self, request: $crate::RequestId, response: $crate::Response) {
            self.shell.respond(request, response);
        }
    };
}
pub(crate) use shell_methods;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rand::SeedableRng;

    use super::*;

    #[test]
    fn clock_never_runs_back_and_dirty_waits_for_the_first_input() {
        let t0 = Instant::now();
        let mut shell = Shell::<u8, (), ()>::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let timing = Timing {
            disconnect_delay: Some(Duration::from_secs(5)),
            heartbeat: None,
            stream_limit: usize::MAX,
        };
        let sid = shell.open(&mut rng, timing, QueueConfig::default(), (), t0);
        shell.dirty.push(sid.clone());
        assert!(shell.take_dirty().is_none(), "no time yet");
        shell.touch(t0 + Duration::from_secs(2));
        shell.touch(t0);
        assert_ne!(shell.new_session_id(&mut rng), sid);
        assert_eq!(
            shell.take_dirty(),
            Some((t0 + Duration::from_secs(2), vec![sid.clone()]))
        );
        assert!(shell.is_open(&sid));
        assert_eq!(shell.send_capacity(&sid), Some(1024));
        shell.reschedule(&sid);
        assert_eq!(shell.timers.next(), Some(t0 + Duration::from_secs(5)));
    }
}
