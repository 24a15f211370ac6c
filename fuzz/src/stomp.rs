//! Fuzz targets for duplex-stomp.

use crate::input::Input;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use duplex_stomp::{
    Broker, BrokerConfig, ConnectionId, Decoded, FrameDecoder, Limits, ServerConfig, ServerEvent,
    ServerSession, Version,
};
use rand::SeedableRng;

/// Decodes `data` whole and in chunks (the chunk sizes come from the first
/// octet); both must agree, and every decoded frame that can be encoded
/// again must decode to itself.
pub fn frame(data: &[u8]) {
    let Some((&control, input)) = data.split_first() else {
        return;
    };
    let version = Version::ALL[usize::from(control % 3)];
    let limits = if control & 0x80 == 0 {
        Limits::default()
    } else {
        Limits {
            max_headers: 4,
            max_header_line: 32,
            max_body: 64,
            max_frame: 160,
        }
    };
    let step = usize::from(control >> 2 & 0x1f) + 1;
    let whole = decode(version, limits, &[input]);
    let chunks: Vec<&[u8]> = input.chunks(step).collect();
    assert_eq!(
        whole,
        decode(version, limits, &chunks),
        "split changed the result"
    );
    for item in &whole.0 {
        if let Decoded::Frame(f) = item {
            let mut out = BytesMut::new();
            if f.encode(version, &mut out).is_ok() {
                let again = decode(version, Limits::default(), &[&out]);
                assert_eq!(
                    again,
                    (vec![item.clone()], None),
                    "re-encoding changed the frame"
                );
            }
        }
    }
}

fn decode(
    version: Version,
    limits: Limits,
    chunks: &[&[u8]],
) -> (Vec<Decoded>, Option<duplex_stomp::Error>) {
    let mut d = FrameDecoder::new(limits);
    d.set_version(version);
    let mut items = Vec::new();
    for chunk in chunks {
        d.receive(chunk);
        loop {
            match d.decode() {
                Ok(Some(item)) => items.push(item),
                Ok(None) => {
                    assert!(
                        d.buffered() <= limits.max_frame,
                        "buffered past the frame limit"
                    );
                    break;
                }
                Err(e) => return (items, Some(e)),
            }
        }
    }
    (items, None)
}

/// A server session wired to a broker, fed `data` in chunks separated by
/// `0xFF` octets; each separator also advances the clock. Whatever the
/// session writes must decode cleanly, and a failed session must be closed.
pub fn server(data: &[u8]) {
    let t0 = Instant::now();
    let config = ServerConfig {
        rng: Box::new(rand::rngs::StdRng::seed_from_u64(0)),
        limits: Limits {
            max_headers: 16,
            max_header_line: 256,
            max_body: 1024,
            max_frame: 4096,
        },
        heart_beat: duplex_stomp::HeartBeat::every(Duration::from_millis(50)),
        ..ServerConfig::default()
    };
    let mut session = ServerSession::new(config, t0);
    let mut broker = Broker::new(BrokerConfig {
        max_unacked: 4,
        max_queue_depth: 8,
        ..BrokerConfig::default()
    });
    let id = ConnectionId(1);
    // A second, well-behaved subscriber so deliveries and redeliveries happen.
    broker.connect(ConnectionId(2), Version::V1_2);
    let sub = duplex_stomp::Frame::new(duplex_stomp::Command::Subscribe)
        .with_header("id", "0")
        .with_header("destination", "/queue/a")
        .with_header("ack", "client");
    broker.handle_frame(ConnectionId(2), sub);
    let mut out = BytesMut::new();
    let mut now = t0;
    for (i, chunk) in data.split(|b| *b == 0xFF).enumerate() {
        now += Duration::from_millis(17 * (i as u64 % 7));
        session.receive(chunk);
        session.handle_timeout(now);
        while let Some(event) = session.poll_event() {
            match event {
                ServerEvent::Connected(a) => broker.connect(id, a.version),
                ServerEvent::Frame(f) => broker.handle_frame(id, f),
                ServerEvent::Failed(_) => {
                    assert!(session.is_closed());
                    broker.disconnect(id);
                }
            }
            while let Some(o) = broker.poll_transmit() {
                if o.connection == id {
                    let _ = session.send_frame(&o.frame);
                }
            }
        }
        session.poll_transmit(&mut out);
    }
    let mut d = FrameDecoder::new(Limits::default());
    d.set_version(Version::V1_0);
    d.receive(&out);
    loop {
        match d.decode() {
            Ok(Some(Decoded::Frame(f))) => {
                assert!(f.command().is_server_command());
                if f.command() == duplex_stomp::Command::Connected {
                    let v = f
                        .header("version")
                        .and_then(Version::parse)
                        .unwrap_or(Version::V1_0);
                    d.set_version(v);
                }
            }
            Ok(Some(Decoded::HeartBeat)) => {}
            Ok(None) => break,
            Err(e) => panic!("server wrote an undecodable stream: {e:?}"),
        }
    }
}

// ---------------------------------------------------------------------------
// stomp_client_session
// ---------------------------------------------------------------------------

use duplex_stomp::{AckMode, ClientEvent, ClientSession, ClientState, Message};

/// A server frame that fits the session's state, so that short inputs get
/// connected, receive messages for real subscriptions and see receipts.
fn server_frame(kind: u8, sub: &str, receipt: &str) -> Vec<u8> {
    let text = match kind % 9 {
        0 => "CONNECTED\nversion:1.2\nheart-beat:100,100\nsession:s\n\n\0".to_owned(),
        1 => "CONNECTED\nversion:1.1\nheart-beat:0,50\n\n\0".to_owned(),
        2 => "CONNECTED\n\n\0".to_owned(),
        3 => format!(
            "MESSAGE\nsubscription:{sub}\nmessage-id:m1\ndestination:/queue/a\nack:a1\ncontent-length:2\n\nhi\0"
        ),
        4 => format!("MESSAGE\nsubscription:{sub}\nmessage-id:m\\c2\ndestination:/queue/a\n\nx\0"),
        5 => format!("RECEIPT\nreceipt-id:{receipt}\n\n\0"),
        6 => "ERROR\nmessage:no\ncontent-type:text/plain\n\nsorry\0".to_owned(),
        7 => "\n".to_owned(),
        _ => "RECEIPT\nreceipt-id:nobody\n\n\0".to_owned(),
    };
    text.into_bytes()
}

/// A `ClientSession` talking to the input as its server.
///
/// Input: a settings byte (bits 0-1: versions offered, all, 1.2 only, 1.0
/// and 1.1, or 1.0 only; bit 2: open with `STOMP`; bit 3: no heart-beats),
/// then commands, one byte each with their arguments: 0 receive (length
/// byte, bytes); 1 receive a fitting server frame (kind byte); 2 send
/// (length byte, body; with a receipt when odd); 3 subscribe (ack-mode
/// byte); 4 unsubscribe the last subscription; 5 ack, 6 nack the last
/// message; 7 begin; 8 commit, 9 abort the last transaction; 10
/// disconnect; 11 advance the clock (byte: tens of milliseconds); 12
/// advance to the next deadline.
///
/// Checks: no panic; everything written decodes as client frames (and
/// heart-beats); an ending event (`Error`, `Disconnected`, `Failed`)
/// comes once, closes the session, and nothing follows it; a command on a
/// closed session fails and writes nothing; no timer is left passed.
pub fn client_session(data: &[u8]) {
    let mut input = Input(data);
    let settings = input.byte();
    let mut config = duplex_stomp::ClientConfig::new("localhost");
    config.versions = match settings & 3 {
        0 => Version::ALL.to_vec(),
        1 => vec![Version::V1_2],
        2 => vec![Version::V1_0, Version::V1_1],
        _ => vec![Version::V1_0],
    };
    config.use_stomp_command = settings & 4 != 0;
    config.heart_beat = if settings & 8 != 0 {
        duplex_stomp::HeartBeat::every(Duration::ZERO)
    } else {
        duplex_stomp::HeartBeat::every(Duration::from_millis(100))
    };
    config.limits = Limits {
        max_headers: 16,
        max_header_line: 256,
        max_body: 1024,
        max_frame: 4096,
    };
    config.max_pending_receipts = 4;
    let mut now = Instant::now();
    let Ok(mut c) = ClientSession::new(config, now) else {
        return;
    };
    let mut out = BytesMut::new();
    let (mut sub, mut receipt, mut tx) = (String::new(), String::new(), String::new());
    let mut message: Option<Message> = None;
    let mut ended = false;

    while !input.0.is_empty() {
        let closed = c.is_closed();
        let before = c.has_transmit();
        let op = input.byte() % 13;
        let result: Result<(), duplex_stomp::Error> = match op {
            0 => {
                c.receive(input.sized());
                Ok(())
            }
            1 => {
                c.receive(&server_frame(input.byte(), &sub, &receipt));
                Ok(())
            }
            2 => {
                let body = input.sized();
                if body.len() % 2 == 1 {
                    c.send("/queue/a", &[("receipt", "r-send")], body)
                } else {
                    c.send("/queue/a", &[], body)
                }
            }
            3 => {
                let mode = match input.byte() % 3 {
                    0 => AckMode::Auto,
                    1 => AckMode::Client,
                    _ => AckMode::ClientIndividual,
                };
                c.subscribe("/queue/a", mode).map(|id| sub = id)
            }
            4 => c.unsubscribe(&sub, &[]),
            5 | 6 => match &message {
                Some(m) if op == 5 => c.ack(m, None),
                Some(m) => c.nack(m, (!tx.is_empty()).then_some(tx.as_str())),
                None => Ok(()),
            },
            7 => c.begin().map(|id| tx = id),
            8 => c.commit(&tx),
            9 => c.abort(&tx),
            10 => c.disconnect().map(|id| receipt = id),
            11 => {
                now += Duration::from_millis(u64::from(input.byte()) * 10);
                c.handle_timeout(now);
                assert!(c.poll_timeout().is_none_or(|at| at > now), "a timer passed");
                Ok(())
            }
            _ => {
                if let Some(at) = c.poll_timeout() {
                    now = now.max(at);
                    c.handle_timeout(now);
                    assert!(c.poll_timeout().is_none_or(|at| at > now), "a timer passed");
                }
                Ok(())
            }
        };
        if result.is_err() && !before {
            assert!(!c.has_transmit(), "a refused command wrote bytes");
        }
        if closed && (2..=10).contains(&op) && !(matches!(op, 5 | 6) && message.is_none()) {
            assert!(result.is_err(), "a command on a closed session was taken");
        }
        while let Some(event) = c.poll_event() {
            assert!(!ended, "{event:?} after the end");
            match event {
                ClientEvent::Message(m) => message = Some(m),
                ClientEvent::Error(_) | ClientEvent::Disconnected | ClientEvent::Failed(_) => {
                    ended = true;
                    assert!(c.is_closed());
                    assert_eq!(c.state(), &ClientState::Closed);
                }
                ClientEvent::Connected(_) | ClientEvent::Receipt { .. } => {}
            }
        }
        assert!(c.pending_receipts() <= 4);
        c.poll_transmit(&mut out);
    }
    // What the client wrote is a stream of client frames.
    let mut d = FrameDecoder::new(Limits::default());
    d.set_version(Version::V1_0);
    d.receive(&out);
    let mut first = true;
    loop {
        match d.decode() {
            Ok(Some(Decoded::Frame(f))) => {
                assert!(f.command().is_client_command(), "{f:?}");
                if first {
                    // The CONNECT is never escaped; what follows is as
                    // the negotiated version escapes it.
                    first = false;
                    d.set_version(c.version());
                }
            }
            Ok(Some(Decoded::HeartBeat)) => {}
            Ok(None) => break,
            Err(e) => panic!("the client wrote an undecodable stream: {e:?}"),
        }
    }
}

// ---------------------------------------------------------------------------
// stomp_broker
// ---------------------------------------------------------------------------

use std::collections::HashMap;

use bytes::Bytes;
use duplex_stomp::{Command, Frame};

const DESTINATIONS: [&str; 4] = ["/queue/a", "/queue/b", "/topic/t", "/queue/a"];

/// A `Broker` with three connections sending it frames built from the
/// input, with small limits so that every one of them is reached.
///
/// Input: commands, one byte (low two bits: the connection, the rest: the
/// command modulo 12) with their arguments: 0 connect (byte: the version);
/// 1 disconnect; 2 SEND (destination byte, byte: bit 0 in the last
/// transaction, bit 1 with a receipt); 3 SUBSCRIBE (subscription byte,
/// destination byte, ack-mode byte); 4 UNSUBSCRIBE (subscription byte); 5
/// ACK, 6 NACK the connection's last message (byte: bit 0 in the last
/// transaction); 7 BEGIN, 8 COMMIT, 9 ABORT (transaction byte); 10 a frame
/// of any command with headers `id`, `destination`, `ack`, `transaction`
/// taken from the input (command byte, then four length-prefixed values);
/// 11 ACK an id from the input (length byte, bytes).
///
/// Checks: no panic; frames go only to registered connections, and a
/// connection sent an `ERROR` is forgotten; a `MESSAGE` names a
/// subscription of its connection and carries an `ack` header exactly
/// when that subscription acknowledges; no connection holds more
/// unacknowledged deliveries than its subscriptions allow.
pub fn broker(data: &[u8]) {
    let config = BrokerConfig {
        max_unacked: 2,
        max_queue_depth: 3,
        max_topic_backlog: 2,
        max_subscriptions: 3,
        max_transactions: 2,
        max_transaction_frames: 3,
        max_destinations: 3,
    };
    let mut broker = Broker::new(config);
    let mut input = Input(data);
    // Per connection: subscriptions (id to whether it acknowledges), the
    // last message's `ack` header, the last transaction.
    let mut subs: [HashMap<String, bool>; 3] = Default::default();
    let mut last_ack: [Option<String>; 3] = Default::default();
    let mut last_tx: [String; 3] = Default::default();
    while !input.0.is_empty() {
        let byte = input.byte();
        let c = usize::from(byte & 3) % 3;
        let id = ConnectionId(c as u64);
        let frame = match (byte >> 2) % 12 {
            0 => {
                let version = match input.byte() % 3 {
                    0 => Version::V1_0,
                    1 => Version::V1_1,
                    _ => Version::V1_2,
                };
                broker.connect(id, version);
                subs[c].clear();
                None
            }
            1 => {
                broker.disconnect(id);
                subs[c].clear();
                None
            }
            2 => {
                let dest = DESTINATIONS[usize::from(input.byte()) % 4];
                let how = input.byte();
                let mut f = Frame::new(Command::Send)
                    .with_header("destination", dest)
                    .with_body(Bytes::from_static(b"m"));
                if how & 1 != 0 {
                    f = f.with_header("transaction", &last_tx[c]);
                }
                if how & 2 != 0 {
                    f = f.with_header("receipt", "r");
                }
                Some(f)
            }
            3 => {
                let sub = format!("s{}", input.byte() % 4);
                let dest = DESTINATIONS[usize::from(input.byte()) % 4];
                let ack = ["auto", "client", "client-individual"][usize::from(input.byte()) % 3];
                Some(
                    Frame::new(Command::Subscribe)
                        .with_header("id", &sub)
                        .with_header("destination", dest)
                        .with_header("ack", ack),
                )
            }
            4 => {
                let sub = format!("s{}", input.byte() % 4);
                Some(Frame::new(Command::Unsubscribe).with_header("id", &sub))
            }
            op @ (5 | 6) => {
                let in_tx = input.byte() & 1 != 0;
                let command = if op == 5 { Command::Ack } else { Command::Nack };
                let mut f =
                    Frame::new(command).with_header("id", last_ack[c].as_deref().unwrap_or("none"));
                if in_tx {
                    f = f.with_header("transaction", &last_tx[c]);
                }
                Some(f)
            }
            op @ 7..=9 => {
                let tx = format!("t{}", input.byte() % 3);
                last_tx[c] = tx.clone();
                let command = match op {
                    7 => Command::Begin,
                    8 => Command::Commit,
                    _ => Command::Abort,
                };
                Some(Frame::new(command).with_header("transaction", &tx))
            }
            10 => {
                let command = match input.byte() % 8 {
                    0 => Command::Send,
                    1 => Command::Subscribe,
                    2 => Command::Unsubscribe,
                    3 => Command::Ack,
                    4 => Command::Nack,
                    5 => Command::Begin,
                    6 => Command::Commit,
                    _ => Command::Abort,
                };
                let mut f = Frame::new(command);
                for name in ["id", "destination", "ack", "transaction"] {
                    let value = String::from_utf8_lossy(input.sized()).into_owned();
                    if !value.is_empty() {
                        f = f.with_header(name, &value);
                    }
                }
                Some(f)
            }
            _ => {
                let value = String::from_utf8_lossy(input.sized()).into_owned();
                Some(Frame::new(Command::Ack).with_header("id", &value))
            }
        };
        if let Some(frame) = frame {
            // What the broker will hold the subscription to, as it reads it.
            if frame.command() == Command::Subscribe
                && broker.is_connected(id)
                // A 1.0 subscription may lack an id: its destination
                // stands in.
                && let Some(sub) = frame.header("id").or(frame.header("destination"))
            {
                let acks = !matches!(frame.header("ack"), None | Some("auto"));
                subs[c].entry(sub.to_owned()).or_insert(acks);
            }
            broker.handle_frame(id, frame);
        }
        while let Some(out) = broker.poll_transmit() {
            let Ok(k) = usize::try_from(out.connection.0) else {
                panic!("unknown connection {:?}", out.connection);
            };
            let f = &out.frame;
            match f.command() {
                Command::Error => {
                    assert!(
                        !broker.is_connected(out.connection),
                        "ERROR but still known"
                    );
                    if let Some(s) = subs.get_mut(k) {
                        s.clear();
                    }
                }
                Command::Message => {
                    assert!(
                        broker.is_connected(out.connection),
                        "a MESSAGE to a stranger"
                    );
                    let sub = f.header("subscription").unwrap_or_default();
                    let acks = subs.get(k).and_then(|s| s.get(sub));
                    assert!(acks.is_some(), "a MESSAGE for unknown subscription {sub}");
                    let ack = f.header("ack").or(f.header("message-id"));
                    if let Some(slot) = last_ack.get_mut(k) {
                        *slot = ack.map(str::to_owned);
                    }
                }
                _ => assert!(broker.is_connected(out.connection)),
            }
        }
        for (k, s) in subs.iter().enumerate() {
            let held = broker.unacked(ConnectionId(k as u64));
            assert!(
                held <= s.len().max(1) * config.max_unacked,
                "{held} unacked"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// stomp_relay
// ---------------------------------------------------------------------------

use duplex_stomp::{Relay, RelayConfig, RelayEvent, RelayState, Side};

/// A `Relay` between a client and a broker both played by the input, with
/// the adapter's reports (upstream connected, failed, closed; the client
/// gone; shutdown) and the clock in the input too.
///
/// Input: commands, one byte each with their arguments: 0 client bytes,
/// 1 upstream bytes (length byte, bytes); 2 a fitting client frame, 3 a
/// fitting broker frame (kind byte; from 128 on, receipts answer the
/// client's `DISCONNECT`); 4 upstream connected; 5 upstream
/// failed; 6 upstream closed; 7 client closed; 8 shutdown; 9 advance the
/// clock (byte: tens of milliseconds); 10 advance to the next deadline.
///
/// Checks: no panic; pending frames stay within the bound; what the
/// client gets decodes as server frames, never a `CONNECTED` after an
/// `ERROR` and never a `CONNECTED` before the broker's; `OpenUpstream`
/// comes at most once and `CloseUpstream` only after it; a closed relay
/// wants no timer and writes nothing more to the client.
pub fn relay(data: &[u8]) {
    let run = run_relay(data);
    if run.relayed {
        // Once both sides were connected, the client heard CONNECTED first.
        assert!(
            run.to_client.starts_with(b"CONNECTED\n"),
            "relayed without CONNECTED"
        );
    }
}

/// What a relay program did: whether both sessions got connected, and
/// what the client received.
struct RelayRun {
    relayed: bool,
    to_client: BytesMut,
}

fn run_relay(data: &[u8]) -> RelayRun {
    let mut input = Input(data);
    let t0 = Instant::now();
    let server = ServerConfig {
        rng: Box::new(rand::rngs::StdRng::seed_from_u64(0)),
        limits: Limits {
            max_headers: 16,
            max_header_line: 256,
            max_body: 1024,
            max_frame: 4096,
        },
        heart_beat: duplex_stomp::HeartBeat::every(Duration::from_millis(50)),
        ..ServerConfig::default()
    };
    let config = RelayConfig {
        heart_beat: duplex_stomp::HeartBeat::every(Duration::from_millis(70)),
        connect_timeout: Duration::from_millis(500),
        max_pending_frames: 4,
        ..RelayConfig::default()
    };
    let mut r = Relay::new(ServerSession::new(server, t0), config, t0);
    let mut now = t0;
    let mut to_client = BytesMut::new();
    let (mut opened, mut closed_upstream) = (0, 0);
    let mut broker_connected = false;
    let mut relayed = false;
    while !input.is_empty() {
        let was_closed = r.is_closed();
        match input.byte() % 11 {
            0 => r.receive(Side::Client, input.sized()),
            1 => r.receive(Side::Upstream, input.sized()),
            2 => r.receive(Side::Client, relay_client_frame(input.byte()).as_bytes()),
            3 => {
                // The upper half answers the client's DISCONNECT.
                let kind = input.byte();
                let receipt = if kind >= 128 { "bye" } else { "r" };
                let frame = server_frame(kind, "0", receipt);
                if frame.starts_with(b"CONNECTED") && r.state() == RelayState::Handshaking {
                    broker_connected = true;
                }
                r.receive(Side::Upstream, &frame);
            }
            4 => r.handle_upstream_connected(),
            5 => r.handle_upstream_failed(),
            6 => r.handle_upstream_closed(),
            7 => r.handle_client_closed(),
            8 => r.shutdown(),
            9 => {
                now += Duration::from_millis(u64::from(input.byte()) * 10);
                r.handle_timeout(now);
            }
            _ => {
                if let Some(at) = r.poll_timeout() {
                    now = now.max(at);
                    r.handle_timeout(now);
                }
            }
        }
        assert!(r.pending_frames() <= 4, "pending past the bound");
        relayed |= r.state() == RelayState::Relaying;
        while let Some(event) = r.poll_event() {
            match event {
                RelayEvent::OpenUpstream => opened += 1,
                RelayEvent::CloseUpstream => closed_upstream += 1,
                RelayEvent::Failed(_) => {}
            }
        }
        assert!(
            opened <= 1 && closed_upstream <= opened,
            "{opened} opened, {closed_upstream} closed"
        );
        let mut wrote = false;
        while let Some(chunk) = r.poll_transmit(Side::Client) {
            wrote = true;
            to_client.extend_from_slice(&chunk);
        }
        assert!(!(was_closed && wrote), "wrote to the client after the end");
        while r.poll_transmit(Side::Upstream).is_some() {}
        if r.is_closed() {
            assert_eq!(r.poll_timeout(), None, "a closed relay wants a timer");
        }
    }
    let mut d = FrameDecoder::new(Limits::default());
    d.set_version(Version::V1_0);
    d.receive(&to_client);
    let mut ended = false;
    loop {
        match d.decode() {
            Ok(Some(Decoded::Frame(f))) => {
                assert!(!ended, "a frame after ERROR");
                assert!(f.command().is_server_command());
                match f.command() {
                    Command::Connected => {
                        assert!(broker_connected, "CONNECTED before the broker's");
                        let v = f
                            .header("version")
                            .and_then(Version::parse)
                            .unwrap_or(Version::V1_0);
                        d.set_version(v);
                    }
                    Command::Error => ended = true,
                    _ => {}
                }
            }
            Ok(Some(Decoded::HeartBeat)) => {}
            Ok(None) => break,
            Err(e) => panic!("the relay wrote an undecodable stream: {e:?}"),
        }
    }
    RelayRun { relayed, to_client }
}

/// A client frame that fits a relay's client, so that short inputs connect
/// and exchange frames.
fn relay_client_frame(kind: u8) -> &'static str {
    match kind % 8 {
        0 => "CONNECT\naccept-version:1.2\nhost:/\nheart-beat:40,40\n\n\0",
        1 => "CONNECT\naccept-version:1.0\nhost:/\n\n\0",
        2 => "SEND\ndestination:/queue/a\nreceipt:r\n\nhi\0",
        3 => "SUBSCRIBE\nid:0\ndestination:/queue/a\nack:client\n\n\0",
        4 => "ACK\nid:a1\n\n\0",
        5 => "UNSUBSCRIBE\nid:nope\n\n\0",
        6 => "DISCONNECT\nreceipt:bye\n\n\0",
        _ => "\n",
    }
}

#[cfg(test)]
mod tests {
    use super::run_relay;

    /// The seeds exercise what they are named after, not only the refusal
    /// paths.
    #[test]
    fn relay_seeds_reach_the_states_they_are_named_after() {
        let seed = |name: &str| {
            let path = format!("{}/corpus/stomp_relay/{name}", env!("CARGO_MANIFEST_DIR"));
            std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
        };
        let text = |run: &super::RelayRun| String::from_utf8_lossy(&run.to_client).into_owned();

        let run = run_relay(&seed("connect_relay_disconnect"));
        assert!(run.relayed, "{}", text(&run));
        assert!(text(&run).starts_with("CONNECTED\n"), "{}", text(&run));
        assert!(text(&run).contains("MESSAGE\n"), "{}", text(&run));
        assert!(text(&run).contains("receipt-id:bye"), "{}", text(&run));

        let run = run_relay(&seed("pending_overflow"));
        assert!(!run.relayed);
        assert!(
            text(&run).contains("message:too many frames"),
            "{}",
            text(&run)
        );

        let run = run_relay(&seed("upstream_failed"));
        assert!(
            text(&run).contains("message:broker unavailable"),
            "{}",
            text(&run)
        );

        let run = run_relay(&seed("broker_error"));
        assert!(
            text(&run).starts_with("ERROR\nmessage:no"),
            "{}",
            text(&run)
        );

        let run = run_relay(&seed("connect_timeout"));
        assert!(!run.relayed);
        assert!(
            text(&run).starts_with("ERROR\nmessage:broker unavailable"),
            "{}",
            text(&run)
        );

        let run = run_relay(&seed("silent_broker"));
        assert!(run.relayed, "{}", text(&run));
        assert!(
            text(&run).contains("message:broker failed"),
            "{}",
            text(&run)
        );
    }
}
