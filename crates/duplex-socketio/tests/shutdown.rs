//! A server shutting down (Node's `io.close()`) with connection state
//! recovery on: every socket leaves with `server shutting down`, a
//! recoverable reason, so the clients that come back get their sessions
//! and what they missed. No network, simulated time.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use duplex_socketio::recovery::RecoveryConfig;
use duplex_socketio::server::{
    DisconnectReason, Server, ServerConfig, ServerEvent, SocketId, Transmit,
};
use duplex_socketio::{Broadcast, Packet, ProtocolVersion};
use rand::SeedableRng;
use rand::rngs::StdRng;

type Srv = Server<&'static str, ()>;

/// Every packet written, as text (volatile ones too); closes left out.
fn written(s: &mut Srv) -> Vec<String> {
    std::iter::from_fn(|| s.poll_transmit())
        .filter_map(|t| match t {
            Transmit::Packet { packet, .. } | Transmit::Volatile { packet, .. } => {
                Some(packet.text.as_str().to_owned())
            }
            Transmit::Close { .. } | Transmit::Probe { .. } => None,
        })
        .collect()
}

/// Opens `session`, CONNECTs to `/` with `auth` and accepts; the socket
/// and what was written.
fn connect(s: &mut Srv, session: &'static str, auth: &str) -> (SocketId, Vec<String>) {
    s.open(session, ProtocolVersion::V5, Instant::now());
    s.handle_text(&session, Bytes::from(format!("0{auth}")));
    let Some(ServerEvent::ConnectRequest { .. }) = s.poll_event() else {
        panic!("a CONNECT request");
    };
    let id = s.accept(&session, "/").unwrap();
    (id, written(s))
}

/// The string field `key` of a JSON object or the last string of an array
/// (an event's offset), in a packet's text.
fn field(text: &str, key: &str) -> String {
    let start = text.find(['{', '[']).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text[start..]).unwrap();
    match v {
        serde_json::Value::Array(items) => items.last().unwrap().as_str().unwrap().to_owned(),
        v => v[key].as_str().unwrap().to_owned(),
    }
}

fn tick(n: i64) -> Packet {
    Packet::event_with("/", "tick", &[n.into()], None).unwrap()
}

#[test]
fn a_shutdown_keeps_every_session_for_the_clients_that_come_back() {
    let mut config = ServerConfig::default().with_rng(StdRng::seed_from_u64(3));
    config.recovery = Some(RecoveryConfig {
        max_disconnection_duration: Duration::from_secs(10),
        ..RecoveryConfig::default()
    });
    let mut s = Srv::new(config);
    let (a, answer_a) = connect(&mut s, "a", "");
    let (b, answer_b) = connect(&mut s, "b", "");
    s.join("/", &a, ["room"]);
    s.send(&"a", &tick(0)).unwrap();
    let offset_a = field(&written(&mut s)[0], "");
    s.send(&"b", &tick(1)).unwrap();
    let offset_b = field(&written(&mut s)[0], "");

    s.shutdown();
    let reasons: Vec<DisconnectReason> = std::iter::from_fn(|| s.poll_event())
        .filter_map(|e| match e {
            ServerEvent::Disconnect { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(reasons, [DisconnectReason::ServerShuttingDown; 2]);
    assert_eq!(s.connection_count(), 0);

    // Sent while the clients are away: kept for the room's member.
    s.broadcast("/", &Broadcast::to("room"), &tick(2));
    let auth = |answer: &[String], offset: &str| {
        let pid = field(&answer[0], "pid");
        format!(r#"{{"pid":"{pid}","offset":"{offset}"}}"#)
    };
    let (again_a, replay_a) = connect(&mut s, "a2", &auth(&answer_a, &offset_a));
    let (again_b, replay_b) = connect(&mut s, "b2", &auth(&answer_b, &offset_b));
    assert_eq!((&again_a, &again_b), (&a, &b), "the same ids");
    assert!(s.recovered("/", &again_a) && s.recovered("/", &again_b));
    assert!(s.rooms_of("/", &again_a).contains(&"room".to_owned()));
    assert_eq!(
        replay_a.len(),
        2,
        "the missed tick, then the answer: {replay_a:?}"
    );
    assert!(replay_a[0].starts_with(r#"2["tick",2,"#), "{replay_a:?}");
    assert_eq!(replay_b.len(), 1, "the answer only: {replay_b:?}");
}
