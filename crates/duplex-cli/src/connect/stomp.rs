//! `duplex connect --stomp`.

use super::{Args, Failure, Out};

/// Runs the client.
pub(super) async fn run(_args: &Args, _out: &Out) -> Result<(), Failure> {
    Err(Failure::usage("not yet"))
}
