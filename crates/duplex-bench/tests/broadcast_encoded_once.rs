//! Issue #19's broadcast row asks for "the packet encoded once per
//! broadcast". In duplex the Socket.IO machine encodes a broadcast once
//! (`Server::broadcast_opts` in duplex-socketio's server/mod.rs) and queues
//! one transmit per recipient holding a clone of that encoding, a
//! reference-counted `Utf8Bytes`; duplex-tokio hands each to Engine.IO
//! as it is (`send_encoded` in socketio/app.rs). This checks the sharing
//! on the machine the benchmark's server runs: every recipient's text is
//! the very same bytes, not an equal copy.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::time::Instant;

use bytes::Bytes;
use duplex_socketio::server::{Server, ServerConfig, ServerEvent, Transmit};
use duplex_socketio::{Broadcast, Packet, ProtocolVersion, Value};

type Srv = Server<usize, ()>;

/// Opens session `n`, connects it to `/` and puts it in room `all`.
fn member(server: &mut Srv, n: usize, now: Instant) {
    server.open(n, ProtocolVersion::V5, now);
    server.handle_text(&n, Bytes::from_static(b"0"));
    while let Some(event) = server.poll_event() {
        assert!(
            matches!(event, ServerEvent::ConnectRequest { .. }),
            "{event:?}"
        );
    }
    let id = server.accept(&n, "/").unwrap();
    server.join("/", &id, ["all"]);
    // The CONNECT answer.
    while server.poll_transmit().is_some() {}
}

#[test]
fn a_room_broadcast_shares_one_encoding_among_its_recipients() {
    let now = Instant::now();
    let mut server = Srv::new(ServerConfig::default());
    for n in 0..50 {
        member(&mut server, n, now);
    }
    let payload = Value::from("x".repeat(100));
    let packet = Packet::event_with("/", "room-msg", &[payload], None).unwrap();
    assert_eq!(server.broadcast("/", &Broadcast::to("all"), &packet), 50);

    let mut texts = Vec::new();
    while let Some(transmit) = server.poll_transmit() {
        match transmit {
            Transmit::Packet { packet, .. } => texts.push(packet.text),
            other => panic!("expected packets only, got {other:?}"),
        }
    }
    assert_eq!(texts.len(), 50);
    let first = texts[0].as_bytes();
    assert!(first.starts_with(br#"2["room-msg","xxx"#), "{:?}", texts[0]);
    for text in &texts {
        // Same address and length: one buffer, encoded once.
        assert_eq!(
            (text.as_bytes().as_ptr(), text.len()),
            (first.as_ptr(), first.len())
        );
    }
}
