//! Fuzz targets for duplex-ws: the frame decoder, both handshake parsers,
//! and the connection state machine in both roles.
//!
//! Inputs that need settings or commands start with a few bytes that choose
//! them (documented on each target), so that a seed can be written by hand
//! and the fuzzer can mutate settings and data alike.

use crate::input::Input;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use duplex_ws::handshake::{
    ClientHandshake, ClientRequest, HandshakeError, HandshakeLimits, ServerHandshake, accept_key,
};
use duplex_ws::{
    CloseCode, CloseFrame, Config, Connection, DeflateConfig, DeflateParams, Error, Event, Frame,
    FrameDecoder, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OpCode, Role, State, apply_mask,
};
use rand::RngCore;

/// A deterministic stand-in for the OS generator, so that a crash replays.
struct CountingRng(u64);

impl RngCore for CountingRng {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }

    fn next_u64(&mut self) -> u64 {
        // SplitMix64: cheap and every state gives a different key.
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for chunk in dst.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}

fn peer_of(role: Role) -> Role {
    match role {
        Role::Server => Role::Client,
        Role::Client => Role::Server,
    }
}

/// The frames in bytes a connection in `sender` role wrote: all of it must
/// be valid frames for the peer, masked exactly when a client sent them,
/// with RSV1 only where permessage-deflate allows it.
fn decode_sent(sender: Role, deflate: bool, bytes: &[u8]) -> Vec<Frame> {
    let mut dec = FrameDecoder::new(peer_of(sender), 1 << 20);
    dec.set_allow_rsv1(true);
    let mut buf = BytesMut::from(bytes);
    let mut frames = Vec::new();
    while let Some(frame) = dec.decode(&mut buf).expect("we only send valid frames") {
        assert_eq!(frame.header.mask.is_some(), sender == Role::Client);
        // RSV1 marks a compressed message's first frame, and nothing else.
        if frame.header.rsv1 {
            assert!(deflate, "RSV1 without permessage-deflate");
            assert!(matches!(frame.header.opcode, OpCode::Text | OpCode::Binary));
        }
        frames.push(frame);
    }
    assert!(buf.is_empty(), "trailing bytes after the frames we sent");
    frames
}

// ---------------------------------------------------------------------------
// ws_frame
// ---------------------------------------------------------------------------

/// `FrameDecoder` over arbitrary bytes.
///
/// Input: a settings byte (bit 0: server role, bit 1: RSV1 allowed, bits
/// 2-7: frame limit in units of 8 bytes), a chunk-size byte, then the
/// stream, fed in chunks with partial unmasking between them.
///
/// Checks: every decoded frame obeys the rules for the role and the limit,
/// re-encodes to bytes that decode to the same frame, and partial
/// unmasking hands out a prefix of its payload; the buffer never holds more
/// than one unfinished frame.
pub fn frame(data: &[u8]) {
    let mut input = Input(data);
    let settings = input.byte();
    let role = if settings & 1 != 0 {
        Role::Server
    } else {
        Role::Client
    };
    let allow_rsv1 = settings & 2 != 0;
    let limit = usize::from(settings >> 2) * 8;
    let chunk = usize::from(input.byte()).max(1);
    let stream = input.rest();

    let mut dec = FrameDecoder::new(role, limit);
    dec.set_allow_rsv1(allow_rsv1);
    let mut buf = BytesMut::new();
    let mut partial = Vec::new();
    for piece in stream.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(frame)) => {
                    assert!(frame.payload.starts_with(&partial), "partial unmasking");
                    partial.clear();
                    check_frame(&frame, role, allow_rsv1, limit);
                }
                Ok(None) => {
                    partial.extend_from_slice(dec.unmask_partial(&mut buf));
                    match dec.pending_header() {
                        Some(h) => {
                            assert!(h.payload_len <= limit as u64);
                            assert!(buf.len() < MAX_HEADER_LEN + limit);
                        }
                        None => assert!(buf.len() < MAX_HEADER_LEN),
                    }
                    break;
                }
                // The decoder is not used after an error.
                Err(_) => return,
            }
        }
    }
}

fn check_frame(frame: &Frame, role: Role, allow_rsv1: bool, limit: usize) {
    let h = &frame.header;
    assert_eq!(h.payload_len, frame.payload.len() as u64);
    assert!(frame.payload.len() <= limit);
    assert_eq!(h.mask.is_some(), role == Role::Server);
    assert!(!h.rsv2 && !h.rsv3 && (allow_rsv1 || !h.rsv1));
    if h.opcode.is_control() {
        assert!(h.fin && frame.payload.len() <= MAX_CONTROL_PAYLOAD);
    }
    // Encode again (the shortest length form) and decode: the same frame.
    let mut wire = BytesMut::new();
    h.encode(&mut wire);
    assert_eq!(wire.len(), h.encoded_len());
    let start = wire.len();
    wire.extend_from_slice(&frame.payload);
    if let Some(key) = h.mask {
        apply_mask(&mut wire[start..], key, 0);
    }
    let mut dec = FrameDecoder::new(role, limit);
    dec.set_allow_rsv1(allow_rsv1);
    let again = dec.decode(&mut wire).expect("re-encoded frame decodes");
    assert_eq!(again.as_ref(), Some(frame));
    assert!(wire.is_empty());
}

// ---------------------------------------------------------------------------
// ws_request_head
// ---------------------------------------------------------------------------

/// `ServerHandshake` over arbitrary request bytes.
///
/// Input: a byte choosing the head limit (0: the default 16 KiB, else
/// that many times 16 bytes), a byte choosing the header limit (0: the
/// default 64), a chunk-size byte, then the request.
///
/// Checks: the head limit holds while waiting; an accepted request gives a
/// valid key and a 101 with the right accept value, and the bytes after
/// the head are kept; a refusal gives a well-formed error response.
pub fn request_head(data: &[u8]) {
    let mut input = Input(data);
    let defaults = HandshakeLimits::default();
    let limits = HandshakeLimits {
        max_head_size: match input.byte() {
            0 => defaults.max_head_size,
            n => usize::from(n) * 16,
        },
        max_headers: match input.byte() {
            0 => defaults.max_headers,
            n => usize::from(n % 100),
        },
    };
    let chunk = usize::from(input.byte()).max(1);
    let request = input.rest();

    let mut hs = ServerHandshake::with_limits(limits);
    let mut fed = 0;
    for piece in request.chunks(chunk) {
        fed += piece.len();
        match hs.receive(piece) {
            Ok(None) => assert!(fed <= limits.max_head_size, "{fed} bytes of head held"),
            Ok(Some(req)) => {
                let key = req.key().to_owned();
                let response = req
                    .accept(None, None, &[])
                    .expect("accept without protocol");
                check_101(&response, &accept_key(key.as_bytes()));
                if let Some(p) = req.protocols().first() {
                    assert!(req.accept(Some(p), None, &[]).is_ok());
                }
                let remaining = hs.into_remaining();
                let head_len = fed - remaining.len();
                assert!(head_len <= limits.max_head_size);
                assert_eq!(&remaining[..], &request[head_len..fed]);
                return;
            }
            Err(e) => {
                check_error_response(&e);
                return;
            }
        }
    }
}

fn check_101(response: &[u8], accept: &str) {
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut parsed = httparse::Response::new(&mut headers);
    let status = parsed.parse(response).expect("our 101 parses");
    assert_eq!(status, httparse::Status::Complete(response.len()));
    assert_eq!(parsed.code, Some(101));
    assert!(parsed.headers.iter().any(
        |h| h.name.eq_ignore_ascii_case("sec-websocket-accept") && h.value == accept.as_bytes()
    ));
}

fn check_error_response(e: &HandshakeError) {
    let bytes = e.response();
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut parsed = httparse::Response::new(&mut headers);
    let status = parsed.parse(&bytes).expect("our error response parses");
    assert!(status.is_complete());
    assert_eq!(parsed.code, Some(e.status()));
    assert!((400..500).contains(&e.status()));
}

// ---------------------------------------------------------------------------
// ws_response_head
// ---------------------------------------------------------------------------

/// The key the response target's client sends: base64 of 16 zero bytes,
/// so seeds can carry the matching accept value.
pub const RESPONSE_TARGET_KEY: &str = "AAAAAAAAAAAAAAAAAAAAAA==";

/// A source that yields only zeros: the response target's fixed key.
struct ZeroRng;

impl RngCore for ZeroRng {
    fn next_u32(&mut self) -> u32 {
        0
    }

    fn next_u64(&mut self) -> u64 {
        0
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        dst.fill(0);
    }
}

/// `ClientHandshake` fed arbitrary response bytes.
///
/// The client offers subprotocols `chat` and `superchat` and the extension
/// `permessage-deflate`, with the key [`RESPONSE_TARGET_KEY`] (accept value
/// `ICX+Yqv66kxgM0FcWaLWlFLwTAI=`). Input: a chunk-size byte, then the
/// response.
///
/// Checks: the head limit holds while waiting; an accepted response names
/// only what was offered, and the bytes after the head are kept.
pub fn response_head(data: &[u8]) {
    let mut input = Input(data);
    let chunk = usize::from(input.byte()).max(1);
    let response = input.rest();
    let request = ClientRequest {
        host: "localhost:8080".into(),
        target: "/chat".into(),
        origin: Some("http://localhost:8080".into()),
        protocols: vec!["chat".into(), "superchat".into()],
        extensions: vec!["permessage-deflate; client_max_window_bits".into()],
        headers: Vec::new(),
    };
    let (mut client, request_bytes) = ClientHandshake::new(&request, &mut ZeroRng);
    // What we send is itself a request our server accepts.
    let parsed = ServerHandshake::new()
        .receive(&request_bytes)
        .expect("our request is valid")
        .expect("our request is complete");
    assert_eq!(parsed.key(), RESPONSE_TARGET_KEY);

    let limit = HandshakeLimits::default().max_head_size;
    let mut fed = 0;
    for piece in response.chunks(chunk) {
        fed += piece.len();
        match client.receive(piece) {
            Ok(None) => assert!(fed <= limit, "{fed} bytes of head held"),
            Ok(Some(resp)) => {
                if let Some(p) = &resp.protocol {
                    assert!(p == "chat" || p == "superchat", "unoffered {p}");
                }
                for ext in &resp.extensions {
                    let name = ext.split(';').next().unwrap_or_default().trim();
                    assert!(name.eq_ignore_ascii_case("permessage-deflate"), "{ext}");
                }
                let remaining = client.into_remaining();
                let head_len = fed - remaining.len();
                assert!(head_len <= limit);
                assert_eq!(&remaining[..], &response[head_len..fed]);
                return;
            }
            Err(_) => return,
        }
    }
}

// ---------------------------------------------------------------------------
// ws_server_connection, ws_client_connection
// ---------------------------------------------------------------------------

/// What the connection must have done, tracked beside it.
#[derive(Debug, Default)]
struct Model {
    /// A close frame went out (ours, an echo, or a failure's).
    sent_close: bool,
    /// The transport is gone (EOF or timeout): nothing more arrives.
    gone: bool,
    /// The kind of the message being sent with `send_frame`.
    outgoing: Option<OpCode>,
    /// The connection ended (a `Close` or `Failed` event).
    ended: bool,
    /// A failure's close frame with this code is owed to the peer.
    failure_code: Option<u16>,
}

/// Drives a `Connection` in `role` with a program read from the input.
///
/// Settings: three bytes. The first has bit 0 auto-pong, bit 1 message
/// assembly, bits 2-5 the outgoing fragment size (0: none), bits 6-7
/// permessage-deflate (see `deflate_params`); the second is
/// the frame limit in units of 4 bytes, the third the message limit in
/// units of 8 bytes.
///
/// Then commands, one byte each, followed by their arguments:
/// 0-2 receive the next `n+1` bytes (n: one byte); 3 receive the rest of
/// the input in chunks of `n` (one byte) bytes; 4 send text (length byte,
/// bytes made UTF-8); 5 send binary (length byte, bytes); 6 send a frame
/// (opcode byte, FIN byte, length byte, bytes made UTF-8); 7 ping, 8 pong
/// (length byte, bytes); 9 close (code: two bytes, reason length byte,
/// reason); 10 advance the clock (byte: hundreds of milliseconds); 11 the
/// transport reached EOF.
fn connection(role: Role, data: &[u8]) {
    let mut input = Input(data);
    let flags = input.byte();
    let fragment = usize::from((flags >> 2) & 0x0f);
    let max_frame_size = usize::from(input.byte()) * 4;
    let max_message_size = usize::from(input.byte()) * 8;
    let config = Config {
        max_frame_size,
        max_message_size,
        auto_pong: flags & 1 != 0,
        assemble_messages: flags & 2 != 0,
        max_outgoing_frame_size: (fragment > 0).then_some(fragment),
        close_timeout: Duration::from_secs(5),
        ..Config::default()
    }
    .with_rng(CountingRng(0));
    let mut conn = Connection::new(role, config);
    // Everything we send goes to a conforming peer, which must accept it.
    let mut peer = Connection::new(peer_of(role), Config::default().with_rng(CountingRng(1)));
    if let Some((client, server)) = deflate_params(flags >> 6) {
        let (own, theirs) = match role {
            Role::Client => (client, server),
            Role::Server => (server, client),
        };
        conn.enable_permessage_deflate(&own);
        peer.enable_permessage_deflate(&theirs);
    }
    let mut model = Model::default();
    let mut now = Instant::now();
    conn.handle_timeout(now);
    let mut largest_chunk = 0;

    while !input.is_empty() {
        let state_before = conn.state();
        let closed = model.sent_close || model.gone;
        let result = match input.byte() % 12 {
            op @ 0..=3 => {
                let (stream, chunk) = if op == 3 {
                    let chunk = usize::from(input.byte()).max(1);
                    (input.rest(), chunk)
                } else {
                    let n = usize::from(input.byte()) + 1;
                    let bytes = input.bytes(n);
                    (bytes, bytes.len().max(1))
                };
                if model.gone {
                    continue;
                }
                for piece in stream.chunks(chunk) {
                    conn.receive(piece);
                    poll_events(&mut conn, &mut model, max_frame_size, max_message_size);
                    let buffered = conn.read_buf().len();
                    assert!(buffered < MAX_HEADER_LEN + max_frame_size.max(1));
                    // BytesMut grows by doubling: at most twice the most
                    // that was ever buffered at once.
                    largest_chunk = largest_chunk.max(piece.len());
                    let capacity = conn.read_buf().capacity();
                    assert!(
                        capacity <= 2 * (MAX_HEADER_LEN + max_frame_size + largest_chunk),
                        "read buffer capacity {capacity} for a frame limit of {max_frame_size}"
                    );
                    let sent = transmit(&mut conn, &mut peer);
                    assert!(
                        sent.iter()
                            .all(|f| matches!(f.header.opcode, OpCode::Pong | OpCode::Close))
                    );
                    if let Some(code) = model.failure_code.take() {
                        let last = sent.last().expect("a close frame after a failure");
                        assert_eq!(last.header.opcode, OpCode::Close);
                        assert_eq!(last.payload.get(..2), Some(&code.to_be_bytes()[..]));
                    }
                }
                conn.handle_timeout(now);
                continue;
            }
            4 => {
                let len = usize::from(input.byte());
                let text = String::from_utf8_lossy(input.bytes(len)).into_owned();
                let r = conn.send_text(&text);
                expect(&r, closed, model.outgoing.is_some().then_some("sequence"));
                r
            }
            5 => {
                let len = usize::from(input.byte());
                let bytes = input.bytes(len);
                let r = conn.send_binary(bytes);
                expect(&r, closed, model.outgoing.is_some().then_some("sequence"));
                r
            }
            6 => {
                let opcode = match input.byte() % 6 {
                    0 => OpCode::Continuation,
                    1 => OpCode::Text,
                    2 => OpCode::Binary,
                    3 => OpCode::Close,
                    4 => OpCode::Ping,
                    _ => OpCode::Pong,
                };
                let fin = input.byte() & 1 != 0;
                let len = usize::from(input.byte());
                let text = String::from_utf8_lossy(input.bytes(len)).into_owned();
                let r = conn.send_frame(opcode, text.as_bytes(), fin);
                let in_sequence = match opcode {
                    OpCode::Continuation => model.outgoing.is_some(),
                    OpCode::Text | OpCode::Binary => model.outgoing.is_none(),
                    _ => false,
                };
                expect(&r, closed, (!in_sequence).then_some("sequence"));
                if r.is_ok() {
                    model.outgoing = if fin {
                        None
                    } else {
                        Some(model.outgoing.unwrap_or(opcode))
                    };
                }
                r
            }
            op @ (7 | 8) => {
                let len = usize::from(input.byte());
                let bytes = input.bytes(len);
                let r = if op == 7 {
                    conn.ping(bytes)
                } else {
                    conn.pong(bytes)
                };
                expect(
                    &r,
                    closed,
                    (bytes.len() > MAX_CONTROL_PAYLOAD).then_some("too long"),
                );
                r
            }
            9 => {
                let code = CloseCode(input.u16());
                let len = usize::from(input.byte());
                let reason = String::from_utf8_lossy(input.bytes(len)).into_owned();
                let r = conn.close(code, &reason);
                let misuse = if !code.is_sendable() {
                    Some("code")
                } else if reason.len() > CloseFrame::MAX_REASON_LEN {
                    Some("too long")
                } else {
                    None
                };
                expect(&r, closed, misuse);
                if r.is_ok() {
                    model.sent_close = true;
                    assert_ne!(conn.state(), State::Open);
                }
                r
            }
            10 => {
                now += Duration::from_millis(u64::from(input.byte()) * 100);
                conn.handle_timeout(now);
                if let Some(deadline) = conn.poll_timeout() {
                    assert!(deadline > now);
                }
                if conn.state() == State::Closed {
                    model.gone |= conn.should_close_transport();
                }
                assert!(!conn.has_pending_transmit());
                continue;
            }
            _ => {
                conn.receive_eof();
                model.gone = true;
                assert_eq!(conn.state(), State::Closed);
                assert!(conn.should_close_transport());
                continue;
            }
        };
        match result {
            Err(_) => {
                assert!(!conn.has_pending_transmit(), "a local error wrote bytes");
                assert_eq!(conn.state(), state_before);
            }
            Ok(()) => {
                let sent = transmit(&mut conn, &mut peer);
                assert!(!sent.is_empty());
            }
        }
        conn.handle_timeout(now);
    }
}

/// permessage-deflate as negotiated between two ends configured alike:
/// 0 off, 1 the defaults, 2 no context takeover either way, 3 the smallest
/// windows at the highest level. Returns (client, server) parameters.
fn deflate_params(mode: u8) -> Option<(DeflateParams, DeflateParams)> {
    let config = match mode {
        1 => DeflateConfig::default(),
        2 => DeflateConfig {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            ..DeflateConfig::default()
        },
        3 => DeflateConfig {
            server_max_window_bits: 9,
            client_max_window_bits: 9,
            level: 9,
            ..DeflateConfig::default()
        },
        _ => return None,
    };
    let (server, response) = config
        .negotiate(&[config.client_offer()])
        .expect("an offer from the same config is accepted");
    let client = config
        .accept_response(&[response])
        .expect("the answer to our own offer is valid")
        .expect("the answer agrees to deflate");
    Some((client, server))
}

/// Checks a command's result: `Closed` once the connection is closing,
/// otherwise the local misuse named, otherwise success.
fn expect(result: &Result<(), Error>, closed: bool, misuse: Option<&str>) {
    match (result, closed, misuse) {
        (Err(Error::Closed), true, _) => {}
        (Ok(()), false, None) => {}
        (Err(Error::FrameSequence(_)), false, Some("sequence")) => {}
        (Err(Error::ControlPayloadTooLong), false, Some("too long")) => {}
        (Err(Error::UnsendableCloseCode(_)), false, Some("code")) => {}
        _ => panic!("got {result:?}, closed {closed}, misuse {misuse:?}"),
    }
}

fn poll_events(conn: &mut Connection, model: &mut Model, max_frame: usize, max_message: usize) {
    while let Some(event) = conn.poll_event() {
        assert!(!model.ended, "event after the end: {event:?}");
        match &event {
            Event::Message(m) => assert!(m.len() <= max_message),
            Event::Fragment { payload, .. } => assert!(payload.len() <= max_frame),
            Event::Ping(p) | Event::Pong(p) => assert!(p.len() <= MAX_CONTROL_PAYLOAD),
            Event::Close(_) => {
                assert_eq!(conn.state(), State::Closed);
                assert!(conn.is_clean_close());
                model.ended = true;
                model.sent_close = true;
            }
            Event::Failed(e) => {
                assert_eq!(conn.state(), State::Closed);
                assert!(conn.should_close_transport());
                assert!(!conn.is_clean_close());
                // The failure's close frame goes out unless ours already did.
                if !model.sent_close {
                    model.failure_code = Some(e.close_code().0);
                }
                model.ended = true;
                model.sent_close = true;
            }
        }
    }
    // A failed or closed connection reads nothing more.
    if model.ended {
        conn.receive(&[0x81, 0x80, 0, 0, 0, 0]);
        assert_eq!(conn.poll_event(), None);
    }
}

/// Moves what `conn` wants to write to its peer; returns the frames.
fn transmit(conn: &mut Connection, peer: &mut Connection) -> Vec<Frame> {
    let mut out = BytesMut::new();
    let n = conn.poll_transmit(&mut out);
    assert_eq!(n, out.len());
    let frames = decode_sent(conn.role(), conn.is_deflate_enabled(), &out);
    peer.receive(&out);
    while let Some(event) = peer.poll_event() {
        assert!(
            !matches!(event, Event::Failed(_)),
            "the peer refused what we sent: {event:?}"
        );
    }
    frames
}

/// A server `Connection` fed arbitrary bytes and commands (see the input
/// format on `connection` in this module's source).
pub fn server_connection(data: &[u8]) {
    connection(Role::Server, data);
}

/// A client `Connection` fed arbitrary bytes and commands.
pub fn client_connection(data: &[u8]) {
    connection(Role::Client, data);
}

// ---------------------------------------------------------------------------
// ws_borrowed_events
// ---------------------------------------------------------------------------

/// How the differential target takes events from one of its connections.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Taker {
    /// `receive`, then `poll_event`: the reference.
    Owned,
    /// `receive`, then `poll_event_ref`.
    Borrowed,
    /// Appended to `read_buf` as an adapter reading into it does, then
    /// `poll_event_ref` and `poll_event` in turn.
    Mixed,
    /// `receive`, then `drain_events_ref` (and `poll_event` for whatever
    /// it leaves, which must be nothing new).
    Drain,
}

/// A borrowed event as the owned event it stands for.
fn owned_event(event: duplex_ws::EventRef<'_>) -> Event {
    match event {
        duplex_ws::EventRef::Text(text) => Event::Message(duplex_ws::Message::Text(
            duplex_ws::Utf8Bytes::copy_from_str(text),
        )),
        duplex_ws::EventRef::Binary(data) => Event::Message(duplex_ws::Message::Binary(
            bytes::Bytes::copy_from_slice(data),
        )),
        duplex_ws::EventRef::Other(event) => event,
    }
}

/// Everything observable about one connection after the stream.
#[derive(Debug, PartialEq)]
struct Observed {
    events: Vec<Event>,
    transmitted: Vec<u8>,
    state: State,
    clean: bool,
}

fn run_taker(
    role: Role,
    config: &dyn Fn() -> Config,
    deflate: Option<&DeflateParams>,
    chunks: &[&[u8]],
    taker: Taker,
) -> Observed {
    let mut conn = Connection::new(role, config());
    if let Some(params) = deflate {
        conn.enable_permessage_deflate(params);
    }
    let mut events = Vec::new();
    let mut transmitted = BytesMut::new();
    for chunk in chunks {
        match taker {
            Taker::Mixed => conn.read_buf().extend_from_slice(chunk),
            _ => conn.receive(chunk),
        }
        if taker == Taker::Drain {
            conn.drain_events_ref(|event| events.push(owned_event(event)));
        }
        let mut borrowed = matches!(taker, Taker::Borrowed | Taker::Mixed);
        loop {
            let event = if borrowed {
                conn.poll_event_ref().map(owned_event)
            } else {
                conn.poll_event()
            };
            let Some(event) = event else { break };
            events.push(event);
            if taker == Taker::Mixed {
                borrowed = !borrowed;
            }
        }
        conn.poll_transmit(&mut transmitted);
    }
    Observed {
        events,
        transmitted: transmitted.to_vec(),
        state: conn.state(),
        clean: conn.is_clean_close(),
    }
}

/// The same bytes, split alike, fed to four connections that take their
/// events with `poll_event`, `poll_event_ref`, both in turn (reading
/// straight into `read_buf`), and `drain_events_ref`.
///
/// Input: a settings byte (bit 0: client role, bit 1 auto-pong, bit 2
/// message assembly off, bits 3-4 permessage-deflate as in
/// `deflate_params`), a frame-limit byte (0: 128 KiB, else units of 4
/// bytes), a message-limit byte (0: 256 KiB, else units of 8 bytes), a
/// count byte `k` and `k` chunk sizes (cycled; 0 counts as 1; none: the
/// stream whole), then the stream.
///
/// Checks: the four see the same events (borrowed ones made owned), send
/// the same bytes and end in the same state; the reference's events obey
/// the limits and nothing follows a `Close` or `Failed`.
pub fn borrowed_events(data: &[u8]) {
    let mut input = Input(data);
    let flags = input.byte();
    let role = if flags & 1 != 0 {
        Role::Client
    } else {
        Role::Server
    };
    let max_frame_size = match input.byte() {
        0 => 1 << 17,
        n => usize::from(n) * 4,
    };
    let max_message_size = match input.byte() {
        0 => 1 << 18,
        n => usize::from(n) * 8,
    };
    let count = usize::from(input.byte());
    let sizes: Vec<usize> = input
        .bytes(count)
        .iter()
        .map(|&s| usize::from(s).max(1))
        .collect();
    let stream = input.rest();
    let mut chunks = Vec::new();
    let mut rest = stream;
    for size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (head, tail) = rest.split_at((*size).min(rest.len()));
        chunks.push(head);
        rest = tail;
    }
    if sizes.is_empty() && !stream.is_empty() {
        chunks.push(stream);
    }
    let config = || {
        Config {
            max_frame_size,
            max_message_size,
            auto_pong: flags & 2 != 0,
            assemble_messages: flags & 4 == 0,
            ..Config::default()
        }
        .with_rng(CountingRng(0))
    };
    let deflate = deflate_params((flags >> 3) & 3).map(|(client, server)| match role {
        Role::Client => client,
        Role::Server => server,
    });

    let reference = run_taker(role, &config, deflate.as_ref(), &chunks, Taker::Owned);
    for (i, event) in reference.events.iter().enumerate() {
        match event {
            Event::Close(_) | Event::Failed(_) => {
                assert_eq!(i + 1, reference.events.len(), "event after the end");
            }
            Event::Message(m) => assert!(m.len() <= max_message_size),
            Event::Fragment { payload, .. } => assert!(payload.len() <= max_frame_size),
            Event::Ping(p) | Event::Pong(p) => assert!(p.len() <= MAX_CONTROL_PAYLOAD),
        }
    }
    decode_sent(role, deflate.is_some(), &reference.transmitted);
    for taker in [Taker::Borrowed, Taker::Mixed, Taker::Drain] {
        let other = run_taker(role, &config, deflate.as_ref(), &chunks, taker);
        assert_eq!(other, reference, "{taker:?} differs from poll_event");
    }
}
