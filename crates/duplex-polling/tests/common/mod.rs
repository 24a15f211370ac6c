//! A test driver for any endpoint: a clock that starts at an arbitrary
//! instant and moves only when told, request ids, and helpers that collect
//! what the machine writes, by request.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use duplex_polling::{
    Endpoint, Event, HttpTransmit, Message, Request, RequestId, Response, SessionId,
};
use http::Method;
use rand::SeedableRng;
use rand::rngs::StdRng;

pub const MS: Duration = Duration::from_millis(1);

pub fn rng() -> StdRng {
    StdRng::seed_from_u64(0x5eed)
}

/// The messages a property test sent, numbered `m1`, `m2`..., and those
/// that reached its client: delivery keeps their order and repeats none.
#[derive(Debug, Default)]
pub struct Ledger {
    /// What the endpoint accepted, in order.
    pub sent: Vec<String>,
    /// What the client read, in order.
    pub received: Vec<String>,
    counter: u32,
}

impl Ledger {
    /// Hands the next numbered message to `send`; it counts as sent once
    /// the endpoint accepted it.
    pub fn send_next<E>(&mut self, send: impl FnOnce(Message) -> Result<(), E>) {
        self.counter += 1;
        let text = format!("m{}", self.counter);
        if send(Message::text(text.clone())).is_ok() {
            self.sent.push(text);
        }
    }

    /// Fails unless what arrived so far is what was sent, in order and
    /// without repeats, up to some point.
    pub fn check_prefix(&self) -> Result<(), proptest::test_runner::TestCaseError> {
        proptest::prop_assert!(
            self.sent.starts_with(&self.received),
            "received {:?} is not a prefix of sent {:?}",
            self.received,
            self.sent
        );
        Ok(())
    }
}

/// What the adapter would have written for one request or connection.
#[derive(Debug, Default, Clone)]
pub struct Written {
    pub response: Option<Response>,
    pub stream_started: Option<Response>,
    pub chunks: Vec<Bytes>,
    pub stream_ended: bool,
    pub accepted: bool,
    pub ws_messages: Vec<Message>,
    pub ws_closed: Option<(u16, String)>,
}

impl Written {
    pub fn body(&self) -> String {
        self.response
            .as_ref()
            .map(Response::body_text)
            .unwrap_or_default()
    }
    pub fn status(&self) -> Option<u16> {
        self.response
            .as_ref()
            .or(self.stream_started.as_ref())
            .map(|r| r.status.as_u16())
    }
    pub fn ws_texts(&self) -> Vec<String> {
        self.ws_messages
            .iter()
            .map(|m| match m {
                Message::Text(t) => t.as_str().to_owned(),
                Message::Binary(b) => format!("<binary {b:?}>"),
            })
            .collect()
    }
    pub fn chunk_texts(&self) -> Vec<String> {
        self.chunks
            .iter()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect()
    }
    pub fn is_done(&self) -> bool {
        self.response.is_some() || self.stream_ended || self.ws_closed.is_some()
    }
}

pub struct Driver<M> {
    pub machine: M,
    pub t0: Instant,
    pub now: Instant,
    next_id: u64,
    pub written: HashMap<RequestId, Written>,
    pub events: Vec<Event>,
    /// Echo every message back (the suites' applications).
    pub echo: bool,
    /// Close every session as soon as it opens (SockJS's `/close` service).
    pub close_on_open: Option<(u16, String)>,
}

impl<M: Endpoint> Driver<M> {
    pub fn new(machine: M) -> Self {
        let t0 = Instant::now();
        Self {
            machine,
            t0,
            now: t0,
            next_id: 0,
            written: HashMap::new(),
            events: Vec::new(),
            echo: false,
            close_on_open: None,
        }
    }

    pub fn echo(mut self) -> Self {
        self.echo = true;
        self
    }

    pub fn id(&mut self) -> RequestId {
        self.next_id += 1;
        RequestId(self.next_id)
    }

    /// Builds a request with a fresh id.
    pub fn request(&mut self, method: Method, path: &str) -> Request {
        let id = self.id();
        Request::new(id, method, path)
    }

    /// Sends a request and runs the loop; returns its id.
    pub fn send_request(&mut self, request: Request) -> RequestId {
        let id = request.id;
        self.machine.handle_request(request, self.now);
        self.pump();
        id
    }

    pub fn get(&mut self, path: &str) -> RequestId {
        let r = self.request(Method::GET, path);
        self.send_request(r)
    }

    pub fn post(&mut self, path: &str, body: &str) -> RequestId {
        let r = self.request(Method::POST, path).body(body.to_owned());
        self.send_request(r)
    }

    pub fn websocket(&mut self, path: &str) -> RequestId {
        let r = self.request(Method::GET, path).websocket();
        self.send_request(r)
    }

    pub fn ws_send(&mut self, conn: RequestId, text: &str) {
        self.machine
            .handle_websocket_message(conn, Message::text(text), self.now);
        self.pump();
    }

    pub fn ws_send_binary(&mut self, conn: RequestId, data: &[u8]) {
        self.machine
            .handle_websocket_message(conn, Message::binary(data.to_vec()), self.now);
        self.pump();
    }

    pub fn ws_closed(&mut self, conn: RequestId) {
        self.machine.handle_websocket_closed(conn, self.now);
        self.pump();
    }

    pub fn abort(&mut self, id: RequestId) {
        self.machine.abort(id, self.now);
        self.pump();
    }

    /// Moves the clock to `t0 + at`, firing every deadline on the way in order.
    pub fn advance_to(&mut self, at: Duration) {
        let target = self.t0 + at;
        while let Some(deadline) = self.machine.poll_timeout() {
            if deadline > target {
                break;
            }
            self.now = self.now.max(deadline);
            self.machine.handle_timeout(self.now);
            self.pump();
        }
        self.now = self.now.max(target);
        self.machine.handle_timeout(self.now);
        self.pump();
    }

    /// Moves the clock by `by` and tells the machine once: no deadline on
    /// the way is fired on its own and nothing is pumped, so a property
    /// test sees the machine catch up in one step.
    pub fn jump(&mut self, by: Duration) {
        self.now += by;
        self.machine.handle_timeout(self.now);
    }

    pub fn advance(&mut self, by: Duration) {
        let at = self.now + by - self.t0;
        self.advance_to(at);
    }

    /// Runs the application and collects transmits until quiet.
    pub fn pump(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(event) = self.machine.poll_event() {
                progressed = true;
                match &event {
                    Event::Message { session, message } if self.echo => {
                        let _ = self.machine.send(session, message.clone(), self.now);
                    }
                    Event::Opened { session, .. } => {
                        if let Some((code, reason)) = self.close_on_open.clone() {
                            let _ = self.machine.close_session(session, code, &reason, self.now);
                        }
                    }
                    _ => {}
                }
                self.events.push(event);
            }
            while let Some(t) = self.machine.poll_transmit() {
                progressed = true;
                let w = self.written.entry(t.request()).or_default();
                match t {
                    HttpTransmit::Response { response, .. } => {
                        assert!(!w.is_done(), "{:?} answered twice", response);
                        w.response = Some(response);
                    }
                    HttpTransmit::StreamStart {
                        status, headers, ..
                    } => {
                        assert!(w.stream_started.is_none());
                        w.stream_started = Some(Response {
                            status,
                            headers,
                            body: Bytes::new(),
                        })
                    }
                    HttpTransmit::StreamChunk { data, .. } => {
                        assert!(w.stream_started.is_some() && !w.stream_ended);
                        w.chunks.push(data)
                    }
                    HttpTransmit::StreamEnd { .. } => {
                        assert!(w.stream_started.is_some() && !w.stream_ended);
                        w.stream_ended = true
                    }
                    HttpTransmit::AcceptWebSocket { .. } => w.accepted = true,
                    HttpTransmit::WebSocketMessage { message, .. } => {
                        assert!(w.accepted && w.ws_closed.is_none());
                        w.ws_messages.push(message)
                    }
                    HttpTransmit::CloseWebSocket { code, reason, .. } => {
                        assert!(w.accepted && w.ws_closed.is_none());
                        w.ws_closed = Some((code, reason))
                    }
                }
            }
            if !progressed {
                return;
            }
        }
    }

    pub fn written(&self, id: RequestId) -> Written {
        self.written.get(&id).cloned().unwrap_or_default()
    }

    pub fn response(&self, id: RequestId) -> Response {
        self.written
            .get(&id)
            .and_then(|w| w.response.clone())
            .unwrap_or_else(|| panic!("request {id} not answered"))
    }

    pub fn status(&self, id: RequestId) -> u16 {
        self.response(id).status.as_u16()
    }

    pub fn body(&self, id: RequestId) -> String {
        self.response(id).body_text()
    }

    pub fn answered(&self, id: RequestId) -> bool {
        self.written.get(&id).is_some_and(|w| w.response.is_some())
    }

    pub fn opened(&self) -> Vec<SessionId> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Opened { session, .. } => Some(session.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn closed(&self) -> Vec<(SessionId, duplex_polling::CloseReason)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Closed { session, reason } => Some((session.clone(), *reason)),
                _ => None,
            })
            .collect()
    }

    pub fn messages(&self) -> Vec<Message> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Message { message, .. } => Some(message.clone()),
                _ => None,
            })
            .collect()
    }
}
