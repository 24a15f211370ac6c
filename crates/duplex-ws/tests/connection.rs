//! The connection state machine against hand-built wire bytes: every rule
//! of RFC 6455 sections 5 and 7 with the close code it must produce.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use duplex_ws::{
    CloseCode, CloseFrame, Config, Connection, Error, Event, FrameDecoder, Message, OpCode,
    ProtocolError, Role, State, apply_mask,
};

/// A frame as a client sends it (masked), with raw control over every bit.
fn client_frame(first_byte: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0xa1, 0xb2, 0xc3, 0xd4];
    let mut out = vec![first_byte];
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&key);
    let mut body = payload.to_vec();
    apply_mask(&mut body, key, 0);
    out.extend_from_slice(&body);
    out
}

/// Several masked client frames, one after the other: `(first byte, payload)`.
fn client_frames(frames: &[(u8, &[u8])]) -> Vec<u8> {
    frames
        .iter()
        .flat_map(|&(b, p)| client_frame(b, p))
        .collect()
}

fn server() -> Connection {
    Connection::new(Role::Server, Config::default())
}

fn events(conn: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| conn.poll_event()).collect()
}

/// Decodes what the connection wants to send, as the peer would.
fn sent_frames(conn: &mut Connection) -> Vec<(OpCode, Bytes)> {
    let mut out = BytesMut::new();
    conn.poll_transmit(&mut out);
    let peer_role = match conn.role() {
        Role::Server => Role::Client,
        Role::Client => Role::Server,
    };
    let mut dec = FrameDecoder::new(peer_role, usize::MAX >> 1);
    let mut frames = Vec::new();
    while let Some(f) = dec.decode(&mut out).expect("we only send valid frames") {
        frames.push((f.header.opcode, f.payload));
    }
    assert!(out.is_empty(), "trailing bytes after our frames");
    frames
}

fn close_code_sent(conn: &mut Connection) -> Option<u16> {
    sent_frames(conn)
        .into_iter()
        .find(|(op, _)| *op == OpCode::Close)
        .map(|(_, p)| u16::from_be_bytes([p[0], p[1]]))
}

fn assert_fails(wire: &[u8], expected: ProtocolError) {
    let mut conn = server();
    conn.receive(wire);
    let evs = events(&mut conn);
    assert_eq!(evs.last(), Some(&Event::Failed(expected)), "events {evs:?}");
    assert_eq!(close_code_sent(&mut conn), Some(expected.close_code().0));
    assert_eq!(conn.state(), State::Closed);
    assert!(conn.should_close_transport());
    // Nothing more is read or sent.
    conn.receive(&client_frame(0x81, b"late"));
    assert_eq!(conn.poll_event(), None);
    assert_eq!(conn.send_text("x"), Err(Error::Closed));
}

#[test]
fn echo_text_and_binary() {
    let mut conn = server();
    conn.receive(&client_frame(0x81, "héllo".as_bytes()));
    conn.receive(&client_frame(0x82, &[0, 1, 2]));
    conn.receive(&client_frame(0x81, b""));
    assert_eq!(
        events(&mut conn),
        [
            Event::Message(Message::Text("héllo".into())),
            Event::Message(Message::Binary(Bytes::from_static(&[0, 1, 2]))),
            Event::Message(Message::Text("".into())),
        ]
    );
}

#[test]
fn frame_level_violations_close_with_1002() {
    assert_fails(&client_frame(0x83, b""), ProtocolError::ReservedOpCode(3));
    assert_fails(&client_frame(0x8f, b""), ProtocolError::ReservedOpCode(0xf));
    assert_fails(&client_frame(0xc1, b"x"), ProtocolError::ReservedBits);
    assert_fails(&client_frame(0x91, b"x"), ProtocolError::ReservedBits);
    assert_fails(&[0x81, 0x01, b'x'], ProtocolError::UnmaskedClientFrame);
    assert_fails(
        &client_frame(0x89, &[0; 126]),
        ProtocolError::ControlFrameTooLong,
    );
    assert_fails(
        &client_frame(0x09, b""),
        ProtocolError::FragmentedControlFrame,
    );
}

#[test]
fn fragmentation_violations_close_with_1002() {
    assert_fails(
        &client_frame(0x80, b"orphan"),
        ProtocolError::UnexpectedContinuation,
    );
    let wire = client_frames(&[(0x01, b"start"), (0x81, b"again")]);
    assert_fails(&wire, ProtocolError::ExpectedContinuation);
}

#[test]
fn invalid_utf8_closes_with_1007() {
    assert_fails(
        &client_frame(0x81, b"\xce\xba\xed\xa0\x80"),
        ProtocolError::InvalidUtf8,
    );
    // Split across fragments: the code point starts in one, breaks in the next.
    let wire = client_frames(&[(0x01, b"ok\xf0\x9f"), (0x80, b"\x28")]);
    assert_fails(&wire, ProtocolError::InvalidUtf8);
    // An unfinished code point at the end of the message.
    let wire = client_frames(&[(0x01, b"ok"), (0x80, b"\xe2\x82")]);
    assert_fails(&wire, ProtocolError::InvalidUtf8);
    // The close reason too.
    assert_fails(
        &client_frame(0x88, b"\x03\xe8\xff"),
        ProtocolError::InvalidUtf8,
    );
}

#[test]
fn invalid_utf8_detected_before_the_frame_completes() {
    let mut conn = server();
    let wire = client_frame(0x81, b"valid start \xed\xa0\x80 and the rest never arrives");
    // Header plus the first 16 payload bytes: the bad sequence is in there.
    conn.receive(&wire[..6 + 16]);
    assert_eq!(
        conn.poll_event(),
        Some(Event::Failed(ProtocolError::InvalidUtf8))
    );
    assert_eq!(close_code_sent(&mut conn), Some(1007));
}

#[test]
fn invalid_utf8_in_a_later_read_detected_before_the_frame_completes() {
    // The header and a valid start in one read; the bad sequence comes in
    // the next, unmasked on its way into the read buffer (the frame is
    // pending by then), and must still be checked before the rest arrives.
    let mut payload = vec![b'a'; 300];
    payload[200..203].copy_from_slice(b"\xed\xa0\x80");
    let wire = client_frame(0x81, &payload);
    let mut conn = server();
    conn.receive(&wire[..8 + 100]);
    assert_eq!(conn.poll_event(), None);
    conn.receive(&wire[8 + 100..8 + 250]);
    assert_eq!(
        conn.poll_event(),
        Some(Event::Failed(ProtocolError::InvalidUtf8))
    );
    assert_eq!(close_code_sent(&mut conn), Some(1007));
    // The same bytes, valid, make a message once the rest arrives.
    payload[200..203].copy_from_slice(b"abc");
    let wire = client_frame(0x81, &payload);
    let mut conn = server();
    for piece in wire.chunks(37) {
        conn.receive(piece);
        match conn.poll_event() {
            Some(Event::Message(Message::Text(text))) => {
                assert_eq!(text.as_bytes(), &payload[..]);
                return;
            }
            None => {}
            Some(other) => panic!("unexpected {other:?}"),
        }
    }
    panic!("the message never completed");
}

#[test]
fn size_limits_close_with_1009() {
    let config = || Config {
        max_frame_size: 100,
        max_message_size: 150,
        ..Config::default()
    };
    let mut conn = Connection::new(Role::Server, config());
    conn.receive(&client_frame(0x82, &[0; 101])[..8]);
    assert_eq!(
        conn.poll_event(),
        Some(Event::Failed(ProtocolError::FrameTooLarge {
            len: 101,
            limit: 100
        }))
    );
    assert_eq!(close_code_sent(&mut conn), Some(1009));

    let mut conn = Connection::new(Role::Server, config());
    let wire = client_frames(&[(0x02, &[0; 100]), (0x80, &[0; 51])]);
    conn.receive(&wire);
    assert_eq!(
        events(&mut conn),
        [Event::Failed(ProtocolError::MessageTooLarge {
            len: 151,
            limit: 150
        })]
    );
    assert_eq!(close_code_sent(&mut conn), Some(1009));
}

#[test]
fn bad_close_payloads() {
    assert_fails(
        &client_frame(0x88, &[0x03]),
        ProtocolError::InvalidCloseFrame,
    );
    for code in [
        0u16, 999, 1004, 1005, 1006, 1012, 1015, 1016, 2000, 2999, 5000,
    ] {
        assert_fails(
            &client_frame(0x88, &code.to_be_bytes()),
            ProtocolError::InvalidCloseFrame,
        );
    }
}

#[test]
fn fragments_and_interleaved_control_frames() {
    let mut conn = server();
    let wire = client_frames(&[
        (0x01, b"Hel"),
        (0x89, b"ping!"),
        (0x00, b"l"),
        (0x8a, b"pong?"),
        (0x80, b"o"),
    ]);
    conn.receive(&wire);
    assert_eq!(
        events(&mut conn),
        [
            Event::Ping(Bytes::from_static(b"ping!")),
            Event::Pong(Bytes::from_static(b"pong?")),
            Event::Message(Message::Text("Hello".into())),
        ]
    );
    assert_eq!(
        sent_frames(&mut conn),
        [(OpCode::Pong, Bytes::from_static(b"ping!"))]
    );
}

#[test]
fn fragment_mode_hands_out_frames() {
    let mut conn = Connection::new(
        Role::Server,
        Config {
            assemble_messages: false,
            ..Config::default()
        },
    );
    let wire = client_frames(&[(0x02, b"ab"), (0x80, b"c")]);
    conn.receive(&wire);
    assert_eq!(
        events(&mut conn),
        [
            Event::Fragment {
                opcode: OpCode::Binary,
                payload: Bytes::from_static(b"ab"),
                fin: false
            },
            Event::Fragment {
                opcode: OpCode::Continuation,
                payload: Bytes::from_static(b"c"),
                fin: true
            },
        ]
    );
}

#[test]
fn auto_pong_can_be_turned_off() {
    let mut conn = Connection::new(
        Role::Server,
        Config {
            auto_pong: false,
            ..Config::default()
        },
    );
    conn.receive(&client_frame(0x89, b"x"));
    assert_eq!(events(&mut conn), [Event::Ping(Bytes::from_static(b"x"))]);
    assert!(sent_frames(&mut conn).is_empty());
    conn.pong(b"x").unwrap();
    assert_eq!(
        sent_frames(&mut conn),
        [(OpCode::Pong, Bytes::from_static(b"x"))]
    );
}

#[test]
fn peer_initiated_close_is_echoed_and_server_closes_tcp() {
    let mut conn = server();
    let mut payload = 1001u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"bye");
    conn.receive(&client_frame(0x88, &payload));
    assert_eq!(
        events(&mut conn),
        [Event::Close(Some(CloseFrame::new(
            CloseCode::GOING_AWAY,
            "bye"
        )))]
    );
    assert_eq!(close_code_sent(&mut conn), Some(1001));
    assert_eq!(conn.state(), State::Closed);
    assert!(conn.is_clean_close());
    assert!(conn.should_close_transport());
    assert_eq!(conn.send_text("late"), Err(Error::Closed));
    assert_eq!(conn.close(CloseCode::NORMAL, ""), Err(Error::Closed));
}

#[test]
fn empty_close_is_answered_with_empty_close() {
    let mut conn = server();
    conn.receive(&client_frame(0x88, b""));
    assert_eq!(events(&mut conn), [Event::Close(None)]);
    assert_eq!(sent_frames(&mut conn), [(OpCode::Close, Bytes::new())]);
}

#[test]
fn locally_initiated_close_waits_for_the_peer_then_times_out() {
    let mut conn = server();
    conn.close(CloseCode::NORMAL, "done").unwrap();
    assert_eq!(conn.state(), State::Closing);
    assert_eq!(close_code_sent(&mut conn), Some(1000));
    // Messages still arriving are delivered.
    conn.receive(&client_frame(0x81, b"in flight"));
    assert_eq!(
        events(&mut conn),
        [Event::Message(Message::Text("in flight".into()))]
    );
    let t0 = Instant::now();
    conn.handle_timeout(t0);
    assert_eq!(conn.poll_timeout(), Some(t0 + Duration::from_secs(5)));
    conn.handle_timeout(t0 + Duration::from_secs(4));
    assert_eq!(conn.state(), State::Closing);
    conn.handle_timeout(t0 + Duration::from_secs(5));
    assert_eq!(conn.state(), State::Closed);
    assert!(conn.should_close_transport());
    assert!(!conn.is_clean_close());
}

#[test]
fn client_waits_for_server_to_close_tcp() {
    let mut client = Connection::new(Role::Client, Config::default());
    client.close(CloseCode::NORMAL, "").unwrap();
    assert_eq!(close_code_sent(&mut client), Some(1000));
    client.receive(&[0x88, 0x02, 0x03, 0xe8]);
    assert_eq!(
        events(&mut client),
        [Event::Close(Some(CloseFrame::new(CloseCode::NORMAL, "")))]
    );
    assert_eq!(client.state(), State::Closed);
    assert!(!client.should_close_transport());
    let t0 = Instant::now();
    client.handle_timeout(t0);
    assert!(client.poll_timeout().is_some());
    client.receive_eof();
    assert!(client.should_close_transport());
    assert!(client.is_clean_close());
}

#[test]
fn local_misuse_is_a_local_error() {
    let mut conn = server();
    assert_eq!(
        conn.close(CloseCode(1005), ""),
        Err(Error::UnsendableCloseCode(CloseCode(1005)))
    );
    assert_eq!(
        conn.close(CloseCode::NORMAL, &"r".repeat(124)),
        Err(Error::ControlPayloadTooLong)
    );
    assert_eq!(conn.ping(&[0; 126]), Err(Error::ControlPayloadTooLong));
    assert!(matches!(
        conn.send_frame(OpCode::Continuation, b"x", true),
        Err(Error::FrameSequence(_))
    ));
    conn.send_frame(OpCode::Text, b"a", false).unwrap();
    assert!(matches!(conn.send_text("b"), Err(Error::FrameSequence(_))));
    assert!(matches!(
        conn.send_frame(OpCode::Binary, b"x", true),
        Err(Error::FrameSequence(_))
    ));
    conn.send_frame(OpCode::Continuation, b"b", true).unwrap();
    conn.send_text("c").unwrap();
    // The local misuse changed nothing on the wire.
    let frames = sent_frames(&mut conn);
    assert_eq!(frames.len(), 3);
    assert_eq!(conn.state(), State::Open);
}

#[test]
fn client_masks_and_fragments() {
    let mut client = Connection::new(
        Role::Client,
        Config {
            max_outgoing_frame_size: Some(4),
            ..Config::default()
        },
    );
    client.send_text("0123456789").unwrap();
    let mut out = BytesMut::new();
    client.poll_transmit(&mut out);
    let mut server = server();
    server.receive(&out);
    assert_eq!(
        events(&mut server),
        [Event::Message(Message::Text("0123456789".into()))]
    );
    let frames = sent_frames(&mut Connection::new(Role::Client, Config::default()));
    assert!(frames.is_empty());
}

mod permessage_deflate {
    use super::*;
    use duplex_ws::DeflateConfig;

    /// A client and a server that agreed on `offer`, as the handshake would.
    fn pair(client: DeflateConfig, server: DeflateConfig) -> (Connection, Connection) {
        let (params, response) = server.negotiate(&[client.client_offer()]).expect("agreed");
        let client_params = client
            .accept_response(&[response])
            .expect("valid answer")
            .expect("agreed");
        let mut c = Connection::new(Role::Client, Config::default());
        c.enable_permessage_deflate(&client_params);
        let mut s = Connection::new(Role::Server, Config::default());
        s.enable_permessage_deflate(&params);
        (c, s)
    }

    fn deliver(from: &mut Connection, to: &mut Connection) -> Vec<Event> {
        let mut out = BytesMut::new();
        from.poll_transmit(&mut out);
        to.receive(&out);
        events(to)
    }

    #[test]
    fn messages_round_trip_compressed_both_ways() {
        for (c, s) in [
            (DeflateConfig::default(), DeflateConfig::default()),
            (
                DeflateConfig {
                    client_no_context_takeover: true,
                    server_no_context_takeover: true,
                    client_max_window_bits: 9,
                    server_max_window_bits: 10,
                    ..DeflateConfig::default()
                },
                DeflateConfig::default(),
            ),
        ] {
            let (mut client, mut server) = pair(c, s);
            for text in [
                "hello world 1234",
                "",
                &"chat message ".repeat(100),
                "hello world 1234",
            ] {
                client.send_text(text).unwrap();
                assert_eq!(
                    deliver(&mut client, &mut server),
                    [Event::Message(Message::Text(
                        duplex_ws::Utf8Bytes::copy_from_str(text)
                    ))]
                );
                server.send_text(text).unwrap();
                assert_eq!(
                    deliver(&mut server, &mut client),
                    [Event::Message(Message::Text(
                        duplex_ws::Utf8Bytes::copy_from_str(text)
                    ))]
                );
            }
            client
                .send_uncompressed(Message::Binary(Bytes::from_static(b"raw")))
                .unwrap();
            assert_eq!(
                deliver(&mut client, &mut server),
                [Event::Message(Message::Binary(Bytes::from_static(b"raw")))]
            );
        }
    }
}

#[test]
fn idle_connection_gives_its_buffers_back_but_keeps_unread_bytes() {
    let mut conn = server();
    conn.send(Message::Text("hello".into())).unwrap();
    // Taken into a non-empty buffer: copied, so the write buffer keeps
    // its capacity until released.
    let mut out = BytesMut::from(&b"x"[..]);
    assert_eq!(conn.poll_transmit(&mut out), 7);
    conn.read_buf().reserve(4096);
    conn.release_idle_buffers();
    let mut taken = BytesMut::new();
    assert_eq!(conn.poll_transmit(&mut taken), 0);
    assert_eq!(taken.capacity(), 0, "write buffer given back");
    assert_eq!(conn.read_buf().capacity(), 0, "read buffer given back");

    // Half a frame waits in the read buffer: kept, the frame completes.
    let frame = client_frame(0x81, b"hi");
    conn.receive(&frame[..3]);
    conn.release_idle_buffers();
    conn.receive(&frame[3..]);
    assert_eq!(
        events(&mut conn),
        [Event::Message(Message::Text("hi".into()))]
    );
    // And the connection still writes after a release.
    conn.send(Message::Text("again".into())).unwrap();
    assert_eq!(
        sent_frames(&mut conn),
        [(OpCode::Text, Bytes::from_static(b"again"))]
    );
}
