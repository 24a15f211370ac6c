//! Client and server sessions talking to each other (and to hand-written
//! peers) in memory, with the time handed in.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::time::{Duration, Instant};

use bytes::BytesMut;
use duplex_stomp::{
    AckMode, ClientConfig, ClientEvent, ClientSession, ClientState, Command, Decoded, Error, Frame,
    FrameDecoder, HeartBeat, HeartBeatIntervals, Limits, ServerConfig, ServerEvent, ServerSession,
    ServerState, Version,
};
use rand::SeedableRng;

fn server_config() -> ServerConfig {
    ServerConfig {
        rng: Box::new(rand::rngs::StdRng::seed_from_u64(7)),
        ..ServerConfig::default()
    }
}

fn drain_client(c: &mut ClientSession) -> Vec<ClientEvent> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

fn drain_server(s: &mut ServerSession) -> Vec<ServerEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn c2s(c: &mut ClientSession, s: &mut ServerSession) -> Vec<ServerEvent> {
    let mut buf = BytesMut::new();
    c.poll_transmit(&mut buf);
    s.receive(&buf);
    drain_server(s)
}

fn s2c(s: &mut ServerSession, c: &mut ClientSession) -> Vec<ClientEvent> {
    let mut buf = BytesMut::new();
    s.poll_transmit(&mut buf);
    c.receive(&buf);
    drain_client(c)
}

/// Frames a session transmitted, decoded with `version`'s rules.
fn frames_out(bytes: &[u8], version: Version) -> Vec<Decoded> {
    let mut d = FrameDecoder::new(Limits::default());
    d.set_version(version);
    d.receive(bytes);
    std::iter::from_fn(|| d.decode().unwrap()).collect()
}

fn server_output(s: &mut ServerSession) -> Vec<Frame> {
    let mut buf = BytesMut::new();
    s.poll_transmit(&mut buf);
    frames_out(&buf, Version::V1_0)
        .into_iter()
        .filter_map(|d| match d {
            Decoded::Frame(f) => Some(f),
            Decoded::HeartBeat => None,
        })
        .collect()
}

fn connected_pair(
    client: ClientConfig,
    server: ServerConfig,
    now: Instant,
) -> (ClientSession, ServerSession) {
    let mut c = ClientSession::new(client, now).unwrap();
    let mut s = ServerSession::new(server, now);
    let ev = c2s(&mut c, &mut s);
    assert!(
        matches!(ev.as_slice(), [ServerEvent::Connected(_)]),
        "{ev:?}"
    );
    let ev = s2c(&mut s, &mut c);
    assert!(
        matches!(ev.as_slice(), [ClientEvent::Connected(_)]),
        "{ev:?}"
    );
    (c, s)
}

#[test]
fn client_connect_frame_carries_the_required_headers() {
    let mut config = ClientConfig::new("stomp.github.org");
    config.login = Some("guest".into());
    config.passcode = Some("secret".into());
    config.heart_beat = HeartBeat {
        send: Duration::from_millis(100),
        receive: Duration::from_millis(200),
    };
    let mut c = ClientSession::new(config, Instant::now()).unwrap();
    let mut buf = BytesMut::new();
    c.poll_transmit(&mut buf);
    assert_eq!(
        buf.as_ref(),
        b"CONNECT\naccept-version:1.0,1.1,1.2\nhost:stomp.github.org\nlogin:guest\npasscode:secret\nheart-beat:100,200\n\n\0"
    );
    // A 1.0-only client sends neither accept-version nor heart-beat; STOMP
    // replaces CONNECT when asked.
    let mut config = ClientConfig::new("h");
    config.versions = vec![Version::V1_0];
    let mut c = ClientSession::new(config, Instant::now()).unwrap();
    let mut buf = BytesMut::new();
    c.poll_transmit(&mut buf);
    assert_eq!(buf.as_ref(), b"CONNECT\nhost:h\n\n\0");
    let mut config = ClientConfig::new("h");
    config.use_stomp_command = true;
    config.versions = vec![Version::V1_2];
    let mut c = ClientSession::new(config, Instant::now()).unwrap();
    let mut buf = BytesMut::new();
    c.poll_transmit(&mut buf);
    assert!(buf.starts_with(b"STOMP\naccept-version:1.2\n"));
}

#[test]
fn handshake_negotiates_the_highest_common_version_and_heart_beats() {
    let now = Instant::now();
    let mut client = ClientConfig::new("h");
    client.versions = vec![Version::V1_0, Version::V1_1];
    client.heart_beat = HeartBeat {
        send: Duration::from_millis(100),
        receive: Duration::from_millis(200),
    };
    let mut server = server_config();
    server.heart_beat = HeartBeat {
        send: Duration::from_millis(300),
        receive: Duration::from_millis(50),
    };
    let mut c = ClientSession::new(client, now).unwrap();
    let mut s = ServerSession::new(server, now);
    let ev = c2s(&mut c, &mut s);
    let [ServerEvent::Connected(accepted)] = ev.as_slice() else {
        panic!("{ev:?}")
    };
    assert_eq!(accepted.version, Version::V1_1);
    assert_eq!(accepted.host.as_deref(), Some("h"));
    let ms = Duration::from_millis;
    assert_eq!(
        accepted.heart_beat,
        HeartBeatIntervals {
            send: Some(ms(300)),
            receive: Some(ms(100))
        }
    );
    let mut buf = BytesMut::new();
    s.poll_transmit(&mut buf);
    let text = String::from_utf8(buf.to_vec()).unwrap();
    assert!(
        text.starts_with("CONNECTED\nversion:1.1\nheart-beat:300,50\nsession:session-"),
        "{text}"
    );
    assert!(text.contains("\nserver:duplex-stomp/"));
    c.receive(&buf);
    let ev = drain_client(&mut c);
    let [ClientEvent::Connected(connected)] = ev.as_slice() else {
        panic!("{ev:?}")
    };
    assert_eq!(connected.version, Version::V1_1);
    assert_eq!(
        connected.session.as_deref(),
        Some(accepted.session.as_str())
    );
    assert_eq!(
        connected.heart_beat,
        HeartBeatIntervals {
            send: Some(ms(100)),
            receive: Some(ms(300))
        }
    );
    assert_eq!(c.state(), &ClientState::Connected);
    assert_eq!(c.version(), Version::V1_1);
}

#[test]
fn no_common_version_is_an_error_frame_listing_the_supported_ones() {
    let now = Instant::now();
    let mut client = ClientConfig::new("h");
    client.versions = vec![Version::V1_0];
    let mut server = server_config();
    server.versions = vec![Version::V1_1, Version::V1_2];
    let mut c = ClientSession::new(client, now).unwrap();
    let mut s = ServerSession::new(server, now);
    assert_eq!(
        c2s(&mut c, &mut s),
        vec![ServerEvent::Failed(Error::NoCommonVersion)]
    );
    assert!(s.is_closed());
    let mut buf = BytesMut::new();
    s.poll_transmit(&mut buf);
    let frames = frames_out(&buf, Version::V1_0);
    let [Decoded::Frame(error)] = frames.as_slice() else {
        panic!("{frames:?}")
    };
    assert_eq!(error.command(), Command::Error);
    assert_eq!(error.header("version"), Some("1.1,1.2"));
    assert_eq!(error.header("message"), Some("no common protocol version"));
    assert_eq!(
        error.body().as_ref(),
        b"Supported protocol versions are 1.1 1.2"
    );
    c.receive(&buf);
    let ev = drain_client(&mut c);
    assert!(matches!(ev.as_slice(), [ClientEvent::Error(f)] if f.command() == Command::Error));
    assert!(c.is_closed());
}

#[test]
fn frames_before_connect_are_refused_with_receipt_id() {
    let mut s = ServerSession::new(server_config(), Instant::now());
    s.receive(b"SEND\ndestination:/queue/a\nreceipt:r-1\n\nhi\0");
    assert_eq!(
        drain_server(&mut s),
        vec![ServerEvent::Failed(Error::UnexpectedFrame {
            command: Command::Send
        })]
    );
    let out = server_output(&mut s);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].command(), Command::Error);
    assert_eq!(out[0].header("receipt-id"), Some("r-1"));
    assert_eq!(out[0].header("message"), Some("unexpected frame"));
    assert!(s.is_closed());
    // Nothing more is read after the ERROR.
    s.receive(b"CONNECT\n\n\0");
    assert_eq!(drain_server(&mut s), vec![]);
    assert!(server_output(&mut s).is_empty());
}

#[test]
fn authentication_hook_decides() {
    let mut server = server_config();
    server.authenticator = Some(Box::new(|req| {
        req.login() == Some("alice") && req.passcode() == Some("pw")
    }));
    let mut s = ServerSession::new(server, Instant::now());
    s.receive(b"CONNECT\naccept-version:1.2\nhost:h\nlogin:alice\npasscode:nope\n\n\0");
    assert_eq!(
        drain_server(&mut s),
        vec![ServerEvent::Failed(Error::AuthenticationFailed)]
    );
    let out = server_output(&mut s);
    assert_eq!(out[0].header("message"), Some("authentication failed"));
    assert!(s.is_closed());

    let mut server = server_config();
    server.authenticator = Some(Box::new(|req| {
        req.login() == Some("alice") && req.passcode() == Some("pw")
    }));
    let mut s = ServerSession::new(server, Instant::now());
    s.receive(b"STOMP\naccept-version:1.2\nhost:h\nlogin:alice\npasscode:pw\n\n\0");
    let ev = drain_server(&mut s);
    let [ServerEvent::Connected(a)] = ev.as_slice() else {
        panic!("{ev:?}")
    };
    assert_eq!(a.login.as_deref(), Some("alice"));
}

#[test]
fn invalid_client_frames_get_error_with_receipt_id_then_close() {
    let now = Instant::now();
    for (frame, expected) in [
        (
            &b"SUBSCRIBE\ndestination:/queue/a\nreceipt:77\n\n\0"[..],
            Error::MissingHeader {
                command: Command::Subscribe,
                header: "id",
            },
        ),
        (
            b"SEND\nreceipt:77\n\nx\0",
            Error::MissingHeader {
                command: Command::Send,
                header: "destination",
            },
        ),
        (
            b"ACK\nmessage-id:1\nreceipt:77\n\n\0",
            Error::MissingHeader {
                command: Command::Ack,
                header: "id",
            },
        ),
        (
            b"SUBSCRIBE\nid:1\ndestination:/q\nack:sometimes\nreceipt:77\n\n\0",
            Error::InvalidHeader { header: "ack" },
        ),
        (
            b"MESSAGE\nreceipt:77\n\n\0",
            Error::UnexpectedFrame {
                command: Command::Message,
            },
        ),
        (
            b"CONNECT\nreceipt:77\n\n\0",
            Error::UnexpectedFrame {
                command: Command::Connect,
            },
        ),
    ] {
        let (_c, mut s) = connected_pair(ClientConfig::new("h"), server_config(), now);
        s.receive(frame);
        assert_eq!(
            drain_server(&mut s),
            vec![ServerEvent::Failed(expected.clone())]
        );
        let out = server_output(&mut s);
        assert_eq!(out.len(), 1, "{expected:?}");
        assert_eq!(out[0].command(), Command::Error);
        assert_eq!(out[0].header("receipt-id"), Some("77"), "{expected:?}");
        assert_eq!(out[0].header("message"), Some(expected.error_message()));
        assert!(s.is_closed());
    }
}

#[test]
fn malformed_input_and_limits_get_error_then_close() {
    let now = Instant::now();
    let mut server = server_config();
    server.limits = Limits {
        max_body: 4,
        ..Limits::default()
    };
    let (_c, mut s) = connected_pair(ClientConfig::new("h"), server, now);
    s.receive(b"SEND\ndestination:/q\n\n12345\0");
    assert_eq!(
        drain_server(&mut s),
        vec![ServerEvent::Failed(Error::BodyTooLarge { limit: 4 })]
    );
    let out = server_output(&mut s);
    assert_eq!(out[0].header("message"), Some("frame body too large"));
    assert!(s.is_closed());

    let (_c, mut s) = connected_pair(ClientConfig::new("h"), server_config(), now);
    s.receive(b"SEND\ndestination:/q\nbad:\\t\n\n\0");
    assert_eq!(
        drain_server(&mut s),
        vec![ServerEvent::Failed(Error::InvalidEscape)]
    );
    assert!(s.is_closed());
}

#[test]
fn version_specific_headers_are_checked() {
    let now = Instant::now();
    let mut client = ClientConfig::new("h");
    client.versions = vec![Version::V1_1];
    let (_c, mut s) = connected_pair(client, server_config(), now);
    s.receive(b"ACK\nmessage-id:1\nsubscription:0\n\n\0");
    assert!(
        matches!(drain_server(&mut s).as_slice(), [ServerEvent::Frame(f)] if f.command() == Command::Ack)
    );

    let mut client = ClientConfig::new("h");
    client.versions = vec![Version::V1_0];
    let (_c, mut s) = connected_pair(client, server_config(), now);
    assert_eq!(s.version(), Version::V1_0);
    // 1.0: SUBSCRIBE needs no id, UNSUBSCRIBE may name the destination.
    s.receive(b"SUBSCRIBE\ndestination:/q\n\n\0UNSUBSCRIBE\ndestination:/q\n\n\0");
    assert_eq!(drain_server(&mut s).len(), 2);
    // NACK does not exist in 1.0.
    s.receive(b"NACK\nmessage-id:1\n\n\0");
    assert_eq!(
        drain_server(&mut s),
        vec![ServerEvent::Failed(Error::UnexpectedFrame {
            command: Command::Nack
        })]
    );
}

#[test]
fn graceful_disconnect_with_receipt() {
    let now = Instant::now();
    let (mut c, mut s) = connected_pair(ClientConfig::new("h"), server_config(), now);
    let receipt = c.disconnect().unwrap();
    assert!(matches!(c.state(), ClientState::Disconnecting { .. }));
    assert_eq!(c.send("/q", &[], b"x"), Err(Error::Closed));
    let ev = c2s(&mut c, &mut s);
    let [ServerEvent::Frame(f)] = ev.as_slice() else {
        panic!("{ev:?}")
    };
    assert_eq!(f.command(), Command::Disconnect);
    assert_eq!(
        s.state(),
        &ServerState::Disconnecting {
            receipt: receipt.clone()
        }
    );
    // Frames after DISCONNECT are not read, nor kept.
    s.receive(b"SEND\ndestination:/q\n\n\0");
    assert_eq!(drain_server(&mut s), vec![]);
    for _ in 0..64 {
        s.receive(&[b'x'; 64 * 1024]);
    }
    assert_eq!(s.buffered(), 0);
    s.send_receipt(&receipt).unwrap();
    assert!(s.is_closed());
    assert_eq!(s2c(&mut s, &mut c), vec![ClientEvent::Disconnected]);
    assert!(c.is_closed());
}

#[test]
fn receipts_and_messages_reach_the_client() {
    let now = Instant::now();
    let (mut c, mut s) = connected_pair(ClientConfig::new("h"), server_config(), now);
    let sub = c
        .subscribe_with(
            "/queue/a",
            AckMode::ClientIndividual,
            &[("receipt", "r-sub")],
        )
        .unwrap();
    assert_eq!(c.pending_receipts(), 1);
    let ev = c2s(&mut c, &mut s);
    let [ServerEvent::Frame(f)] = ev.as_slice() else {
        panic!("{ev:?}")
    };
    assert_eq!(f.header("id"), Some(sub.as_str()));
    assert_eq!(f.header("ack"), Some("client-individual"));
    s.send_receipt("r-sub").unwrap();
    let message = Frame::new(Command::Message)
        .with_header("destination", "/queue/a")
        .with_header("message-id", "m-1")
        .with_header("subscription", &sub)
        .with_header("ack", "a:1")
        .with_body(&b"bin\0ary"[..]);
    s.send_frame(&message).unwrap();
    let ev = s2c(&mut s, &mut c);
    assert_eq!(
        ev[0],
        ClientEvent::Receipt {
            receipt_id: "r-sub".into()
        }
    );
    let ClientEvent::Message(m) = &ev[1] else {
        panic!("{ev:?}")
    };
    assert_eq!(m.body().as_ref(), b"bin\0ary");
    assert_eq!(m.ack_id(), Some("a:1"), "escaped colon survives");
    assert_eq!(c.pending_receipts(), 0);
    c.ack(m, None).unwrap();
    let ev = c2s(&mut c, &mut s);
    let [ServerEvent::Frame(ack)] = ev.as_slice() else {
        panic!("{ev:?}")
    };
    assert_eq!(
        (ack.command(), ack.header("id")),
        (Command::Ack, Some("a:1"))
    );
}

#[test]
fn client_ack_headers_follow_the_version() {
    let now = Instant::now();
    let message = Frame::new(Command::Message)
        .with_header("destination", "/q")
        .with_header("message-id", "m-9")
        .with_header("subscription", "sub-1")
        .with_header("ack", "d-9");
    for (version, expected) in [
        (Version::V1_2, vec![("id", "d-9"), ("transaction", "tx-1")]),
        (
            Version::V1_1,
            vec![
                ("message-id", "m-9"),
                ("subscription", "sub-1"),
                ("transaction", "tx-1"),
            ],
        ),
        (
            Version::V1_0,
            vec![
                ("message-id", "m-9"),
                ("subscription", "sub-1"),
                ("transaction", "tx-1"),
            ],
        ),
    ] {
        let mut client = ClientConfig::new("h");
        client.versions = vec![version];
        let (mut c, mut s) = connected_pair(client, server_config(), now);
        let tx = c.begin().unwrap();
        assert_eq!(tx, "tx-1");
        s.send_frame(&message).unwrap();
        let ev = s2c(&mut s, &mut c);
        let [ClientEvent::Message(m)] = ev.as_slice() else {
            panic!("{ev:?}")
        };
        c.ack(m, Some(&tx)).unwrap();
        let ev = c2s(&mut c, &mut s);
        let ServerEvent::Frame(ack) = &ev[1] else {
            panic!("{ev:?}")
        };
        let headers: Vec<(&str, &str)> = ack
            .headers()
            .iter()
            .map(|h| (h.name(), h.value()))
            .collect();
        assert_eq!(headers, expected, "{version}");
        if version == Version::V1_0 {
            assert_eq!(
                c.nack(m, None),
                Err(Error::UnsupportedByVersion { what: "NACK" })
            );
        }
        c.commit(&tx).unwrap();
        assert_eq!(c.commit(&tx), Err(Error::NoSuchTransaction));
    }
}

#[test]
fn client_refuses_local_misuse_without_sending() {
    let now = Instant::now();
    let mut c = ClientSession::new(ClientConfig::new("h"), now).unwrap();
    assert_eq!(c.send("/q", &[], b""), Err(Error::NotConnected));
    let (mut c, _s) = connected_pair(ClientConfig::new("h"), server_config(), now);
    let mut sink = BytesMut::new();
    c.poll_transmit(&mut sink);
    assert_eq!(c.unsubscribe("nope", &[]), Err(Error::NoSuchSubscription));
    assert_eq!(
        c.send("/q", &[("transaction", "nope")], b""),
        Err(Error::NoSuchTransaction)
    );
    assert_eq!(
        c.send_frame(&Frame::new(Command::Message)),
        Err(Error::WrongRole {
            command: Command::Message
        })
    );
    assert_eq!(
        c.send_frame(&Frame::new(Command::Connect)),
        Err(Error::WrongRole {
            command: Command::Connect
        })
    );
    // A carriage return is escaped in 1.2.
    c.send("/q", &[("bad", "\r")], b"").unwrap();
    assert!(matches!(
        c.send_frame(&Frame::new(Command::Subscribe)),
        Err(Error::InvalidLocalFrame { .. })
    ));
    let auto =
        duplex_stomp::Message::new(Frame::new(Command::Message).with_header("message-id", "1"));
    assert!(matches!(
        c.ack(&auto, None),
        Err(Error::InvalidLocalFrame { .. })
    ));
    // Only the one valid SEND above went out.
    c.poll_transmit(&mut sink);
    assert_eq!(sink.as_ref(), b"SEND\ndestination:/q\nbad:\\r\n\n\0");
}

#[test]
fn heart_beats_are_sent_on_schedule_and_silence_is_detected() {
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let mut client = ClientConfig::new("h");
    client.heart_beat = HeartBeat::every(ms(100));
    let mut server = server_config();
    server.heart_beat = HeartBeat::every(ms(100));
    let (mut c, mut s) = connected_pair(client, server, t0);
    // The receive side is looked at every quarter interval.
    assert_eq!(c.poll_timeout(), Some(t0 + ms(25)));
    // The client sends an EOL every 100 ms.
    for i in 1..=3u32 {
        let now = t0 + ms(100) * i;
        c.handle_timeout(now);
        s.handle_timeout(now);
        let mut buf = BytesMut::new();
        c.poll_transmit(&mut buf);
        assert_eq!(buf.as_ref(), b"\n");
        s.receive(&buf);
        assert_eq!(drain_server(&mut s), vec![]);
        let mut buf = BytesMut::new();
        s.poll_transmit(&mut buf);
        assert_eq!(buf.as_ref(), b"\n");
        c.receive(&buf);
        assert_eq!(drain_client(&mut c), vec![]);
    }
    assert!(!s.is_closed() && !c.is_closed());
    // Now the client goes silent after its octet at 300 ms: the server
    // gives up within 2 intervals of it, and not before 1.75.
    let mut now = t0 + ms(300);
    while !s.is_closed() {
        now = s.poll_timeout().unwrap();
        s.handle_timeout(now);
        assert!(now <= t0 + ms(300) + ms(200), "gave up too late");
    }
    assert!(now >= t0 + ms(300) + ms(175), "gave up too early");
    assert_eq!(
        drain_server(&mut s),
        vec![ServerEvent::Failed(Error::HeartBeatTimeout)]
    );
    let out = server_output(&mut s);
    assert_eq!(
        out.last().map(|f| f.header("message")),
        Some(Some("heart-beat timeout"))
    );
    // And the client notices a silent server the same way.
    let mut now = t0 + ms(300);
    while !c.is_closed() {
        now = c.poll_timeout().unwrap();
        c.handle_timeout(now);
    }
    assert!(now >= t0 + ms(475) && now <= t0 + ms(500), "{:?}", now - t0);
    assert_eq!(
        drain_client(&mut c),
        vec![ClientEvent::Failed(Error::HeartBeatTimeout)]
    );
}

/// Issue #20: a client negotiating `heart-beat:1000,0` with a server that
/// wants 1 s heart-beats (the conformance server) and then silent was still
/// connected 4 s later. With the default tolerance (2) it is dropped by
/// twice the interval after its last octet, wherever that octet falls
/// between two of the server's checks.
#[test]
fn a_silent_client_is_dropped_within_twice_its_heart_beat_interval() {
    let ms = Duration::from_millis;
    for last_octet in [0u64, 1, 130, 249, 250, 251, 700, 1999] {
        let t0 = Instant::now();
        let config = ServerConfig {
            heart_beat: HeartBeat::every(ms(1000)),
            ..ServerConfig::default()
        };
        let mut s = ServerSession::new(config, t0);
        s.receive(b"CONNECT\naccept-version:1.2\nhost:/\nheart-beat:1000,0\n\n\0");
        assert!(matches!(
            drain_server(&mut s).as_slice(),
            [ServerEvent::Connected(_)]
        ));
        assert_eq!(s.heart_beat().receive, Some(ms(1000)));
        let mut fed = last_octet == 0;
        let mut now = t0;
        while !s.is_closed() {
            let at = s.poll_timeout().expect("a timer while connected");
            if !fed && at >= t0 + ms(last_octet) {
                // The client's heart-beat lands before this wake-up.
                s.receive(b"\n");
                fed = true;
            }
            now = at;
            s.handle_timeout(now);
            assert!(now < t0 + ms(10_000), "never dropped");
        }
        let silent = now - (t0 + ms(last_octet));
        assert!(
            silent <= ms(2000),
            "last octet {last_octet}: dropped after {silent:?}"
        );
        assert!(
            silent >= ms(1500),
            "last octet {last_octet}: dropped after {silent:?}"
        );
        assert_eq!(
            drain_server(&mut s),
            vec![ServerEvent::Failed(Error::HeartBeatTimeout)]
        );
    }
}

#[test]
fn the_connect_timeout_defaults_to_ten_seconds() {
    assert_eq!(
        ServerConfig::default().connect_timeout,
        Some(Duration::from_secs(10))
    );
    let t0 = Instant::now();
    let mut s = ServerSession::new(ServerConfig::default(), t0);
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(10)));
    s.handle_timeout(t0 + Duration::from_millis(9_999));
    assert!(!s.is_closed());
    s.handle_timeout(t0 + Duration::from_secs(10));
    assert!(s.is_closed());
    assert_eq!(
        drain_server(&mut s),
        vec![ServerEvent::Failed(Error::ConnectTimeout)]
    );
    assert_eq!(
        server_output(&mut s)[0].header("message"),
        Some("connect timeout")
    );
}

#[test]
fn a_client_that_never_connects_is_timed_out() {
    let t0 = Instant::now();
    let mut server = server_config();
    server.connect_timeout = Some(Duration::from_secs(5));
    let mut s = ServerSession::new(server, t0);
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(5)));
    s.handle_timeout(t0 + Duration::from_secs(4));
    assert!(!s.is_closed());
    s.handle_timeout(t0 + Duration::from_secs(5));
    assert!(s.is_closed());
    assert_eq!(
        drain_server(&mut s),
        vec![ServerEvent::Failed(Error::ConnectTimeout)]
    );
}

#[test]
fn server_error_frames_reach_the_client_and_close_it() {
    let now = Instant::now();
    let (mut c, mut s) = connected_pair(ClientConfig::new("h"), server_config(), now);
    s.send_error("no such queue", Some("r-5"), "details")
        .unwrap();
    assert!(s.is_closed());
    assert_eq!(s.send_receipt("x"), Err(Error::Closed));
    let ev = s2c(&mut s, &mut c);
    let [ClientEvent::Error(f)] = ev.as_slice() else {
        panic!("{ev:?}")
    };
    assert_eq!(f.header("message"), Some("no such queue"));
    assert_eq!(f.header("receipt-id"), Some("r-5"));
    assert_eq!(f.body().as_ref(), b"details");
    assert!(c.is_closed());
}

#[test]
fn an_error_before_connected_reads_without_unescaping() {
    // A 1.0 server may put a raw backslash in its ERROR; before CONNECTED
    // the client reads headers as they are rather than failing on them.
    let mut c = ClientSession::new(ClientConfig::new("h"), Instant::now()).unwrap();
    c.receive(b"ERROR\nmessage:bad login \\o/\n\n\0");
    let ev = drain_client(&mut c);
    let [ClientEvent::Error(f)] = ev.as_slice() else {
        panic!("{ev:?}")
    };
    assert_eq!(f.header("message"), Some("bad login \\o/"));
    assert!(c.is_closed());
    // Likewise the server refuses an early frame with its receipt id intact.
    let mut s = ServerSession::new(server_config(), Instant::now());
    s.receive(b"SEND\nreceipt:a\\tb\n\n\0");
    assert_eq!(
        drain_server(&mut s),
        vec![ServerEvent::Failed(Error::UnexpectedFrame {
            command: Command::Send
        })]
    );
    assert_eq!(server_output(&mut s)[0].header("receipt-id"), Some("a\\tb"));
}

#[test]
fn a_server_that_never_answers_connect_is_timed_out() {
    let t0 = Instant::now();
    let mut config = ClientConfig::new("h");
    config.connect_timeout = Some(Duration::from_secs(3));
    config.passcode = Some("secret".into());
    assert!(
        !format!("{config:?}").contains("secret"),
        "passcode is redacted"
    );
    let mut c = ClientSession::new(config, t0).unwrap();
    assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(3)));
    c.handle_timeout(t0 + Duration::from_secs(2));
    assert!(!c.is_closed());
    c.handle_timeout(t0 + Duration::from_secs(3));
    assert!(c.is_closed());
    assert_eq!(
        drain_client(&mut c),
        vec![ClientEvent::Failed(Error::ConnectTimeout)]
    );
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn send_with_receipt_names_a_fresh_receipt_and_its_receipt_settles_it() {
    let now = Instant::now();
    let (mut c, mut s) = connected_pair(ClientConfig::new("h"), server_config(), now);
    let first = c
        .send_with_receipt("/queue/a", &[("content-type", "text/plain")], b"one")
        .unwrap();
    let second = c.send_with_receipt("/queue/a", &[], b"two").unwrap();
    assert_ne!(first, second);
    assert_eq!(c.pending_receipts(), 2);
    let ev = c2s(&mut c, &mut s);
    let [ServerEvent::Frame(a), ServerEvent::Frame(b)] = ev.as_slice() else {
        panic!("{ev:?}")
    };
    assert_eq!(a.header("receipt"), Some(first.as_str()));
    assert_eq!(a.header("content-type"), Some("text/plain"));
    assert_eq!(a.header("destination"), Some("/queue/a"));
    assert_eq!(b.header("receipt"), Some(second.as_str()));
    s.send_receipt(&second).unwrap();
    assert_eq!(
        s2c(&mut s, &mut c),
        [ClientEvent::Receipt { receipt_id: second }]
    );
    assert_eq!(c.pending_receipts(), 1);
}

#[test]
fn send_with_receipt_is_bounded_by_max_pending_receipts() {
    let now = Instant::now();
    let config = ClientConfig {
        max_pending_receipts: 1,
        ..ClientConfig::new("h")
    };
    let (mut c, _s) = connected_pair(config, server_config(), now);
    c.send_with_receipt("/queue/a", &[], b"one").unwrap();
    assert!(matches!(
        c.send_with_receipt("/queue/a", &[], b"two"),
        Err(Error::TooManyReceipts)
    ));
}

#[test]
fn websocket_subprotocols_offer_the_configured_versions_highest_first() {
    assert_eq!(
        ClientConfig::new("h").websocket_subprotocols(),
        ["v12.stomp", "v11.stomp", "v10.stomp"]
    );
    let config = ClientConfig {
        versions: vec![Version::V1_0, Version::V1_1, Version::V1_0],
        ..ClientConfig::new("h")
    };
    assert_eq!(config.websocket_subprotocols(), ["v11.stomp", "v10.stomp"]);
}
