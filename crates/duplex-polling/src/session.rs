//! The states and transitions of a session, shared by every dialect.
//!
//! Everything that moves a session between states lives in this module, as
//! h11 keeps its `_state.py`; the dialect modules decide *which* transition
//! an input causes (their protocols differ there) and render the frames,
//! but never change a state behind this module's back.
//!
//! A session has two independent parts:
//!
//! * its **lifecycle**: `Open` (the application may send, messages are
//!   delivered) → `Closing` (the session is over for the application; what
//!   is left, a close frame and maybe queued messages, still goes to the
//!   next receiving request) → removed from its table (closed);
//! * its **receiver**: at most one request or connection that carries data
//!   to the client: none, a parked long-poll, a streaming response, or a
//!   WebSocket.
//!
//! ```text
//!                 attach(Poll|Stream|WebSocket)
//!   ┌──────────┐ ───────────────────────────────▶ ┌──────────────┐
//!   │ detached │                                  │   attached   │──┐ heartbeat due:
//!   │ (expiry  │ ◀─────────────────────────────── │ (heartbeats) │◀─┘ frame to receiver
//!   │  counts) │  detach: poll answered, stream   └──────────────┘
//!   └──────────┘  over its byte limit, abort          │ attach again: Busy
//!        │ expiry (disconnect delay passed)           ▼ (dialect decides)
//!        ▼
//!     expired
//! ```
//!
//! | input | detached | attached |
//! |---|---|---|
//! | receiving request | attach; expiry stops, heartbeat starts | `Busy`: SockJS answers `c[2010,...]`, SSE takes over |
//! | poll answered / stream limit / abort | — | detach; expiry starts |
//! | heartbeat due | — | heartbeat frame on the receiver |
//! | disconnect delay passed | expired: the dialect closes (Open) or forgets (Closing) the session | — |
//! | close | Open → Closing | Open → Closing |
//!
//! Engine.IO sessions do not use this module: their lifecycle, receiver
//! and heartbeat are duplex-engineio's `server::Server`, and the Engine.IO
//! dialect here is only its HTTP binding.

use std::time::{Duration, Instant};

use crate::RequestId;
use crate::queue::{OutQueue, QueueConfig};

/// Where a session is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    /// The application may send; messages are delivered both ways.
    Open,
    /// Closed for the application (it got `Event::Closed`); the close frame
    /// and what was queued before still go to the next receiver.
    Closing,
}

/// What carries data to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Receiver {
    /// A long-poll held open until there is something to send; answered
    /// once, then detached.
    Poll(RequestId),
    /// A streaming response, ended once `written` reaches the byte limit.
    Stream {
        /// The request.
        request: RequestId,
        /// Frame bytes written so far (preludes excluded).
        written: usize,
    },
    /// A WebSocket connection.
    WebSocket(RequestId),
}

impl Receiver {
    /// The request or connection.
    pub(crate) fn request(self) -> RequestId {
        match self {
            Receiver::Poll(r) | Receiver::WebSocket(r) | Receiver::Stream { request: r, .. } => r,
        }
    }
}

/// The timers of the shared part.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timing {
    /// Without a receiver for this long, the session expires. `None`: never.
    pub(crate) disconnect_delay: Option<Duration>,
    /// With a receiver, a heartbeat frame this often. `None`: never.
    pub(crate) heartbeat: Option<Duration>,
    /// A streaming receiver ends after this many frame bytes.
    pub(crate) stream_limit: usize,
}

/// The outcome of a receiving request arriving.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Attach {
    /// It is the session's receiver now.
    Attached,
    /// Another receiver is attached; nothing changed.
    Busy(Receiver),
}

/// What a timeout means for the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Due {
    /// Nothing (yet).
    Nothing,
    /// Send a heartbeat frame on this receiver.
    Heartbeat(Receiver),
    /// The disconnect delay passed without a receiver.
    Expired,
}

/// The dialect-independent part of a session.
#[derive(Debug)]
pub(crate) struct SessionCore<T> {
    lifecycle: Lifecycle,
    receiver: Option<Receiver>,
    /// Messages waiting for a receiver.
    pub(crate) queue: OutQueue<T>,
    timing: Timing,
    expires_at: Option<Instant>,
    next_heartbeat: Option<Instant>,
}

impl<T> SessionCore<T> {
    /// A new, open session without a receiver, created at `now`.
    pub(crate) fn new(timing: Timing, queue: QueueConfig, now: Instant) -> Self {
        Self {
            lifecycle: Lifecycle::Open,
            receiver: None,
            queue: OutQueue::new(queue),
            timing,
            expires_at: timing.disconnect_delay.map(|d| now + d),
            next_heartbeat: None,
        }
    }

    pub(crate) fn lifecycle(&self) -> Lifecycle {
        self.lifecycle
    }

    pub(crate) fn is_open(&self) -> bool {
        self.lifecycle == Lifecycle::Open
    }

    pub(crate) fn receiver(&self) -> Option<Receiver> {
        self.receiver
    }

    /// A receiving request arrives.
    pub(crate) fn attach(&mut self, receiver: Receiver, now: Instant) -> Attach {
        if let Some(current) = self.receiver {
            return Attach::Busy(current);
        }
        self.receiver = Some(receiver);
        self.expires_at = None;
        self.next_heartbeat = self.timing.heartbeat.map(|h| now + h);
        Attach::Attached
    }

    /// The receiver is done (answered, over its limit, aborted, closed):
    /// the session waits for the next one and the expiry counts down.
    pub(crate) fn detach(&mut self, now: Instant) -> Option<Receiver> {
        let old = self.receiver.take();
        self.next_heartbeat = None;
        self.expires_at = self.timing.disconnect_delay.map(|d| now + d);
        old
    }

    /// Detaches only if `request` is the receiver.
    pub(crate) fn detach_request(&mut self, request: RequestId, now: Instant) -> Option<Receiver> {
        if self.receiver.map(Receiver::request) == Some(request) {
            self.detach(now)
        } else {
            None
        }
    }

    /// Counts `bytes` written on a streaming receiver; true once it reached
    /// its limit (the dialect then ends it and detaches).
    pub(crate) fn wrote(&mut self, bytes: usize) -> bool {
        match &mut self.receiver {
            Some(Receiver::Stream { written, .. }) => {
                *written = written.saturating_add(bytes);
                *written >= self.timing.stream_limit
            }
            _ => false,
        }
    }

    /// Open → Closing. False if it was closing already.
    pub(crate) fn close(&mut self) -> bool {
        let was_open = self.lifecycle == Lifecycle::Open;
        self.lifecycle = Lifecycle::Closing;
        was_open
    }

    /// When the shared timers next need attention.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match (self.expires_at, self.next_heartbeat) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Advances the shared timers to `now`.
    pub(crate) fn on_timeout(&mut self, now: Instant) -> Due {
        if self.receiver.is_none() && self.expires_at.is_some_and(|t| t <= now) {
            self.expires_at = None;
            return Due::Expired;
        }
        if let (Some(receiver), Some(at)) = (self.receiver, self.next_heartbeat) {
            if at <= now {
                self.next_heartbeat = self.timing.heartbeat.map(|h| now + h);
                return Due::Heartbeat(receiver);
            }
        }
        Due::Nothing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn core(now: Instant) -> SessionCore<&'static str> {
        SessionCore::new(
            Timing {
                disconnect_delay: Some(5 * S),
                heartbeat: Some(25 * S),
                stream_limit: 100,
            },
            QueueConfig::default(),
            now,
        )
    }

    #[test]
    fn expiry_runs_only_while_detached() {
        let t0 = Instant::now();
        let mut c = core(t0);
        assert_eq!(c.deadline(), Some(t0 + 5 * S));
        assert_eq!(c.on_timeout(t0 + 4 * S), Due::Nothing);
        assert_eq!(
            c.attach(Receiver::Poll(RequestId(1)), t0 + 4 * S),
            Attach::Attached
        );
        assert_eq!(c.deadline(), Some(t0 + 29 * S), "heartbeat only");
        assert_eq!(c.on_timeout(t0 + 28 * S), Due::Nothing);
        assert_eq!(
            c.on_timeout(t0 + 29 * S),
            Due::Heartbeat(Receiver::Poll(RequestId(1)))
        );
        assert_eq!(c.detach(t0 + 30 * S), Some(Receiver::Poll(RequestId(1))));
        assert_eq!(c.deadline(), Some(t0 + 35 * S));
        assert_eq!(c.on_timeout(t0 + 35 * S), Due::Expired);
        assert_eq!(c.deadline(), None);
    }

    #[test]
    fn second_receiver_is_busy_and_streams_count_bytes() {
        let t0 = Instant::now();
        let mut c = core(t0);
        let stream = Receiver::Stream {
            request: RequestId(1),
            written: 0,
        };
        assert_eq!(c.attach(stream, t0), Attach::Attached);
        assert_eq!(
            c.attach(Receiver::Poll(RequestId(2)), t0),
            Attach::Busy(stream)
        );
        assert!(!c.wrote(99));
        assert!(c.wrote(1));
        assert_eq!(c.detach_request(RequestId(2), t0), None);
        assert!(c.detach_request(RequestId(1), t0).is_some());
        assert!(c.is_open());
        assert!(c.close());
        assert!(!c.close());
        assert_eq!(c.lifecycle(), Lifecycle::Closing);
    }
}
