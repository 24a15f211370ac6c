//! The bodies of the fuzz targets, kept in a library so that the seed corpus
//! under `fuzz/corpus/<target>/` is replayed by an ordinary `cargo test`
//! (see `tests/corpus.rs`) and by `cargo fuzz run <target> --features libfuzzer`.
//!
//! Each target is a `fn(&[u8])` that must never panic, hang or allocate past
//! the configured limits on any input.
// The targets' own checks panic on purpose: a panic is how a fuzzer reports
// a broken invariant; the code under test keeps the workspace's denials.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

pub mod engineio;
mod input;
pub mod polling;
pub mod recovery;
pub mod socketio;
pub mod stomp;
pub mod ws;

/// Every fuzz target by the name of its `fuzz_targets/<name>.rs` binary and
/// its `corpus/<name>/` folder.
// The (name, body) pairs read best spelled out; no alias needed.
#[allow(clippy::type_complexity)]
pub const TARGETS: &[(&str, fn(&[u8]))] = &[
    ("ws_frame", ws::frame),
    ("ws_request_head", ws::request_head),
    ("ws_response_head", ws::response_head),
    ("ws_server_connection", ws::server_connection),
    ("ws_client_connection", ws::client_connection),
    ("ws_borrowed_events", ws::borrowed_events),
    ("engineio_payload_v4", engineio::payload_v4),
    ("engineio_payload_v3_string", engineio::payload_v3_string),
    ("engineio_payload_v3_binary", engineio::payload_v3_binary),
    ("engineio_client_session", engineio::client_session),
    ("engineio_server", engineio::server),
    ("socketio_decoder", socketio::decoder),
    ("socketio_server", socketio::server),
    ("socketio_client", socketio::client),
    ("socketio_recovery", recovery::server),
    ("stomp_frame", stomp::frame),
    ("stomp_server", stomp::server),
    ("stomp_client_session", stomp::client_session),
    ("stomp_broker", stomp::broker),
    ("stomp_relay", stomp::relay),
    ("polling_engineio", polling::engineio),
    ("polling_sockjs", polling::sockjs),
    ("polling_sse", polling::sse),
];
