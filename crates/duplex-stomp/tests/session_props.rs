//! Sessions on arbitrary input: never a panic, the same events for any
//! split of the input, and whatever the server writes back is well formed.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::time::{Duration, Instant};

use bytes::BytesMut;
use duplex_stomp::{
    ClientConfig, ClientEvent, ClientSession, Decoded, FrameDecoder, Limits, ServerConfig,
    ServerEvent, ServerSession, Version,
};
use proptest::prelude::*;
use rand::SeedableRng;

fn server() -> ServerSession {
    let config = ServerConfig {
        rng: Box::new(rand::rngs::StdRng::seed_from_u64(1)),
        limits: Limits {
            max_headers: 8,
            max_header_line: 64,
            max_body: 64,
            max_frame: 256,
        },
        ..ServerConfig::default()
    };
    ServerSession::new(config, Instant::now())
}

fn chunks<'a>(input: &'a [u8], points: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = points.iter().map(|p| p % (input.len() + 1)).collect();
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut last = 0;
    for c in cuts {
        out.push(&input[last..c]);
        last = c;
    }
    out.push(&input[last..]);
    out
}

fn run_server(input: &[&[u8]]) -> (Vec<ServerEvent>, BytesMut, bool) {
    let mut s = server();
    let mut events = Vec::new();
    let mut out = BytesMut::new();
    for chunk in input {
        s.receive(chunk);
        while let Some(e) = s.poll_event() {
            events.push(e);
        }
        s.poll_transmit(&mut out);
    }
    (events, out, s.is_closed())
}

fn run_client(input: &[&[u8]]) -> Vec<ClientEvent> {
    let mut c = ClientSession::new(ClientConfig::new("h"), Instant::now()).unwrap();
    let mut events = Vec::new();
    let mut sink = BytesMut::new();
    for chunk in input {
        c.receive(chunk);
        while let Some(e) = c.poll_event() {
            events.push(e);
        }
        c.poll_transmit(&mut sink);
    }
    events
}

fn stomp_bytes() -> impl Strategy<Value = Vec<u8>> {
    let pieces = prop::sample::select(vec![
        &b"CONNECT\naccept-version:1.0,1.1,1.2\nhost:h\n\n\0"[..],
        b"CONNECTED\nversion:1.2\n\n\0",
        b"SEND\ndestination:/queue/a\nreceipt:r\n\nbody\0",
        b"SUBSCRIBE\nid:0\ndestination:/queue/a\nack:client\n\n\0",
        b"MESSAGE\nsubscription:0\nmessage-id:1\ndestination:/q\n\nx\0",
        b"RECEIPT\nreceipt-id:r\n\n\0",
        b"ERROR\nmessage:boom\n\n\0",
        b"ACK\nid:1\n\n\0",
        b"DISCONNECT\nreceipt:77\n\n\0",
        b"\n",
        b"\r\n",
        b"content-length:3\n",
        b"\\",
        b":",
        b"\0",
    ]);
    prop::collection::vec(
        prop_oneof![
            3 => pieces.prop_map(<[u8]>::to_vec),
            1 => prop::collection::vec(any::<u8>(), 0..20),
        ],
        0..12,
    )
    .prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn server_session_is_split_independent_and_writes_valid_frames(
        input in stomp_bytes(),
        points in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let whole = run_server(&[&input]);
        let split = run_server(&chunks(&input, &points));
        prop_assert_eq!(&whole.0, &split.0);
        prop_assert_eq!(&whole.1, &split.1);
        prop_assert_eq!(whole.2, split.2);
        // A failure always closes, and what was written decodes cleanly.
        if whole.0.iter().any(|e| matches!(e, ServerEvent::Failed(_))) {
            prop_assert!(whole.2);
        }
        let mut d = FrameDecoder::new(Limits::default());
        d.set_version(Version::V1_0);
        d.receive(&whole.1);
        while let Some(item) = d.decode().map_err(|e| TestCaseError::fail(format!("{e:?}")))? {
            if let Decoded::Frame(f) = item {
                prop_assert!(f.command().is_server_command());
                if f.command() == duplex_stomp::Command::Connected {
                    d.set_version(Version::parse(f.header("version").unwrap()).unwrap());
                }
            }
        }
    }

    #[test]
    fn client_session_is_split_independent(
        input in stomp_bytes(),
        points in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let whole = run_client(&[&input]);
        let split = run_client(&chunks(&input, &points));
        prop_assert_eq!(whole, split);
    }

    #[test]
    fn sessions_survive_arbitrary_time(
        input in stomp_bytes(),
        steps in prop::collection::vec(0u64..30_000, 0..10),
    ) {
        let t0 = Instant::now();
        let mut s = server();
        let mut c = ClientSession::new(ClientConfig::new("h"), t0).unwrap();
        let mut now = t0;
        let mut sink = BytesMut::new();
        s.receive(&input);
        c.receive(&input);
        for ms in steps {
            now += Duration::from_millis(ms);
            s.handle_timeout(now);
            c.handle_timeout(now);
            while s.poll_event().is_some() {}
            while c.poll_event().is_some() {}
            s.poll_transmit(&mut sink);
            c.poll_transmit(&mut sink);
            // A closed session asks for no more wake-ups.
            prop_assert!(!(s.is_closed() && s.poll_timeout().is_some()));
            prop_assert!(!(c.is_closed() && c.poll_timeout().is_some()));
        }
    }
}
