//! What [`SocketIoApp`] asks of the other servers of its cluster (feature
//! `cluster`): the server count, fetched sockets and rooms, server-side
//! emits and broadcasts with acks. Each request is started by
//! `duplex_socketio`'s cluster node and parked here until the answers
//! come back ([`ClusterLink`]'s pending requests).

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::socketio::cluster::PendingAnswers;

impl SocketIoApp {
    /// The number of servers, asked of the transport, when `namespace` is in a
    /// cluster and the operation is not `local`.
    pub(crate) fn server_count(
        &mut self,
        namespace: &str,
        local: bool,
    ) -> Option<tokio::sync::oneshot::Receiver<usize>> {
        use crate::socketio::cluster::ClusterOut;
        if local || self.cluster.is_none() {
            return None;
        }
        if let Some(count) = self
            .server
            .cluster_mut(namespace)
            .and_then(|n| n.server_count())
        {
            // The streams protocol counts by heartbeats itself.
            let (tx, rx) = tokio::sync::oneshot::channel();
            let _ = tx.send(count);
            return Some(rx);
        }
        // The node names the channel: the key prefix and the mode are its.
        let channel = self
            .server
            .cluster_mut(namespace)?
            .count_channel()
            .to_owned();
        let link = self.cluster.as_ref()?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        // Refused (queue full): the dropped sender fails the request.
        let _ = link.tx.try_send(ClusterOut::Count(channel, tx));
        Some(rx)
    }

    /// Starts a `fetchSockets` over `servers` servers; the answer comes on
    /// the receiver.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn fetch_sockets(
        &mut self,
        eio: &mut EngineIoServer,
        namespace: &str,
        target: &Broadcast<SocketId>,
        local: bool,
        servers: usize,
        now: Instant,
        deferred: &mut Deferred,
    ) -> PendingAnswers {
        let ids = self
            .server
            .recipients(namespace, target)
            .into_iter()
            .map(|s| s.as_str().to_owned())
            .collect();
        let mine = self.fetched(namespace, ids);
        if !self.in_cluster(namespace) {
            return answered(duplex_socketio::cluster::Answer::Sockets(mine));
        }
        let opts = selection(target, local);
        self.ask_cluster(eio, namespace, now, deferred, |node, request_id| {
            node.fetch_sockets(request_id, &opts, mine, servers, now)
        })
    }

    /// Starts an `allRooms` over `servers` servers; the answer comes on the
    /// receiver.
    pub(crate) fn all_rooms(
        &mut self,
        eio: &mut EngineIoServer,
        namespace: &str,
        servers: usize,
        now: Instant,
        deferred: &mut Deferred,
    ) -> PendingAnswers {
        if !self.in_cluster(namespace) {
            let rooms = self.server.all_rooms(namespace);
            return answered(duplex_socketio::cluster::Answer::Rooms(rooms));
        }
        self.ask_cluster(eio, namespace, now, deferred, |node, request_id| {
            node.all_rooms(request_id, servers, now)
        })
    }

    /// Whether `namespace` is in a cluster that is attached.
    fn in_cluster(&mut self, namespace: &str) -> bool {
        self.cluster.is_some() && self.server.cluster_mut(namespace).is_some()
    }

    /// Has `namespace`'s node `start` a request (under a fresh id) and
    /// parks the caller until the other servers answer it; then runs what
    /// the request transmitted. Outside a cluster (see `in_cluster`), the
    /// receiver fails at once.
    fn ask_cluster(
        &mut self,
        eio: &mut EngineIoServer,
        namespace: &str,
        now: Instant,
        deferred: &mut Deferred,
        start: impl FnOnce(
            &mut duplex_socketio::cluster::ClusterNode,
            &str,
        ) -> Result<(), duplex_socketio::cluster::Error>,
    ) -> PendingAnswers {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let request_id = random_id();
        if let (Some(node), Some(link)) =
            (self.server.cluster_mut(namespace), self.cluster.as_mut())
        {
            link.park(start(node, &request_id), request_id, tx);
            self.run(eio, now, deferred);
        }
        rx
    }

    /// `serverSideEmit` of `data` (`[event, ...args]`); with the server
    /// count, an ack is wanted and its outcome comes on the receiver.
    pub(crate) fn server_side_emit(
        &mut self,
        eio: &mut EngineIoServer,
        namespace: &str,
        data: Vec<duplex_socketio::Value>,
        servers: Option<usize>,
        now: Instant,
        deferred: &mut Deferred,
    ) -> Option<PendingAnswers> {
        let request_id = random_id();
        let (Some(node), Some(link)) = (self.server.cluster_mut(namespace), self.cluster.as_mut())
        else {
            return None;
        };
        let ack = servers.map(|n| (request_id.as_str(), n));
        let rx = match node.server_side_emit(data, ack, now) {
            Ok(()) if servers.is_some() => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                link.pending.insert(request_id.clone(), tx);
                Some(rx)
            }
            Ok(()) => None,
            Err(e) => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                let _ = tx.send(Err(e.into()));
                Some(rx)
            }
        };
        // A request with no other server completes at once: its event is
        // read by the next run, which needs the pending entry in place.
        self.run(eio, now, deferred);
        rx
    }

    /// Answers another server's `server_side_emit_with_ack`.
    pub(crate) fn answer_server_side(
        &mut self,
        eio: &mut EngineIoServer,
        namespace: &str,
        requester: &str,
        request_id: &str,
        value: duplex_socketio::Value,
        now: Instant,
    ) {
        if let Some(node) = self.server.cluster_mut(namespace) {
            node.answer_server_side_emit(requester, request_id, value);
        }
        self.write_transmits(eio, now);
    }

    /// Starts a broadcast with acks over `servers` servers: the local
    /// sockets get the event with an ack id at once, the other servers
    /// through the node. Returns the request id and where every ack goes
    /// once all arrived.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn broadcast_with_acks(
        &mut self,
        eio: &mut EngineIoServer,
        namespace: &str,
        target: &Broadcast<SocketId>,
        local: bool,
        event: &str,
        args: &[duplex_socketio::Value],
        timeout: std::time::Duration,
        servers: usize,
        now: Instant,
        deferred: &mut Deferred,
    ) -> (
        String,
        tokio::sync::oneshot::Receiver<Vec<duplex_socketio::Value>>,
    ) {
        let request_id = random_id();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let opts = selection(target, local);
        let wire = duplex_socketio::cluster::WirePacket::event(event, args.iter().cloned());
        let in_cluster = self.server.cluster_mut(namespace).is_some() && !local;
        let sockets: Vec<SocketId> = match self.server.cluster_mut(namespace) {
            Some(node) => match node.broadcast_with_ack(&request_id, wire, &opts, timeout, now) {
                Ok(s) => s.into_iter().map(SocketId::from).collect(),
                Err(_) => Vec::new(),
            },
            None => self.server.recipients(namespace, target),
        };
        let Some(link) = self.cluster.as_mut() else {
            return (request_id, rx);
        };
        // Broadcasts whose caller stopped waiting (a dropped future) are
        // never taken by their timeout: forget them here.
        link.ack_broadcasts.retain(|_, b| !b.reply.is_closed());
        link.ack_broadcasts.insert(
            request_id.clone(),
            AckBroadcast {
                acks: duplex_socketio::cluster::BroadcastAcks::new(
                    if in_cluster {
                        servers.saturating_sub(1)
                    } else {
                        0
                    },
                    sockets.len(),
                ),
                reply: tx,
            },
        );
        let id = request_id.clone();
        self.emit_with_first_acks(
            namespace,
            sockets,
            event,
            args,
            Some(now + timeout),
            move |app, _, _, value| app.ack_broadcast_answer(&id, None, Some(value)),
        );
        self.ack_broadcast_answer(&request_id, None, None);
        self.run(eio, now, deferred);
        (request_id, rx)
    }

    /// Emits `event` with `args` to each of `sockets` of `namespace` with
    /// an ack: the first argument of each client's ack goes to `answer`,
    /// under the server's lock. A socket gone meanwhile is skipped; an ack
    /// that fails or times out gives nothing.
    pub(super) fn emit_with_first_acks(
        &mut self,
        namespace: &str,
        sockets: impl IntoIterator<Item = SocketId>,
        event: &str,
        args: &[duplex_socketio::Value],
        deadline: Option<Instant>,
        answer: impl Fn(&mut SocketIoApp, &mut EngineIoServer, Instant, duplex_socketio::Value)
        + Clone
        + Send
        + 'static,
    ) {
        let Some(io) = self.io() else {
            return;
        };
        for sid in sockets {
            let Some(session) = self.server.session_of(namespace, &sid).cloned() else {
                continue;
            };
            let (io, answer) = (io.clone(), answer.clone());
            let callback: AckCallback = Box::new(move |result| {
                let Ok(args) = result else {
                    return;
                };
                let value = args
                    .into_iter()
                    .next()
                    .unwrap_or(duplex_socketio::Value::Null);
                io.service
                    .with(|eio, app, now, _| answer(app, eio, now, value));
            });
            let _ = self
                .server
                .emit_with_ack(&session, namespace, event, args, deadline, callback);
        }
    }

    /// A server's client count or a client's ack for broadcast
    /// `request_id`; completes it when everything arrived.
    pub(crate) fn ack_broadcast_answer(
        &mut self,
        request_id: &str,
        count: Option<u64>,
        value: Option<duplex_socketio::Value>,
    ) {
        let Some(link) = self.cluster.as_mut() else {
            return;
        };
        let Some(state) = link.ack_broadcasts.get_mut(request_id) else {
            return;
        };
        if let Some(count) = count {
            state.acks.handle_client_count(count);
        }
        if let Some(value) = value {
            state.acks.handle_ack(value);
        }
        if state.acks.is_complete() {
            if let Some(state) = link.ack_broadcasts.remove(request_id) {
                let _ = state.reply.send(state.acks.into_responses());
            }
        }
    }

    /// Gives up broadcast `request_id` (its timeout): the acks so far.
    pub(crate) fn ack_broadcast_take(&mut self, request_id: &str) -> Vec<duplex_socketio::Value> {
        self.cluster
            .as_mut()
            .and_then(|l| l.ack_broadcasts.remove(request_id))
            .map(|s| s.acks.into_responses())
            .unwrap_or_default()
    }
}

/// A receiver that already holds `answer`, this server's alone.
fn answered(answer: duplex_socketio::cluster::Answer) -> PendingAnswers {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let _ = tx.send(Ok(vec![answer]));
    rx
}

/// A request id of this server (random: Node's are too).
fn random_id() -> String {
    use rand::Rng;
    (0..16)
        .map(|_| char::from(rand::rng().sample(rand::distr::Alphanumeric)))
        .collect()
}

impl ClusterLink {
    /// Parks `tx` until the other servers answer `request_id`, if the node
    /// `started` the request; otherwise answers it with the refusal.
    fn park(
        &mut self,
        started: Result<(), duplex_socketio::cluster::Error>,
        request_id: String,
        tx: PendingReply,
    ) {
        match started {
            Ok(()) => {
                self.pending.insert(request_id, tx);
            }
            Err(e) => {
                let _ = tx.send(Err(e.into()));
            }
        }
    }
}
