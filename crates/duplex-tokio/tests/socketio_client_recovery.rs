//! The duplex Socket.IO client through a reconnection with connection
//! state recovery, against the duplex server: the checks of
//! examples/socketio_recovery_interop.rs (which the conformance script
//! runs against the Node server too), in the three transport modes, with
//! the handlers of shared/conformance/socketio-recovery.md.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

mod socketio_common;

#[allow(dead_code)]
#[path = "../examples/socketio_recovery_interop.rs"]
mod interop;

use std::time::Duration;

use duplex_tokio::socketio::client::ClientTransports;
use duplex_tokio::socketio::{
    AckSender, Args, NamespaceHandlers, RecoveryConfig, Socket, SocketIo, SocketIoConfig, Value,
};

/// The contract's handlers (the conformance server has its own copy).
fn handlers(ns: NamespaceHandlers) -> NamespaceHandlers {
    ns.on(
        "join",
        |socket: Socket, Args(args): Args, ack: AckSender| {
            if let Some(room) = args.first().and_then(Value::as_str) {
                socket.join(room);
            }
            let _ = ack.send(&serde_json::json!({ "rooms": socket.rooms() }));
        },
    )
    .on(
        "set-data",
        |socket: Socket, Args(args): Args, ack: AckSender| {
            let data = args.into_iter().next().unwrap_or(Value::Null);
            let _ = ack.send(&socket.set_data(data));
        },
    )
    .on("get-data", |socket: Socket, ack: AckSender| {
        let _ = ack.send_args(vec![socket.data().unwrap_or(Value::Null)]);
    })
    .on("whoami", |socket: Socket, ack: AckSender| {
        let _ = ack.send(&serde_json::json!({
            "id": socket.id().as_str(),
            "rooms": socket.rooms(),
            "recovered": socket.recovered(),
        }));
    })
    .on(
        "stream",
        |socket: Socket, Args(args): Args, ack: AckSender| {
            let spec = args.first().map(Value::to_json).unwrap_or_default();
            let id = spec["id"].as_str().unwrap_or_default().to_owned();
            let n = spec["n"].as_u64().unwrap_or(0);
            let interval = Duration::from_millis(spec["intervalMs"].as_u64().unwrap_or(25));
            let _ = ack.send(&serde_json::json!({ "ok": true }));
            tokio::spawn(async move {
                for seq in 0..n {
                    tokio::time::sleep(interval).await;
                    let _ =
                        socket.emit_args("tick", vec![Value::from(id.as_str()), Value::from(seq)]);
                }
                let _ =
                    socket.emit_args("stream-end", vec![Value::from(id.as_str()), Value::from(n)]);
            });
        },
    )
}

async fn check(transports: ClientTransports) {
    let io = SocketIo::builder(SocketIoConfig {
        ping_interval: Duration::from_millis(1000),
        ping_timeout: Duration::from_millis(1000),
        connection_state_recovery: Some(RecoveryConfig {
            max_disconnection_duration: Duration::from_secs(10),
            ..RecoveryConfig::default()
        }),
        ..SocketIoConfig::default()
    })
    .mount("/recovery")
    .namespace("/", handlers)
    .build();
    let addr = socketio_common::serve(io).await;
    let results = interop::run_checks(&format!("http://{addr}"), "/recovery/", transports).await;
    let failures: Vec<String> = results
        .iter()
        .filter_map(|(name, r)| r.as_ref().err().map(|e| format!("{name}: {e}")))
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(results.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovered_over_websocket() {
    check(ClientTransports::WebSocket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovered_over_polling() {
    check(ClientTransports::Polling).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovered_after_the_upgrade() {
    check(ClientTransports::PollingThenWebSocket).await;
}
