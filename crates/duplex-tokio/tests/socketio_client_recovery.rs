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

// The contract's handlers, as the conformance server serves them.
#[allow(dead_code)]
#[path = "../../duplex-cli/src/socketio_suites.rs"]
mod suites;

use std::time::Duration;

use duplex_tokio::socketio::client::ClientTransports;
use duplex_tokio::socketio::{RecoveryConfig, SocketIo, SocketIoConfig};

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
    .namespace("/", suites::recovery_handlers)
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
