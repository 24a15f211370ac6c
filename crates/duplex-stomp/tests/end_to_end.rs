//! Client sessions, server sessions and the broker wired together in
//! memory: the whole path a message takes, bytes included.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::collections::HashMap;
use std::time::Instant;

use bytes::BytesMut;
use duplex_stomp::{
    AckMode, Broker, ClientConfig, ClientEvent, ClientSession, ConnectionId, Message, ServerConfig,
    ServerEvent, ServerSession, Version,
};

/// What an adapter does for the server side, minus the sockets.
#[derive(Default)]
struct Hub {
    broker: Broker,
    sessions: HashMap<ConnectionId, ServerSession>,
}

impl Hub {
    fn accept(&mut self, id: ConnectionId, now: Instant) {
        self.sessions
            .insert(id, ServerSession::new(ServerConfig::default(), now));
    }

    fn receive(&mut self, id: ConnectionId, bytes: &[u8]) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        session.receive(bytes);
        loop {
            let Some(event) = self
                .sessions
                .get_mut(&id)
                .and_then(ServerSession::poll_event)
            else {
                break;
            };
            match event {
                ServerEvent::Connected(accepted) => self.broker.connect(id, accepted.version),
                ServerEvent::Frame(frame) => self.broker.handle_frame(id, frame),
                ServerEvent::Failed(_) => self.broker.disconnect(id),
            }
            while let Some(out) = self.broker.poll_transmit() {
                if let Some(s) = self.sessions.get_mut(&out.connection) {
                    s.send_frame(&out.frame).unwrap();
                }
            }
        }
    }

    fn transmit(&mut self, id: ConnectionId) -> BytesMut {
        let mut out = BytesMut::new();
        if let Some(s) = self.sessions.get_mut(&id) {
            s.poll_transmit(&mut out);
        }
        out
    }
}

struct Peer {
    id: ConnectionId,
    client: ClientSession,
}

impl Peer {
    fn connect(hub: &mut Hub, id: u64, versions: &[Version], now: Instant) -> Peer {
        let id = ConnectionId(id);
        hub.accept(id, now);
        let mut config = ClientConfig::new("localhost");
        config.versions = versions.to_vec();
        let mut peer = Peer {
            id,
            client: ClientSession::new(config, now).unwrap(),
        };
        let events = peer.exchange(hub);
        assert!(
            matches!(events.as_slice(), [ClientEvent::Connected(_)]),
            "{events:?}"
        );
        peer
    }

    /// Flushes this client's bytes to the hub and hub's bytes back, one
    /// octet at a time on the way back to exercise incremental decoding.
    fn exchange(&mut self, hub: &mut Hub) -> Vec<ClientEvent> {
        let mut out = BytesMut::new();
        self.client.poll_transmit(&mut out);
        hub.receive(self.id, &out);
        self.pull(hub)
    }

    fn pull(&mut self, hub: &mut Hub) -> Vec<ClientEvent> {
        let back = hub.transmit(self.id);
        for b in back.iter() {
            self.client.receive(&[*b]);
        }
        std::iter::from_fn(|| self.client.poll_event()).collect()
    }
}

fn messages(events: &[ClientEvent]) -> Vec<Message> {
    events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Message(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn work_queue_with_acks_across_versions() {
    let now = Instant::now();
    let mut hub = Hub::default();
    let mut worker = Peer::connect(&mut hub, 1, &[Version::V1_2], now);
    let mut old_worker = Peer::connect(&mut hub, 2, &[Version::V1_1], now);
    let mut producer = Peer::connect(&mut hub, 3, &Version::ALL, now);

    worker
        .client
        .subscribe_with(
            "/queue/work",
            AckMode::ClientIndividual,
            &[("receipt", "sub-ok")],
        )
        .unwrap();
    assert_eq!(
        worker.exchange(&mut hub),
        vec![ClientEvent::Receipt {
            receipt_id: "sub-ok".into()
        }]
    );
    old_worker
        .client
        .subscribe("/queue/work", AckMode::Client)
        .unwrap();
    old_worker.exchange(&mut hub);

    let binary = b"\0\x01\x02\0end".to_vec();
    producer
        .client
        .send(
            "/queue/work",
            &[("x-note", "a:b\\c\nd"), ("receipt", "sent-1")],
            &binary,
        )
        .unwrap();
    producer
        .client
        .send("/queue/work", &[("receipt", "sent-2")], b"second")
        .unwrap();
    let ev = producer.exchange(&mut hub);
    assert_eq!(
        ev,
        vec![
            ClientEvent::Receipt {
                receipt_id: "sent-1".into()
            },
            ClientEvent::Receipt {
                receipt_id: "sent-2".into()
            }
        ]
    );

    // Round robin: the first to the 1.2 worker, the second to the 1.1 one.
    let got = messages(&worker.pull(&mut hub));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body().as_ref(), binary.as_slice());
    assert_eq!(
        got[0].header("x-note"),
        Some("a:b\\c\nd"),
        "escaped on the wire, intact here"
    );
    let old_got = messages(&old_worker.pull(&mut hub));
    assert_eq!(old_got.len(), 1);
    assert_eq!(old_got[0].body().as_ref(), b"second");

    // The 1.1 worker NACKs; the message comes back to one of them, redelivered.
    old_worker.client.nack(&old_got[0], None).unwrap();
    old_worker.exchange(&mut hub);
    let again: Vec<Message> = messages(&worker.pull(&mut hub))
        .into_iter()
        .chain(messages(&old_worker.pull(&mut hub)))
        .collect();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].header("redelivered"), Some("true"));

    // The 1.2 worker acknowledges and leaves gracefully.
    worker.client.ack(&got[0], None).unwrap();
    worker.client.disconnect().unwrap();
    assert_eq!(worker.exchange(&mut hub), vec![ClientEvent::Disconnected]);
    assert!(worker.client.is_closed());
    assert!(!hub.broker.is_connected(ConnectionId(1)));
}

#[test]
fn topic_fan_out_reaches_every_version() {
    let now = Instant::now();
    let mut hub = Hub::default();
    let mut peers: Vec<Peer> = [Version::V1_0, Version::V1_1, Version::V1_2]
        .iter()
        .enumerate()
        .map(|(i, v)| Peer::connect(&mut hub, i as u64 + 1, &[*v], now))
        .collect();
    for p in &mut peers {
        p.client.subscribe("/topic/news", AckMode::Auto).unwrap();
        p.exchange(&mut hub);
    }
    peers[2]
        .client
        .send("/topic/news", &[("content-type", "text/plain")], b"extra")
        .unwrap();
    // The sender is subscribed too, so its own copy comes back with the exchange.
    let own = messages(&peers[2].exchange(&mut hub));
    for (i, p) in peers.iter_mut().enumerate() {
        let got = if i == 2 {
            own.clone()
        } else {
            messages(&p.pull(&mut hub))
        };
        assert_eq!(got.len(), 1, "{:?}", p.client.version());
        assert_eq!(got[0].body().as_ref(), b"extra");
        assert_eq!(got[0].content_type(), Some("text/plain"));
        assert_eq!(got[0].destination(), Some("/topic/news"));
    }
}

#[test]
fn a_protocol_error_closes_only_that_connection() {
    let now = Instant::now();
    let mut hub = Hub::default();
    let mut good = Peer::connect(&mut hub, 1, &[Version::V1_2], now);
    good.client.subscribe("/queue/q", AckMode::Client).unwrap();
    good.exchange(&mut hub);
    let bad = ConnectionId(2);
    hub.accept(bad, now);
    hub.receive(bad, b"CONNECT\naccept-version:1.2\nhost:h\n\n\0SEND\ndestination:/queue/q\n\nok\0BEGIN\nreceipt:r\n\n\0");
    let out = hub.transmit(bad);
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("CONNECTED\n"), "{text}");
    assert!(
        text.contains("ERROR\nmessage:missing required header\nreceipt-id:r\n"),
        "{text}"
    );
    assert!(hub.sessions[&bad].is_closed());
    assert!(!hub.broker.is_connected(bad));
    // The message sent before the fault was delivered.
    let got = messages(&good.pull(&mut hub));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body().as_ref(), b"ok");
}
