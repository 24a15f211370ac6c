//! Deadlines by session, earliest first: one entry per connection, the
//! earliest of its connect timeout and its sockets' ack timeouts. The set
//! itself is the workspace's one, shared with Engine.IO and the polling
//! dialects.

pub(super) use duplex_core::Deadlines as Timers;
