//! The relay machine in simulated time: the held `CONNECTED`, pending
//! frames and their bound, refusals (none naming the broker), receipts in
//! both directions, heart-beats on each hop; then the same on arbitrary
//! splits and arbitrary bytes.

use std::time::{Duration, Instant};

use duplex_stomp::{
    Decoded, Error, Frame, FrameDecoder, HeartBeat, Limits, Relay, RelayConfig, RelayEvent,
    RelayState, ServerConfig, ServerSession, Side, Version,
};
use proptest::prelude::*;
use rand::SeedableRng;

const SECRET_ADDR: &str = "10.9.8.7:61613";

fn server_config() -> ServerConfig {
    ServerConfig {
        rng: Box::new(rand::rngs::StdRng::seed_from_u64(7)),
        heart_beat: HeartBeat::NONE,
        limits: Limits {
            max_headers: 16,
            max_header_line: 256,
            max_body: 1024,
            max_frame: 4096,
        },
        ..ServerConfig::default()
    }
}

fn relay_config() -> RelayConfig {
    RelayConfig {
        heart_beat: HeartBeat::NONE,
        max_pending_frames: 3,
        ..RelayConfig::default()
    }
}

fn relay(t0: Instant) -> Relay {
    Relay::new(ServerSession::new(server_config(), t0), relay_config(), t0)
}

/// Everything the relay put out, per side, and its events.
#[derive(Debug, Default, PartialEq, Eq)]
struct Seen {
    client: Vec<u8>,
    upstream: Vec<u8>,
    events: Vec<RelayEvent>,
}

impl Seen {
    fn collect(&mut self, r: &mut Relay) {
        while let Some(b) = r.poll_transmit(Side::Client) {
            self.client.extend_from_slice(&b);
        }
        while let Some(b) = r.poll_transmit(Side::Upstream) {
            self.upstream.extend_from_slice(&b);
        }
        while let Some(e) = r.poll_event() {
            self.events.push(e);
        }
    }

    fn take(&mut self) -> Seen {
        std::mem::take(self)
    }
}

fn frames(bytes: &[u8]) -> Vec<Frame> {
    let mut d = FrameDecoder::new(Limits::default());
    d.set_version(Version::V1_2);
    d.receive(bytes);
    let mut out = Vec::new();
    while let Ok(Some(item)) = d.decode() {
        if let Decoded::Frame(f) = item {
            out.push(f);
        }
    }
    out
}

fn commands(bytes: &[u8]) -> Vec<String> {
    frames(bytes)
        .iter()
        .map(|f| f.command().to_string())
        .collect()
}

const CONNECT: &[u8] = b"CONNECT\naccept-version:1.2\nhost:/\n\n\0";
const CONNECTED: &[u8] = b"CONNECTED\nversion:1.2\n\n\0";

/// A relay whose client and broker have both connected.
fn relaying(t0: Instant) -> (Relay, Seen) {
    let mut r = relay(t0);
    let mut seen = Seen::default();
    r.receive(Side::Client, CONNECT);
    r.handle_upstream_connected();
    r.receive(Side::Upstream, CONNECTED);
    seen.collect(&mut r);
    assert_eq!(r.state(), RelayState::Relaying);
    assert_eq!(commands(&seen.client), ["CONNECTED"]);
    seen.take();
    (r, seen)
}

#[test]
fn connected_waits_for_the_broker_and_early_frames_follow_it() {
    let t0 = Instant::now();
    let mut r = relay(t0);
    let mut seen = Seen::default();
    r.receive(
        Side::Client,
        b"CONNECT\naccept-version:1.2\nhost:/\n\n\0SEND\ndestination:/queue/a\n\nearly\0",
    );
    seen.collect(&mut r);
    assert_eq!(seen.events, [RelayEvent::OpenUpstream]);
    assert!(seen.client.is_empty(), "CONNECTED must wait for the broker");
    assert!(
        seen.upstream.is_empty(),
        "nothing upstream before it is open"
    );
    assert_eq!(r.state(), RelayState::OpeningUpstream);
    assert_eq!(r.pending_frames(), 1);

    r.handle_upstream_connected();
    seen.collect(&mut r);
    let connect = frames(&seen.upstream);
    assert_eq!(connect.len(), 1);
    assert_eq!(connect[0].header("login"), Some("guest"));
    assert_eq!(connect[0].header("accept-version"), Some("1.2"));
    assert!(seen.client.is_empty());
    seen.take();

    r.receive(Side::Upstream, CONNECTED);
    seen.collect(&mut r);
    assert_eq!(commands(&seen.client), ["CONNECTED"]);
    let sent = frames(&seen.upstream);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].body().as_ref(), b"early");
    assert_eq!(r.pending_frames(), 0);
    assert!(seen.events.is_empty());
}

#[test]
fn a_broker_refusal_replaces_connected_with_its_error() {
    let t0 = Instant::now();
    let mut r = relay(t0);
    let mut seen = Seen::default();
    r.receive(Side::Client, CONNECT);
    r.handle_upstream_connected();
    r.receive(
        Side::Upstream,
        b"ERROR\nmessage:Access refused\n\nbad login\0",
    );
    seen.collect(&mut r);
    let to_client = frames(&seen.client);
    assert_eq!(to_client.len(), 1, "only the ERROR, no CONNECTED");
    assert_eq!(to_client[0].header("message"), Some("Access refused"));
    assert!(r.is_closed());
    assert!(
        seen.events
            .contains(&RelayEvent::Failed(Error::ServerError {
                message: "Access refused".into()
            }))
    );
    assert_eq!(seen.events.last(), Some(&RelayEvent::CloseUpstream));
}

#[test]
fn an_unreachable_broker_is_refused_without_naming_it() {
    let t0 = Instant::now();
    let mut r = relay(t0);
    let mut seen = Seen::default();
    r.receive(Side::Client, CONNECT);
    r.handle_upstream_failed();
    seen.collect(&mut r);
    let to_client = frames(&seen.client);
    assert_eq!(to_client.len(), 1);
    assert_eq!(to_client[0].header("message"), Some("broker unavailable"));
    let text = String::from_utf8_lossy(&seen.client);
    assert!(!text.contains(SECRET_ADDR) && !text.contains("10.9.8.7"));
    assert_eq!(
        seen.events,
        [
            RelayEvent::OpenUpstream,
            RelayEvent::Failed(Error::UpstreamUnavailable)
        ]
    );
    assert!(r.is_closed());
    assert_eq!(r.poll_timeout(), None);
}

#[test]
fn a_connect_that_never_finishes_is_refused_at_the_deadline() {
    let t0 = Instant::now();
    let mut r = relay(t0);
    let mut seen = Seen::default();
    r.receive(Side::Client, CONNECT);
    // Bytes come without a time: the relay asks for it at once, and the
    // deadline counts from then, not from the last time it was told.
    assert_eq!(r.poll_timeout(), Some(t0));
    let told = t0 + Duration::from_secs(4);
    r.handle_timeout(told);
    let deadline = r.poll_timeout().expect("the upstream connect deadline");
    assert_eq!(deadline, told + Duration::from_secs(10));
    r.handle_timeout(deadline - Duration::from_millis(1));
    assert!(!r.is_closed());
    r.handle_timeout(deadline);
    seen.collect(&mut r);
    assert_eq!(
        frames(&seen.client)[0].header("message"),
        Some("broker unavailable")
    );
    assert_eq!(
        seen.events,
        [
            RelayEvent::OpenUpstream,
            RelayEvent::Failed(Error::UpstreamUnavailable),
            RelayEvent::CloseUpstream
        ]
    );

    // Connected but never answered: the broker failed.
    let mut r = relay(t0);
    r.receive(Side::Client, CONNECT);
    r.handle_upstream_connected();
    r.handle_timeout(t0);
    r.handle_timeout(t0 + Duration::from_secs(10));
    let mut seen = Seen::default();
    seen.collect(&mut r);
    assert_eq!(
        frames(&seen.client)[0].header("message"),
        Some("broker failed")
    );
    assert!(r.is_closed());
}

#[test]
fn pending_frames_are_bounded_with_a_typed_refusal() {
    let t0 = Instant::now();
    let mut r = relay(t0);
    let mut seen = Seen::default();
    r.receive(Side::Client, CONNECT);
    for _ in 0..3 {
        r.receive(Side::Client, b"SEND\ndestination:/queue/a\n\nx\0");
    }
    assert_eq!(r.pending_frames(), 3);
    assert!(!r.is_closed());
    r.receive(
        Side::Client,
        b"SEND\ndestination:/queue/a\nreceipt:r4\n\nx\0",
    );
    seen.collect(&mut r);
    let error = &frames(&seen.client)[0];
    assert_eq!(error.header("message"), Some("too many frames"));
    assert_eq!(error.header("receipt-id"), Some("r4"));
    assert!(
        seen.events
            .contains(&RelayEvent::Failed(Error::TooManyPendingFrames {
                limit: 3
            }))
    );
    assert!(r.is_closed());
    assert_eq!(r.pending_frames(), 0);
}

#[test]
fn receipts_and_messages_pass_through_and_disconnect_waits_for_the_broker() {
    let t0 = Instant::now();
    let (mut r, mut seen) = relaying(t0);
    r.receive(
        Side::Client,
        b"SUBSCRIBE\nid:0\ndestination:/queue/a\nreceipt:s\n\n\0",
    );
    seen.collect(&mut r);
    let sub = frames(&seen.upstream);
    assert_eq!(sub[0].header("receipt"), Some("s"));
    seen.take();
    r.receive(
        Side::Upstream,
        b"RECEIPT\nreceipt-id:s\n\n\0MESSAGE\nsubscription:0\nmessage-id:1\ndestination:/queue/a\n\nhello\0",
    );
    seen.collect(&mut r);
    let back = frames(&seen.client);
    assert_eq!(back[0].header("receipt-id"), Some("s"));
    assert_eq!(back[1].body().as_ref(), b"hello");
    seen.take();

    r.receive(Side::Client, b"DISCONNECT\nreceipt:bye\n\n\0");
    seen.collect(&mut r);
    assert_eq!(frames(&seen.upstream)[0].header("receipt"), Some("bye"));
    assert!(seen.client.is_empty(), "the receipt waits for the broker's");
    assert!(!r.is_closed());
    seen.take();
    r.receive(Side::Upstream, b"RECEIPT\nreceipt-id:bye\n\n\0");
    seen.collect(&mut r);
    assert_eq!(frames(&seen.client)[0].header("receipt-id"), Some("bye"));
    assert!(r.is_closed());
    assert_eq!(seen.events, [RelayEvent::CloseUpstream]);
    assert!(seen.upstream.is_empty(), "no second DISCONNECT");
}

#[test]
fn a_client_that_leaves_gets_a_polite_disconnect_upstream() {
    let t0 = Instant::now();
    let (mut r, mut seen) = relaying(t0);
    r.handle_client_closed();
    seen.collect(&mut r);
    assert_eq!(commands(&seen.upstream), ["DISCONNECT"]);
    assert_eq!(seen.events, [RelayEvent::CloseUpstream]);
    assert!(seen.client.is_empty());
    assert!(r.is_closed());
}

#[test]
fn the_broker_leaving_or_going_silent_ends_the_client() {
    let t0 = Instant::now();
    let (mut r, mut seen) = relaying(t0);
    r.handle_upstream_closed();
    seen.collect(&mut r);
    assert_eq!(
        frames(&seen.client)[0].header("message"),
        Some("broker connection lost")
    );
    assert!(
        seen.events
            .contains(&RelayEvent::Failed(Error::UpstreamClosed))
    );

    // Heart-beats with the broker: 100 ms each way, and then silence.
    let config = RelayConfig {
        heart_beat: HeartBeat::every(Duration::from_millis(100)),
        ..relay_config()
    };
    let mut r = Relay::new(ServerSession::new(server_config(), t0), config, t0);
    let mut seen = Seen::default();
    r.receive(Side::Client, CONNECT);
    r.handle_upstream_connected();
    r.receive(
        Side::Upstream,
        b"CONNECTED\nversion:1.2\nheart-beat:100,100\n\n\0",
    );
    seen.collect(&mut r);
    seen.take();
    while !r.is_closed() {
        let now = r.poll_timeout().expect("a timer while relaying");
        assert!(
            now - t0 <= Duration::from_millis(200),
            "silence noticed late: the broker's last octet came at t0"
        );
        r.handle_timeout(now);
    }
    seen.collect(&mut r);
    assert!(seen.upstream.contains(&b'\n'), "the relay's heart-beats");
    assert_eq!(
        frames(&seen.client)[0].header("message"),
        Some("broker failed")
    );
}

#[test]
fn a_frame_the_upstream_session_refuses_is_answered_with_error() {
    let t0 = Instant::now();
    let (mut r, mut seen) = relaying(t0);
    r.receive(Side::Client, b"UNSUBSCRIBE\nid:nope\nreceipt:u\n\n\0");
    seen.collect(&mut r);
    let error = &frames(&seen.client)[0];
    assert_eq!(error.header("message"), Some("frame not relayable"));
    assert_eq!(error.header("receipt-id"), Some("u"));
    assert!(r.is_closed());
    assert_eq!(commands(&seen.upstream), ["DISCONNECT"]);
}

#[test]
fn shutdown_sends_error_and_ends_both_sides() {
    let t0 = Instant::now();
    let (mut r, mut seen) = relaying(t0);
    r.shutdown();
    seen.collect(&mut r);
    assert_eq!(
        frames(&seen.client)[0].header("message"),
        Some("server shutting down")
    );
    assert_eq!(commands(&seen.upstream), ["DISCONNECT"]);
    assert_eq!(seen.events, [RelayEvent::CloseUpstream]);
}

#[test]
fn a_client_fault_while_held_sends_error_not_connected() {
    let t0 = Instant::now();
    let mut r = relay(t0);
    let mut seen = Seen::default();
    r.receive(Side::Client, CONNECT);
    r.receive(Side::Client, b"SEND\n\n\0");
    seen.collect(&mut r);
    assert_eq!(commands(&seen.client), ["ERROR"]);
    assert!(r.is_closed());
    assert_eq!(
        seen.events.last(),
        Some(&RelayEvent::CloseUpstream),
        "the connect attempt is abandoned"
    );
}

// ---- arbitrary splits and bytes ----

/// A whole conversation, as (side, bytes) steps.
fn script() -> Vec<(Side, &'static [u8])> {
    vec![
        (
            Side::Client,
            b"CONNECT\naccept-version:1.1,1.2\nhost:/\nheart-beat:0,0\n\n\0SUBSCRIBE\nid:0\ndestination:/queue/a\nreceipt:s\n\n\0",
        ),
        (Side::Upstream, b"CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\0"),
        (
            Side::Client,
            b"SEND\ndestination:/queue/a\ncontent-length:3\n\na\0b\0\n",
        ),
        (
            Side::Upstream,
            b"RECEIPT\nreceipt-id:s\n\n\0\nMESSAGE\nsubscription:0\nmessage-id:m\\c1\ndestination:/queue/a\nack:1\n\nhi\0",
        ),
        (Side::Client, b"ACK\nid:1\n\n\0DISCONNECT\nreceipt:bye\n\n\0"),
        (Side::Upstream, b"RECEIPT\nreceipt-id:bye\n\n\0"),
    ]
}

fn run(steps: &[(Side, Vec<&[u8]>)]) -> Seen {
    let t0 = Instant::now();
    let mut r = relay(t0);
    let mut seen = Seen::default();
    for (side, chunks) in steps {
        for chunk in chunks {
            if *side == Side::Upstream && r.state() == RelayState::OpeningUpstream {
                r.handle_upstream_connected();
            }
            r.receive(*side, chunk);
            seen.collect(&mut r);
        }
    }
    seen
}

fn split<'a>(input: &'a [u8], points: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = points.iter().map(|p| p % (input.len() + 1)).collect();
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut last = 0;
    for c in cuts {
        out.push(input.get(last..c).unwrap_or_default());
        last = c;
    }
    out.push(input.get(last..).unwrap_or_default());
    out
}

#[test]
fn the_script_runs_to_a_clean_end() {
    let whole: Vec<(Side, Vec<&[u8]>)> = script().into_iter().map(|(s, b)| (s, vec![b])).collect();
    let seen = run(&whole);
    assert_eq!(
        commands(&seen.client),
        ["CONNECTED", "RECEIPT", "MESSAGE", "RECEIPT"]
    );
    assert_eq!(
        commands(&seen.upstream),
        ["CONNECT", "SUBSCRIBE", "SEND", "ACK", "DISCONNECT"]
    );
    assert_eq!(
        seen.events,
        [RelayEvent::OpenUpstream, RelayEvent::CloseUpstream]
    );
}

proptest! {
    #[test]
    fn any_split_gives_the_same_bytes_and_events(
        points in proptest::collection::vec(proptest::collection::vec(any::<usize>(), 0..6), 6)
    ) {
        let script = script();
        let whole: Vec<(Side, Vec<&[u8]>)> = script.iter().map(|(s, b)| (*s, vec![*b])).collect();
        let cut: Vec<(Side, Vec<&[u8]>)> = script
            .iter()
            .zip(&points)
            .map(|((s, b), p)| (*s, split(b, p)))
            .collect();
        prop_assert_eq!(run(&whole), run(&cut));
    }

    #[test]
    fn arbitrary_bytes_on_both_sides_never_panic(
        steps in proptest::collection::vec((any::<bool>(), proptest::collection::vec(any::<u8>(), 0..64), 0u8..6), 0..24)
    ) {
        let t0 = Instant::now();
        let mut r = relay(t0);
        r.receive(Side::Client, CONNECT);
        let mut now = t0;
        let mut seen = Seen::default();
        for (client, bytes, op) in &steps {
            match op {
                0 => r.handle_upstream_connected(),
                1 => {
                    now += Duration::from_millis(700);
                    r.handle_timeout(now);
                }
                2 => r.receive(Side::Upstream, CONNECTED),
                _ => {}
            }
            let side = if *client { Side::Client } else { Side::Upstream };
            r.receive(side, bytes);
            seen.collect(&mut r);
            prop_assert!(r.pending_frames() <= 3);
            prop_assert!(r.poll_timeout().is_none_or(|at| at >= now), "a timer already passed");
        }
        // What the client got decodes as server frames.
        let mut d = FrameDecoder::new(Limits::default());
        d.set_version(Version::V1_2);
        d.receive(&seen.client);
        loop {
            match d.decode() {
                Ok(Some(Decoded::Frame(f))) => prop_assert!(f.command().is_server_command()),
                Ok(Some(Decoded::HeartBeat)) => {}
                Ok(None) => break,
                Err(e) => prop_assert!(false, "undecodable output: {e:?}"),
            }
        }
    }
}
