//! The cluster side of [`SocketIoApp`] (feature `cluster`): attaching
//! the namespaces to their nodes, the node's input and output (the
//! `Persist` lane, the queue to the transport and what is refused when it
//! is full), and what the other servers' requests mean here (the requests
//! this server makes are in `requests.rs`). Every protocol decision is
//! `duplex_socketio`'s cluster machine's; this routes its events.

#[allow(clippy::wildcard_imports)]
use super::*;

impl SocketIoApp {
    /// Puts `namespaces` in a cluster through `tx`; returns the
    /// subscriptions their nodes start with.
    pub(crate) fn attach_cluster(
        &mut self,
        config: &crate::socketio::cluster::ClusterConfig,
        tx: tokio::sync::mpsc::Sender<crate::socketio::cluster::ClusterOut>,
        persists: tokio::sync::mpsc::UnboundedSender<crate::socketio::cluster::ClusterOut>,
        on_dropped: Arc<dyn Fn() + Send + Sync>,
        io: WeakPollingService<EngineIoServer, SocketIoApp>,
        now: Instant,
    ) -> Vec<(String, duplex_socketio::cluster::Subscription)> {
        use duplex_socketio::cluster::ClusterNode;
        let recovery = self.server.config().recovery.is_some();
        for namespace in &config.namespaces {
            let node = match &config.streams {
                Some(options) => {
                    let mut options = options.clone();
                    options.offsets = recovery;
                    ClusterNode::streams(
                        options,
                        &config.uid,
                        namespace,
                        config.requests.clone(),
                        now,
                    )
                }
                None => ClusterNode::new(
                    config.protocol.clone(),
                    &config.uid,
                    namespace,
                    config.requests.clone(),
                ),
            };
            self.server.attach_cluster(namespace, node);
        }
        self.cluster = Some(ClusterLink {
            tx,
            persists,
            on_dropped,
            io,
            pending: HashMap::new(),
            ack_broadcasts: HashMap::new(),
        });
        std::iter::from_fn(|| self.server.poll_cluster_subscription()).collect()
    }

    /// Hands the server's Socket.IO machine an input from the cluster
    /// transport (`input` gets the machine and the time: a message, a
    /// stream entry, the outcome of an `XADD`, the answer to a restore),
    /// then runs what it caused.
    pub(crate) fn cluster_input(
        &mut self,
        eio: &mut EngineIoServer,
        now: Instant,
        deferred: &mut Deferred,
        input: impl FnOnce(&mut Server<SessionId, AckCallback>, Instant),
    ) {
        input(&mut self.server, now);
        self.run(eio, now, deferred);
    }

    /// The server leaves its cluster (Node's `adapter.close()`, which
    /// `io.close()` calls once the sockets are gone): every node announces
    /// it (streams 0.2.x: ADAPTER_CLOSE; 0.3.x: its channels are
    /// unsubscribed), the transport carrying it out at the next flush.
    pub(crate) fn close_cluster(&mut self, now: Instant) {
        for namespace in self.server.cluster_namespaces() {
            if let Some(node) = self.server.cluster_mut(&namespace) {
                node.close(now);
            }
        }
    }

    /// What completes once the transport has written every session handed
    /// to it so far (or gave them up); `None` without a cluster.
    pub(crate) fn cluster_written(&self) -> Option<tokio::sync::oneshot::Receiver<()>> {
        use crate::socketio::cluster::ClusterOut;
        let link = self.cluster.as_ref()?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        link.persists.send(ClusterOut::Written(tx)).ok()?;
        Some(rx)
    }

    /// Hands what the nodes publish to the transport, never waiting.
    pub(super) fn flush_cluster(&mut self) {
        use crate::socketio::cluster::{ClusterOut, ClusterPort};
        use duplex_socketio::server::RecoveryRequest;
        let Some(link) = &self.cluster else {
            return;
        };
        let mut out = Vec::new();
        while let Some((namespace, change)) = self.server.poll_cluster_subscription() {
            out.push(ClusterOut::Subscription(namespace, change));
        }
        while let Some((namespace, transmit)) = self.server.poll_cluster_transmit() {
            out.push(match transmit.stream {
                Some(_) => ClusterOut::Append(namespace, transmit),
                None => ClusterOut::Publish(transmit),
            });
        }
        while let Some(request) = self.server.poll_recovery_request() {
            out.push(match request {
                RecoveryRequest::Restore {
                    session,
                    namespace,
                    query,
                } => ClusterOut::Restore(
                    ClusterPort::ticket(link.io.clone(), session, namespace),
                    query,
                ),
                RecoveryRequest::Persist {
                    key, value, ttl, ..
                } => {
                    // A lane that never refuses: a session lost here is a
                    // client that starts afresh. An error means the
                    // transport is gone, and the session with it.
                    if link
                        .persists
                        .send(ClusterOut::Persist { key, value, ttl })
                        .is_err()
                    {
                        (link.on_dropped)();
                    }
                    continue;
                }
            });
        }
        let mut refused = Vec::new();
        for message in out {
            // Matched rather than `into_inner()`, which the lowest tokio
            // this crate allows does not have.
            match link.tx.try_send(message) {
                Ok(()) => {}
                Err(
                    tokio::sync::mpsc::error::TrySendError::Full(message)
                    | tokio::sync::mpsc::error::TrySendError::Closed(message),
                ) => {
                    (link.on_dropped)();
                    refused.push(message);
                }
            }
        }
        for message in refused {
            match message {
                ClusterOut::Append(namespace, t) => {
                    self.server.cluster_transmit_refused(&namespace, &t);
                }
                // The CONNECT goes on as a fresh one (the ticket cannot
                // be answered from inside the lock: answer directly).
                ClusterOut::Restore(mut ticket, _) => {
                    ticket.disarm();
                    let (session, namespace) = ticket.parts();
                    self.server.restore_answer(&session, &namespace, None);
                }
                _ => {}
            }
        }
    }

    /// What other servers' fetches see of local sockets: id, rooms, the
    /// handshake's `auth` and the socket's [`SocketData`](crate::socketio::SocketData).
    pub(super) fn fetched(
        &self,
        namespace: &str,
        ids: Vec<String>,
    ) -> Vec<duplex_socketio::cluster::FetchedSocket> {
        use duplex_socketio::Value;
        ids.into_iter()
            .map(|id| {
                let sid = SocketId::from(id.as_str());
                let meta = self.sockets.get(&sid);
                let auth = meta
                    .map(|m| m.handshake.auth.clone())
                    .unwrap_or(Value::Null);
                let data = meta
                    .and_then(|m| {
                        m.extensions
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .get::<crate::socketio::SocketData>()
                            .map(|d| d.0.clone())
                    })
                    .unwrap_or(Value::Null);
                let rooms = self.server.rooms_of(namespace, &sid);
                duplex_socketio::cluster::FetchedSocket::local(id, rooms, auth, data)
            })
            .collect()
    }

    /// What the nodes leave to the application: answers this server can
    /// give from its sockets' handshakes.
    pub(super) fn on_cluster_event(
        &mut self,
        event: duplex_socketio::server::ClusterEvent,
        now: Instant,
        deferred: &mut Deferred,
    ) {
        use duplex_socketio::cluster::{LocalAction, NodeEvent, RequestEvent};
        let namespace = event.namespace;
        match event.event {
            NodeEvent::Local(LocalAction::Fetch {
                sockets,
                requester,
                request_id,
            }) => {
                let fetched = self.fetched(&namespace, sockets);
                if let Some(node) = self.server.cluster_mut(&namespace) {
                    node.answer_fetch(&requester, &request_id, fetched);
                }
            }
            NodeEvent::Local(LocalAction::EmitWithAck {
                sockets,
                packet,
                flags,
                requester,
                request_id,
            }) => {
                // Another server's broadcast with acks: the count first (0
                // too, so that it completes), then each client's ack.
                if let Some(node) = self.server.cluster_mut(&namespace) {
                    node.answer_client_count(&requester, &request_id, sockets.len() as u64);
                }
                let name = packet.event_name().unwrap_or_default().to_owned();
                let args = packet.data.get(1..).unwrap_or_default().to_vec();
                let timeout = duplex_socketio::cluster::Opts {
                    flags,
                    ..Default::default()
                }
                .timeout_ms();
                let deadline = timeout.map(|ms| now + std::time::Duration::from_millis(ms));
                let sockets = sockets.into_iter().map(SocketId::from);
                let ns = namespace.clone();
                self.emit_with_first_acks(
                    &namespace,
                    sockets,
                    &name,
                    &args,
                    deadline,
                    move |app, eio, now, value| {
                        if let Some(node) = app.server.cluster_mut(&ns) {
                            node.answer_client_ack(&requester, &request_id, value);
                        }
                        app.write_transmits(eio, now);
                    },
                );
            }
            NodeEvent::Local(LocalAction::ServerSideEmit { mut data, reply }) => {
                let handler = data
                    .first()
                    .and_then(duplex_socketio::Value::as_str)
                    .and_then(|name| {
                        self.handlers
                            .get(&namespace)?
                            .server_side
                            .get(name)
                            .cloned()
                    });
                let Some(handler) = handler else {
                    return;
                };
                data.remove(0);
                let reply = match (reply, self.io()) {
                    (Some((requester, request_id)), Some(io)) => {
                        Some(crate::socketio::cluster::ServerSideReply {
                            io,
                            namespace,
                            requester,
                            request_id,
                        })
                    }
                    _ => None,
                };
                deferred.push(move || handler(data, reply));
            }
            NodeEvent::Request(RequestEvent::ClientCount {
                request_id,
                client_count,
            }) => self.ack_broadcast_answer(&request_id, Some(client_count), None),
            NodeEvent::Request(RequestEvent::ClientAck { request_id, value }) => {
                self.ack_broadcast_answer(&request_id, None, Some(value));
            }
            NodeEvent::Request(RequestEvent::Completed {
                request_id, result, ..
            }) => {
                if let Some(reply) = self
                    .cluster
                    .as_mut()
                    .and_then(|c| c.pending.remove(&request_id))
                {
                    let _ = reply.send(Ok(result));
                }
            }
            NodeEvent::Request(RequestEvent::TimedOut {
                request_id, error, ..
            }) => {
                if let Some(reply) = self
                    .cluster
                    .as_mut()
                    .and_then(|c| c.pending.remove(&request_id))
                {
                    let _ = reply.send(Err(duplex_socketio::cluster::Error::from(error).into()));
                }
            }
            other => {
                // Server-side emits and broadcast acks have no API yet.
                tracing::debug!(?other, "cluster: event not handled");
            }
        }
    }
}
