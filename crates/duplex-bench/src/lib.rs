//! The duplex benchmark harness: the same workloads fed to duplex and to
//! its peers (tungstenite, fastwebsockets, soketto, websocket-codec), so
//! that every report is a ratio measured in one run.
//!
//! A workload is a stream of masked client frames as a server receives
//! them. Every contender pays the one copy a socket read costs (bytes
//! copied from the "socket", a [`WireReader`], into its own read buffer),
//! then parses, unmasks and, for text, validates UTF-8. Each contender hands
//! every payload to a sink, and [`Digest`] checks the payloads against the
//! ones the workload was built from, so no one wins by skipping work.
//!
//! ```
//! use duplex_bench::{Decode, Digest, DuplexConnection, Kind, Workload, WireReader};
//!
//! let workload = Workload::new(Kind::Text16, 100);
//! let mut server = DuplexConnection::new(WireReader::new(workload.wire.clone(), 4096));
//! let mut digest = Digest::default();
//! server.decode(workload.frames, |payload| digest.add(payload));
//! assert_eq!(digest, workload.expected);
//! ```
#![forbid(unsafe_code)]
// A benchmark is not protocol code: a contender that misbehaves, or a run
// that cannot start, stops the measurement with a panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

pub mod clusterload;
mod contenders;
pub mod fdlimit;
pub mod loadgen;
pub mod procstat;
pub mod ramp;
mod reference;
pub mod sioload;
pub mod soak;
pub mod tlsbench;
mod wire;
mod workload;

pub use contenders::{
    Decode, DuplexConnection, DuplexConnectionDrain, DuplexConnectionRef, DuplexFrameDecoder,
    FastWebSockets, Soketto, Tungstenite, WebsocketCodec, baseline_copy, baseline_copy_xor,
    warmed_up,
};
pub use reference::Reference;
pub use wire::{READ_CHUNK, WireReader};
pub use workload::{Digest, Kind, Workload};
