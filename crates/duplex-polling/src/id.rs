//! Request identifiers. Session ids are the workspace's one
//! [`duplex_core::SessionId`], so that an Engine.IO `sid` reaches the
//! application as it was made.

use std::fmt;

/// An HTTP request, named by the caller (any value unique among the
/// requests in flight, e.g. a counter).
///
/// Once a machine answers a request with [`crate::HttpTransmit::AcceptWebSocket`],
/// the same id names that WebSocket connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}
