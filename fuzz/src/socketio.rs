//! Fuzz target for duplex-socketio: the packet decoder with attachments.
//!
//! The input is a sequence of messages, each one header byte (low bit: 1 for
//! a binary message, 0 for text; the other seven bits: the length) and its
//! bytes. Every complete packet must re-encode to messages that decode to
//! the same packet, and its payload must rebuild into a value.

use crate::input::Input;
use bytes::Bytes;
use duplex_socketio::{Decoder, DecoderConfig, Packet, ProtocolVersion};

fn messages(mut data: &[u8]) -> impl Iterator<Item = (bool, Bytes)> + '_ {
    std::iter::from_fn(move || {
        let (&header, rest) = data.split_first()?;
        let len = usize::from(header >> 1).min(rest.len());
        let (message, rest) = rest.split_at(len);
        data = rest;
        Some((header & 1 == 1, Bytes::copy_from_slice(message)))
    })
}

fn config(version: ProtocolVersion) -> DecoderConfig {
    DecoderConfig {
        version,
        max_attachments: 4,
        max_attachment_bytes: 256,
    }
}

fn redecode(packet: &Packet, version: ProtocolVersion) -> Packet {
    let wire = packet.encode();
    let mut decoder = Decoder::new(config(version));
    let mut again = decoder
        .receive_text(wire.text.into_bytes())
        .expect("re-encoded text decodes");
    for attachment in wire.attachments {
        assert!(again.is_none(), "complete before its attachments");
        again = decoder
            .receive_binary(attachment)
            .expect("re-encoded attachment decodes");
    }
    again.expect("re-encoded packet completes")
}

/// Decodes a framed sequence of text and binary messages in v5 and in v4.
pub fn decoder(data: &[u8]) {
    for version in [ProtocolVersion::V5, ProtocolVersion::V4] {
        let mut decoder = Decoder::new(config(version));
        for (binary, message) in messages(data) {
            let result = if binary {
                decoder.receive_binary(message)
            } else {
                decoder.receive_text(message)
            };
            let Ok(Some(packet)) = result else { continue };
            assert!(packet.attachments.len() <= 4);
            assert!(packet.value().is_ok(), "a decoded payload rebuilds");
            assert_eq!(redecode(&packet, version), packet);
        }
        let _ = decoder.finish();
    }
}

// ---------------------------------------------------------------------------
// socketio_server, socketio_client: the state machines
// ---------------------------------------------------------------------------

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use duplex_socketio::Broadcast;
use duplex_socketio::Value;
use duplex_socketio::client::{self, Backoff, Client, ClientConfig, ClientEvent, Reconnection};
use duplex_socketio::server::{
    DisconnectReason, Server, ServerConfig, ServerEvent, SocketId, Transmit,
};
use rand::SeedableRng;
use rand::rngs::StdRng;

const NAMESPACES: [&str; 3] = ["/", "/a", "/b"];
const ROOMS: [&str; 3] = ["r0", "r1", "r2"];

/// What clients send a server, so that short inputs reach connected
/// namespaces, binary events and acks (either revision's spelling).
const TO_SERVER: [&str; 16] = [
    "0",
    "0/a,",
    r#"0/b,{"token":"t"}"#,
    "1",
    "1/a,",
    r#"2["e",1]"#,
    r#"2/a,5["e"]"#,
    r#"21["e",{"k":[1,2]}]"#,
    r#"30["r"]"#,
    r#"31["r",2]"#,
    r#"3/a,0["r"]"#,
    r#"51-["b",{"_placeholder":true,"num":0}]"#,
    r#"61-0[{"_placeholder":true,"num":0}]"#,
    r#"52-/a,["b",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
    "4",
    "9",
];

fn reason(byte: u8) -> DisconnectReason {
    match byte % 4 {
        0 => DisconnectReason::TransportClose,
        1 => DisconnectReason::TransportError,
        2 => DisconnectReason::PingTimeout,
        _ => DisconnectReason::ParseError,
    }
}

fn ack_outcome(outcomes: &mut HashMap<u64, u32>, token: u64) {
    let seen = outcomes.get_mut(&token);
    assert!(seen.is_some(), "an outcome for unknown token {token}");
    if let Some(seen) = seen {
        *seen += 1;
        assert_eq!(*seen, 1, "two outcomes for token {token}");
    }
}

/// The server's books, kept beside it.
#[derive(Default)]
struct ServerModel {
    /// Token to the number of outcomes reported for it.
    outcomes: HashMap<u64, u32>,
    /// (socket, namespace) of every socket accepted and not yet gone.
    live: HashSet<(SocketId, String)>,
    /// Events that asked for an ack: (session, namespace, id).
    acks_owed: Vec<(u8, String, u64)>,
    /// Sessions opened and not yet reported closed.
    open: HashSet<u8>,
    /// Sessions whose transport the server asked to close.
    closing: HashSet<u8>,
    next_token: u64,
}

/// A `Server` with up to four sessions, driven by the input.
///
/// Input: a settings byte (bits 0-1: most namespaces per connection, 1-4;
/// bits 2-3: most pending acks per socket, 1-4; bit 4: no connect
/// timeout), then commands, one byte each with their arguments (a session
/// is one byte, taken modulo 4): 0 text (session, length byte, bytes); 1
/// table text (session, index byte); 2 binary (session, length byte,
/// bytes); 3 open (session, byte: bit 0 revision 4); 4 emit with ack
/// (session, namespace byte, byte: 0 no deadline, else tens of
/// milliseconds); 5 answer an event's ack (index byte); 6 send an event
/// (session, namespace byte); 7 join a room, 8 leave it (socket index
/// byte, room byte); 9 broadcast (namespace byte, room byte, byte: bit 0
/// to the room, bit 1 except the room); 10 disconnect (session, namespace
/// byte); 11 close (session); 12 the transport closed (session, reason
/// byte); 13 advance the clock (byte: tens of milliseconds); 14 cancel an
/// ack (session, namespace byte, id byte); 15 advance to the next
/// deadline. Each `ConnectRequest` the server reports is answered by the
/// next input byte: 0-1 accept, 2 reject, 3 no answer.
///
/// Checks: no panic; each awaited ack has exactly one outcome (after every
/// session closes at the end); a socket is accepted once and disconnects
/// once, and events come only from live sockets; nothing is sent on a
/// session that is not open; no timer is left at the end.
pub fn server(data: &[u8]) {
    let mut input = Input(data);
    let settings = input.byte();
    let mut s: Server<u8, u64> = Server::new(
        ServerConfig {
            connect_timeout: (settings & 16 == 0).then_some(Duration::from_millis(1500)),
            max_namespaces: usize::from(settings & 3) + 1,
            max_pending_acks: usize::from((settings >> 2) & 3) + 1,
            max_attachments: 2,
            max_attachment_bytes: 64,
            ..ServerConfig::default()
        }
        .with_rng(StdRng::seed_from_u64(1)),
    );
    let mut m = ServerModel::default();
    let mut now = Instant::now();

    while !input.is_empty() {
        let op = input.byte() % 16;
        let session = input.byte() % 4;
        match op {
            0 => s.handle_text(&session, Bytes::copy_from_slice(input.sized())),
            1 => {
                let text = input.pick(&TO_SERVER).unwrap_or_default();
                s.handle_text(&session, Bytes::from_static(text.as_bytes()));
            }
            2 => s.handle_binary(&session, Bytes::copy_from_slice(input.sized())),
            3 => {
                let v4 = input.byte() & 1 != 0;
                let version = if v4 {
                    ProtocolVersion::V4
                } else {
                    ProtocolVersion::V5
                };
                // A key reused while open replaces its connection.
                s.open(session, version, now);
                m.open.insert(session);
                m.closing.remove(&session);
            }
            4 => {
                let ns = input.pick(&NAMESPACES).unwrap_or("/");
                let deadline = match input.byte() {
                    0 => None,
                    n => Some(now + Duration::from_millis(u64::from(n) * 10)),
                };
                let token = m.next_token;
                m.next_token += 1;
                match s.emit_with_ack(&session, ns, "q", &[Value::from(1)], deadline, token) {
                    Ok(_) => {
                        m.outcomes.insert(token, 0);
                    }
                    Err((_, back)) => assert_eq!(back, token),
                }
            }
            5 => {
                let i = usize::from(input.byte());
                if !m.acks_owed.is_empty() {
                    let (session, ns, id) = m.acks_owed.swap_remove(i % m.acks_owed.len());
                    if let Ok(packet) =
                        Packet::ack_with(ns, &[Value::from("ok"), Value::Binary(Bytes::new())], id)
                    {
                        let _ = s.send(&session, &packet);
                    }
                }
            }
            6 => {
                let ns = input.pick(&NAMESPACES).unwrap_or("/");
                if let Ok(packet) =
                    Packet::event_with(ns, "n", &[Value::Binary(Bytes::from_static(b"\x01"))], None)
                {
                    let _ = s.send(&session, &packet);
                }
            }
            op @ (7 | 8) => {
                let live: Vec<&(SocketId, String)> = m.live.iter().collect();
                let i = usize::from(input.byte());
                let room = input.pick(&ROOMS).unwrap_or("r0");
                if let Some((socket, ns)) = live.get(i % live.len().max(1)) {
                    if op == 7 {
                        s.join(ns, socket, [room]);
                        assert!(s.rooms_of(ns, socket).iter().any(|r| r == room));
                    } else {
                        s.leave(ns, socket, room);
                        assert!(!s.rooms_of(ns, socket).iter().any(|r| r == room));
                    }
                }
            }
            9 => {
                let ns = input.pick(&NAMESPACES).unwrap_or("/");
                let room = input.pick(&ROOMS).unwrap_or("r0");
                let how = input.byte();
                let mut target = Broadcast::all();
                if how & 1 != 0 {
                    target = target.and_to(room);
                }
                if how & 2 != 0 {
                    target = target.except_room(room);
                }
                let expected = s.recipients(ns, &target).len();
                if let Ok(packet) = Packet::event_with(ns, "b", &[Value::from(2)], None) {
                    assert_eq!(s.broadcast(ns, &target, &packet), expected);
                }
            }
            10 => {
                let ns = input.pick(&NAMESPACES).unwrap_or("/");
                s.disconnect(&session, ns);
            }
            11 => s.close(&session, DisconnectReason::ServerShuttingDown),
            12 => {
                let why = reason(input.byte());
                s.closed(&session, why);
                m.open.remove(&session);
                m.closing.remove(&session);
                m.acks_owed.retain(|(k, _, _)| *k != session);
            }
            13 => {
                now += Duration::from_millis(u64::from(input.byte()) * 10);
                if s.poll_timeout().is_some_and(|at| at <= now) {
                    s.handle_timeout(now);
                }
            }
            14 => {
                let ns = input.pick(&NAMESPACES).unwrap_or("/");
                let id = u64::from(input.byte() % 8);
                if let Some(token) = s.cancel_ack(&session, ns, id) {
                    ack_outcome(&mut m.outcomes, token);
                }
            }
            _ => {
                if let Some(at) = s.poll_timeout() {
                    now = now.max(at);
                    s.handle_timeout(now);
                    assert!(s.poll_timeout().is_none_or(|at| at > now), "a timer passed");
                }
            }
        }
        drain_server(&mut s, &mut m, &mut input);
    }
    // Every session closing settles every ack and disconnects every socket.
    for session in 0..4 {
        s.closed(&session, DisconnectReason::TransportClose);
        m.open.remove(&session);
    }
    drain_server(&mut s, &mut m, &mut input);
    assert!(m.live.is_empty(), "sockets never disconnected");
    assert!(
        m.outcomes.values().all(|n| *n == 1),
        "acks without an outcome"
    );
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(s.connection_count(), 0);
}

fn drain_server(s: &mut Server<u8, u64>, m: &mut ServerModel, input: &mut Input<'_>) {
    while let Some(event) = s.poll_event() {
        match event {
            ServerEvent::ConnectRequest {
                session, namespace, ..
            } => {
                assert!(m.open.contains(&session));
                match input.byte() % 4 {
                    0 | 1 => {
                        if let Ok(id) = s.accept(&session, &namespace) {
                            assert!(
                                m.live.insert((id.clone(), namespace.clone())),
                                "socket id reused"
                            );
                            assert_eq!(s.socket_id(&session, &namespace), Some(&id));
                            assert!(s.is_connected(&session, &namespace, &id));
                        }
                    }
                    2 => {
                        let _ = s.reject(&session, &namespace, "no", None);
                    }
                    _ => {}
                }
            }
            ServerEvent::Event {
                session,
                namespace,
                socket,
                ack_id,
                ..
            } => {
                assert!(
                    m.live.contains(&(socket, namespace.to_string())),
                    "an event from a socket not live"
                );
                if let Some(id) = ack_id {
                    m.acks_owed.push((session, namespace.to_string(), id));
                }
            }
            ServerEvent::Ack { token, .. } => ack_outcome(&mut m.outcomes, token),
            ServerEvent::Disconnect {
                socket, namespace, ..
            } => {
                assert!(
                    m.live.remove(&(socket, namespace)),
                    "a disconnect of a socket not live"
                );
            }
        }
    }
    while let Some(t) = s.poll_transmit() {
        match t {
            Transmit::Packet { session, .. } | Transmit::Volatile { session, .. } => {
                assert!(m.open.contains(&session), "a packet for a session not open");
            }
            Transmit::Close { session } => {
                assert!(m.open.contains(&session), "closing a session not open");
                m.closing.insert(session);
            }
            Transmit::Probe { .. } => panic!("a probe without recovery"),
        }
    }
}

/// What a server sends a client: namespace answers, events asking for
/// acks, acks of the client's emits, binary packets, refusals.
const TO_CLIENT: [&str; 16] = [
    r#"0{"sid":"s"}"#,
    r#"0/a,{"sid":"a"}"#,
    r#"0/b,{"sid":"b"}"#,
    "1",
    "1/a,",
    r#"2["e",1]"#,
    r#"21["e"]"#,
    r#"2/a,3["e"]"#,
    r#"30["ok"]"#,
    r#"31[]"#,
    r#"3/a,0[1]"#,
    r#"4{"message":"no"}"#,
    r#"4/a,{"message":"no"}"#,
    r#"51-["b",{"_placeholder":true,"num":0}]"#,
    r#"60-[{"_placeholder":true,"num":0}]"#,
    r#"0/b,{"sid":"b2"}"#,
];

const CLOSE_REASONS: [&str; 4] = [
    "transport close",
    "transport error",
    "ping timeout",
    "parse error",
];

/// The client's books, kept beside it.
#[derive(Default)]
struct ClientModel {
    outcomes: HashMap<u64, u32>,
    next_token: u64,
    /// The Engine.IO connection is being opened (the adapter may report it
    /// open or failed).
    connecting: bool,
    /// The Engine.IO connection is open.
    open: bool,
    gave_up: bool,
    /// Namespaces joined and not yet removed.
    joined: HashSet<String>,
}

/// A `Client` driven by the input as a faithful adapter drives it: it
/// reports the connection open only while one is being opened, and
/// messages only while it is open.
///
/// Input: a settings byte (bits 0-1: most pending acks, 1-4; bits 2-3:
/// most buffered emits, 1-4; bit 4: reconnection off; bit 5: at most two
/// attempts), then commands, one byte each with their arguments: 0 text
/// (length byte, bytes); 1 table text (index byte); 2 binary (length byte,
/// bytes); 3 the connection opened; 4 it closed (reason byte); 5 join
/// (namespace byte, byte: bit 0 with auth); 6 leave (namespace byte); 7
/// emit (namespace byte, byte: bit 0 with an ack, the rest: 0 no deadline,
/// else tens of milliseconds); 8 ack (namespace byte, id byte); 9 close;
/// 10 advance the clock (byte: tens of milliseconds); 11 advance to the
/// next deadline. A message the client refuses closes the connection for
/// `"parse error"`.
///
/// Checks: no panic; each emit asking for an ack has exactly one outcome
/// (after `close` at the end); nothing is sent while the connection is
/// not open; nothing happens after `GaveUp`; events come only for joined
/// namespaces; no timer is left passed.
pub fn client(data: &[u8]) {
    let mut input = Input(data);
    let settings = input.byte();
    let mut c: Client<u64> = Client::new(
        ClientConfig {
            max_pending_acks: usize::from(settings & 3) + 1,
            max_buffered: usize::from((settings >> 2) & 3) + 1,
            max_namespaces: 2,
            decoder: DecoderConfig {
                max_attachments: 2,
                max_attachment_bytes: 64,
                ..DecoderConfig::default()
            },
            reconnection: Reconnection {
                enabled: settings & 16 == 0,
                attempts: (settings & 32 != 0).then_some(2),
                backoff: Backoff {
                    delay: Duration::from_millis(100),
                    delay_max: Duration::from_millis(500),
                    randomization_factor: 0.5,
                },
            },
            ..ClientConfig::default()
        }
        .with_rng(StdRng::seed_from_u64(3)),
    );
    let mut m = ClientModel {
        connecting: true,
        ..ClientModel::default()
    };
    let mut now = Instant::now();

    while !input.is_empty() {
        match input.byte() % 12 {
            op @ 0..=2 => {
                let message = match op {
                    0 => Ok(Bytes::copy_from_slice(input.sized())),
                    1 => Ok(Bytes::from_static(
                        input.pick(&TO_CLIENT).unwrap_or_default().as_bytes(),
                    )),
                    _ => Err(Bytes::copy_from_slice(input.sized())),
                };
                if m.open {
                    let result = match message {
                        Ok(text) => c.handle_text(text, now),
                        Err(data) => c.handle_binary(data, now),
                    };
                    if result.is_err() {
                        c.handle_close("parse error", now);
                        m.open = false;
                    }
                }
            }
            3 => {
                if m.connecting {
                    c.handle_open(now);
                    m.connecting = false;
                    m.open = true;
                }
            }
            4 => {
                let why = input.pick(&CLOSE_REASONS).unwrap_or("transport close");
                if m.connecting || m.open {
                    c.handle_close(why, now);
                    m.connecting = false;
                    m.open = false;
                }
            }
            5 => {
                let ns = input.pick(&NAMESPACES).unwrap_or("/");
                let auth = (input.byte() & 1 != 0).then(|| Value::from("secret"));
                if c.join(ns, auth).is_ok() && !m.gave_up {
                    m.joined.insert(ns.to_owned());
                }
            }
            6 => {
                let ns = input.pick(&NAMESPACES).unwrap_or("/");
                c.leave(ns);
            }
            7 => {
                let ns = input.pick(&NAMESPACES).unwrap_or("/");
                let how = input.byte();
                let ack = (how & 1 != 0).then(|| {
                    let token = m.next_token;
                    m.next_token += 1;
                    m.outcomes.insert(token, 0);
                    let deadline = (how >> 1 != 0)
                        .then(|| now + Duration::from_millis(u64::from(how >> 1) * 10));
                    (token, deadline)
                });
                let args = [Value::from(1), Value::Binary(Bytes::from_static(b"\x02"))];
                if c.emit(ns, "e", &args, ack, now).is_err() {
                    // A refused emit reports its ack failed; nothing else
                    // can refuse this well-formed event.
                    panic!("emit of a valid event failed");
                }
            }
            8 => {
                let ns = input.pick(&NAMESPACES).unwrap_or("/");
                let id = u64::from(input.byte() % 8);
                assert!(c.ack(ns, id, &[Value::from(true)]).is_ok());
            }
            9 => c.close(),
            10 => {
                now += Duration::from_millis(u64::from(input.byte()) * 10);
                c.handle_timeout(now);
                assert!(c.poll_timeout().is_none_or(|at| at > now), "a timer passed");
            }
            _ => {
                if let Some(at) = c.poll_timeout() {
                    now = now.max(at);
                    c.handle_timeout(now);
                    assert!(c.poll_timeout().is_none_or(|at| at > now), "a timer passed");
                }
            }
        }
        drain_client(&mut c, &mut m);
    }
    c.close();
    drain_client(&mut c, &mut m);
    assert!(m.gave_up && c.is_done());
    assert!(
        m.outcomes.values().all(|n| *n == 1),
        "acks without an outcome"
    );
    assert_eq!(c.poll_timeout(), None);
}

fn drain_client(c: &mut Client<u64>, m: &mut ClientModel) {
    while let Some(t) = c.poll_transmit() {
        assert!(m.open, "{t:?} sent on no open connection");
    }
    while let Some(event) = c.poll_event() {
        // After `GaveUp` only an emit the application still makes is
        // answered: its ack fails at once.
        assert!(
            !m.gave_up
                || matches!(
                    event,
                    ClientEvent::AckFailed {
                        failure: client::AckFailure::Disconnected,
                        ..
                    }
                ),
            "{event:?} after GaveUp"
        );
        match event {
            ClientEvent::Connect { namespace, .. }
            | ClientEvent::Event { namespace, .. }
            | ClientEvent::Disconnect { namespace, .. }
            | ClientEvent::ConnectError { namespace, .. } => {
                assert!(
                    m.joined.contains(&namespace),
                    "an event for {namespace}, not joined"
                );
            }
            ClientEvent::AckReceived { token, .. } | ClientEvent::AckFailed { token, .. } => {
                ack_outcome(&mut m.outcomes, token);
            }
            ClientEvent::Removed { namespace } => {
                assert!(m.joined.remove(&namespace), "{namespace} removed twice");
            }
            ClientEvent::Reconnect => {
                assert!(!m.open && !m.connecting, "a reconnect while connected");
                m.connecting = true;
            }
            ClientEvent::GaveUp => m.gave_up = true,
        }
    }
}
