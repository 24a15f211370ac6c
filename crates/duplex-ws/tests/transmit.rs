//! The uncopied send path: `Connection::poll_transmit_chunks` hands out the
//! same bytes as the copying path, for any sequence of commands, in both
//! roles, with fragmentation and permessage-deflate, however the writer
//! splits its writes; and a server's large `Bytes` payloads really are
//! handed out uncopied.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};
use duplex_ws::{
    CloseCode, Config, Connection, DeflateConfig, DeflateParams, Message, OpCode, Role,
    TransmitChunks, Utf8Bytes,
};
use proptest::collection::vec;
use proptest::prelude::*;
use rand::{SeedableRng, rngs::StdRng};

/// What the application does, including writing out what is pending.
#[derive(Debug, Clone)]
enum Command {
    /// `send` with owned bytes (may be kept uncopied).
    Send(Message),
    /// `send_uncompressed` with owned bytes.
    SendUncompressed(Message),
    /// `send_text` / `send_binary` with borrowed bytes (always copied).
    SendBorrowed(Message),
    /// `send_frame`: fragmented messages by hand.
    SendFrame {
        opcode: OpCode,
        payload: Vec<u8>,
        fin: bool,
    },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(String),
    /// A ping from the peer, answered by the connection's auto-pong.
    PeerPing(Vec<u8>),
    /// Take what is pending and write it in pieces of these sizes.
    Write(Vec<usize>),
}

/// Payload lengths around the interesting edges: the 125/126 and
/// 65535/65536 header forms and the sharing thresholds used below.
fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => vec(any::<u8>(), 0..40),
        2 => vec(any::<u8>(), 100..300),
        2 => vec(any::<u8>(), 1000..1100),
        1 => (65_530usize..65_540).prop_map(|n| vec![7u8; n]),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zé]{0,30}",
        2 => (1usize..400).prop_map(|n| "chat message ".repeat(n)),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        text().prop_map(Message::from),
        payload().prop_map(Message::from),
    ]
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        6 => message().prop_map(Command::Send),
        2 => message().prop_map(Command::SendUncompressed),
        2 => message().prop_map(Command::SendBorrowed),
        3 => (
            prop::sample::select(vec![OpCode::Text, OpCode::Binary, OpCode::Continuation]),
            payload(),
            any::<bool>(),
        )
            .prop_map(|(opcode, payload, fin)| Command::SendFrame { opcode, payload, fin }),
        1 => vec(any::<u8>(), 0..125).prop_map(Command::Ping),
        1 => vec(any::<u8>(), 0..125).prop_map(Command::Pong),
        1 => vec(any::<u8>(), 0..125).prop_map(Command::PeerPing),
        1 => "[a-z]{0,20}".prop_map(Command::Close),
        4 => vec(1usize..5000, 1..6).prop_map(Command::Write),
    ]
}

#[derive(Debug, Clone, Copy)]
struct Setup {
    role: Role,
    max_frame: Option<usize>,
    min_shared: usize,
    deflate: bool,
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        prop::sample::select(vec![Role::Server, Role::Client]),
        prop_oneof![Just(None), (1usize..2000).prop_map(Some)],
        prop::sample::select(vec![0usize, 1, 126, 1024, 4096]),
        prop::bool::weighted(0.25),
    )
        .prop_map(|(role, max_frame, min_shared, deflate)| Setup {
            role,
            max_frame,
            min_shared,
            deflate,
        })
}

fn deflate_params(role: Role) -> DeflateParams {
    let config = DeflateConfig::default();
    let offer = config.client_offer();
    let (server, response) = config
        .negotiate(std::slice::from_ref(&offer))
        .expect("the default offer is accepted");
    match role {
        Role::Server => server,
        Role::Client => config
            .accept_response(std::slice::from_ref(&response))
            .expect("the answer is valid")
            .expect("the answer agrees"),
    }
}

fn connection(setup: Setup, min_shared: usize) -> Connection {
    let mut conn = Connection::new(
        setup.role,
        Config {
            max_outgoing_frame_size: setup.max_frame,
            min_shared_payload: min_shared,
            ..Config::default()
        }
        // The same seed on every side: clients get the same masking keys.
        .with_rng(StdRng::seed_from_u64(11)),
    );
    if setup.deflate {
        conn.enable_permessage_deflate(&deflate_params(setup.role));
    }
    conn
}

/// A ping frame as the peer sends it (masked towards a server).
fn peer_ping(receiver: Role, payload: &[u8]) -> Vec<u8> {
    let mut peer = Connection::new(
        match receiver {
            Role::Server => Role::Client,
            Role::Client => Role::Server,
        },
        Config::default().with_rng(StdRng::seed_from_u64(5)),
    );
    peer.ping(payload).expect("a short ping is sendable");
    let mut out = BytesMut::new();
    peer.poll_transmit(&mut out);
    out.to_vec()
}

fn apply(conn: &mut Connection, command: &Command) -> String {
    let result = match command.clone() {
        Command::Send(m) => conn.send(m),
        Command::SendUncompressed(m) => conn.send_uncompressed(m),
        Command::SendBorrowed(Message::Text(t)) => conn.send_text(t.as_str()),
        Command::SendBorrowed(Message::Binary(b)) => conn.send_binary(&b),
        Command::SendFrame {
            opcode,
            payload,
            fin,
        } => conn.send_frame(opcode, &payload, fin),
        Command::Ping(p) => conn.ping(&p),
        Command::Pong(p) => conn.pong(&p),
        Command::Close(reason) => conn.close(CloseCode::NORMAL, &reason),
        Command::PeerPing(p) => {
            conn.receive(&peer_ping(conn.role(), &p));
            while conn.poll_event().is_some() {}
            Ok(())
        }
        Command::Write(_) => Ok(()),
    };
    format!("{result:?}")
}

/// Writes `queue` out as a vectored writer would, accepting `sizes` bytes
/// per call (cycling), through `chunks_vectored` with few slots and
/// `advance`.
fn write_vectored(queue: &mut TransmitChunks, sizes: &[usize], wire: &mut Vec<u8>) {
    let mut i = 0;
    while queue.has_remaining() {
        let mut slots = [IoSlice::new(&[]); 3];
        let n = queue.chunks_vectored(&mut slots);
        assert!(n > 0, "chunks_vectored gives a slice while bytes remain");
        let mut budget = sizes[i % sizes.len()];
        let mut accepted = 0;
        for slice in &slots[..n] {
            let take = budget.min(slice.len());
            wire.extend_from_slice(&slice[..take]);
            accepted += take;
            budget -= take;
        }
        queue.advance(accepted);
        i += 1;
    }
}

fn check(setup: Setup, commands: &[Command]) -> Result<(), TestCaseError> {
    // The reference: nothing is ever shared, and everything comes out of
    // the copying `poll_transmit`, as before the uncopied path existed.
    let mut copied = connection(setup, usize::MAX);
    // The uncopied path, written in pieces.
    let mut chunked = connection(setup, setup.min_shared);
    // The uncopied path, flattened by `poll_transmit`.
    let mut flattened = connection(setup, setup.min_shared);
    let (mut wire_copied, mut wire_chunked, mut wire_flat) = (Vec::new(), Vec::new(), Vec::new());
    let mut queue = TransmitChunks::new();
    let mut out = BytesMut::new();
    let mut drain = |copied: &mut Connection,
                     chunked: &mut Connection,
                     flattened: &mut Connection,
                     sizes: &[usize]|
     -> Result<(), TestCaseError> {
        let pending = chunked.pending_transmit_len();
        prop_assert_eq!(pending, flattened.pending_transmit_len());
        let n = chunked.poll_transmit_chunks(&mut queue);
        prop_assert_eq!(n, pending);
        write_vectored(&mut queue, sizes, &mut wire_chunked);
        prop_assert!(queue.is_empty());
        prop_assert!(!chunked.has_pending_transmit());
        let n = flattened.poll_transmit(&mut out);
        prop_assert_eq!(n, out.len());
        wire_flat.extend_from_slice(&out);
        out.clear();
        copied.poll_transmit(&mut out);
        wire_copied.extend_from_slice(&out);
        out.clear();
        prop_assert_eq!(&wire_chunked, &wire_copied);
        prop_assert_eq!(&wire_flat, &wire_copied);
        Ok(())
    };
    for command in commands {
        let a = apply(&mut copied, command);
        let b = apply(&mut chunked, command);
        let c = apply(&mut flattened, command);
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(&a, &c);
        if let Command::Write(sizes) = command {
            drain(&mut copied, &mut chunked, &mut flattened, sizes)?;
        }
    }
    drain(&mut copied, &mut chunked, &mut flattened, &[usize::MAX])?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn chunked_output_equals_the_copied_output(
        setup in setup(),
        commands in vec(command(), 0..24),
    ) {
        check(setup, &commands)?;
    }
}

/// The first slice of `queue` that starts at `ptr`, if any.
fn slice_starting_at(queue: &TransmitChunks, ptr: *const u8) -> Option<usize> {
    let mut slots = [IoSlice::new(&[]); 16];
    let n = queue.chunks_vectored(&mut slots);
    slots[..n]
        .iter()
        .find(|s| s.as_ptr() == ptr)
        .map(|s| s.len())
}

#[test]
fn a_server_hands_out_large_payloads_uncopied() {
    let mut server = Connection::new(Role::Server, Config::default());
    let binary = Bytes::from(vec![1u8; 16 << 10]);
    let text = Utf8Bytes::from("é".repeat(4096));
    let text_bytes = text.clone().into_bytes();
    server.send_text("small, copied").unwrap();
    server.send(binary.clone()).unwrap();
    server.send(Message::Text(text)).unwrap();
    server.ping(b"p").unwrap();
    let mut queue = TransmitChunks::new();
    server.poll_transmit_chunks(&mut queue);
    assert_eq!(
        slice_starting_at(&queue, binary.as_ptr()),
        Some(binary.len())
    );
    assert_eq!(
        slice_starting_at(&queue, text_bytes.as_ptr()),
        Some(text_bytes.len())
    );
    // The small text and the first header share a slice; the second
    // header has one of its own; the ping follows the last payload.
    assert_eq!(queue.chunk_count(), 5);
}

#[test]
fn fragments_of_a_large_payload_are_slices_of_it() {
    let mut server = Connection::new(
        Role::Server,
        Config {
            max_outgoing_frame_size: Some(4096),
            // The last fragment (1808 bytes) is shared too.
            min_shared_payload: 1024,
            ..Config::default()
        },
    );
    let binary = Bytes::from((0..10_000u32).map(|i| i as u8).collect::<Vec<_>>());
    server.send(binary.clone()).unwrap();
    let mut queue = TransmitChunks::new();
    server.poll_transmit_chunks(&mut queue);
    for start in [0, 4096, 8192] {
        let ptr = binary[start..].as_ptr();
        assert!(
            slice_starting_at(&queue, ptr).is_some(),
            "fragment at {start}"
        );
    }
}

#[test]
fn small_payloads_clients_and_deflate_copy() {
    let payload = Bytes::from(vec![2u8; 100]);
    let mut server = Connection::new(Role::Server, Config::default());
    server.send(payload.clone()).unwrap();
    let mut queue = TransmitChunks::new();
    server.poll_transmit_chunks(&mut queue);
    assert_eq!(queue.chunk_count(), 1, "below min_shared_payload: one copy");
    assert_eq!(slice_starting_at(&queue, payload.as_ptr()), None);

    let large = Bytes::from(vec![3u8; 8192]);
    let mut client = Connection::new(Role::Client, Config::default());
    client.send(large.clone()).unwrap();
    let mut queue = TransmitChunks::new();
    client.poll_transmit_chunks(&mut queue);
    assert_eq!(slice_starting_at(&queue, large.as_ptr()), None, "masked");

    let mut server = Connection::new(Role::Server, Config::default());
    server.enable_permessage_deflate(&deflate_params(Role::Server));
    server.send(large.clone()).unwrap();
    let mut queue = TransmitChunks::new();
    server.poll_transmit_chunks(&mut queue);
    assert_eq!(slice_starting_at(&queue, large.as_ptr()), None, "deflated");
    assert!(queue.len() < large.len() / 10, "compressed");
    // Sent uncompressed, it is shared again.
    server.send_uncompressed(large.clone()).unwrap();
    server.poll_transmit_chunks(&mut queue);
    assert_eq!(slice_starting_at(&queue, large.as_ptr()), Some(large.len()));
}
