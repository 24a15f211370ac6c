//! The adapter the local Socket.IO server routes its room operations and
//! broadcasts through: in memory by default, or a [`ClusterNode`].

use std::time::{Duration, Instant};

use super::{
    ClusterNode, Error, InMemoryAdapter, LocalAdapter, NodeEvent, Opts, Transmit, WirePacket,
};

/// One namespace's adapter.
///
/// Every method returns the local sockets to act on now; with a cluster,
/// the other nodes hear of the operation through [`Adapter::poll_transmit`]
/// and what they ask of this node comes out of [`Adapter::poll_event`].
#[derive(Debug)]
pub enum Adapter {
    /// Rooms in memory, nothing shared: the default.
    InMemory(InMemoryAdapter),
    /// A member of a cluster.
    Cluster(Box<ClusterNode>),
}

impl Default for Adapter {
    fn default() -> Self {
        Adapter::InMemory(InMemoryAdapter::new())
    }
}

impl Adapter {
    /// The local rooms.
    pub fn rooms(&self) -> &InMemoryAdapter {
        match self {
            Adapter::InMemory(a) => a,
            Adapter::Cluster(n) => n.rooms(),
        }
    }

    /// The connection state recovery store, when the adapter is
    /// session-aware (in memory with recovery on; the classic and sharded
    /// Redis adapters are not, as in Node).
    pub fn recovery(&self) -> Option<&crate::recovery::SessionStore> {
        match self {
            Adapter::InMemory(a) => a.recovery(),
            Adapter::Cluster(_) => None,
        }
    }

    /// The connection state recovery store, when session-aware.
    pub fn recovery_mut(&mut self) -> Option<&mut crate::recovery::SessionStore> {
        match self {
            Adapter::InMemory(a) => a.recovery_mut(),
            Adapter::Cluster(_) => None,
        }
    }

    /// The restore hook (see [`InMemoryAdapter::restore_session`]).
    pub fn restore_session(
        &mut self,
        reserved: crate::recovery::Reserved,
    ) -> Option<crate::recovery::Restored> {
        match self {
            Adapter::InMemory(a) => a.restore_session(reserved),
            Adapter::Cluster(_) => None,
        }
    }

    /// The cluster node, when there is one (for requests that only a
    /// cluster has: fetch, all rooms, server-side emits).
    pub fn cluster(&mut self) -> Option<&mut ClusterNode> {
        match self {
            Adapter::InMemory(_) => None,
            Adapter::Cluster(n) => Some(n),
        }
    }

    /// Socket `sid` joins `rooms`.
    pub fn add_all(&mut self, sid: &str, rooms: &[String]) {
        match self {
            Adapter::InMemory(a) => {
                a.add_all(sid, rooms);
            }
            Adapter::Cluster(n) => n.add_all(sid, rooms),
        }
    }

    /// Socket `sid` leaves `room`.
    pub fn del(&mut self, sid: &str, room: &str) {
        match self {
            Adapter::InMemory(a) => {
                a.del(sid, room);
            }
            Adapter::Cluster(n) => n.del(sid, room),
        }
    }

    /// Socket `sid` leaves every room.
    pub fn del_all(&mut self, sid: &str) {
        match self {
            Adapter::InMemory(a) => {
                a.del_all(sid);
            }
            Adapter::Cluster(n) => n.del_all(sid),
        }
    }

    /// A broadcast: the local sockets to send `packet` to.
    pub fn broadcast(&mut self, packet: WirePacket, opts: &Opts) -> Vec<String> {
        match self {
            Adapter::InMemory(a) => a.select(opts),
            Adapter::Cluster(n) => n.broadcast(packet, opts),
        }
    }

    /// A broadcast with acks: the local sockets; other nodes' counts and
    /// acks come as events until `timeout`.
    pub fn broadcast_with_ack(
        &mut self,
        request_id: &str,
        packet: WirePacket,
        opts: &Opts,
        timeout: Duration,
        now: Instant,
    ) -> Result<Vec<String>, Error> {
        match self {
            Adapter::InMemory(a) => Ok(a.select(opts)),
            Adapter::Cluster(n) => n.broadcast_with_ack(request_id, packet, opts, timeout, now),
        }
    }

    /// `socketsJoin` / `socketsLeave`: the local sockets to move now.
    pub fn sockets_rooms(&mut self, opts: &Opts, rooms: &[String], leave: bool) -> Vec<String> {
        match self {
            Adapter::InMemory(a) => a.select(opts),
            Adapter::Cluster(n) => n.sockets_rooms(opts, rooms, leave),
        }
    }

    /// `disconnectSockets`: the local sockets to disconnect now.
    pub fn disconnect_sockets(&mut self, opts: &Opts, close: bool) -> Vec<String> {
        match self {
            Adapter::InMemory(a) => a.select(opts),
            Adapter::Cluster(n) => n.disconnect_sockets(opts, close),
        }
    }

    /// The next message to publish (never, in memory).
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.cluster().and_then(ClusterNode::poll_transmit)
    }

    /// The next event for the local server (never, in memory).
    pub fn poll_event(&mut self) -> Option<NodeEvent> {
        self.cluster().and_then(ClusterNode::poll_event)
    }

    /// Expires requests.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(n) = self.cluster() {
            n.handle_timeout(now);
        }
    }

    /// When [`Self::handle_timeout`] next has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Adapter::InMemory(_) => None,
            Adapter::Cluster(n) => n.poll_timeout(),
        }
    }
}
