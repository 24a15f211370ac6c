//! Fuzz targets for duplex-polling: request sequences against the
//! Engine.IO, SockJS and Server-Sent Events machines.
//!
//! The input is a small line-based program, so that seeds read as what
//! they do and mutations stay meaningful (unknown lines are skipped):
//!
//! | line | action |
//! |---|---|
//! | `G <path>` / `P <path> <body>` / `O <path>` / `D <path>` | GET / POST / OPTIONS / DELETE |
//! | `W <path>` | a WebSocket upgrade request |
//! | `H <name>: <value>` | a header for the next request |
//! | `w <text>` / `b <bytes>` / `c` | WebSocket text, binary, closed (last accepted socket) |
//! | `a` | the client aborts its most recent unanswered request |
//! | `t <ms>` | time passes |
//! | `s <text>` / `e` / `x` | the application sends text / binary, or closes (last session) |
//!
//! In paths and bodies `{sid}` is the latest Engine.IO sid or SSE session,
//! `{last}` the latest SSE event id, and `~` the record separator 0x1e.
//!
//! Checked on every input: no panic; every request gets at most one final
//! answer and nothing after it; chunks only inside a started stream;
//! `Closed` once per `Opened`; and once every client is gone and enough
//! time has passed, no session, connection or timer is left.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use duplex_polling::{
    Endpoint, EngineIoConfig, EngineIoServer, Event, HttpTransmit, Message, Request, RequestId,
    SessionId, SockJsConfig, SockJsServer, SseConfig, SseServer,
};
use http::Method;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Engine.IO (v4 and v3, small ping and payload limits).
pub fn engineio(data: &[u8]) {
    let config = EngineIoConfig {
        ping_interval: Duration::from_millis(300),
        ping_timeout: Duration::from_millis(200),
        upgrade_timeout: Duration::from_millis(500),
        max_http_buffer_size: 256,
        allow_eio3: true,
        max_sessions: 8,
        ..EngineIoConfig::default()
    }
    .with_rng(StdRng::seed_from_u64(1));
    run(EngineIoServer::new(config), data);
}

/// SockJS (small response limit).
pub fn sockjs(data: &[u8]) {
    let config = SockJsConfig {
        response_limit: 256,
        max_body: 256,
        max_sessions: 8,
        cookie_needed: data.first().is_some_and(|b| b & 1 == 1),
        ..SockJsConfig::default()
    }
    .with_rng(StdRng::seed_from_u64(2));
    run(SockJsServer::new(config), data);
}

/// Server-Sent Events (small response limit and replay buffer).
pub fn sse(data: &[u8]) {
    let config = SseConfig {
        response_limit: 128,
        replay_capacity: 4,
        max_sessions: 8,
        ..SseConfig::default()
    }
    .with_rng(StdRng::seed_from_u64(3));
    run(SseServer::new(config), data);
}

#[derive(Default)]
struct Observer {
    /// Requests answered for good.
    finished: HashSet<RequestId>,
    streaming: HashSet<RequestId>,
    sockets: Vec<RequestId>,
    pending: Vec<RequestId>,
    open: Vec<SessionId>,
    opened: HashSet<SessionId>,
    closed: HashSet<SessionId>,
    sid: String,
    last_event_id: String,
}

impl Observer {
    fn drain<E: Endpoint>(&mut self, machine: &mut E) {
        while let Some(event) = machine.poll_event() {
            match event {
                Event::Opened { session, .. } => {
                    assert!(self.opened.insert(session.clone()), "opened twice");
                    self.sid = session.to_string();
                    self.open.push(session);
                }
                Event::Closed { session, .. } => {
                    assert!(self.opened.contains(&session), "closed before opened");
                    assert!(self.closed.insert(session.clone()), "closed twice");
                    self.open.retain(|s| s != &session);
                }
                Event::Message { session, .. } => {
                    assert!(self.opened.contains(&session), "message before opened");
                }
            }
        }
        while let Some(t) = machine.poll_transmit() {
            let id = t.request();
            assert!(!self.finished.contains(&id), "{t:?} after the end");
            match t {
                HttpTransmit::Response { response, .. } => {
                    assert!(!self.streaming.contains(&id), "response inside a stream");
                    self.finish(id);
                    // Engine.IO handshakes carry the sid.
                    if let Some(sid) = response.body.strip_prefix(b"0{").and_then(extract_sid) {
                        self.sid = sid;
                    }
                }
                HttpTransmit::StreamStart { .. } => {
                    assert!(self.streaming.insert(id), "stream started twice");
                }
                HttpTransmit::StreamChunk { data, .. } => {
                    assert!(self.streaming.contains(&id), "chunk outside a stream");
                    let text = String::from_utf8_lossy(&data);
                    if let Some(line) = text.lines().rev().find_map(|l| l.strip_prefix("id: ")) {
                        self.last_event_id = line.to_owned();
                    }
                }
                HttpTransmit::StreamEnd { .. } => {
                    assert!(self.streaming.remove(&id), "end without a stream");
                    self.finish(id);
                }
                HttpTransmit::AcceptWebSocket { .. } => {
                    self.pending.retain(|&p| p != id);
                    self.sockets.push(id);
                }
                HttpTransmit::WebSocketMessage { message, .. } => {
                    assert!(self.sockets.contains(&id), "message on an unknown socket");
                    if let Message::Text(text) = message {
                        let json = text.as_bytes().strip_prefix(b"0{");
                        if let Some(sid) = json.and_then(extract_sid) {
                            self.sid = sid;
                        }
                    }
                }
                HttpTransmit::CloseWebSocket { .. } => {
                    assert!(self.sockets.contains(&id), "close of an unknown socket");
                    self.sockets.retain(|&s| s != id);
                    self.finish(id);
                }
            }
        }
    }

    fn finish(&mut self, id: RequestId) {
        self.finished.insert(id);
        self.pending.retain(|&p| p != id);
    }
}

fn extract_sid(json_after_brace: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(json_after_brace).ok()?;
    let rest = text.strip_prefix("\"sid\":\"")?;
    Some(rest.split('"').next()?.to_owned())
}

fn run<E: Endpoint>(mut machine: E, data: &[u8]) {
    let start = Instant::now();
    let mut now = start;
    let mut next_id = 0u64;
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut obs = Observer::default();
    let mut counter = 0u32;
    for line in data.split(|&b| b == b'\n').take(256) {
        let line = String::from_utf8_lossy(line);
        let (op, arg) = line.split_once(' ').unwrap_or((&line, ""));
        let arg = arg
            .replace("{sid}", &obs.sid)
            .replace("{last}", &obs.last_event_id)
            .replace('~', "\u{1e}");
        let mut request = |method: Method, websocket: bool, body: &str, path: &str| {
            next_id += 1;
            let mut r = Request::new(RequestId(next_id), method, path).body(body.to_owned());
            r.websocket = websocket;
            for (name, value) in headers.drain(..) {
                r = r.header(&name, &value);
            }
            r
        };
        match op {
            "G" | "O" | "D" | "W" => {
                let method = match op {
                    "O" => Method::OPTIONS,
                    "D" => Method::DELETE,
                    _ => Method::GET,
                };
                let r = request(method, op == "W", "", &arg);
                obs.pending.push(r.id);
                machine.handle_request(r, now);
            }
            "P" => {
                let (path, body) = arg.split_once(' ').unwrap_or((&arg, ""));
                let r = request(Method::POST, false, body, path);
                obs.pending.push(r.id);
                machine.handle_request(r, now);
            }
            "H" => {
                if let Some((name, value)) = arg.split_once(": ") {
                    headers.push((name.to_owned(), value.to_owned()));
                }
            }
            "w" | "b" => {
                if let Some(&ws) = obs.sockets.last() {
                    let message = if op == "w" {
                        Message::text(arg.clone())
                    } else {
                        Message::binary(arg.clone().into_bytes())
                    };
                    machine.handle_websocket_message(ws, message, now);
                }
            }
            "c" => {
                if let Some(ws) = obs.sockets.pop() {
                    obs.finished.insert(ws);
                    machine.handle_websocket_closed(ws, now);
                }
            }
            "a" => {
                if let Some(r) = obs.pending.pop() {
                    obs.finished.insert(r);
                    obs.streaming.remove(&r);
                    machine.abort(r, now);
                }
            }
            "t" => {
                let ms: u64 = arg.trim().parse().unwrap_or(1).min(3_600_000);
                now += Duration::from_millis(ms);
                machine.handle_timeout(now);
            }
            "s" | "e" => {
                if let Some(s) = obs.open.last() {
                    counter += 1;
                    let message = if op == "s" {
                        Message::text(format!("{arg}{counter}"))
                    } else {
                        Message::binary(arg.clone().into_bytes())
                    };
                    let _ = machine.send(s, message, now);
                }
            }
            "x" => {
                if let Some(s) = obs.open.last().cloned() {
                    let _ = machine.close_session(&s, 3000, "bye", now);
                }
            }
            _ => {}
        }
        obs.drain(&mut machine);
    }
    // Every client goes away; after enough time nothing may be left.
    for r in std::mem::take(&mut obs.pending) {
        obs.finished.insert(r);
        obs.streaming.remove(&r);
        machine.abort(r, now);
        obs.drain(&mut machine);
    }
    while let Some(ws) = obs.sockets.pop() {
        obs.finished.insert(ws);
        machine.handle_websocket_closed(ws, now);
        obs.drain(&mut machine);
    }
    for _ in 0..64 {
        now += Duration::from_secs(60);
        machine.handle_timeout(now);
        obs.drain(&mut machine);
        for r in std::mem::take(&mut obs.pending) {
            obs.finished.insert(r);
            obs.streaming.remove(&r);
            machine.abort(r, now);
            obs.drain(&mut machine);
        }
    }
    assert_eq!(machine.session_count(), 0, "sessions left behind");
    assert_eq!(machine.poll_timeout(), None, "timers left behind");
}

#[cfg(test)]
mod tests {
    #[test]
    fn engineio_program_reaches_the_upgrade() {
        super::engineio(b"G /?EIO=4&transport=polling\nW /?EIO=4&transport=websocket&sid={sid}\nw 2probe\nw 5\ns hi\nt 400\n");
    }
}
