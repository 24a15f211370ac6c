//! Property tests (layer 2 of DESIGN.md): the frame codec round-trips,
//! any split of the input gives the same events, messages arrive as sent,
//! arbitrary bytes never panic nor grow buffers past the limits, and
//! arbitrary command sequences never panic and fail locally without
//! writing a byte.
//!
//! Case counts are kept small so that `cargo test` stays fast; the fuzz
//! targets under `fuzz/` explore the same ground for longer.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use duplex_ws::handshake::{
    ClientHandshake, ClientRequest, HandshakeError, HandshakeLimits, ServerHandshake,
};
use duplex_ws::{
    CloseCode, CloseFrame, Config, Connection, DeflateConfig, DeflateParams, Error, Event,
    EventRef, Frame, FrameDecoder, FrameHeader, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, Message,
    OpCode, ProtocolError, Role, State, Utf8Bytes, apply_mask,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use rand::{SeedableRng, rngs::StdRng};

// ---------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------

/// `cases` test cases, times `DUPLEX_PROPTEST_SCALE` (default 1) for a
/// longer hunt: `DUPLEX_PROPTEST_SCALE=100 cargo test -p duplex-ws --test properties`.
fn cases(cases: u32) -> ProptestConfig {
    let scale = std::env::var("DUPLEX_PROPTEST_SCALE")
        .ok()
        .and_then(|s| s.parse::<u32>().ok())
        .unwrap_or(1)
        .max(1);
    ProptestConfig::with_cases(cases.saturating_mul(scale))
}

fn peer_of(role: Role) -> Role {
    match role {
        Role::Server => Role::Client,
        Role::Client => Role::Server,
    }
}

/// The sending side of a two-party property: a client or a server
/// connection splitting messages at `max_outgoing` bytes, with a seeded
/// (so repeatable) mask source.
fn sending_side(is_client: bool, max_outgoing: Option<usize>, seed: u64) -> (Role, Connection) {
    let role = if is_client {
        Role::Client
    } else {
        Role::Server
    };
    let config = Config {
        max_outgoing_frame_size: max_outgoing,
        ..Config::default()
    };
    (
        role,
        Connection::new(role, config.with_rng(StdRng::seed_from_u64(seed))),
    )
}

/// Splits `data` into chunks whose sizes cycle through `sizes` (each at
/// least one byte).
fn split_by<'a>(data: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut chunks = Vec::new();
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes
            .get(i % sizes.len().max(1))
            .copied()
            .unwrap_or(1)
            .max(1);
        let (chunk, tail) = rest.split_at(n.min(rest.len()));
        chunks.push(chunk);
        rest = tail;
        i += 1;
    }
    chunks
}

/// Decodes bytes a connection in `sender` role transmitted, as its peer
/// would: every byte must belong to a valid frame, masked iff the sender is
/// a client.
fn decode_transmitted(sender: Role, bytes: &[u8]) -> Result<Vec<Frame>, String> {
    // Large enough for anything these tests send, small enough that a
    // bogus length cannot make the decoder reserve gigabytes.
    let mut dec = FrameDecoder::new(peer_of(sender), 1 << 24);
    let mut buf = BytesMut::from(bytes);
    let mut frames = Vec::new();
    loop {
        match dec.decode(&mut buf) {
            Ok(Some(frame)) => {
                if frame.header.mask.is_some() != (sender == Role::Client) {
                    return Err(format!("wrong masking for {sender:?}: {frame:?}"));
                }
                frames.push(frame);
            }
            Ok(None) if buf.is_empty() => return Ok(frames),
            Ok(None) => return Err(format!("{} trailing bytes", buf.len())),
            Err(e) => return Err(format!("invalid frame sent: {e}")),
        }
    }
}

fn take_transmit(conn: &mut Connection) -> Vec<u8> {
    let mut out = BytesMut::new();
    let n = conn.poll_transmit(&mut out);
    assert_eq!(n, out.len(), "poll_transmit reports what it wrote");
    out.to_vec()
}

/// A frame as `sender` would put it on the wire, with full control over the
/// first byte (FIN, RSV, opcode) and the mask.
fn wire_frame(first_byte: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let header = FrameHeader {
        fin: first_byte & 0x80 != 0,
        rsv1: first_byte & 0x40 != 0,
        rsv2: first_byte & 0x20 != 0,
        rsv3: first_byte & 0x10 != 0,
        // Overwritten below: FrameHeader cannot hold a reserved opcode.
        opcode: OpCode::Continuation,
        mask,
        payload_len: payload.len() as u64,
    };
    let mut out = Vec::new();
    header.encode(&mut out);
    out[0] = first_byte;
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut out[start..], key, 0);
    }
    out
}

fn sendable_code() -> impl Strategy<Value = u16> {
    prop_oneof![
        prop::sample::select(vec![
            1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011
        ]),
        3000u16..5000,
    ]
}

/// A close reason that always fits (at most 30 chars of at most 4 bytes).
fn short_reason() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 é€😀]{0,30}"
}

fn any_opcode() -> impl Strategy<Value = OpCode> {
    prop_oneof![
        Just(OpCode::Continuation),
        Just(OpCode::Text),
        Just(OpCode::Binary),
        Just(OpCode::Close),
        Just(OpCode::Ping),
        Just(OpCode::Pong),
    ]
}

// ---------------------------------------------------------------------------
// 1. Frame codec: encode then decode is the identity
// ---------------------------------------------------------------------------

/// Small enough that the decoder's up-front reservation stays cheap.
const DECODE_LIMIT: usize = 1 << 16;

fn any_payload_len() -> impl Strategy<Value = u64> {
    prop_oneof![
        0..=125u64,
        126..=0xffffu64,
        0x1_0000..=u64::MAX,
        prop::sample::select(vec![
            0u64,
            125,
            126,
            127,
            0xffff,
            0x1_0000,
            DECODE_LIMIT as u64,
            DECODE_LIMIT as u64 + 1,
            (1 << 63) - 1,
            1 << 63,
            u64::MAX,
        ]),
    ]
}

fn any_header() -> impl Strategy<Value = FrameHeader> {
    (
        any::<[bool; 4]>(),
        any_opcode(),
        any::<Option<[u8; 4]>>(),
        any_payload_len(),
    )
        .prop_map(
            |([fin, rsv1, rsv2, rsv3], opcode, mask, payload_len)| FrameHeader {
                fin,
                rsv1,
                rsv2,
                rsv3,
                opcode,
                mask,
                payload_len,
            },
        )
}

/// What a decoder in `role` must say about `h`, from RFC 6455 section 5.
fn expected_header_verdict(
    h: &FrameHeader,
    role: Role,
    allow_rsv1: bool,
    limit: usize,
) -> Result<(), ProtocolError> {
    if h.rsv2 || h.rsv3 || (h.rsv1 && !allow_rsv1) {
        return Err(ProtocolError::ReservedBits);
    }
    match (role, h.mask.is_some()) {
        (Role::Server, false) => return Err(ProtocolError::UnmaskedClientFrame),
        (Role::Client, true) => return Err(ProtocolError::MaskedServerFrame),
        _ => {}
    }
    if h.opcode.is_control() {
        if h.payload_len > MAX_CONTROL_PAYLOAD as u64 {
            return Err(ProtocolError::ControlFrameTooLong);
        }
        if !h.fin {
            return Err(ProtocolError::FragmentedControlFrame);
        }
    }
    if h.payload_len >> 63 != 0 {
        return Err(ProtocolError::InvalidLength);
    }
    if h.payload_len > limit as u64 {
        return Err(ProtocolError::FrameTooLarge {
            len: h.payload_len,
            limit,
        });
    }
    Ok(())
}

/// A frame the decoder must accept (with RSV1 allowed), and its payload.
fn valid_frame() -> impl Strategy<Value = (FrameHeader, Vec<u8>)> {
    let payload = prop_oneof![
        8 => vec(any::<u8>(), 0..300),
        1 => vec(any::<u8>(), 65_530..65_700),
    ];
    (
        any::<bool>(),
        any::<bool>(),
        any_opcode(),
        any::<[u8; 4]>(),
        payload,
    )
        .prop_map(|(fin, rsv1, opcode, key, mut payload)| {
            let fin = fin || opcode.is_control();
            if opcode.is_control() {
                payload.truncate(MAX_CONTROL_PAYLOAD);
            }
            let header = FrameHeader {
                fin,
                rsv1,
                rsv2: false,
                rsv3: false,
                opcode,
                mask: Some(key),
                payload_len: payload.len() as u64,
            };
            (header, payload)
        })
}

proptest! {
    #![proptest_config(cases(256))]

    /// Every field and every length form survives encode then decode, fed
    /// whole or a byte at a time; a header the decoder must refuse is
    /// refused with exactly the rule it breaks, as early as it can be seen.
    #[test]
    fn frame_header_encode_decode_identity(
        h in any_header(),
        allow_rsv1 in any::<bool>(),
        server in any::<bool>(),
    ) {
        let mut wire = Vec::new();
        h.encode(&mut wire);
        prop_assert_eq!(wire.len(), h.encoded_len());
        let mut array = [0u8; MAX_HEADER_LEN];
        let n = h.encode_to_array(&mut array);
        prop_assert_eq!(&array[..n], &wire[..]);
        // The shortest length form is used (RFC 6455 section 5.2).
        let len7 = wire[1] & 0x7f;
        let expected_len7 = match h.payload_len {
            n @ 0..=125 => n as u8,
            126..=0xffff => 126,
            _ => 127,
        };
        prop_assert_eq!(len7, expected_len7);
        prop_assert_eq!(wire[1] & 0x80 != 0, h.mask.is_some());

        let role = if server { Role::Server } else { Role::Client };
        let verdict = expected_header_verdict(&h, role, allow_rsv1, DECODE_LIMIT);

        // Whole.
        let mut dec = FrameDecoder::new(role, DECODE_LIMIT);
        dec.set_allow_rsv1(allow_rsv1);
        let mut buf = BytesMut::from(&wire[..]);
        let whole = dec.decode(&mut buf);
        match (&verdict, whole) {
            (Err(e), got) => prop_assert_eq!(got, Err(*e)),
            (Ok(()), Ok(Some(frame))) => {
                prop_assert_eq!(h.payload_len, 0);
                prop_assert_eq!(frame.header, h);
                prop_assert!(frame.payload.is_empty());
                prop_assert!(buf.is_empty());
            }
            (Ok(()), Ok(None)) => {
                prop_assert!(h.payload_len > 0);
                prop_assert_eq!(dec.pending_header(), Some(&h));
                // Room for the whole payload was reserved, within the limit.
                prop_assert!(buf.capacity() >= wire.len() + h.payload_len as usize);
            }
            (Ok(()), Err(e)) => prop_assert!(false, "valid header refused: {e}"),
        }

        // A byte at a time: nothing until the header is complete, or the
        // same error once enough of it is there.
        let mut dec = FrameDecoder::new(role, DECODE_LIMIT);
        dec.set_allow_rsv1(allow_rsv1);
        let mut buf = BytesMut::new();
        let mut outcome = Ok(None);
        for (i, byte) in wire.iter().enumerate() {
            buf.extend_from_slice(&[*byte]);
            outcome = dec.decode(&mut buf);
            match &outcome {
                Err(_) => break,
                Ok(Some(_)) => prop_assert_eq!(i, wire.len() - 1),
                Ok(None) if i + 1 < wire.len() => prop_assert_eq!(dec.pending_header(), None),
                Ok(None) => {}
            }
        }
        match (&verdict, outcome) {
            (Err(e), got) => prop_assert_eq!(got, Err(*e)),
            (Ok(()), Ok(Some(frame))) => prop_assert_eq!(frame.header, h),
            (Ok(()), Ok(None)) => prop_assert_eq!(dec.pending_header(), Some(&h)),
            (Ok(()), Err(e)) => prop_assert!(false, "valid header refused: {e}"),
        }
    }
}

proptest! {
    #![proptest_config(cases(48))]

    /// A stream of whole frames (header, then the payload masked with the
    /// header's key) decodes to the same headers and payloads, fed whole or
    /// in arbitrary chunks; partial unmasking hands out a prefix of the
    /// payload.
    #[test]
    fn whole_frames_round_trip(
        frames in vec(valid_frame(), 1..6),
        masked in any::<bool>(),
        sizes in vec(1usize..200, 1..8),
    ) {
        let frames: Vec<(FrameHeader, Vec<u8>)> = frames
            .into_iter()
            .map(|(mut h, p)| {
                if !masked {
                    h.mask = None;
                }
                (h, p)
            })
            .collect();
        let mut wire = Vec::new();
        for (h, payload) in &frames {
            h.encode(&mut wire);
            let start = wire.len();
            wire.extend_from_slice(payload);
            if let Some(key) = h.mask {
                apply_mask(&mut wire[start..], key, 0);
            }
        }
        let role = if masked { Role::Server } else { Role::Client };
        let limit = 1 << 17;

        let mut dec = FrameDecoder::new(role, limit);
        dec.set_allow_rsv1(true);
        let mut buf = BytesMut::from(&wire[..]);
        for (h, payload) in &frames {
            let frame = dec.decode(&mut buf).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let frame = frame.ok_or_else(|| TestCaseError::fail("frame missing"))?;
            prop_assert_eq!(&frame.header, h);
            prop_assert_eq!(&frame.payload[..], &payload[..]);
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(dec.decode(&mut buf), Ok(None));

        let mut dec = FrameDecoder::new(role, limit);
        dec.set_allow_rsv1(true);
        let mut buf = BytesMut::new();
        let mut decoded = Vec::new();
        let mut partial = Vec::new();
        for chunk in split_by(&wire, &sizes) {
            buf.extend_from_slice(chunk);
            loop {
                match dec.decode(&mut buf) {
                    Ok(Some(frame)) => {
                        let (_, payload) = &frames[decoded.len()];
                        prop_assert!(payload.starts_with(&partial));
                        partial.clear();
                        decoded.push(frame);
                    }
                    Ok(None) => {
                        partial.extend_from_slice(dec.unmask_partial(&mut buf));
                        break;
                    }
                    Err(e) => prop_assert!(false, "valid frame refused: {e}"),
                }
            }
        }
        prop_assert_eq!(decoded.len(), frames.len());
        for (frame, (h, payload)) in decoded.iter().zip(&frames) {
            prop_assert_eq!(&frame.header, h);
            prop_assert_eq!(&frame.payload[..], &payload[..]);
        }
    }
}

// ---------------------------------------------------------------------------
// 2. Any split of the input gives the same events
// ---------------------------------------------------------------------------

/// Something the sending side does.
#[derive(Debug, Clone)]
enum Action {
    Text(String),
    Binary(Vec<u8>),
    /// One message sent frame by frame with `send_frame`, cut at these
    /// byte offsets (which may fall inside a UTF-8 code point).
    Fragmented {
        text: bool,
        data: Vec<u8>,
        cuts: Vec<Index>,
    },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => ".{0,40}".prop_map(Action::Text),
        4 => vec(any::<u8>(), 0..64).prop_map(Action::Binary),
        1 => (126usize..70_000).prop_map(|n| Action::Binary((0..n).map(|i| (i % 251) as u8).collect())),
        4 => (any::<bool>(), ".{0,40}", vec(any::<u8>(), 0..40), vec(any::<Index>(), 0..4))
            .prop_map(|(text, s, b, cuts)| Action::Fragmented {
                text,
                data: if text { s.into_bytes() } else { b },
                cuts,
            }),
        2 => vec(any::<u8>(), 0..=MAX_CONTROL_PAYLOAD).prop_map(Action::Ping),
        1 => vec(any::<u8>(), 0..=MAX_CONTROL_PAYLOAD).prop_map(Action::Pong),
    ]
}

/// The pieces of a fragmented message, and the expected whole.
fn fragments(data: &[u8], cuts: &[Index]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.iter().map(|i| i.index(data.len() + 1)).collect();
    points.sort_unstable();
    let mut pieces = Vec::new();
    let mut start = 0;
    for p in points.into_iter().chain([data.len()]) {
        pieces.push(data[start..p].to_vec());
        start = p;
    }
    pieces
}

/// Performs `actions` (and the close, if any) on `conn`, returning what it
/// transmitted. Every action is legal here, so every call must succeed.
fn perform(conn: &mut Connection, actions: &[Action], close: &Option<(u16, String)>) -> Vec<u8> {
    for a in actions {
        match a {
            Action::Text(s) => conn.send_text(s).unwrap(),
            Action::Binary(b) => conn.send_binary(b).unwrap(),
            Action::Fragmented { text, data, cuts } => {
                let pieces = fragments(data, cuts);
                let last = pieces.len() - 1;
                for (i, piece) in pieces.iter().enumerate() {
                    let opcode = match (i, text) {
                        (0, true) => OpCode::Text,
                        (0, false) => OpCode::Binary,
                        _ => OpCode::Continuation,
                    };
                    conn.send_frame(opcode, piece, i == last).unwrap();
                }
            }
            Action::Ping(p) => conn.ping(p).unwrap(),
            Action::Pong(p) => conn.pong(p).unwrap(),
        }
    }
    if let Some((code, reason)) = close {
        conn.close(CloseCode(*code), reason).unwrap();
    }
    take_transmit(conn)
}

/// Settings of the receiving side, rebuilt identically for every run.
#[derive(Debug, Clone)]
struct ReceiverSettings {
    max_frame_size: usize,
    max_message_size: usize,
    auto_pong: bool,
    assemble_messages: bool,
}

impl ReceiverSettings {
    fn config(&self) -> Config {
        Config {
            max_frame_size: self.max_frame_size,
            max_message_size: self.max_message_size,
            auto_pong: self.auto_pong,
            assemble_messages: self.assemble_messages,
            ..Config::default()
        }
        .with_rng(StdRng::seed_from_u64(0x5eed))
    }
}

fn receiver_settings() -> impl Strategy<Value = ReceiverSettings> {
    (
        prop_oneof![3 => Just(1usize << 17), 1 => 0usize..200],
        prop_oneof![3 => Just(1usize << 18), 1 => 0usize..400],
        any::<bool>(),
        prop_oneof![3 => Just(true), 1 => Just(false)],
    )
        .prop_map(
            |(max_frame_size, max_message_size, auto_pong, assemble_messages)| ReceiverSettings {
                max_frame_size,
                max_message_size,
                auto_pong,
                assemble_messages,
            },
        )
}

/// Everything observable about a receiving connection after a run.
#[derive(Debug, PartialEq)]
struct Outcome {
    events: Vec<Event>,
    transmitted: Vec<u8>,
    state: State,
    clean: bool,
    should_close: bool,
}

/// Feeds `chunks` to a fresh connection, polling events after every one,
/// and checks the invariants that hold whatever the input.
fn run_receiver<'a>(
    role: Role,
    settings: &ReceiverSettings,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Outcome, TestCaseError> {
    run_receiver_with(role, settings, chunks, Feed::Receive)
}

/// How bytes reach the connection.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Feed {
    /// `Connection::receive`.
    Receive,
    /// Appended to `Connection::read_buf`, as an adapter reading straight
    /// into it does.
    ReadBuf,
    /// `Connection::receive`, events taken with `poll_event_ref`.
    Borrowed,
    /// Appended to `Connection::read_buf`, events taken with
    /// `poll_event_ref` and `poll_event` in turn.
    Mixed,
    /// `Connection::receive`, events taken with `drain_events_ref`.
    Drain,
}

/// A borrowed event as the owned event it stands for.
fn owned(event: EventRef<'_>) -> Event {
    match event {
        EventRef::Text(text) => Event::Message(Message::Text(Utf8Bytes::copy_from_str(text))),
        EventRef::Binary(data) => Event::Message(Message::Binary(Bytes::copy_from_slice(data))),
        EventRef::Other(event) => event,
    }
}

fn run_receiver_with<'a>(
    role: Role,
    settings: &ReceiverSettings,
    chunks: impl IntoIterator<Item = &'a [u8]>,
    feed: Feed,
) -> Result<Outcome, TestCaseError> {
    let mut conn = Connection::new(role, settings.config());
    let mut events = Vec::new();
    let mut transmitted = Vec::new();
    for chunk in chunks {
        match feed {
            Feed::Receive | Feed::Borrowed | Feed::Drain => conn.receive(chunk),
            Feed::ReadBuf | Feed::Mixed => conn.read_buf().extend_from_slice(chunk),
        }
        if feed == Feed::Drain {
            conn.drain_events_ref(|event| events.push(owned(event)));
        }
        let mut borrowed = feed == Feed::Borrowed;
        loop {
            let event = if borrowed {
                conn.poll_event_ref().map(owned)
            } else {
                conn.poll_event()
            };
            let Some(event) = event else { break };
            events.push(event);
            if feed == Feed::Mixed {
                borrowed = !borrowed;
            }
        }
        transmitted.extend(take_transmit(&mut conn));
        // An incomplete frame at most stays buffered.
        prop_assert!(conn.read_buf().len() < MAX_HEADER_LEN + settings.max_frame_size.max(1));
    }
    for (i, event) in events.iter().enumerate() {
        let last = i + 1 == events.len();
        match event {
            Event::Failed(_) | Event::Close(_) => {
                prop_assert!(last, "event after the end: {events:?}")
            }
            Event::Message(m) => prop_assert!(m.len() <= settings.max_message_size),
            Event::Fragment { payload, .. } => {
                prop_assert!(payload.len() <= settings.max_frame_size)
            }
            Event::Ping(p) | Event::Pong(p) => prop_assert!(p.len() <= MAX_CONTROL_PAYLOAD),
        }
    }
    let sent = decode_transmitted(role, &transmitted).map_err(TestCaseError::fail)?;
    match events.last() {
        Some(Event::Failed(e)) => {
            prop_assert_eq!(conn.state(), State::Closed);
            prop_assert!(conn.should_close_transport());
            prop_assert!(!conn.is_clean_close());
            let close = sent
                .last()
                .ok_or_else(|| TestCaseError::fail("no close sent"))?;
            prop_assert_eq!(close.header.opcode, OpCode::Close);
            prop_assert_eq!(&close.payload[..2], &e.close_code().0.to_be_bytes()[..]);
        }
        Some(Event::Close(frame)) => {
            prop_assert_eq!(conn.state(), State::Closed);
            prop_assert!(conn.is_clean_close());
            prop_assert_eq!(conn.should_close_transport(), role == Role::Server);
            let close = sent
                .last()
                .ok_or_else(|| TestCaseError::fail("no close echoed"))?;
            prop_assert_eq!(close.header.opcode, OpCode::Close);
            let echoed = frame.as_ref().map(|f| f.code.0.to_be_bytes().to_vec());
            prop_assert_eq!(close.payload.to_vec(), echoed.unwrap_or_default());
        }
        _ => prop_assert_eq!(conn.state(), State::Open),
    }
    let pings = events
        .iter()
        .filter(|e| matches!(e, Event::Ping(_)))
        .count();
    let pongs = sent
        .iter()
        .filter(|f| f.header.opcode == OpCode::Pong)
        .count();
    prop_assert_eq!(pongs, if settings.auto_pong { pings } else { 0 });
    Ok(Outcome {
        events,
        clean: conn.is_clean_close(),
        should_close: conn.should_close_transport(),
        state: conn.state(),
        transmitted,
    })
}

/// Damage done to the wire bytes, so that the failure paths (and the early
/// UTF-8 check on partial frames) are split-tested too.
#[derive(Debug, Clone)]
struct Damage {
    flip: Option<(Index, u8)>,
    truncate: Option<Index>,
    trailing: Vec<u8>,
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        2 => Just(Damage { flip: None, truncate: None, trailing: Vec::new() }),
        1 => (
            proptest::option::of((any::<Index>(), 1u8..=255)),
            proptest::option::of(any::<Index>()),
            vec(any::<u8>(), 0..16),
        )
            .prop_map(|(flip, truncate, trailing)| Damage { flip, truncate, trailing }),
    ]
}

impl Damage {
    fn apply(&self, wire: &mut Vec<u8>) {
        if wire.is_empty() {
            return;
        }
        if let Some((at, xor)) = &self.flip {
            let i = at.index(wire.len());
            wire[i] ^= xor;
        }
        if let Some(at) = &self.truncate {
            wire.truncate(at.index(wire.len() + 1));
        }
        wire.extend_from_slice(&self.trailing);
    }
}

proptest! {
    #![proptest_config(cases(48))]

    /// Whatever one side sends, its peer sees the same events, answers
    /// with the same bytes and ends in the same state whether the stream
    /// arrives whole, in arbitrary chunks, or one byte at a time; with the
    /// stream intact or damaged.
    #[test]
    fn any_split_gives_the_same_events(
        sender_is_client in any::<bool>(),
        actions in vec(action(), 0..8),
        close in proptest::option::of((sendable_code(), short_reason())),
        max_outgoing in proptest::option::of(1usize..50),
        settings in receiver_settings(),
        damage in damage(),
        sizes in vec(1usize..64, 1..8),
    ) {
        let (sender_role, mut sender) = sending_side(sender_is_client, max_outgoing, 1);
        let mut wire = perform(&mut sender, &actions, &close);
        damage.apply(&mut wire);
        let receiver = peer_of(sender_role);

        let whole = run_receiver(receiver, &settings, [&wire[..]])?;
        let split = run_receiver(receiver, &settings, split_by(&wire, &sizes))?;
        prop_assert_eq!(&split, &whole);
        let bytewise = run_receiver(receiver, &settings, wire.chunks(1))?;
        prop_assert_eq!(&bytewise, &whole);
        let direct = run_receiver_with(receiver, &settings, split_by(&wire, &sizes), Feed::ReadBuf)?;
        prop_assert_eq!(&direct, &whole);
        let borrowed = run_receiver_with(receiver, &settings, split_by(&wire, &sizes), Feed::Borrowed)?;
        prop_assert_eq!(&borrowed, &whole);
        let borrowed_whole = run_receiver_with(receiver, &settings, [&wire[..]], Feed::Borrowed)?;
        prop_assert_eq!(&borrowed_whole, &whole);
        let mixed = run_receiver_with(receiver, &settings, split_by(&wire, &sizes), Feed::Mixed)?;
        prop_assert_eq!(&mixed, &whole);
        let drained = run_receiver_with(receiver, &settings, split_by(&wire, &sizes), Feed::Drain)?;
        prop_assert_eq!(&drained, &whole);
        let drained_whole = run_receiver_with(receiver, &settings, [&wire[..]], Feed::Drain)?;
        prop_assert_eq!(&drained_whole, &whole);
    }
}

// ---------------------------------------------------------------------------
// 3. What one side sends is what the other gets
// ---------------------------------------------------------------------------

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        ".{0,60}".prop_map(Message::from),
        vec(any::<u8>(), 0..100).prop_map(Message::from),
        Just(Message::from(String::new())),
        Just(Message::from(Vec::new())),
        (126usize..3000).prop_map(|n| Message::from("é".repeat(n / 2))),
    ]
}

proptest! {
    #![proptest_config(cases(64))]

    /// Messages (text, binary, empty, auto-fragmented) arrive whole and in
    /// order, the close handshake completes with the code and reason sent,
    /// and both ends agree it was clean.
    #[test]
    fn messages_round_trip(
        sender_is_client in any::<bool>(),
        messages in vec(message(), 0..8),
        max_outgoing in proptest::option::of(0usize..40),
        assemble in any::<bool>(),
        (code, reason) in (sendable_code(), short_reason()),
        sizes in vec(1usize..100, 1..4),
    ) {
        let (sender_role, mut sender) = sending_side(sender_is_client, max_outgoing, 2);
        let receiver_role = peer_of(sender_role);
        let mut receiver = Connection::new(
            receiver_role,
            Config { assemble_messages: assemble, ..Config::default() },
        );
        for m in &messages {
            sender.send(m.clone()).unwrap();
        }
        sender.close(CloseCode(code), &reason).unwrap();
        prop_assert_eq!(sender.state(), State::Closing);
        let wire = take_transmit(&mut sender);

        // The wire carries the expected frames: one per message, or
        // fragments of at most `max_outgoing` bytes.
        let frames = decode_transmitted(sender_role, &wire).map_err(TestCaseError::fail)?;
        let expected_frames: usize = messages
            .iter()
            .map(|m| match max_outgoing {
                Some(max) if max > 0 => m.len().div_ceil(max).max(1),
                _ => 1,
            })
            .sum::<usize>() + 1;
        prop_assert_eq!(frames.len(), expected_frames);
        for f in &frames {
            if let (Some(max), false) = (max_outgoing, f.header.opcode.is_control()) {
                prop_assert!(max == 0 || f.payload.len() <= max);
            }
        }

        let mut events = Vec::new();
        for chunk in split_by(&wire, &sizes) {
            receiver.receive(chunk);
            events.extend(std::iter::from_fn(|| receiver.poll_event()));
        }
        let close_event = events.pop();
        prop_assert_eq!(
            close_event,
            Some(Event::Close(Some(CloseFrame::new(CloseCode(code), reason.clone()))))
        );
        let received = reassemble(events, assemble)?;
        prop_assert_eq!(&received, &messages);

        // The receiver echoed the code; the sender completes the handshake.
        prop_assert_eq!(receiver.state(), State::Closed);
        prop_assert!(receiver.is_clean_close());
        let echo = take_transmit(&mut receiver);
        sender.receive(&echo);
        prop_assert_eq!(
            sender.poll_event(),
            Some(Event::Close(Some(CloseFrame::new(CloseCode(code), ""))))
        );
        prop_assert_eq!(sender.poll_event(), None);
        prop_assert_eq!(sender.state(), State::Closed);
        prop_assert!(sender.is_clean_close());
        prop_assert!(!sender.has_pending_transmit());
        // The server closes TCP first; the client waits for it.
        for conn in [&mut sender, &mut receiver] {
            prop_assert_eq!(conn.should_close_transport(), conn.role() == Role::Server);
            if conn.role() == Role::Client {
                conn.receive_eof();
                prop_assert!(conn.should_close_transport());
                prop_assert!(conn.is_clean_close());
            }
        }
    }
}

// ---------------------------------------------------------------------------
// 4. Arbitrary bytes never panic, and buffers stay within the limits
// ---------------------------------------------------------------------------

/// Frames a peer might send, mostly well-formed, with random first bytes,
/// masks, payloads and lengths around the limits.
fn raw_frame() -> impl Strategy<Value = (u8, bool, [u8; 4], Vec<u8>)> {
    let first = prop_oneof![
        7 => prop::sample::select(vec![
            0x81u8, 0x01, 0x80, 0x00, 0x82, 0x02, 0x88, 0x89, 0x8a, 0xc1, 0xc2, 0x41, 0x42,
        ]),
        1 => any::<u8>(),
    ];
    let payload = prop_oneof![
        vec(any::<u8>(), 0..300),
        ".{0,30}".prop_map(String::into_bytes),
        (any::<u16>(), "[a-z]{0,8}").prop_map(|(c, r)| {
            let mut p = c.to_be_bytes().to_vec();
            p.extend_from_slice(r.as_bytes());
            p
        }),
        // Real DEFLATE data, from tiny to a bomb of a few hundred KiB.
        (vec(any::<u8>(), 1..40), 1usize..10_000).prop_map(|(unit, n)| deflated(&unit.repeat(n))),
    ];
    (first, prop::bool::weighted(0.97), any::<[u8; 4]>(), payload)
}

fn hostile_stream(role: Role) -> impl Strategy<Value = Vec<u8>> {
    let frames = vec(raw_frame(), 0..24).prop_map(move |frames| {
        let mut out = Vec::new();
        for (first, correct_mask, key, payload) in frames {
            // The peer of a server masks, the peer of a client does not.
            let masked = (role == Role::Server) == correct_mask;
            out.extend(wire_frame(first, masked.then_some(key), &payload));
        }
        out
    });
    prop_oneof![1 => vec(any::<u8>(), 0..2048), 3 => frames]
}

/// `data` compressed as a permessage-deflate message payload (no context
/// takeover, so it inflates on its own).
fn deflated(data: &[u8]) -> Vec<u8> {
    let config = DeflateConfig {
        client_no_context_takeover: true,
        ..DeflateConfig::default()
    };
    let (client_params, _) = negotiate(&config, &config);
    let mut client = Connection::new(
        Role::Client,
        Config::default().with_rng(StdRng::seed_from_u64(7)),
    );
    client.enable_permessage_deflate(&client_params);
    client.send_binary(data).unwrap();
    let wire = take_transmit(&mut client);
    let mut dec = FrameDecoder::new(Role::Server, usize::MAX >> 1);
    dec.set_allow_rsv1(true);
    let frame = dec.decode(&mut BytesMut::from(&wire[..])).unwrap().unwrap();
    frame.payload.to_vec()
}

fn bounded_run(
    role: Role,
    stream: &[u8],
    sizes: &[usize],
    max_frame_size: usize,
    max_message_size: usize,
    deflate: bool,
) -> Result<(), TestCaseError> {
    let settings = ReceiverSettings {
        max_frame_size,
        max_message_size,
        auto_pong: true,
        assemble_messages: true,
    };
    let mut conn = Connection::new(role, settings.config());
    if deflate {
        let (client, server) = negotiate(&DeflateConfig::default(), &DeflateConfig::default());
        conn.enable_permessage_deflate(if role == Role::Client {
            &client
        } else {
            &server
        });
    }
    let largest_chunk = sizes.iter().copied().max().unwrap_or(1);
    // BytesMut grows by doubling, so twice the most that can be buffered.
    let capacity_bound = 2 * (MAX_HEADER_LEN + max_frame_size + largest_chunk);
    let mut ended = false;
    for chunk in split_by(stream, sizes) {
        conn.receive(chunk);
        while let Some(event) = conn.poll_event() {
            prop_assert!(!ended, "event after the end: {event:?}");
            if let Event::Failed(_) | Event::Close(_) = event {
                ended = true;
                prop_assert_eq!(conn.state(), State::Closed);
            }
            if let Event::Failed(_) = event {
                prop_assert!(conn.should_close_transport());
            }
            match &event {
                Event::Message(m) => prop_assert!(m.len() <= max_message_size),
                Event::Fragment { payload, .. } => prop_assert!(payload.len() <= max_frame_size),
                _ => {}
            }
        }
        let len = conn.read_buf().len();
        let capacity = conn.read_buf().capacity();
        prop_assert!(
            len < MAX_HEADER_LEN + max_frame_size.max(1),
            "{len} bytes buffered with a frame limit of {max_frame_size}"
        );
        prop_assert!(
            capacity <= capacity_bound,
            "read buffer capacity {capacity} over {capacity_bound}"
        );
        let out = take_transmit(&mut conn);
        decode_transmitted(role, &out).map_err(TestCaseError::fail)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(96))]

    #[test]
    fn server_survives_arbitrary_bytes_within_limits(
        stream in hostile_stream(Role::Server),
        sizes in vec(1usize..100, 1..6),
        max_frame_size in 0usize..256,
        max_message_size in 0usize..600,
        deflate in any::<bool>(),
    ) {
        bounded_run(Role::Server, &stream, &sizes, max_frame_size, max_message_size, deflate)?;
    }

    #[test]
    fn client_survives_arbitrary_bytes_within_limits(
        stream in hostile_stream(Role::Client),
        sizes in vec(1usize..100, 1..6),
        max_frame_size in 0usize..256,
        max_message_size in 0usize..600,
        deflate in any::<bool>(),
    ) {
        bounded_run(Role::Client, &stream, &sizes, max_frame_size, max_message_size, deflate)?;
    }
}

const BROWSER_REQUEST: &str = "GET /chat?room=1 HTTP/1.1\r\n\
Host: localhost:8080\r\n\
Connection: Upgrade\r\n\
Pragma: no-cache\r\n\
Cache-Control: no-cache\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36\r\n\
Upgrade: websocket\r\n\
Origin: http://localhost:8080\r\n\
Sec-WebSocket-Version: 13\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";

/// Bytes shaped like a handshake head: a real one, damaged, or noise.
fn head_bytes(real: &'static str) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..600),
        (any::<Index>(), any::<u8>(), vec(any::<u8>(), 0..64)).prop_map(move |(at, b, tail)| {
            let mut v = real.as_bytes().to_vec();
            let i = at.index(v.len());
            v[i] = b;
            v.extend(tail);
            v
        }),
        (any::<Index>(), vec(any::<u8>(), 0..64)).prop_map(move |(at, tail)| {
            let mut v = real.as_bytes().to_vec();
            v.truncate(at.index(v.len() + 1));
            v.extend(tail);
            v
        }),
        Just(real.as_bytes().to_vec()),
    ]
}

/// Error responses are complete HTTP responses with the error's status.
fn check_error_response(e: &HandshakeError) -> Result<(), TestCaseError> {
    let bytes = e.response();
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut resp = httparse::Response::new(&mut headers);
    let status = resp
        .parse(&bytes)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert!(status.is_complete());
    prop_assert_eq!(resp.code, Some(e.status()));
    Ok(())
}

proptest! {
    #![proptest_config(cases(128))]

    /// The server handshake never panics, never holds more head than its
    /// limit, and keeps every byte after the head.
    #[test]
    fn server_handshake_survives_arbitrary_bytes(
        input in head_bytes(BROWSER_REQUEST),
        sizes in vec(1usize..80, 1..6),
        max_head_size in prop_oneof![Just(16 * 1024), 0usize..700],
        max_headers in prop_oneof![Just(64usize), 0usize..20],
    ) {
        let mut hs = ServerHandshake::with_limits(HandshakeLimits { max_head_size, max_headers });
        let mut fed = 0;
        for chunk in split_by(&input, &sizes) {
            fed += chunk.len();
            match hs.receive(chunk) {
                Ok(None) => prop_assert!(fed <= max_head_size, "{fed} bytes of head held"),
                Ok(Some(req)) => {
                    prop_assert!(!req.key().is_empty());
                    prop_assert!(req.accept(None, None, &[]).is_ok());
                    let remaining = hs.into_remaining();
                    let head_len = fed - remaining.len();
                    prop_assert!(head_len <= max_head_size);
                    prop_assert_eq!(&remaining[..], &input[head_len..fed]);
                    return Ok(());
                }
                Err(e) => return check_error_response(&e),
            }
        }
    }

    /// The client handshake never panics on any response and never holds
    /// more than the default head limit while waiting for the rest.
    #[test]
    fn client_handshake_survives_arbitrary_bytes(
        seed in any::<u64>(),
        damage in prop_oneof![Just(None), proptest::option::of((any::<Index>(), any::<u8>()))],
        noise in proptest::option::of(vec(any::<u8>(), 0..600)),
        trailing in vec(any::<u8>(), 0..32),
        sizes in vec(1usize..80, 1..6),
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let request = ClientRequest {
            host: "localhost".into(),
            target: "/".into(),
            protocols: vec!["chat".into()],
            ..ClientRequest::default()
        };
        let (mut client, request_bytes) = ClientHandshake::new(&request, &mut rng);
        let parsed = ServerHandshake::new().receive(&request_bytes).unwrap().unwrap();
        let noise_was_none = noise.is_none();
        let mut input = match noise {
            Some(noise) => noise,
            None => parsed.accept(Some("chat"), None, &[]).unwrap().to_vec(),
        };
        let intact = damage.is_none() && noise_was_none;
        if let Some((at, b)) = damage {
            let i = at.index(input.len().max(1));
            if let Some(slot) = input.get_mut(i) {
                *slot = b;
            }
        }
        let head_len = input.len();
        input.extend_from_slice(&trailing);
        let limit = HandshakeLimits::default().max_head_size;
        let mut fed = 0;
        for chunk in split_by(&input, &sizes) {
            fed += chunk.len();
            match client.receive(chunk) {
                Ok(None) => prop_assert!(fed <= limit),
                Ok(Some(resp)) => {
                    if intact {
                        prop_assert_eq!(resp.protocol.as_deref(), Some("chat"));
                        prop_assert!(fed >= head_len);
                        let remaining = client.into_remaining();
                        prop_assert_eq!(&remaining[..], &input[head_len..fed]);
                    }
                    return Ok(());
                }
                Err(_) => return Ok(()),
            }
        }
        prop_assert!(!intact, "an intact 101 response was not accepted");
    }
}

// ---------------------------------------------------------------------------
// 5. Arbitrary command sequences
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Command {
    SendText(String),
    SendBinary(Vec<u8>),
    SendFrame {
        opcode: OpCode,
        payload: String,
        fin: bool,
    },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close {
        code: u16,
        reason: String,
    },
    /// A frame from the peer: ping, pong, text, close or a broken one.
    PeerFrame {
        first_byte: u8,
        payload: Vec<u8>,
    },
    PeerEof,
    AdvanceMillis(u64),
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        3 => "[a-zé]{0,20}".prop_map(Command::SendText),
        3 => vec(any::<u8>(), 0..20).prop_map(Command::SendBinary),
        4 => (any_opcode(), ".{0,10}", any::<bool>())
            .prop_map(|(opcode, payload, fin)| Command::SendFrame { opcode, payload, fin }),
        2 => vec(any::<u8>(), 0..140).prop_map(Command::Ping),
        1 => vec(any::<u8>(), 0..140).prop_map(Command::Pong),
        2 => (prop_oneof![sendable_code(), any::<u16>()], "[a-z]{0,130}")
            .prop_map(|(code, reason)| Command::Close { code, reason }),
        2 => (
            prop::sample::select(vec![0x81u8, 0x82, 0x89, 0x8a, 0x88, 0x80, 0x83, 0xc1]),
            vec(any::<u8>(), 0..8),
        )
            .prop_map(|(first_byte, payload)| Command::PeerFrame { first_byte, payload }),
        1 => Just(Command::PeerEof),
        1 => (0u64..8000).prop_map(Command::AdvanceMillis),
    ]
}

/// A frame as the peer decodes it: opcode, FIN, payload.
type SentFrame = (OpCode, bool, Vec<u8>);

/// What the connection must have done, tracked independently of it.
#[derive(Debug, Default)]
struct Model {
    /// A close frame went out (ours, an echo, or a failure's).
    sent_close: bool,
    /// The connection is over for sending: close sent, or transport gone.
    closed: bool,
    /// The kind of the message being sent with `send_frame`.
    outgoing: Option<OpCode>,
}

fn check_commands(role: Role, commands: &[Command]) -> Result<(), TestCaseError> {
    let mut conn = Connection::new(
        role,
        Config {
            close_timeout: Duration::from_secs(5),
            ..Config::default()
        }
        .with_rng(StdRng::seed_from_u64(3)),
    );
    // Everything sent goes to a real peer, which must never see a protocol
    // violation.
    let mut peer = Connection::new(peer_of(role), Config::default());
    let mut model = Model::default();
    let t0 = Instant::now();
    let mut now = t0;
    conn.handle_timeout(now);
    for cmd in commands {
        prop_assert!(!conn.has_pending_transmit());
        let state_before = conn.state();
        let expect_closed = model.closed || model.sent_close;
        let (result, expected): (Result<(), Error>, Vec<SentFrame>) = match cmd {
            Command::SendText(_) | Command::SendBinary(_) => {
                let (r, frame) = match cmd {
                    Command::SendText(s) => (
                        conn.send_text(s),
                        (OpCode::Text, true, s.as_bytes().to_vec()),
                    ),
                    Command::SendBinary(b) => {
                        (conn.send_binary(b), (OpCode::Binary, true, b.clone()))
                    }
                    _ => unreachable!("text or binary"),
                };
                let mid_message = model.outgoing.is_some();
                let want = expected(
                    expect_closed,
                    mid_message.then_some(Error::FrameSequence("")),
                );
                check_result(&r, &want)?;
                (r, vec![frame])
            }
            Command::SendFrame {
                opcode,
                payload,
                fin,
            } => {
                let r = conn.send_frame(*opcode, payload.as_bytes(), *fin);
                let in_sequence = match opcode {
                    OpCode::Continuation => model.outgoing.is_some(),
                    OpCode::Text | OpCode::Binary => model.outgoing.is_none(),
                    _ => false,
                };
                let want = expected(
                    expect_closed,
                    (!in_sequence).then_some(Error::FrameSequence("")),
                );
                check_result(&r, &want)?;
                if r.is_ok() {
                    model.outgoing = if *fin {
                        None
                    } else {
                        Some(model.outgoing.unwrap_or(*opcode))
                    };
                }
                (r, vec![(*opcode, *fin, payload.as_bytes().to_vec())])
            }
            Command::Ping(p) | Command::Pong(p) => {
                let (r, opcode) = match cmd {
                    Command::Ping(_) => (conn.ping(p), OpCode::Ping),
                    _ => (conn.pong(p), OpCode::Pong),
                };
                let too_long = p.len() > MAX_CONTROL_PAYLOAD;
                let want = expected(
                    expect_closed,
                    too_long.then_some(Error::ControlPayloadTooLong),
                );
                check_result(&r, &want)?;
                (r, vec![(opcode, true, p.clone())])
            }
            Command::Close { code, reason } => {
                let r = conn.close(CloseCode(*code), reason);
                let refusal = if !CloseCode(*code).is_sendable() {
                    Some(Error::UnsendableCloseCode(CloseCode(*code)))
                } else {
                    (reason.len() > CloseFrame::MAX_REASON_LEN)
                        .then_some(Error::ControlPayloadTooLong)
                };
                let want = expected(expect_closed, refusal);
                check_result(&r, &want)?;
                if r.is_ok() {
                    model.sent_close = true;
                    prop_assert_ne!(conn.state(), State::Open);
                }
                let mut payload = code.to_be_bytes().to_vec();
                payload.extend_from_slice(reason.as_bytes());
                (r, vec![(OpCode::Close, true, payload)])
            }
            Command::PeerFrame { .. } | Command::PeerEof if model.closed => {
                // Nothing arrives after the transport is gone.
                continue;
            }
            Command::PeerFrame {
                first_byte,
                payload,
            } => {
                let mask = (role == Role::Server).then_some([7, 7, 7, 7]);
                conn.receive(&wire_frame(*first_byte, mask, payload));
                while let Some(event) = conn.poll_event() {
                    match event {
                        Event::Failed(_) => {
                            prop_assert_eq!(conn.state(), State::Closed);
                            prop_assert!(conn.should_close_transport());
                            model.sent_close = true;
                        }
                        Event::Close(_) => {
                            prop_assert_eq!(conn.state(), State::Closed);
                            model.sent_close = true;
                        }
                        _ => {}
                    }
                }
                let bytes = take_transmit(&mut conn);
                let frames = decode_transmitted(role, &bytes).map_err(TestCaseError::fail)?;
                deliver(&mut peer, &bytes)?;
                for f in &frames {
                    prop_assert!(matches!(f.header.opcode, OpCode::Pong | OpCode::Close));
                }
                continue;
            }
            Command::PeerEof => {
                conn.receive_eof();
                model.closed = true;
                prop_assert_eq!(conn.state(), State::Closed);
                prop_assert!(conn.should_close_transport());
                continue;
            }
            Command::AdvanceMillis(ms) => {
                now += Duration::from_millis(*ms);
                conn.handle_timeout(now);
                if conn.state() == State::Closed {
                    model.closed = true;
                }
                if let Some(deadline) = conn.poll_timeout() {
                    prop_assert!(deadline > now);
                    prop_assert!(deadline <= now + Duration::from_secs(5));
                }
                prop_assert!(!conn.has_pending_transmit());
                continue;
            }
        };
        let bytes = take_transmit(&mut conn);
        match result {
            Err(_) => {
                prop_assert!(bytes.is_empty(), "local error wrote {} bytes", bytes.len());
                prop_assert_eq!(conn.state(), state_before);
            }
            Ok(()) => {
                let frames = decode_transmitted(role, &bytes).map_err(TestCaseError::fail)?;
                let got: Vec<SentFrame> = frames
                    .iter()
                    .map(|f| (f.header.opcode, f.header.fin, f.payload.to_vec()))
                    .collect();
                prop_assert_eq!(got, expected);
                deliver(&mut peer, &bytes)?;
            }
        }
        // Whatever happened, the time is told after every command.
        conn.handle_timeout(now);
    }
    Ok(())
}

/// What the model expects of a command: `Closed` once a close was sent or
/// received, else the command's own `refusal` if it has one.
fn expected(closed: bool, refusal: Option<Error>) -> Result<(), Error> {
    if closed {
        return Err(Error::Closed);
    }
    refusal.map_or(Ok(()), Err)
}

/// Compares a result with the one expected, ignoring the text of
/// `FrameSequence` errors.
fn check_result(got: &Result<(), Error>, want: &Result<(), Error>) -> Result<(), TestCaseError> {
    let same = match (got, want) {
        (Err(Error::FrameSequence(_)), Err(Error::FrameSequence(_))) => true,
        (a, b) => a == b,
    };
    prop_assert!(same, "got {got:?}, expected {want:?}");
    Ok(())
}

/// Hands our bytes to the peer, which must accept every frame.
fn deliver(peer: &mut Connection, bytes: &[u8]) -> Result<(), TestCaseError> {
    peer.receive(bytes);
    while let Some(event) = peer.poll_event() {
        prop_assert!(
            !matches!(event, Event::Failed(_)),
            "the peer refused what we sent: {event:?}"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(128))]

    #[test]
    fn server_commands_never_panic_and_misuse_writes_nothing(commands in vec(command(), 0..24)) {
        check_commands(Role::Server, &commands)?;
    }

    #[test]
    fn client_commands_never_panic_and_misuse_writes_nothing(commands in vec(command(), 0..24)) {
        check_commands(Role::Client, &commands)?;
    }
}

/// A head of exactly `len` bytes: `head` (ending in the blank line) with an
/// `X-Pad` header grown to fit.
fn padded_head(head: &[u8], len: usize) -> Vec<u8> {
    let mut out = head[..head.len() - 2].to_vec();
    let pad = len - out.len() - "X-Pad: \r\n\r\n".len();
    out.extend_from_slice(format!("X-Pad: {}\r\n\r\n", "p".repeat(pad)).as_bytes());
    assert_eq!(out.len(), len);
    out
}

/// Both ends hold the handshake head to the same limit: a head of
/// `max_head_size` bytes is accepted, one byte more is refused.
#[test]
fn both_handshake_ends_enforce_the_same_head_limit() {
    let limit = HandshakeLimits::default().max_head_size;
    let mut rng = StdRng::seed_from_u64(9);
    let request = ClientRequest {
        host: "a".into(),
        ..ClientRequest::default()
    };
    let (client, request_bytes) = ClientHandshake::new(&request, &mut rng);
    let parsed = ServerHandshake::new()
        .receive(&request_bytes)
        .unwrap()
        .unwrap();
    let response = parsed.accept(None, None, &[]).unwrap();
    drop(client);
    for (len, accepted) in [(limit, true), (limit + 1, false)] {
        let server = ServerHandshake::new().receive(&padded_head(&request_bytes, len));
        assert_eq!(
            server.is_ok(),
            accepted,
            "request head of {len}: {server:?}"
        );
        let (mut client, _) = ClientHandshake::new(&request, &mut StdRng::seed_from_u64(9));
        let got = client.receive(&padded_head(&response, len));
        match (accepted, got) {
            (true, Ok(Some(_))) => {}
            (false, Err(HandshakeError::HeadTooLarge)) => {}
            (_, got) => panic!(
                "response head of {len} bytes (limit {limit}): {:?}",
                got.map(|r| r.is_some())
            ),
        }
    }
}

// ---------------------------------------------------------------------------
// 6. permessage-deflate (RFC 7692)
// ---------------------------------------------------------------------------

fn deflate_config() -> impl Strategy<Value = DeflateConfig> {
    (
        any::<[bool; 2]>(),
        9u8..=15,
        9u8..=15,
        0u32..=9,
        prop_oneof![3 => Just(0usize), 1 => 0usize..64],
    )
        .prop_map(
            |([server_nct, client_nct], server_bits, client_bits, level, threshold)| {
                DeflateConfig {
                    server_no_context_takeover: server_nct,
                    client_no_context_takeover: client_nct,
                    server_max_window_bits: server_bits,
                    client_max_window_bits: client_bits,
                    level,
                    compress_threshold: threshold,
                }
            },
        )
}

/// Runs the extension negotiation: the client's offer, the server's
/// choice, the client's check of the answer. Returns (client, server)
/// parameters.
fn negotiate(client: &DeflateConfig, server: &DeflateConfig) -> (DeflateParams, DeflateParams) {
    let offer = client.client_offer();
    let (server_params, response) = server
        .negotiate(std::slice::from_ref(&offer))
        .unwrap_or_else(|| panic!("server declined {offer:?}"));
    let client_params = client
        .accept_response(std::slice::from_ref(&response))
        .unwrap_or_else(|e| panic!("client refused {response:?} to {offer:?}: {e}"))
        .unwrap_or_else(|| panic!("client saw no agreement in {response:?}"));
    (client_params, server_params)
}

/// A message and whether to send it with `send_uncompressed`.
fn deflate_message() -> impl Strategy<Value = (Message, bool)> {
    let message = prop_oneof![
        ".{0,60}".prop_map(Message::from),
        vec(any::<u8>(), 0..200).prop_map(Message::from),
        Just(Message::from(String::new())),
        Just(Message::from(Vec::new())),
        (1usize..5000).prop_map(|n| Message::from("chat message ".repeat(n / 13 + 1))),
        (1usize..5000).prop_map(|n| Message::from(vec![0u8; n])),
    ];
    (message, prop::bool::weighted(0.2))
}

proptest! {
    #![proptest_config(cases(48))]

    /// Both ends of a negotiation agree on every shared parameter, and never
    /// on a window wider than either side allows.
    #[test]
    fn deflate_negotiation_agrees(client in deflate_config(), server in deflate_config()) {
        let (c, s) = negotiate(&client, &server);
        prop_assert_eq!(c.server_no_context_takeover, s.server_no_context_takeover);
        prop_assert_eq!(c.client_no_context_takeover, s.client_no_context_takeover);
        prop_assert_eq!(c.server_max_window_bits, s.server_max_window_bits);
        prop_assert_eq!(c.client_max_window_bits, s.client_max_window_bits);
        prop_assert!(s.server_max_window_bits <= server.server_max_window_bits.max(9));
        prop_assert!(s.server_max_window_bits <= client.server_max_window_bits.max(9));
        prop_assert!(c.client_max_window_bits <= client.client_max_window_bits.max(9));
        prop_assert!(c.client_max_window_bits <= server.client_max_window_bits.max(9));
        prop_assert!(s.server_no_context_takeover >= server.server_no_context_takeover);
        prop_assert!(s.client_no_context_takeover >= client.client_no_context_takeover);
    }

    /// With permessage-deflate agreed, messages (compressed or not, whole or
    /// auto-fragmented) arrive as sent in both directions, and the receiver
    /// sees the same events whatever the split of the stream.
    #[test]
    fn deflate_messages_round_trip_and_split(
        client_config in deflate_config(),
        server_config in deflate_config(),
        sender_is_client in any::<bool>(),
        messages in vec(deflate_message(), 0..8),
        max_outgoing in proptest::option::of(1usize..64),
        assemble in any::<bool>(),
        sizes in vec(1usize..100, 1..4),
    ) {
        let (client_params, server_params) = negotiate(&client_config, &server_config);
        let (sender_role, mut sender) = sending_side(sender_is_client, max_outgoing, 4);
        let receiver_role = peer_of(sender_role);
        let params_of = |role| if role == Role::Client { client_params } else { server_params };
        sender.enable_permessage_deflate(&params_of(sender_role));
        for (m, plain) in &messages {
            if *plain {
                sender.send_uncompressed(m.clone()).unwrap();
            } else {
                sender.send(m.clone()).unwrap();
            }
        }
        sender.close(CloseCode::NORMAL, "").unwrap();
        let wire = take_transmit(&mut sender);
        // Compressed messages carry RSV1 on their first frame only.
        let frames = decode_transmitted_deflate(sender_role, &wire)?;
        for f in &frames {
            prop_assert!(!f.header.rsv1 || matches!(f.header.opcode, OpCode::Text | OpCode::Binary));
        }

        let run = |chunks: Vec<&[u8]>| {
            let mut receiver = Connection::new(
                receiver_role,
                Config { assemble_messages: assemble, ..Config::default() }
                    .with_rng(StdRng::seed_from_u64(6)),
            );
            receiver.enable_permessage_deflate(&params_of(receiver_role));
            let mut events = Vec::new();
            for chunk in chunks {
                receiver.receive(chunk);
                events.extend(std::iter::from_fn(|| receiver.poll_event()));
            }
            (events, take_transmit(&mut receiver))
        };
        let whole = run(vec![&wire[..]]);
        prop_assert_eq!(&run(split_by(&wire, &sizes)), &whole);
        prop_assert_eq!(&run(wire.chunks(1).collect()), &whole);

        let (mut events, _) = whole;
        prop_assert_eq!(events.pop(), Some(Event::Close(Some(CloseFrame::new(CloseCode::NORMAL, "")))));
        let received = reassemble(events, assemble)?;
        let sent: Vec<Message> = messages.into_iter().map(|(m, _)| m).collect();
        prop_assert_eq!(received, sent);
    }

    /// A deflate bomb (a small compressed message that inflates past the
    /// limit) is refused with 1009, and what fits is delivered.
    #[test]
    fn deflate_bombs_stop_at_the_message_limit(len in 0usize..40_000, limit in 0usize..3000) {
        let payload = vec![b'a'; len];
        let (wire, event) = compressed_client_message(&payload, limit);
        if len <= limit {
            prop_assert_eq!(event, Some(Event::Message(Message::from(payload))));
        } else {
            let refused = matches!(event, Some(Event::Failed(ProtocolError::MessageTooLarge { .. })));
            prop_assert!(refused, "{} bytes ({} on the wire) over a limit of {}: {:?}", len, wire, limit, event);
        }
    }

    /// The message limit applies to the message, not to its compressed
    /// form: an incompressible message that fits is delivered even though
    /// deflate made it a little longer on the wire.
    #[test]
        fn deflate_limit_applies_to_the_inflated_size(
        len in 0usize..3000,
        slack in 0usize..24,
        seed in any::<u64>(),
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let payload: Vec<u8> = (0..len).map(|_| rand::RngCore::next_u32(&mut rng) as u8).collect();
        let limit = len + slack;
        let (wire, event) = compressed_client_message(&payload, limit);
        let delivered = event == Some(Event::Message(Message::from(payload)));
        prop_assert!(
            delivered,
            "{} bytes ({} compressed on the wire), limit {}: {:?}",
            len, wire, limit, event.map(|e| match e { Event::Message(m) => format!("message of {}", m.len()), e => format!("{e:?}") })
        );
    }
}

/// Like `decode_transmitted`, with RSV1 allowed.
fn decode_transmitted_deflate(sender: Role, bytes: &[u8]) -> Result<Vec<Frame>, TestCaseError> {
    let mut dec = FrameDecoder::new(peer_of(sender), 1 << 24);
    dec.set_allow_rsv1(true);
    let mut buf = BytesMut::from(bytes);
    let mut frames = Vec::new();
    while let Some(frame) = dec
        .decode(&mut buf)
        .map_err(|e| TestCaseError::fail(e.to_string()))?
    {
        frames.push(frame);
    }
    prop_assert!(buf.is_empty());
    Ok(frames)
}

/// The messages in `events`, reassembled by hand in fragment mode.
fn reassemble(events: Vec<Event>, assembled: bool) -> Result<Vec<Message>, TestCaseError> {
    let mut out = Vec::new();
    let mut current: Option<(OpCode, Vec<u8>)> = None;
    for e in events {
        match (assembled, e) {
            (true, Event::Message(m)) => out.push(m),
            (
                false,
                Event::Fragment {
                    opcode,
                    payload,
                    fin,
                },
            ) => {
                match (&mut current, opcode) {
                    (None, OpCode::Text | OpCode::Binary) => {
                        current = Some((opcode, payload.to_vec()))
                    }
                    (Some((_, data)), OpCode::Continuation) => data.extend_from_slice(&payload),
                    _ => {
                        return Err(TestCaseError::fail(format!(
                            "fragment out of order: {opcode:?}"
                        )));
                    }
                }
                if fin {
                    let (kind, data) = current.take().unwrap();
                    out.push(match kind {
                        OpCode::Text => Message::from(String::from_utf8(data).unwrap()),
                        _ => Message::from(data),
                    });
                }
            }
            (_, other) => return Err(TestCaseError::fail(format!("unexpected {other:?}"))),
        }
    }
    prop_assert!(current.is_none());
    Ok(out)
}

/// A client compresses `payload` with default deflate parameters; a server
/// with `limit` as its message limit receives it. Returns the wire size of
/// the frame and the server's first event.
fn compressed_client_message(payload: &[u8], limit: usize) -> (usize, Option<Event>) {
    let (client_params, server_params) =
        negotiate(&DeflateConfig::default(), &DeflateConfig::default());
    let mut client = Connection::new(
        Role::Client,
        Config::default().with_rng(StdRng::seed_from_u64(5)),
    );
    client.enable_permessage_deflate(&client_params);
    client.send_binary(payload).unwrap();
    let wire = take_transmit(&mut client);
    let mut server = Connection::new(
        Role::Server,
        Config {
            max_message_size: limit,
            ..Config::default()
        },
    );
    server.enable_permessage_deflate(&server_params);
    server.receive(&wire);
    (wire.len(), server.poll_event())
}
