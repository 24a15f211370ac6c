//! Connection state recovery across nodes: the CONNECTs whose session is
//! looked up in Redis (the streams adapter) before they are raised, and the
//! sessions kept there. See docs/socketio-recovery.md, "Across nodes".

use std::collections::HashSet;
use std::hash::Hash;

use super::{RecoveryRequest, Server, ServerEvent};
use crate::cluster::streams::{self, RemoteSession, RestoreQuery, StreamId};
use crate::recovery::Session;
use crate::{Packet, Str, Value};

impl<K: Clone + Eq + Hash + Ord, T> Server<K, T> {
    /// The session key prefix of `namespace`'s streams node, when its
    /// adapter keeps sessions in Redis.
    fn streams_session_prefix(&mut self, namespace: &str) -> Option<String> {
        self.spaces
            .get_mut(namespace)
            .and_then(|s| s.adapter.cluster())
            .filter(|n| n.keeps_sessions())
            .and_then(|n| n.streams_options())
            .map(|o| o.session_key_prefix.clone())
    }

    /// With recovery on and a session-keeping cluster adapter on
    /// `namespace`, a CONNECT whose auth holds a string `pid` and a stream
    /// id `offset` waits for its session to be looked up: a
    /// [`RecoveryRequest::Restore`] is queued and the CONNECT is kept
    /// until [`Server::restore_answer`]. Returns whether it was.
    pub(super) fn defer_connect(&mut self, session: &K, namespace: &str, auth: &Value) -> bool {
        if self.config.recovery.is_none() {
            return false;
        }
        let Some((pid, offset)) = super::recovery_auth(auth) else {
            return false;
        };
        let Some(prefix) = self.streams_session_prefix(namespace) else {
            return false;
        };
        // Not a stream id: Node refuses it ("invalid offset"), a fresh session.
        let Some(query) = RestoreQuery::new(namespace, &prefix, pid, offset) else {
            return false;
        };
        let Some(conn) = self.connections.get_mut(session) else {
            return false;
        };
        conn.awaiting.insert(namespace.to_owned(), auth.clone());
        self.recovery_requests.push_back(RecoveryRequest::Restore {
            session: session.clone(),
            namespace: namespace.to_owned(),
            query,
        });
        true
    }

    /// The outcome of a [`RecoveryRequest::Restore`]: the session and the
    /// packets it missed, or `None` (not found, expired, an error: a
    /// fresh session). The CONNECT is then raised as a
    /// [`ServerEvent::ConnectRequest`], with [`Server::restoring`] (and
    /// so [`Server::skips_middlewares`]) true when the session can be
    /// restored: it was found and none of the broadcasts this node
    /// delivered since the restore's read was forgotten (else the session
    /// is dropped here and the CONNECT is a fresh one, which runs the
    /// middlewares). Accept it to restore the socket. If the connection
    /// or its CONNECT is gone meanwhile, the session is kept again (a
    /// [`RecoveryRequest::Persist`]).
    pub fn restore_answer(&mut self, session: &K, namespace: &str, answer: Option<RemoteSession>) {
        let auth = self
            .connections
            .get_mut(session)
            .and_then(|c| c.awaiting.remove(namespace));
        let Some(auth) = auth else {
            if let Some(remote) = answer {
                self.persist_remote(namespace, remote.session);
            }
            return;
        };
        let pending = answer.and_then(|remote| self.gather_recent(namespace, remote));
        if let (Some(pending), Some(conn)) = (pending, self.connections.get_mut(session)) {
            conn.remote.insert(namespace.to_owned(), pending);
        }
        self.events.push_back(ServerEvent::ConnectRequest {
            session: session.clone(),
            namespace: namespace.to_owned(),
            auth,
            implicit: false,
        });
    }

    /// The broadcasts this node delivered after `remote`'s read, added to
    /// its missed ones; `None` (the session cannot be restored without a
    /// gap) when some may have been forgotten.
    fn gather_recent(
        &mut self,
        namespace: &str,
        mut remote: RemoteSession,
    ) -> Option<PendingRemote> {
        let node = self.spaces.get_mut(namespace)?.adapter.cluster()?;
        let recent = node.recent_after(&remote.session.rooms, remote.read_to)?;
        let mark = node.recent_mark();
        let also = recent.iter().map(|m| m.id).collect();
        remote.missed.extend(recent);
        Some(PendingRemote { remote, also, mark })
    }

    /// An entry `id` read from the stream of `namespace`'s cluster node
    /// (streams protocol), carried out as [`Server::cluster_receive`]
    /// does for a published message. A malformed entry is the other
    /// node's fault: the error says what was wrong and nothing changes.
    pub fn cluster_receive_entry<F: AsRef<str>, V: AsRef<str>>(
        &mut self,
        namespace: &str,
        id: &str,
        fields: &[(F, V)],
        now: std::time::Instant,
    ) -> Result<(), crate::cluster::Error> {
        let Some(node) = self.cluster_mut(namespace) else {
            return Ok(());
        };
        let result = node.receive_entry(id, fields, now);
        self.drain_cluster(namespace);
        result
    }

    /// The `XADD` of `namespace`'s broadcast `token` (a
    /// [`StreamAdd::token`](crate::cluster::StreamAdd::token)) returned
    /// `id`, or failed (`None`): the broadcast reaches the local sockets
    /// now, in publish order, with its id as offset when recovery is on.
    pub fn cluster_published(&mut self, namespace: &str, token: u64, id: Option<&str>) {
        if let Some(node) = self.cluster_mut(namespace) {
            node.published(token, id);
            self.drain_cluster(namespace);
        }
    }

    /// A transmit of `namespace`'s node that the transport could not take
    /// (its queue full, or the transport gone): a broadcast waiting for its
    /// stream id reaches the local sockets without one, as after a failed
    /// `XADD`; anything else is lost to the other servers only, which is
    /// what a cluster without a transport means.
    pub fn cluster_transmit_refused(
        &mut self,
        namespace: &str,
        transmit: &crate::cluster::Transmit,
    ) {
        if let Some(token) = transmit.stream.as_ref().and_then(|s| s.token) {
            self.cluster_published(namespace, token, None);
        }
    }

    /// Whether `namespace`'s adapter is a cluster node that keeps sessions
    /// (the streams protocol with recovery on): direct emits then go
    /// through it, to the socket's own room, whether or not the socket is
    /// connected here now.
    pub fn cluster_keeps_sessions(&self, namespace: &str) -> bool {
        self.spaces.get(namespace).is_some_and(
            |s| matches!(&s.adapter, crate::cluster::Adapter::Cluster(n) if n.keeps_sessions()),
        )
    }

    /// The next Redis round trip recovery across nodes needs.
    pub fn poll_recovery_request(&mut self) -> Option<RecoveryRequest<K>> {
        self.recovery_requests.pop_front()
    }

    /// Keeps `session` in Redis (a [`RecoveryRequest::Persist`]) when
    /// `namespace`'s adapter keeps sessions; returns whether it does.
    pub(super) fn persist_remote(&mut self, namespace: &str, session: Session) -> bool {
        let Some(ttl) = self
            .config
            .recovery
            .as_ref()
            .map(|r| r.max_disconnection_duration)
        else {
            return false;
        };
        let Some(prefix) = self.streams_session_prefix(namespace) else {
            return false;
        };
        self.recovery_requests.push_back(RecoveryRequest::Persist {
            namespace: namespace.to_owned(),
            key: format!("{prefix}{}", session.pid),
            value: streams::encode_session(&session),
            ttl,
        });
        true
    }

    /// A CONNECT of `conn` for `namespace` leaves without being accepted:
    /// a session taken from Redis for it goes back (with the full
    /// duration: the time it had left is not known here).
    pub(super) fn give_back_remote(&mut self, conn_remote: Option<PendingRemote>, namespace: &str) {
        if let Some(pending) = conn_remote {
            self.persist_remote(namespace, pending.remote.session);
        }
    }

    /// For [`Server::accept`]: the restored session of a CONNECT answered
    /// from Redis, with its missed packets encoded (those replayed from
    /// the stream, then those this node delivered while the restore was in
    /// flight); `None` when there is none, or when some of those delivered
    /// since [`Server::restore_answer`] were forgotten (a fresh session
    /// rather than a gap: only when the CONNECT waited for its answer
    /// while more than [`StreamsOptions::recent`](crate::cluster::StreamsOptions::recent)
    /// broadcasts went by).
    pub(super) fn take_remote(
        &mut self,
        namespace: &str,
        pending: PendingRemote,
    ) -> Option<(Session, Vec<crate::EncodedPacket>)> {
        let PendingRemote {
            mut remote,
            mut also,
            mark,
        } = pending;
        let node = self.spaces.get_mut(namespace)?.adapter.cluster()?;
        let recent = node.recent_since(&remote.session.rooms, remote.read_to, mark)?;
        also.extend(recent.iter().map(|m| m.id));
        node.replayed(&remote.session.sid, remote.read_to, also);
        remote.missed.extend(recent);
        let mut packets = Vec::new();
        for missed in &remote.missed {
            let Some(Value::String(name)) = missed.data.first() else {
                continue;
            };
            let args = missed.data.get(1..).unwrap_or_default();
            if let Ok(p) = Packet::event_with(Str::from(namespace.to_owned()), name, args, None) {
                packets.push(p.encode());
            }
        }
        Some((remote.session, packets))
    }
}

/// A session the cluster gave for a CONNECT awaiting an answer: with the
/// broadcasts this node delivered after its read, up to the answer, among
/// its missed ones.
#[derive(Debug)]
pub(super) struct PendingRemote {
    remote: RemoteSession,
    /// The ids of the broadcasts added from this node's recent ones.
    also: HashSet<StreamId>,
    /// Where the broadcasts delivered after the answer start
    /// ([`ClusterNode::recent_mark`](crate::cluster::ClusterNode::recent_mark)).
    mark: u64,
}

/// Whether `rooms` holds `sid`: a persisted session always does (Node's
/// `socket.rooms` has the socket's own id), but one written by another
/// implementation might not.
pub(super) fn with_own_room(sid: &str, mut rooms: Vec<String>) -> Vec<String> {
    if !rooms.iter().any(|r| r == sid) {
        rooms.insert(0, sid.to_owned());
    }
    rooms
}
