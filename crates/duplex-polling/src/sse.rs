//! The Server-Sent Events dialect: one-way push over `text/event-stream`,
//! resumable.
//!
//! Every event carries `id: <session>:<sequence>`. A browser's
//! `EventSource` reconnects by itself when a stream ends (the response
//! limit, a proxy timeout, a network change) and sends the last id it saw
//! in `Last-Event-ID`; the machine finds the session from it and replays
//! what the client missed from a bounded buffer of written events, so
//! nothing is lost or repeated. If the buffer no longer reaches back far
//! enough the old session ends with [`CloseReason::ReplayGap`] and a new
//! one starts, so a gap is never silent.
//!
//! | request | answer |
//! |---|---|
//! | `GET` without `Last-Event-ID` | a new session's stream: `retry:`, then events; [`Event::Opened`] |
//! | `GET` with `Last-Event-ID: <session>:<n>` | the same session, events after `n` first (taking over a stream still open) |
//! | `GET` for a session the application closed | 204, which tells `EventSource` to stop |
//! | other methods | 405 |

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use duplex_core::Utf8Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use rand::{RngCore, SeedableRng, rngs::StdRng};

use crate::http::{Cors, OpenInfo, Response, query_param, text_response};
use crate::queue::{Full, OverflowPolicy, QueueConfig};
use crate::session::{Due, Receiver, Timing};
use crate::shell::{Shell, open_session};
use crate::{
    CloseReason, Error, Event, HttpTransmit, Message, Request, RequestId, SessionId, TransportName,
};

/// The `Last-Event-ID` request header.
static LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// Settings of a Server-Sent Events endpoint.
pub struct SseConfig {
    /// Sent as `retry:` at the start of every stream: how long the browser
    /// waits before reconnecting. Default 3 s; `None` leaves the browser's
    /// own default.
    pub retry: Option<Duration>,
    /// A comment line (`:`) this often on an idle stream, so that proxies
    /// keep it open. Default 15 s.
    pub heartbeat_interval: Duration,
    /// How long a session waits for its client to reconnect. Default 30 s.
    pub disconnect_delay: Duration,
    /// A stream ends after this many bytes of events, so that browsers
    /// free what they hold; the client reconnects and resumes. Default
    /// 128 KiB.
    pub response_limit: usize,
    /// Events kept after being written, for resumption. Default 256.
    pub replay_capacity: usize,
    /// Most sessions at once; more get 503. Default 65,536.
    pub max_sessions: usize,
    /// Bounds of each session's queue of events not yet written.
    pub queue: QueueConfig,
    /// CORS and the Origin allow-list. Default: CORS on, any origin.
    pub cors: Cors,
    /// The source of session ids. Default: seeded from the OS.
    pub rng: Box<dyn RngCore + Send>,
}

impl Default for SseConfig {
    fn default() -> Self {
        Self {
            retry: Some(Duration::from_secs(3)),
            heartbeat_interval: Duration::from_secs(15),
            disconnect_delay: Duration::from_secs(30),
            response_limit: 128 * 1024,
            replay_capacity: 256,
            max_sessions: 65_536,
            queue: QueueConfig::default(),
            cors: Cors::permissive(),
            rng: Box::new(StdRng::from_os_rng()),
        }
    }
}

crate::shell::dialect_config!(SseConfig {
    retry,
    heartbeat_interval,
    disconnect_delay,
    response_limit,
    replay_capacity,
    max_sessions,
    queue,
    cors,
});

/// One event, numbered in its session.
#[derive(Clone, Debug)]
struct SseEvent {
    seq: u64,
    event: Option<Utf8Bytes>,
    data: Utf8Bytes,
}

impl SseEvent {
    fn weight(&self) -> usize {
        self.data.len() + self.event.as_ref().map_or(0, Utf8Bytes::len)
    }

    /// `id:`, `event:`, one `data:` line per line of the data, blank line.
    fn encode(&self, session: &SessionId, out: &mut Vec<u8>) {
        out.extend_from_slice(b"id: ");
        out.extend_from_slice(session.as_str().as_bytes());
        out.push(b':');
        out.extend_from_slice(self.seq.to_string().as_bytes());
        out.push(b'\n');
        if let Some(event) = &self.event {
            out.extend_from_slice(b"event: ");
            out.extend_from_slice(event.as_bytes());
            out.push(b'\n');
        }
        // Any of CRLF, CR, LF ends a line in the event stream format.
        let data = self.data.as_str();
        let mut rest = data;
        loop {
            let cut = rest.find(['\r', '\n']);
            let (line, next) = match cut {
                Some(i) => {
                    let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
                    (&rest[..i], Some(&rest[i + skip..]))
                }
                None => (rest, None),
            };
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
            match next {
                Some(n) => rest = n,
                None => break,
            }
        }
        out.push(b'\n');
    }
}

/// What a Server-Sent Events session keeps beside the shared core.
#[derive(Debug)]
struct SseState {
    /// The number the next event gets.
    next_seq: u64,
    /// The highest sequence number written to some stream.
    written_upto: u64,
    /// Written events, oldest first, for resumption.
    replay: VecDeque<SseEvent>,
}

/// A sans-IO Server-Sent Events endpoint.
///
/// ```
/// use std::time::Instant;
/// use duplex_polling::{Event, Message, Request, RequestId, SseConfig, SseServer, HttpTransmit};
/// use http::Method;
///
/// let mut server = SseServer::new(SseConfig::default());
/// let now = Instant::now();
/// server.handle_request(Request::new(RequestId(1), Method::GET, "/"), now);
/// let Some(Event::Opened { session, .. }) = server.poll_event() else { panic!() };
/// assert!(matches!(server.poll_transmit(), Some(HttpTransmit::StreamStart { .. })));
/// assert!(matches!(server.poll_transmit(), Some(HttpTransmit::StreamChunk { .. }))); // retry:
/// server.send(&session, Message::text("hello"), now).unwrap();
/// let Some(HttpTransmit::StreamChunk { data, .. }) = server.poll_transmit() else { panic!() };
/// assert_eq!(data, format!("id: {session}:1\ndata: hello\n\n"));
/// ```
#[derive(Debug)]
pub struct SseServer {
    config: SseConfig,
    /// Sessions, and the session of each open stream.
    shell: Shell<SseEvent, SseState, SessionId>,
}

impl SseServer {
    /// An endpoint with these settings and no sessions.
    pub fn new(config: SseConfig) -> Self {
        Self {
            config,
            shell: Shell::default(),
        }
    }

    crate::shell::shell_methods!(SseConfig);

    /// Requests carry no body here; anything is refused.
    pub fn body_limit(&self) -> usize {
        0
    }

    // ---- inputs ------------------------------------------------------------

    /// A request arrived.
    pub fn handle_request(&mut self, request: Request, now: Instant) {
        self.touch(now);
        let id = request.id;
        if !self.config.cors.allows(&request) {
            return self.respond(id, text_response(StatusCode::FORBIDDEN, "Forbidden"));
        }
        if request.method == Method::OPTIONS && self.config.cors.enabled {
            let cors = &self.config.cors;
            let response = cors.preflight(&request, HeaderMap::new(), "GET, OPTIONS", "86400");
            return self.respond(id, response);
        }
        if request.method != Method::GET {
            let mut headers = HeaderMap::new();
            headers.insert(header::ALLOW, HeaderValue::from_static("GET, OPTIONS"));
            return self.respond(
                id,
                Response::new(StatusCode::METHOD_NOT_ALLOWED, headers, Bytes::new()),
            );
        }
        let last = request
            .header_str(&LAST_EVENT_ID)
            .map(str::to_owned)
            .or_else(|| query_param(&request.query, "lastEventId"))
            .and_then(|v| self.parse_event_id(&v));
        match last {
            Some((sid, seq)) => self.resume(&request, sid, seq, now),
            None => self.open(&request, now),
        }
        self.flush();
    }

    /// The client went away: the session waits `disconnect_delay` for it to
    /// reconnect.
    pub fn abort(&mut self, request: RequestId, now: Instant) {
        self.touch(now);
        let Some(sid) = self.shell.connections.remove(&request) else {
            return;
        };
        if let Some(s) = self.shell.sessions.get_mut(&sid) {
            s.core.detach_request(request, now);
        }
        self.reschedule(&sid);
    }

    /// Server-Sent Events have no WebSockets; ignored.
    pub fn handle_websocket_message(
        &mut self,
        _connection: RequestId,
        _message: Message,
        _now: Instant,
    ) {
    }

    // ---- commands ----------------------------------------------------------

    /// Sends `message` as an unnamed event (`message` in the browser).
    /// Server-Sent Events carry text only.
    pub fn send(
        &mut self,
        session: &SessionId,
        message: Message,
        now: Instant,
    ) -> Result<(), Error> {
        let Message::Text(data) = message else {
            return Err(Error::BinaryNotSupported);
        };
        self.push(session, None, data, now)
    }

    /// Sends an event named `event` (`addEventListener(event, ...)` in the
    /// browser). The name may not contain a line break.
    pub fn send_event(
        &mut self,
        session: &SessionId,
        event: &str,
        data: impl Into<String>,
        now: Instant,
    ) -> Result<(), Error> {
        if event.contains(['\r', '\n']) {
            return Err(Error::InvalidEventName);
        }
        self.push(
            session,
            Some(Utf8Bytes::from(event.to_owned())),
            Utf8Bytes::from(data.into()),
            now,
        )
    }

    fn push(
        &mut self,
        session: &SessionId,
        event: Option<Utf8Bytes>,
        data: Utf8Bytes,
        now: Instant,
    ) -> Result<(), Error> {
        self.touch(now);
        let s = open_session(&mut self.shell.sessions, session)?;
        let item = SseEvent {
            seq: s.dialect.next_seq,
            event,
            data,
        };
        let weight = item.weight();
        match s.core.queue.push(item, weight) {
            Ok(()) => {
                s.dialect.next_seq += 1;
                self.shell.dirty.push(session.clone());
                Ok(())
            }
            Err(Full) => {
                if s.core.queue.policy() == OverflowPolicy::CloseSession {
                    self.close_with(session, CloseReason::QueueOverflow, now);
                }
                Err(Error::QueueFull)
            }
        }
    }

    /// Closes `session`: what is queued is written, the stream ends, and a
    /// reconnecting client is told to stop (204) until `disconnect_delay`
    /// passes. [`Event::Closed`] follows at once.
    pub fn close(&mut self, session: &SessionId, now: Instant) -> Result<(), Error> {
        self.touch(now);
        if !self.is_open(session) {
            return Err(Error::NoSuchSession);
        }
        self.close_with(session, CloseReason::Application, now);
        Ok(())
    }

    // ---- logic -------------------------------------------------------------

    fn parse_event_id(&self, value: &str) -> Option<(SessionId, u64)> {
        let (sid, seq) = value.trim().rsplit_once(':')?;
        let seq = seq.parse().ok()?;
        let (sid, _) = self.shell.sessions.get_key_value(sid)?;
        Some((sid.clone(), seq))
    }

    fn open(&mut self, request: &Request, now: Instant) {
        if self.shell.sessions.len() >= self.config.max_sessions {
            return self.respond(
                request.id,
                text_response(StatusCode::SERVICE_UNAVAILABLE, "Too many sessions"),
            );
        }
        let timing = Timing {
            disconnect_delay: Some(self.config.disconnect_delay),
            heartbeat: Some(self.config.heartbeat_interval),
            stream_limit: self.config.response_limit,
        };
        let state = SseState {
            next_seq: 1,
            written_upto: 0,
            replay: VecDeque::new(),
        };
        let (rng, queue) = (self.config.rng.as_mut(), self.config.queue);
        let sid = self.shell.open(rng, timing, queue, state, now);
        self.shell.events.push_back(Event::Opened {
            session: sid.clone(),
            info: OpenInfo::from_request(TransportName::ServerSentEvents, request),
        });
        self.start_stream(request, &sid, now);
    }

    fn resume(&mut self, request: &Request, sid: SessionId, seen: u64, now: Instant) {
        let Some(s) = self.shell.sessions.get_mut(&sid) else {
            return self.open(request, now);
        };
        if seen >= s.dialect.next_seq {
            // An id this session never gave out.
            return self.open(request, now);
        }
        let gap = seen < s.dialect.written_upto
            && s.dialect
                .replay
                .front()
                .is_none_or(|first| first.seq > seen + 1);
        if gap {
            if s.core.is_open() {
                self.close_with(&sid, CloseReason::ReplayGap, now);
            }
            return self.open(request, now);
        }
        // Put what the client missed back in front of what it never got.
        let mut missed = Vec::new();
        while s.dialect.replay.back().is_some_and(|e| e.seq > seen) {
            if let Some(e) = s.dialect.replay.pop_back() {
                missed.push(e);
            }
        }
        missed.reverse();
        s.dialect.written_upto = s.dialect.written_upto.min(seen);
        s.core.queue.requeue_front(missed.into_iter().map(|e| {
            let w = e.weight();
            (e, w)
        }));
        if !s.core.is_open() && s.core.queue.is_empty() {
            // Closed, and nothing left to say: tell EventSource to stop.
            return self.respond(
                request.id,
                Response::new(StatusCode::NO_CONTENT, HeaderMap::new(), Bytes::new()),
            );
        }
        if let Some(old) = s.core.detach(now) {
            // The client moved on; its old stream is dead or soon will be.
            self.end_stream(old.request());
        }
        self.start_stream(request, &sid, now);
    }

    fn start_stream(&mut self, request: &Request, sid: &SessionId, now: Instant) {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(
            HeaderName::from_static("x-accel-buffering"),
            HeaderValue::from_static("no"),
        );
        self.config.cors.apply(request, &mut headers, false);
        self.shell.transmits.push_back(HttpTransmit::StreamStart {
            request: request.id,
            status: StatusCode::OK,
            headers,
        });
        let prelude = match self.config.retry {
            Some(retry) => format!("retry: {}\n\n", retry.as_millis()),
            None => ":\n\n".to_owned(),
        };
        self.shell.transmits.push_back(HttpTransmit::StreamChunk {
            request: request.id,
            data: Bytes::from(prelude),
        });
        if let Some(s) = self.shell.sessions.get_mut(sid) {
            s.core.attach(
                Receiver::Stream {
                    request: request.id,
                    written: 0,
                },
                now,
            );
            self.shell.connections.insert(request.id, sid.clone());
            self.shell.dirty.push(sid.clone());
        }
        self.reschedule(sid);
    }

    fn close_with(&mut self, sid: &SessionId, reason: CloseReason, now: Instant) {
        let Some(s) = self.shell.sessions.get_mut(sid) else {
            return;
        };
        if !s.core.close() {
            return;
        }
        self.shell.events.push_back(Event::Closed {
            session: sid.clone(),
            reason,
        });
        // Deliver what is queued, then end the stream.
        self.write_queued(sid, now);
        if let Some(r) = self.shell.detach(sid, now) {
            self.end_stream(r);
        }
        if reason == CloseReason::ReplayGap {
            // Nothing of it can be delivered any more.
            self.shell.sessions.remove(sid);
        }
        self.reschedule(sid);
    }

    /// What a passed deadline means here: a comment heartbeat on the
    /// stream, or the end of a session whose client stayed away.
    fn on_due(&mut self, sid: &SessionId, due: Due, now: Instant) {
        match due {
            Due::Nothing => {}
            Due::Heartbeat(receiver) => {
                let request = receiver.request();
                self.shell.transmits.push_back(HttpTransmit::StreamChunk {
                    request,
                    data: Bytes::from_static(b":\n\n"),
                });
                if let Some(s) = self.shell.sessions.get_mut(sid) {
                    if s.core.wrote(3) {
                        s.core.detach(now);
                        self.end_stream(request);
                    }
                }
            }
            Due::Expired => {
                let session = self.shell.sessions.remove(sid);
                if session.is_some_and(|s| s.core.is_open()) {
                    self.shell.events.push_back(Event::Closed {
                        session: sid.clone(),
                        reason: CloseReason::Expired,
                    });
                }
            }
        }
    }

    /// Writes queued events to the attached stream, up to its byte limit.
    fn write_queued(&mut self, sid: &SessionId, now: Instant) {
        let capacity = self.config.replay_capacity;
        let Some(s) = self.shell.sessions.get_mut(sid) else {
            return;
        };
        let Some(receiver) = s.core.receiver() else {
            return;
        };
        let request = receiver.request();
        let mut chunk = Vec::new();
        let mut limit_reached = false;
        while !limit_reached {
            let Some(event) = s.core.queue.pop() else {
                break;
            };
            let before = chunk.len();
            event.encode(sid, &mut chunk);
            limit_reached = s.core.wrote(chunk.len() - before);
            s.dialect.written_upto = event.seq;
            s.dialect.replay.push_back(event);
            while s.dialect.replay.len() > capacity {
                s.dialect.replay.pop_front();
            }
        }
        if !chunk.is_empty() {
            self.shell.transmits.push_back(HttpTransmit::StreamChunk {
                request,
                data: Bytes::from(chunk),
            });
        }
        // A closed session's stream ends once it has said everything.
        if limit_reached || (!s.core.is_open() && s.core.queue.is_empty()) {
            s.core.detach(now);
            self.end_stream(request);
        }
    }

    fn end_stream(&mut self, request: RequestId) {
        if self.shell.connections.remove(&request).is_some() {
            self.shell
                .transmits
                .push_back(HttpTransmit::StreamEnd { request });
        }
    }

    fn flush(&mut self) {
        let Some((now, dirty)) = self.shell.take_dirty() else {
            return;
        };
        for sid in dirty {
            self.write_queued(&sid, now);
            self.reschedule(&sid);
        }
    }
}

crate::endpoint::delegate_endpoint!(SseServer, |s, session, _code, _reason, now| s
    .close(session, now));
