//! The driver's core: the endpoint, its application, and the channels of
//! the requests and WebSockets waiting on them; what the driver's lock
//! guards. [`Core::pump`] is the routing loop of the `Endpoint` contract:
//! events to the application, transmits to the request, stream or
//! WebSocket they name, until neither has more.

use std::time::Instant;

use bytes::Bytes;
use duplex_polling::{Endpoint, HttpTransmit as Transmit, RequestId, Response};
use http::StatusCode;
use http::header::HeaderMap;
use tokio::sync::{mpsc, oneshot};

use super::FastMap;
use super::app::{Application, Deferred};
use super::websocket::{OutboxReceiver, OutboxSender, WEBSOCKET_QUEUE, WsOut, outbox};

/// Chunks of one streaming response waiting to be written; past it the
/// client is not reading and the request is aborted (the endpoint decides
/// what that means: SockJS closes, Server-Sent Events wait for a resume).
const STREAM_CHUNKS: usize = 1024;

/// How the endpoint answers a parked request.
pub(super) enum Reply {
    Response(Response),
    Stream {
        status: StatusCode,
        headers: HeaderMap,
        chunks: mpsc::Receiver<Bytes>,
    },
    Accept {
        headers: HeaderMap,
        outgoing: OutboxReceiver,
    },
}

/// The machines and the IO they wait on: what the lock guards.
pub(super) struct Core<E, A> {
    pub(super) endpoint: E,
    pub(super) app: A,
    pub(super) next_id: u64,
    pub(super) replies: FastMap<RequestId, oneshot::Sender<Reply>>,
    pub(super) streams: FastMap<RequestId, mpsc::Sender<Bytes>>,
    pub(super) websockets: FastMap<RequestId, OutboxSender>,
    pub(super) deferred: Deferred,
    pub(super) dispatching: bool,
    /// The deadline the timer task sleeps until (`None`: no timer armed).
    pub(super) armed: Option<Instant>,
    pub(super) timer_started: bool,
    /// [`crate::HttpLimits::body_read_timeout`] of request bodies read here.
    pub(super) body_read_timeout: std::time::Duration,
}

/// A request or WebSocket that could not be written to: the endpoint
/// hears that its client is gone.
enum Gone {
    Request(RequestId),
    WebSocket(RequestId),
}

impl<E: Endpoint, A: Application<E>> Core<E, A> {
    pub(super) fn new(endpoint: E, app: A) -> Self {
        Core {
            endpoint,
            app,
            next_id: 0,
            replies: FastMap::default(),
            streams: FastMap::default(),
            websockets: FastMap::default(),
            deferred: Deferred::default(),
            dispatching: false,
            armed: None,
            timer_started: false,
            body_read_timeout: crate::HttpLimits::default().body_read_timeout,
        }
    }

    /// Hands events to the application and transmits to their requests
    /// until neither has more, nor the application anything held back.
    pub(super) fn pump(&mut self, now: Instant) {
        loop {
            let mut progressed = false;
            while let Some(event) = self.endpoint.poll_event() {
                progressed = true;
                self.app
                    .on_event(&mut self.endpoint, event, now, &mut self.deferred);
            }
            let mut gone = Vec::new();
            while let Some(transmit) = self.endpoint.poll_transmit() {
                progressed = true;
                self.route(transmit, &mut gone);
            }
            for g in gone {
                match g {
                    Gone::Request(id) => self.endpoint.abort(id, now),
                    Gone::WebSocket(id) => self.endpoint.handle_websocket_closed(id, now),
                }
            }
            progressed |= self.app.flush(&mut self.endpoint, now, &mut self.deferred);
            if !progressed {
                return;
            }
        }
    }

    fn route(&mut self, transmit: Transmit, gone: &mut Vec<Gone>) {
        match transmit {
            Transmit::Response { request, response } => {
                if let Some(tx) = self.replies.remove(&request) {
                    // The client may be gone already; nothing to do then.
                    let _ = tx.send(Reply::Response(response));
                }
            }
            Transmit::StreamStart {
                request,
                status,
                headers,
            } => {
                let (tx, chunks) = mpsc::channel(STREAM_CHUNKS);
                let reply = Reply::Stream {
                    status,
                    headers,
                    chunks,
                };
                if self.deliver(request, reply) {
                    self.streams.insert(request, tx);
                } else {
                    gone.push(Gone::Request(request));
                }
            }
            Transmit::StreamChunk { request, data } => {
                if let Some(tx) = self.streams.get(&request) {
                    if tx.try_send(data).is_err() {
                        self.streams.remove(&request);
                        gone.push(Gone::Request(request));
                    }
                }
            }
            Transmit::StreamEnd { request } => {
                // Dropping the sender ends the body.
                self.streams.remove(&request);
            }
            Transmit::AcceptWebSocket { request, headers } => {
                let (tx, outgoing) = outbox(WEBSOCKET_QUEUE);
                if self.deliver(request, Reply::Accept { headers, outgoing }) {
                    self.websockets.insert(request, tx);
                } else {
                    gone.push(Gone::WebSocket(request));
                }
            }
            Transmit::WebSocketMessage {
                connection,
                message,
            } => {
                if let Some(tx) = self.websockets.get(&connection) {
                    if tx.try_send(WsOut::Message(message)).is_err() {
                        self.websockets.remove(&connection);
                        gone.push(Gone::WebSocket(connection));
                    }
                }
            }
            Transmit::CloseWebSocket {
                connection,
                code,
                reason,
            } => {
                if let Some(tx) = self.websockets.remove(&connection) {
                    // Full: dropping the sender closes the socket anyway.
                    let _ = tx.try_send(WsOut::Close(code, reason));
                }
            }
        }
    }

    /// Hands `reply` to the task waiting for `request`; false if it is gone.
    fn deliver(&mut self, request: RequestId, reply: Reply) -> bool {
        self.replies
            .remove(&request)
            .is_some_and(|tx| tx.send(reply).is_ok())
    }

    /// Tells the machines the time if a deadline of theirs passed, so that
    /// an input arriving after it sees them as they are after it even if
    /// the timer task has not woken yet. Running each due timer at its own
    /// deadline (a late wake-up must not stretch a ping timeout) is the
    /// endpoint's own business.
    pub(super) fn tick(&mut self, now: Instant) {
        if self.endpoint.poll_timeout().is_some_and(|at| at <= now) {
            self.endpoint.handle_timeout(now);
        }
        if self.app.poll_timeout().is_some_and(|at| at <= now) {
            self.app
                .handle_timeout(&mut self.endpoint, now, &mut self.deferred);
        }
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        match (self.endpoint.poll_timeout(), self.app.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}
