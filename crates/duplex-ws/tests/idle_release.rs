//! `Connection::release_idle_buffers` (an adapter calls it when its read
//! has to wait), called
//! between any two reads, changes nothing a peer or the application sees:
//! not the events (owned or borrowed, a frame split anywhere, a fragmented
//! message, control frames between fragments, a 16-bit length text with
//! multi-byte UTF-8), not the frames still to be written.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use bytes::{Bytes, BytesMut};
use duplex_ws::{Config, Connection, Event, EventRef, Message, Role, apply_mask};

fn client_frame(first_byte: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0x1f, 0x2e, 0x3d, 0x4c];
    let mut out = vec![first_byte];
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n => {
            out.push(0x80 | 126);
            out.extend_from_slice(&u16::try_from(n).unwrap().to_be_bytes());
        }
    }
    out.extend_from_slice(&key);
    let mut body = payload.to_vec();
    apply_mask(&mut body, key, 0);
    out.extend_from_slice(&body);
    out
}

fn wire() -> Vec<u8> {
    let long = "é€ab".repeat(40);
    [
        client_frame(0x81, b"one"),
        client_frame(0x82, &[0, 1, 2, 255]),
        client_frame(0x01, "fr\u{e9}".as_bytes()),
        client_frame(0x89, b"ping!"),
        client_frame(0x80, b"agment"),
        client_frame(0x81, long.as_bytes()),
        client_frame(0x81, b""),
        client_frame(0x81, b"last"),
    ]
    .concat()
}

/// An event as text, the same whether it was borrowed or owned.
fn show(e: Event) -> String {
    match e {
        Event::Message(Message::Text(t)) => format!("text {:?}", t.as_str()),
        Event::Message(Message::Binary(b)) => format!("binary {:?}", &b[..]),
        e => format!("{e:?}"),
    }
}

/// Every event, as text, reading `wire` in chunks of `chunk` bytes; with
/// `release`, the buffers are given back after each chunk's events;
/// `borrowed` reads through `poll_event_ref`.
fn run(chunk: usize, release: bool, borrowed: bool) -> Vec<String> {
    let mut conn = Connection::new(Role::Server, Config::default());
    let mut out = Vec::new();
    for piece in wire().chunks(chunk) {
        conn.receive(piece);
        loop {
            let event = if borrowed {
                match conn.poll_event_ref() {
                    None => break,
                    Some(EventRef::Text(t)) => format!("text {t:?}"),
                    Some(EventRef::Binary(b)) => format!("binary {b:?}"),
                    Some(EventRef::Other(e)) => show(e),
                }
            } else {
                match conn.poll_event() {
                    None => break,
                    Some(e) => show(e),
                }
            };
            out.push(event);
            if release {
                // Also between two events of one read: allowed by the API.
                conn.release_idle_buffers();
            }
        }
        if release {
            conn.release_idle_buffers();
        }
    }
    // What the connection answered (the pong) is still there to write.
    let mut sent = BytesMut::new();
    conn.poll_transmit(&mut sent);
    out.push(format!("sent {:?}", Bytes::from(sent)));
    out
}

#[test]
fn releasing_between_reads_changes_no_event_and_no_write() {
    for borrowed in [false, true] {
        let whole = run(usize::MAX >> 1, false, borrowed);
        assert_eq!(whole.len(), 8, "{whole:?}");
        for chunk in (1..=9).chain([31, 64, 127, 200]) {
            assert_eq!(run(chunk, false, borrowed), whole, "chunks of {chunk}");
            assert_eq!(
                run(chunk, true, borrowed),
                whole,
                "chunks of {chunk}, borrowed {borrowed}"
            );
        }
    }
}
