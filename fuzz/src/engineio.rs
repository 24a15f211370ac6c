//! Fuzz targets for duplex-engineio: the three polling payload decoders.
//!
//! Each decodes the input whole (zero-copy) and incrementally in two pieces
//! split at a point taken from the input, checks that both agree, and that
//! whatever decoded re-encodes to a body that decodes to the same packets.

use crate::input::Input;
use bytes::Bytes;
use duplex_engineio::{Limits, Packet, PayloadDecoder, PayloadFormat, decode_payload_vec};

const LIMITS: Limits = Limits {
    max_payload: 64 * 1024,
    max_packets: 1024,
};

fn incremental(
    body: &[u8],
    format: PayloadFormat,
    split: usize,
) -> Result<Vec<Packet>, duplex_engineio::Error> {
    let mut decoder = PayloadDecoder::new(format, LIMITS);
    let mut out = Vec::new();
    let (a, b) = body.split_at(split.min(body.len()));
    for piece in [a, b] {
        decoder.receive(piece)?;
        assert!(decoder.buffered() <= LIMITS.max_payload);
        while let Some(p) = decoder.poll_packet()? {
            out.push(p);
        }
    }
    decoder.finish();
    while let Some(p) = decoder.poll_packet()? {
        out.push(p);
    }
    Ok(out)
}

fn payload(data: &[u8], format: PayloadFormat) {
    let split = data.first().map_or(0, |&b| usize::from(b));
    let whole = decode_payload_vec(Bytes::copy_from_slice(data), format, LIMITS);
    let pieces = incremental(data, format, split);
    match (&whole, &pieces) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "whole and split decoding disagree"),
        (Err(_), Err(_)) => {}
        _ => panic!("whole {whole:?} but split {pieces:?}"),
    }
    if let Ok(packets) = whole {
        // Re-encoding what decoded must decode back to it (v4 text cannot
        // carry 0x1e, which the decoder never yields inside a packet).
        let again = format.encode_to_bytes(&packets);
        let back = decode_payload_vec(again, format, Limits::default());
        assert_eq!(
            back.ok().as_ref(),
            Some(&packets),
            "re-encoding changed the packets"
        );
    }
}

/// A v4 polling body (`0x1e`-joined, `b`+base64 binary).
pub fn payload_v4(data: &[u8]) {
    payload(data, PayloadFormat::V4);
}

/// A v3 string payload (`<len>:<packet>` in UTF-16 units, `b4`+base64 binary).
pub fn payload_v3_string(data: &[u8]) {
    payload(data, PayloadFormat::V3String);
}

/// A v3 binary (XHR2) payload.
pub fn payload_v3_binary(data: &[u8]) {
    payload(data, PayloadFormat::V3Binary);
}

// ---------------------------------------------------------------------------
// engineio_client_session
// ---------------------------------------------------------------------------

use std::time::{Duration, Instant};

use duplex_engineio::client::{
    ClientConfig, ClientEvent, ClientSession, ClientState, ClientTransmit, CloseReason,
};
use duplex_engineio::{TransportKind, Utf8Bytes, WsMessage};

/// Packets the server sends, so that a short input reaches the deep states
/// (an open with an upgrade, the probe answer, pings) that random bytes
/// would seldom spell.
const CLIENT_PACKETS: [&str; 14] = [
    r#"0{"sid":"s","upgrades":["websocket"],"pingInterval":300,"pingTimeout":200}"#,
    r#"0{"sid":"a b/é","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000}"#,
    "1",
    "2",
    "2probe",
    "3probe",
    "3",
    "4hi",
    "bAQI=",
    "5",
    "6",
    "9",
    "",
    "0{",
];

fn packet(index: u8) -> &'static str {
    CLIENT_PACKETS
        .get(usize::from(index) % CLIENT_PACKETS.len())
        .copied()
        .unwrap_or_default()
}

/// The WebSocket as the adapter sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ws {
    None,
    Connecting,
    Open,
}

/// A `ClientSession` driven as a faithful adapter drives it: it reports
/// only on the requests and the WebSocket the session asked for.
///
/// Input: a settings byte (bit 0: WebSocket handshake, bit 1: upgrade, bit
/// 2: `Opened` waits for the upgrade), then commands, one byte each with
/// their arguments: 0 GET body (length byte, bytes); 1 GET body of table
/// packets (count byte, index bytes, joined with the record separator); 2
/// GET error; 3 POST done; 4 POST error; 5 WebSocket open; 6 WebSocket text
/// (length byte, bytes made UTF-8); 7 WebSocket table packet (index byte);
/// 8 WebSocket binary (length byte, bytes); 9 WebSocket closed (byte: bit 0
/// error); 10 send text (length byte); 11 send binary (length byte); 12
/// close; 13 close for a parse error; 14 advance the clock (byte: tens of
/// milliseconds); 15 advance to the next deadline.
///
/// Checks: never two GETs, nor two POSTs while open; WebSocket writes only
/// on an open WebSocket; every POST body decodes; `Opened` once and before
/// any message; `Upgraded` or `UpgradeFailed` at most once; `Closed` once,
/// exactly when the state is `Closed`, and nothing after it; no deadline
/// at or before the time just handled.
pub fn client_session(data: &[u8]) {
    let mut input = Input(data);
    let settings = input.byte();
    let config = ClientConfig {
        transport: if settings & 1 != 0 {
            TransportKind::WebSocket
        } else {
            TransportKind::Polling
        },
        upgrade: settings & 2 != 0,
        open_after_upgrade: settings & 4 != 0,
        ..ClientConfig::default()
    };
    let t0 = Instant::now();
    let mut now = t0;
    let mut s = ClientSession::new(config, now);
    let (mut gets, mut posts, mut ws) = (0u32, 0u32, Ws::None);
    let (mut opened, mut upgrade_ended, mut closed) = (false, false, false);

    while !input.0.is_empty() {
        match input.byte() % 16 {
            0 => {
                let body = Bytes::copy_from_slice(input.sized());
                if gets > 0 {
                    gets -= 1;
                    s.handle_get_response(body, now);
                }
            }
            1 => {
                let n = usize::from(input.byte() % 8);
                let body: Vec<&str> = input.bytes(n).iter().map(|&i| packet(i)).collect();
                if gets > 0 {
                    gets -= 1;
                    s.handle_get_response(Bytes::from(body.join("\x1e")), now);
                }
            }
            2 if gets > 0 => {
                gets -= 1;
                s.handle_get_error();
            }
            3 if posts > 0 => {
                posts -= 1;
                s.handle_post_done();
            }
            4 if posts > 0 => {
                posts -= 1;
                s.handle_post_error();
            }
            5 if ws == Ws::Connecting => {
                ws = Ws::Open;
                s.handle_ws_open();
            }
            6 => {
                let text = String::from_utf8_lossy(input.sized()).into_owned();
                if ws == Ws::Open {
                    s.handle_ws_message(WsMessage::Text(Utf8Bytes::from(text)), now);
                }
            }
            7 => {
                let p = packet(input.byte());
                if ws == Ws::Open {
                    s.handle_ws_message(WsMessage::Text(Utf8Bytes::from(p.to_owned())), now);
                }
            }
            8 => {
                let data = Bytes::copy_from_slice(input.sized());
                if ws == Ws::Open {
                    s.handle_ws_message(WsMessage::Binary(data), now);
                }
            }
            9 => {
                let error = input.byte() & 1 != 0;
                if ws != Ws::None {
                    ws = Ws::None;
                    s.handle_ws_closed(error);
                }
            }
            10 => {
                // A v4 polling body joins packets with 0x1e and has no way
                // to escape it: a text holding one arrives as two packets,
                // here as in the reference (see docs/fuzzing.md), so the
                // application's texts leave it out.
                let text = String::from_utf8_lossy(input.sized()).replace('\x1e', " ");
                s.send_message(Utf8Bytes::from(text));
            }
            11 => s.send_binary(Bytes::copy_from_slice(input.sized())),
            12 => s.close(),
            13 => s.close_with(CloseReason::ParseError),
            14 => {
                now += Duration::from_millis(u64::from(input.byte()) * 10);
                s.handle_timeout(now);
                assert!(
                    s.poll_timeout().is_none_or(|d| d > now),
                    "a deadline passed"
                );
            }
            15 => {
                if let Some(deadline) = s.poll_timeout() {
                    assert!(deadline >= now);
                    now = deadline;
                    s.handle_timeout(now);
                    assert!(
                        s.poll_timeout().is_none_or(|d| d > now),
                        "a deadline passed"
                    );
                }
            }
            _ => {}
        }
        let closed_before = closed;
        while let Some(t) = s.poll_transmit() {
            match t {
                ClientTransmit::Get => {
                    assert!(!closed_before, "a GET after Closed");
                    gets += 1;
                }
                ClientTransmit::Post(body) => {
                    assert!(!closed_before, "a POST after Closed");
                    posts += 1;
                    let packets = duplex_engineio::decode_payload_vec(
                        body,
                        PayloadFormat::V4,
                        Limits::default(),
                    );
                    assert!(packets.is_ok(), "our POST body does not decode");
                }
                ClientTransmit::OpenWebSocket => {
                    assert_eq!(ws, Ws::None, "a second WebSocket");
                    assert!(!closed_before);
                    ws = Ws::Connecting;
                }
                ClientTransmit::CloseWebSocket => ws = Ws::None,
                ClientTransmit::WebSocket(_) => {
                    assert_eq!(ws, Ws::Open, "a write on a WebSocket that is not open");
                }
            }
        }
        while let Some(e) = s.poll_event() {
            assert!(!closed, "an event after Closed: {e:?}");
            match e {
                ClientEvent::Opened(_) => {
                    assert!(!opened, "Opened twice");
                    opened = true;
                }
                ClientEvent::Message(_) | ClientEvent::Binary(_) => {
                    assert!(opened, "a message before Opened");
                }
                ClientEvent::Upgraded | ClientEvent::UpgradeFailed => {
                    assert!(!upgrade_ended, "the upgrade ended twice");
                    upgrade_ended = true;
                }
                ClientEvent::Closed(_) => closed = true,
            }
        }
        assert!(gets <= 1, "two GETs in flight");
        if s.state() != ClientState::Closed {
            assert!(posts <= 1, "two POSTs in flight");
        } else {
            assert!(s.poll_timeout().is_none());
        }
        assert_eq!(closed, s.state() == ClientState::Closed);
    }
}

// ---------------------------------------------------------------------------
// engineio_server
// ---------------------------------------------------------------------------

use std::collections::{HashMap, HashSet};

use duplex_engineio::ProtocolVersion;
use duplex_engineio::server::{
    PostBody, QueueLimits, Server, ServerConfig, ServerEvent, ServerTransmit, SessionId,
};
use rand::SeedableRng;

/// Packets a client sends, so that a short input reaches the deep states
/// (the probe, the upgrade, pongs, a close) that random bytes would seldom
/// spell.
const SERVER_PACKETS: [&str; 12] = [
    "2probe", "5", "3", "2", "4hi", "4", "1", "6", "bAQI=", "3probe", "0", "9",
];

/// Connection ids stand for requests; a WebSocket keeps its request's id.
type Conn = u64;

/// duplex-engineio's server session driven as its HTTP binding drives it.
///
/// Input: a settings byte (bit 0: accept v3, bit 1: no upgrades, bit 2:
/// close on queue overflow), then commands, one byte each with their
/// arguments (a "pick" byte chooses among the sessions or connections
/// known): 0 handshake (byte: bit 0 WebSocket, bit 1 v3); 1 poll (pick); 2
/// POST of table packets (pick, count byte, index bytes); 3 POST of raw
/// bytes (pick, byte: bit 0 octet-stream, bit 1 JSONP, sized bytes); 4
/// upgrade (pick); 5 table packet on a WebSocket (pick, index); 6 raw text
/// or binary on a WebSocket (pick, byte, sized bytes); 7 a request or
/// WebSocket gone (pick); 8 send (pick, sized text); 9 send_all of two
/// (pick); 10 close (pick); 11 advance the clock by tens of milliseconds
/// without `handle_timeout` (the next input must run the timers itself); 12
/// advance and `handle_timeout`; 13 jump to the next deadline.
///
/// Checks: every request is answered at most once and only requests handed
/// in are; WebSocket messages and closes only on accepted, unclosed
/// connections; `Opened` once per session, messages only between `Opened`
/// and `Closed`, `Closed` once; after any input no deadline is at or
/// before its time; once every session is closed and the close timeout
/// passed, nothing is left.
pub fn server(data: &[u8]) {
    let mut input = Input(data);
    let settings = input.byte();
    let config = ServerConfig {
        ping_interval: Duration::from_millis(300),
        ping_timeout: Duration::from_millis(200),
        upgrade_timeout: Duration::from_millis(1000),
        max_payload: 200,
        allow_upgrades: settings & 2 == 0,
        allow_eio3: settings & 1 != 0,
        max_sessions: 8,
        queue: QueueLimits {
            max_messages: 4,
            max_bytes: 256,
            close_on_overflow: settings & 4 != 0,
        },
        ..ServerConfig::default()
    }
    .with_rng(rand::rngs::StdRng::seed_from_u64(u64::from(settings)));
    let t0 = Instant::now();
    let mut now = t0;
    let mut s = Server::<Conn>::new(config);
    let mut next: Conn = 0;
    // Requests handed in and not answered; accepted WebSockets not closed.
    let mut waiting: HashSet<Conn> = HashSet::new();
    let mut sockets: HashSet<Conn> = HashSet::new();
    let mut answered: HashSet<Conn> = HashSet::new();
    let mut sessions: Vec<SessionId> = Vec::new();
    let mut versions: HashMap<SessionId, ProtocolVersion> = HashMap::new();
    let mut closed: HashSet<SessionId> = HashSet::new();

    while !input.is_empty() {
        next += 1;
        let pick = |input: &mut Input, list: &[SessionId]| -> String {
            let i = usize::from(input.byte());
            list.get(i % list.len().max(1))
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default()
        };
        let mut conns: Vec<Conn> = sockets.union(&waiting).copied().collect();
        conns.sort_unstable();
        let pick_conn = |input: &mut Input| -> Conn {
            let i = usize::from(input.byte());
            conns.get(i % conns.len().max(1)).copied().unwrap_or(0)
        };
        let command = input.byte() % 14;
        match command {
            0 => {
                let b = input.byte();
                let transport = if b & 1 != 0 {
                    TransportKind::WebSocket
                } else {
                    TransportKind::Polling
                };
                let version = if b & 2 != 0 {
                    ProtocolVersion::V3
                } else {
                    ProtocolVersion::V4
                };
                waiting.insert(next);
                s.handle_handshake(next, transport, version, now);
            }
            1 => {
                let sid = pick(&mut input, &sessions);
                waiting.insert(next);
                s.handle_poll(&sid, next, now);
            }
            2 => {
                let sid = pick(&mut input, &sessions);
                let n = usize::from(input.byte() % 8);
                let packets: Vec<&str> = input
                    .bytes(n)
                    .iter()
                    .filter_map(|&i| SERVER_PACKETS.get(usize::from(i) % SERVER_PACKETS.len()))
                    .copied()
                    .collect();
                let body = Bytes::from(packets.join("\x1e"));
                waiting.insert(next);
                let body = PostBody::Payload {
                    body,
                    octet_stream: false,
                };
                s.handle_post(&sid, next, body, now);
            }
            3 => {
                let sid = pick(&mut input, &sessions);
                let kind = input.byte();
                let bytes = Bytes::copy_from_slice(input.sized());
                let body = if kind & 2 != 0 {
                    PostBody::Jsonp(bytes)
                } else {
                    PostBody::Payload {
                        body: bytes,
                        octet_stream: kind & 1 != 0,
                    }
                };
                waiting.insert(next);
                s.handle_post(&sid, next, body, now);
            }
            4 => {
                let sid = pick(&mut input, &sessions);
                waiting.insert(next);
                s.handle_upgrade(&sid, next, now);
            }
            5 => {
                let conn = pick_conn(&mut input);
                let p = SERVER_PACKETS
                    .get(usize::from(input.byte()) % SERVER_PACKETS.len())
                    .copied()
                    .unwrap_or_default();
                if sockets.contains(&conn) {
                    let text = Utf8Bytes::from(p.to_owned());
                    s.handle_message(conn, WsMessage::Text(text), now);
                }
            }
            6 => {
                let conn = pick_conn(&mut input);
                let binary = input.byte() & 1 != 0;
                let data = input.sized();
                if sockets.contains(&conn) {
                    let message = if binary {
                        WsMessage::Binary(Bytes::copy_from_slice(data))
                    } else {
                        let text = String::from_utf8_lossy(data).into_owned();
                        WsMessage::Text(Utf8Bytes::from(text))
                    };
                    s.handle_message(conn, message, now);
                }
            }
            7 => {
                let conn = pick_conn(&mut input);
                if sockets.remove(&conn) || waiting.remove(&conn) {
                    s.handle_closed(conn, now);
                }
            }
            8 => {
                let sid = pick(&mut input, &sessions);
                let text = String::from_utf8_lossy(input.sized()).into_owned();
                let _ = s.send(&sid, WsMessage::Text(Utf8Bytes::from(text)), now);
            }
            9 => {
                let sid = pick(&mut input, &sessions);
                let two = vec![
                    WsMessage::Text(Utf8Bytes::from("x".to_owned())),
                    WsMessage::Binary(Bytes::from_static(b"\x01")),
                ];
                let _ = s.send_all(&sid, two, now);
            }
            10 => {
                let sid = pick(&mut input, &sessions);
                let _ = s.close(&sid, now);
            }
            11 => now += Duration::from_millis(u64::from(input.byte()) * 10),
            12 => {
                now += Duration::from_millis(u64::from(input.byte()) * 10);
                s.handle_timeout(now);
            }
            _ => {
                if let Some(deadline) = s.poll_timeout() {
                    now = now.max(deadline);
                    s.handle_timeout(now);
                }
            }
        }
        while let Some(t) = s.poll_transmit() {
            match t {
                ServerTransmit::Packets { request, .. }
                | ServerTransmit::PostAccepted { request }
                | ServerTransmit::Refuse { request, .. } => {
                    assert!(
                        waiting.remove(&request),
                        "an answer to {request} not waiting"
                    );
                    assert!(answered.insert(request), "{request} answered twice");
                }
                ServerTransmit::AcceptWebSocket { connection } => {
                    assert!(
                        waiting.remove(&connection),
                        "accepting {connection} not waiting"
                    );
                    assert!(answered.insert(connection), "{connection} answered twice");
                    sockets.insert(connection);
                }
                ServerTransmit::Send { connection, .. } => {
                    assert!(
                        sockets.contains(&connection),
                        "a message on a closed WebSocket"
                    );
                }
                ServerTransmit::CloseWebSocket { connection, .. } => {
                    assert!(sockets.remove(&connection), "closing a closed WebSocket");
                }
            }
        }
        while let Some(e) = s.poll_event() {
            match e {
                ServerEvent::Opened {
                    session, version, ..
                } => {
                    assert!(!versions.contains_key(&session), "Opened twice");
                    versions.insert(session.clone(), version);
                    sessions.push(session);
                }
                ServerEvent::Message { session, .. } => {
                    assert!(versions.contains_key(&session), "a message before Opened");
                    assert!(!closed.contains(&session), "a message after Closed");
                }
                ServerEvent::Closed { session, .. } => {
                    assert!(versions.contains_key(&session), "Closed before Opened");
                    assert!(closed.insert(session), "Closed twice");
                }
            }
        }
        // Every input runs the timers due by its time (11 only moves the
        // clock).
        assert!(
            command == 11 || s.poll_timeout().is_none_or(|d| d > now),
            "a deadline at or before the last input"
        );
    }
    for sid in &sessions {
        let _ = s.close(sid.as_str(), now);
    }
    for conn in waiting.iter().chain(sockets.iter()) {
        s.handle_closed(*conn, now);
    }
    s.handle_timeout(now + Duration::from_secs(60));
    assert_eq!(s.session_count(), 0, "sessions left behind");
    assert_eq!(s.connection_count(), 0, "connections left behind");
}
