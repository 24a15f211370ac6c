//! The verbs every dialect shares, so that an adapter can drive any of
//! them with one loop.

use std::time::Instant;

use crate::{Error, Event, HttpTransmit, Message, Request, RequestId, SessionId};

/// A sans-IO endpoint: requests, WebSocket messages and time in; transmits,
/// events and deadlines out; application commands as methods.
///
/// The adapter's whole job, for any dialect:
///
/// ```text
/// loop {
///     on an HTTP request:        read at most body_limit()+1 body bytes, handle_request(req, now)
///     on a client gone away:     abort(id, now)
///     on a WebSocket message:    handle_websocket_message(id, msg, now)
///     on a WebSocket closed:     handle_websocket_closed(id, now)
///     on a WebSocket flushed:    handle_websocket_sent(id, messages written)
///     on the timer:              handle_timeout(now)
///     then:  while let Some(e) = poll_event()    { hand e to the application (which may send/close) }
///            while let Some(t) = poll_transmit() { write t to the request or socket it names }
///            sleep until poll_timeout() or the next IO
/// }
/// ```
pub trait Endpoint {
    /// A request arrived.
    fn handle_request(&mut self, request: Request, now: Instant);
    /// The client went away before its request was answered.
    fn abort(&mut self, request: RequestId, now: Instant);
    /// A message arrived on a WebSocket the endpoint accepted.
    fn handle_websocket_message(&mut self, connection: RequestId, message: Message, now: Instant);
    /// A WebSocket the endpoint accepted closed or failed.
    fn handle_websocket_closed(&mut self, connection: RequestId, now: Instant);
    /// Advances the timers.
    fn handle_timeout(&mut self, now: Instant);
    /// The next thing to write.
    fn poll_transmit(&mut self) -> Option<HttpTransmit>;
    /// The next application event.
    fn poll_event(&mut self) -> Option<Event>;
    /// When to call [`Endpoint::handle_timeout`] next.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Sends a message to a session.
    fn send(&mut self, session: &SessionId, message: Message, now: Instant) -> Result<(), Error>;
    /// Closes a session. `code` and `reason` go into SockJS close frames and
    /// raw WebSocket closes; Engine.IO and Server-Sent Events have no place
    /// for them.
    fn close_session(
        &mut self,
        session: &SessionId,
        code: u16,
        reason: &str,
        now: Instant,
    ) -> Result<(), Error>;
    /// The most body bytes a request may carry.
    fn body_limit(&self) -> usize;
    /// Sessions held (open, and closed ones still answering their close).
    fn session_count(&self) -> usize;
    /// The adapter wrote `messages` of the WebSocket messages the endpoint
    /// transmitted on `connection` (reported after each flush). Engine.IO
    /// reads it to know when a WebSocket is writable again (see
    /// [`EngineIoServer::writable`](crate::EngineIoServer::writable)); the
    /// other dialects ignore it.
    fn handle_websocket_sent(&mut self, connection: RequestId, messages: usize) {
        let _ = (connection, messages);
    }
}

/// Implements [`Endpoint`] by delegating to the inherent methods.
macro_rules! delegate_endpoint {
    ($ty:ty, |$s:ident, $session:ident, $code:ident, $reason:ident, $now:ident| $close:expr $(, $($extra:tt)*)?) => {
        impl $crate::Endpoint for $ty {
            fn handle_request(&mut self, request: $crate::Request, now: std::time::Instant) {
                <$ty>::handle_request(self, request, now)
            }
            fn abort(&mut self, request: $crate::RequestId, now: std::time::Instant) {
                <$ty>::abort(self, request, now)
            }
            fn handle_websocket_message(
                &mut self,
                connection: $crate::RequestId,
                message: $crate::Message,
                now: std::time::Instant,
            ) {
                <$ty>::handle_websocket_message(self, connection, message, now)
            }
            fn handle_websocket_closed(
                &mut self,
                connection: $crate::RequestId,
                now: std::time::Instant,
            ) {
                <$ty>::handle_websocket_closed(self, connection, now)
            }
            fn handle_timeout(&mut self, now: std::time::Instant) {
                <$ty>::handle_timeout(self, now)
            }
            fn poll_transmit(&mut self) -> Option<$crate::HttpTransmit> {
                <$ty>::poll_transmit(self)
            }
            fn poll_event(&mut self) -> Option<$crate::Event> {
                <$ty>::poll_event(self)
            }
            fn poll_timeout(&self) -> Option<std::time::Instant> {
                <$ty>::poll_timeout(self)
            }
            fn send(
                &mut self,
                session: &$crate::SessionId,
                message: $crate::Message,
                now: std::time::Instant,
            ) -> Result<(), $crate::Error> {
                <$ty>::send(self, session, message, now)
            }
            fn close_session(
                &mut self,
                $session: &$crate::SessionId,
                $code: u16,
                $reason: &str,
                $now: std::time::Instant,
            ) -> Result<(), $crate::Error> {
                let $s = self;
                $close
            }
            fn body_limit(&self) -> usize {
                <$ty>::body_limit(self)
            }
            fn session_count(&self) -> usize {
                <$ty>::session_count(self)
            }
            $($($extra)*)?
        }
    };
}
pub(crate) use delegate_endpoint;
