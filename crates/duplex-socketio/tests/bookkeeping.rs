//! Namespace handshake, acknowledgements and rooms.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use duplex_socketio::{
    Acks, Broadcast, Decoder, DecoderConfig, Error, NamespaceState, Namespaces, NamespacesConfig,
    NamespacesEvent, Packet, ProtocolVersion, Received, Role, Rooms,
};

fn packet(version: ProtocolVersion, text: &'static str) -> Packet {
    Decoder::new(DecoderConfig {
        version,
        ..DecoderConfig::default()
    })
    .receive_text(Bytes::from_static(text.as_bytes()))
    .unwrap()
    .unwrap()
}

fn v5(text: &'static str) -> Packet {
    packet(ProtocolVersion::V5, text)
}

#[test]
fn v5_server_handshake_as_the_conformance_suite_expects() {
    let t0 = Instant::now();
    let mut ns = Namespaces::new(NamespacesConfig::default(), t0);
    assert_eq!(ns.poll_transmit(), None, "v5 connects nothing implicitly");
    // An event before any CONNECT is ignored (the connect timeout closes).
    assert_eq!(
        ns.handle_packet(&v5(r#"2["message"]"#)).unwrap(),
        Received::Ignored
    );
    assert_eq!(
        ns.handle_packet(&v5("0")).unwrap(),
        Received::ConnectRequest
    );
    assert_eq!(ns.state("/"), Some(NamespaceState::RequestedByPeer));
    let answer = ns.accept("/", "sid1").unwrap();
    assert_eq!(answer.encode().text.as_bytes(), br#"0{"sid":"sid1"}"#);
    assert!(ns.is_connected("/"));
    assert_eq!(
        ns.handle_packet(&v5(r#"2["message",1]"#)).unwrap(),
        Received::Message
    );
    assert_eq!(ns.handle_packet(&v5("31[]")).unwrap(), Received::Message);
    // `/custom`, then leaving it.
    assert_eq!(
        ns.handle_packet(&v5("0/custom,")).unwrap(),
        Received::ConnectRequest
    );
    ns.accept("/custom", "sid2").unwrap();
    assert_eq!(
        ns.handle_packet(&v5("1/custom,")).unwrap(),
        Received::Disconnected
    );
    assert_eq!(ns.state("/custom"), None);
    assert_eq!(
        ns.handle_packet(&v5(r#"2/custom,["x"]"#)).unwrap(),
        Received::Ignored
    );
    // An unknown namespace is refused: `44/random,{"message":"Invalid namespace"}`.
    assert_eq!(
        ns.handle_packet(&v5("0/random")).unwrap(),
        Received::ConnectRequest
    );
    let refusal = ns.refuse("/random", "Invalid namespace").unwrap();
    assert_eq!(
        refusal.encode().text.as_bytes(),
        br#"4/random,{"message":"Invalid namespace"}"#
    );
    assert_eq!(ns.state("/random"), None);
    // Leaving `/` (`41`): nothing to send, the namespace is gone.
    assert_eq!(ns.handle_packet(&v5("1")).unwrap(), Received::Disconnected);
    assert!(ns.connected().next().is_none());
}

#[test]
fn protocol_violations() {
    let t0 = Instant::now();
    let mut ns = Namespaces::new(NamespacesConfig::default(), t0);
    ns.handle_packet(&v5("0")).unwrap();
    assert!(matches!(
        ns.handle_packet(&v5("0")),
        Err(Error::DuplicateConnect)
    ));
    ns.accept("/", "a").unwrap();
    assert!(matches!(
        ns.handle_packet(&v5("0")),
        Err(Error::DuplicateConnect)
    ));
    // Local misuse: granting what was never requested, sending outside a namespace.
    assert!(matches!(ns.accept("/nope", "b"), Err(Error::InvalidState)));
    let event = Packet::event_with("/other", "x", &[], None).unwrap();
    let err = ns.prepare_send(&event).unwrap_err();
    assert!(err.is_local());
    // Too many namespaces.
    let mut ns = Namespaces::new(
        NamespacesConfig {
            max_namespaces: 1,
            ..NamespacesConfig::default()
        },
        t0,
    );
    ns.handle_packet(&v5("0")).unwrap();
    assert!(matches!(
        ns.handle_packet(&v5("0/admin,")),
        Err(Error::TooManyNamespaces { limit: 1 })
    ));
}

#[test]
fn client_side_uses_the_same_table() {
    let t0 = Instant::now();
    let config = NamespacesConfig {
        role: Role::Client,
        ..NamespacesConfig::default()
    };
    let mut ns = Namespaces::new(config, t0);
    ns.prepare_send(&Packet::connect("/admin", Some(r#"{"token":"123"}"#.into())).unwrap())
        .unwrap();
    assert_eq!(ns.state("/admin"), Some(NamespaceState::RequestedByLocal));
    assert_eq!(
        ns.handle_packet(&v5(r#"0/admin,{"sid":"iLnRaVGHY4B75TeVAAAB"}"#))
            .unwrap(),
        Received::Connected
    );
    ns.prepare_send(&Packet::connect("/", None).unwrap())
        .unwrap();
    assert_eq!(
        ns.handle_packet(&v5(r#"4{"message":"Not authorized"}"#))
            .unwrap(),
        Received::Refused
    );
    assert_eq!(ns.state("/"), None);
    // A late refusal is ignored.
    assert_eq!(
        ns.handle_packet(&v5(r#"4{"message":"Not authorized"}"#))
            .unwrap(),
        Received::Ignored
    );
    ns.prepare_send(&Packet::disconnect("/admin").unwrap())
        .unwrap();
    assert_eq!(ns.state("/admin"), None);
}

#[test]
fn v4_default_namespace_is_implicit() {
    let t0 = Instant::now();
    let server = NamespacesConfig {
        version: ProtocolVersion::V4,
        ..NamespacesConfig::default()
    };
    let mut ns = Namespaces::new(server, t0);
    assert!(ns.is_connected("/"));
    assert_eq!(ns.poll_transmit().unwrap().encode().text.as_bytes(), b"0");
    assert_eq!(ns.poll_transmit(), None);
    // A namespace with a query is keyed by its path; v4 grants carry no payload.
    let p = packet(ProtocolVersion::V4, "0/admin?token=1234,");
    assert_eq!(ns.handle_packet(&p).unwrap(), Received::ConnectRequest);
    assert_eq!(
        ns.accept("/admin", "x").unwrap().encode().text.as_bytes(),
        b"0/admin,"
    );
    assert!(ns.is_connected("/admin"));
    let refusal = ns.refuse("/secret", "Not authorized").unwrap();
    assert_eq!(
        refusal.encode().text.as_bytes(),
        br#"4/secret,"Not authorized""#
    );

    let mut client = Namespaces::new(
        NamespacesConfig {
            version: ProtocolVersion::V4,
            role: Role::Client,
            ..NamespacesConfig::default()
        },
        t0,
    );
    assert_eq!(client.state("/"), Some(NamespaceState::RequestedByLocal));
    assert_eq!(
        client
            .handle_packet(&packet(ProtocolVersion::V4, "0"))
            .unwrap(),
        Received::Connected
    );
}

#[test]
fn connect_timeout() {
    let t0 = Instant::now();
    let config = NamespacesConfig {
        connect_timeout: Some(Duration::from_millis(1000)),
        ..NamespacesConfig::default()
    };
    let mut ns = Namespaces::new(config, t0);
    assert_eq!(ns.poll_timeout(), Some(t0 + Duration::from_millis(1000)));
    ns.handle_timeout(t0 + Duration::from_millis(999));
    assert_eq!(ns.poll_event(), None);
    // A CONNECT that was never granted does not count.
    ns.handle_packet(&v5("0")).unwrap();
    ns.handle_timeout(t0 + Duration::from_millis(1000));
    assert_eq!(ns.poll_event(), Some(NamespacesEvent::ConnectTimeout));
    assert_eq!(ns.poll_event(), None);
    assert_eq!(ns.poll_timeout(), None);

    let mut ns = Namespaces::new(config, t0);
    ns.handle_packet(&v5("0")).unwrap();
    ns.accept("/", "a").unwrap();
    ns.handle_timeout(t0 + Duration::from_secs(5));
    assert_eq!(ns.poll_event(), None);
}

#[test]
fn acks_allocate_match_and_expire() {
    let t0 = Instant::now();
    let s = Duration::from_secs(1);
    let mut acks = Acks::new(3);
    let a = acks.register('a', Some(t0 + 3 * s)).unwrap();
    let b = acks.register('b', None).unwrap();
    let c = acks.register('c', Some(t0 + s)).unwrap();
    assert_eq!((a, b, c), (0, 1, 2));
    assert!(matches!(
        acks.register('d', None),
        Err(Error::TooManyPendingAcks { limit: 3 })
    ));
    assert_eq!(acks.poll_timeout(), Some(t0 + s));
    assert_eq!(acks.resolve(c), Some('c'));
    assert_eq!(acks.resolve(c), None, "an ack is matched once");
    assert_eq!(acks.resolve(99), None);
    assert_eq!(
        acks.poll_timeout(),
        Some(t0 + 3 * s),
        "answered deadline dropped"
    );
    acks.handle_timeout(t0 + 2 * s);
    assert_eq!(acks.poll_expired(), None);
    acks.handle_timeout(t0 + 3 * s);
    assert_eq!(acks.poll_expired(), Some((0, 'a')));
    assert_eq!(acks.resolve(a), None, "expired acks no longer match");
    assert_eq!(acks.poll_timeout(), None);
    assert_eq!(acks.len(), 1);
    assert_eq!(acks.register('e', None).unwrap(), 3);
    assert_eq!(acks.clear(), [(1, 'b'), (3, 'e')]);
    assert!(acks.is_empty());
}

#[test]
fn ack_heap_does_not_grow_with_answered_acks() {
    let t0 = Instant::now();
    let mut acks = Acks::new(10);
    let first = acks.register(0, Some(t0)).unwrap();
    for i in 0..10_000u64 {
        let id = acks
            .register(i, Some(t0 + Duration::from_secs(i + 1)))
            .unwrap();
        assert_eq!(acks.resolve(id), Some(i));
    }
    // Only the unanswered first deadline is left to wake for.
    assert_eq!(acks.poll_timeout(), Some(t0));
    acks.handle_timeout(t0);
    assert_eq!(acks.poll_expired(), Some((first, 0)));
    assert_eq!(acks.poll_timeout(), None);
}

#[test]
fn rooms_and_broadcast_recipients() {
    let mut rooms: Rooms<u32> = Rooms::new();
    rooms.add_socket(9);
    assert!(rooms.join(1, "a"));
    assert!(!rooms.join(1, "a"));
    rooms.join(2, "a");
    rooms.join(2, "b");
    rooms.join(3, "b");
    fn sorted_in(rooms: &Rooms<u32>, b: Broadcast<u32>) -> Vec<u32> {
        let mut v: Vec<u32> = rooms.recipients(&b).copied().collect();
        v.sort_unstable();
        v
    }
    assert_eq!(sorted_in(&rooms, Broadcast::all()), [1, 2, 3, 9]);
    assert_eq!(
        sorted_in(&rooms, Broadcast::all().except_socket(9)),
        [1, 2, 3]
    );
    assert_eq!(sorted_in(&rooms, Broadcast::to("a")), [1, 2]);
    assert_eq!(
        sorted_in(&rooms, Broadcast::to("a").and_to("b")),
        [1, 2, 3],
        "each once"
    );
    assert_eq!(
        sorted_in(&rooms, Broadcast::to("a").and_to("b").except_room("b")),
        [1]
    );
    assert_eq!(sorted_in(&rooms, Broadcast::to("a").except_socket(1)), [2]);
    assert_eq!(
        sorted_in(&rooms, Broadcast::to("nobody")),
        Vec::<u32>::new()
    );
    let mut of2: Vec<&str> = rooms.rooms_of(&2).collect();
    of2.sort_unstable();
    assert_eq!(of2, ["a", "b"]);
    assert!(rooms.leave(&2, "a"));
    assert!(!rooms.leave(&2, "a"));
    rooms.remove_socket(&3);
    assert_eq!(sorted_in(&rooms, Broadcast::to("b")), [2]);
    rooms.remove_socket(&2);
    let mut left: Vec<&str> = rooms.rooms().collect();
    left.sort_unstable();
    assert_eq!(left, ["a"], "empty rooms disappear");
    assert_eq!(rooms.members("a").count(), 1);
    assert_eq!(rooms.sockets().count(), 2);
}
