//! Fuzz targets for duplex-stomp.

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
            while let Some(o) = broker.poll_output() {
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
