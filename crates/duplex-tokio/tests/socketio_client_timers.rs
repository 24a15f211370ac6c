//! The duplex Socket.IO client's timers through the tokio driver, against
//! a loopback server that grants the namespace but never pings and never
//! acks: the ack times out, the ping watchdog closes the connection with
//! "ping timeout", and the client reconnects with a new handshake.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

mod socketio_common;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use duplex_tokio::socketio::AckError;
use duplex_tokio::socketio::client::{
    ClientConfig, ClientEvent, ClientSocket, ClientTransports, Manager,
};
use http_body_util::{BodyExt, Full};

#[derive(Default)]
struct State {
    handshakes: u32,
    connect_pending: bool,
}

async fn silent_server(
    state: Arc<Mutex<State>>,
    req: http::Request<hyper::body::Incoming>,
) -> Result<http::Response<Full<Bytes>>, Infallible> {
    let query = req.uri().query().unwrap_or_default().to_owned();
    let reply = |body: String| Ok(http::Response::new(Full::new(Bytes::from(body))));
    if req.method() == http::Method::POST {
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        if body.starts_with(b"40") {
            state.lock().unwrap().connect_pending = true;
        }
        return reply("ok".into());
    }
    if !query.contains("sid=") {
        let n = {
            let mut s = state.lock().unwrap();
            s.handshakes += 1;
            s.handshakes
        };
        return reply(format!(
            r#"0{{"sid":"s{n}","upgrades":[],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000}}"#
        ));
    }
    // The long poll: the namespace grant once asked for, then nothing (no
    // ping) for longer than the client's watchdog.
    for _ in 0..150 {
        if std::mem::take(&mut state.lock().unwrap().connect_pending) {
            return reply(r#"40{"sid":"ns"}"#.into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    reply("6".into())
}

async fn next(socket: &mut ClientSocket) -> ClientEvent {
    tokio::time::timeout(Duration::from_secs(5), socket.next_event())
        .await
        .expect("an event within 5 s")
        .expect("the manager is running")
}

#[tokio::test]
async fn ack_timeout_ping_timeout_and_reconnection() {
    let state = Arc::new(Mutex::new(State::default()));
    let service = {
        let state = state.clone();
        hyper::service::service_fn(move |req| silent_server(state.clone(), req))
    };
    let addr = socketio_common::serve(service).await;
    let mut config = ClientConfig::new(&format!("http://{addr}"));
    config.transports = ClientTransports::Polling;
    config.reconnection_delay = Duration::from_millis(50);
    config.reconnection_delay_max = Duration::from_millis(100);
    let manager = Manager::new(config);
    let mut socket = manager.socket("/", None);

    assert!(matches!(next(&mut socket).await, ClientEvent::Connect { sid, .. } if sid == "ns"));
    let started = tokio::time::Instant::now();
    let reply = socket
        .emit_with_ack("never-acked", vec![], Some(Duration::from_millis(50)))
        .await;
    assert!(matches!(reply, Err(AckError::Timeout)), "{reply:?}");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(50), "{waited:?}");

    match next(&mut socket).await {
        ClientEvent::Disconnect { reason } => assert_eq!(reason, "ping timeout"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        next(&mut socket).await,
        ClientEvent::Connect { .. }
    ));
    assert_eq!(state.lock().unwrap().handshakes, 2);
    manager.close();
    assert!(matches!(
        next(&mut socket).await,
        ClientEvent::Disconnect {
            reason: "io client disconnect"
        }
    ));
}
