//! The commands of [`SocketIoApp`] that the async handles ([`SocketIo`],
//! [`Socket`], [`AckSender`]) call under the service lock: sends, acks,
//! broadcasts, rooms, disconnects and the socket's data. Each one forwards
//! to the sans-IO [`Server`] and writes what it wants written.

#[allow(clippy::wildcard_imports)]
use super::*;

impl SocketIoApp {
    /// Sends `packet` (an event or ack) to one socket.
    pub(crate) fn send_packet(
        &mut self,
        eio: &mut EngineIoServer,
        session: &SessionId,
        packet: &Packet,
        now: Instant,
    ) -> Result<(), SendError> {
        self.server
            .send(session, packet)
            .map_err(|e| send_error(&e))?;
        self.flush_written(eio, now)
    }

    /// Writes what the machine queued; the endpoint's first refusal.
    fn flush_written(&mut self, eio: &mut EngineIoServer, now: Instant) -> Result<(), SendError> {
        match self.write_transmits(eio, now).error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Sends an ACK encoded outside the lock ([`AckSender`]'s).
    ///
    /// [`AckSender`]: super::AckSender
    pub(crate) fn send_ack(
        &mut self,
        eio: &mut EngineIoServer,
        session: &SessionId,
        ack: EncodedAck,
        now: Instant,
    ) -> Result<(), SendError> {
        self.server
            .send_ack(session, ack)
            .map_err(|e| send_error(&e))?;
        self.flush_written(eio, now)
    }

    /// Sends an event that wants an ack; `callback` gets the ack, or an error
    /// at `deadline` or on disconnection.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn emit_with_ack(
        &mut self,
        eio: &mut EngineIoServer,
        session: &SessionId,
        namespace: &str,
        event: &str,
        args: &[duplex_socketio::Value],
        deadline: Option<Instant>,
        callback: AckCallback,
        now: Instant,
    ) -> Result<(), (SendError, AckCallback)> {
        let id = self
            .server
            .emit_with_ack(session, namespace, event, args, deadline, callback)
            .map_err(|(e, callback)| (send_error(&e), callback))?;
        if let Some(error) = self.write_transmits(eio, now).error {
            let callback = self.server.cancel_ack(session, namespace, id);
            return Err((error, callback.unwrap_or_else(|| Box::new(|_| {}))));
        }
        Ok(())
    }

    /// Sends `packet` (an event) to every recipient of `target` in
    /// `namespace`; returns how many the endpoint took.
    pub(crate) fn broadcast(
        &mut self,
        eio: &mut EngineIoServer,
        namespace: &str,
        target: &Broadcast<SocketId>,
        flags: EmitFlags,
        packet: &Packet,
        now: Instant,
    ) -> usize {
        let mut opts = selection(target, flags.local);
        if flags.volatile {
            opts = opts.volatile();
        }
        self.server.broadcast_opts(namespace, &opts, packet);
        self.write_transmits(eio, now).sent
    }

    /// The local sockets an operation on the whole cluster acts on now:
    /// the cluster node decides (and publishes), else the local selection.
    fn cluster_selection(
        &mut self,
        namespace: &str,
        target: &Broadcast<SocketId>,
        local: bool,
        op: impl FnOnce(
            &mut duplex_socketio::cluster::ClusterNode,
            &duplex_socketio::cluster::Opts,
        ) -> Vec<String>,
    ) -> Vec<SocketId> {
        let opts = selection(target, local);
        match self.server.cluster_mut(namespace) {
            Some(node) => op(node, &opts).into_iter().map(SocketId::from).collect(),
            None => self.server.recipients(namespace, target),
        }
    }

    /// `socketsJoin` / `socketsLeave` of `rooms`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn sockets_rooms(
        &mut self,
        eio: &mut EngineIoServer,
        namespace: &str,
        target: &Broadcast<SocketId>,
        local: bool,
        rooms: &[String],
        leave: bool,
        now: Instant,
    ) {
        let sockets = self.cluster_selection(namespace, target, local, |n, o| {
            n.sockets_rooms(o, rooms, leave)
        });
        for socket in sockets {
            if leave {
                for room in rooms {
                    self.server.leave(namespace, &socket, room);
                }
            } else {
                self.server.join(namespace, &socket, rooms.iter().cloned());
            }
        }
        self.write_transmits(eio, now);
    }

    /// `disconnectSockets(close)`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn disconnect_sockets(
        &mut self,
        eio: &mut EngineIoServer,
        namespace: &str,
        target: &Broadcast<SocketId>,
        local: bool,
        close: bool,
        now: Instant,
        deferred: &mut Deferred,
    ) {
        let sockets = self.cluster_selection(namespace, target, local, |n, o| {
            n.disconnect_sockets(o, close)
        });
        for socket in sockets {
            let Some(session) = self.server.session_of(namespace, &socket).cloned() else {
                continue;
            };
            self.server.disconnect(&session, namespace);
            if close {
                self.server
                    .close(&session, DisconnectReason::ServerNamespaceDisconnect);
            }
        }
        self.run(eio, now, deferred);
    }

    /// The ids of the sockets `target` reaches in `namespace`.
    pub(crate) fn recipients(
        &self,
        namespace: &str,
        target: &Broadcast<SocketId>,
    ) -> Vec<SocketId> {
        self.server.recipients(namespace, target)
    }

    /// Handles of sockets by id in `namespace`.
    pub(crate) fn sockets(&self, namespace: &str, ids: &[SocketId]) -> Vec<Socket> {
        ids.iter()
            .filter_map(|id| {
                let session = self.server.session_of(namespace, id)?;
                self.socket_handle(session, namespace, id)
            })
            .collect()
    }

    pub(crate) fn join(&mut self, namespace: &str, socket: &SocketId, rooms: &[String]) {
        self.server.join(namespace, socket, rooms.iter().cloned());
    }

    pub(crate) fn leave(&mut self, namespace: &str, socket: &SocketId, room: &str) {
        self.server.leave(namespace, socket, room);
    }

    pub(crate) fn rooms_of(&self, namespace: &str, socket: &SocketId) -> Vec<String> {
        self.server.rooms_of(namespace, socket)
    }

    /// The session that carries socket `id` of `namespace` now: a socket
    /// restored by connection state recovery keeps its id on a new
    /// Engine.IO session.
    pub(crate) fn session_of(&self, namespace: &str, id: &SocketId) -> Option<SessionId> {
        self.server.session_of(namespace, id).cloned()
    }

    pub(crate) fn is_connected(&self, session: &SessionId, namespace: &str, id: &SocketId) -> bool {
        self.server.is_connected(session, namespace, id)
    }

    /// The server leaves a namespace of a connection: `DISCONNECT` to the
    /// client, then the disconnect handler.
    pub(crate) fn disconnect_socket(
        &mut self,
        eio: &mut EngineIoServer,
        session: &SessionId,
        namespace: &str,
        now: Instant,
        deferred: &mut Deferred,
    ) {
        self.server.disconnect(session, namespace);
        self.run(eio, now, deferred);
    }

    /// Closes the whole connection (every namespace) from the server. Its
    /// sockets leave with the reason of Node's `socket.disconnect(true)`,
    /// `server namespace disconnect`, so that connection state recovery
    /// keeps no session for them (it keeps one for `server shutting down`).
    /// No DISCONNECT is written first (Node writes one per namespace): the
    /// client sees its transport close and reconnects, as it always has
    /// here, to a fresh session.
    pub(crate) fn close_connection(
        &mut self,
        eio: &mut EngineIoServer,
        session: &SessionId,
        now: Instant,
        deferred: &mut Deferred,
    ) {
        self.server
            .close(session, DisconnectReason::ServerNamespaceDisconnect);
        self.run(eio, now, deferred);
    }

    /// The server shuts down (Node's `io.close()`): every socket leaves
    /// with `server shutting down` (its disconnect handler runs; with
    /// recovery on its session is kept), then every Engine.IO session is
    /// closed as the reference's `engine.close()`. Returns how many
    /// sessions were open, and what completes once each closed socket's
    /// disconnect handler (and every call queued before it) has run.
    pub(crate) fn shutdown(
        &mut self,
        eio: &mut EngineIoServer,
        now: Instant,
        deferred: &mut Deferred,
    ) -> (usize, Vec<tokio::sync::oneshot::Receiver<()>>) {
        let mailboxes: Vec<Arc<Mailbox>> =
            self.sockets.values().map(|m| m.mailbox.clone()).collect();
        self.server.shutdown();
        // Then the adapters close, as Node's `io.close()` does: the other
        // servers of the cluster stop counting this one at once.
        #[cfg(feature = "cluster")]
        self.close_cluster(now);
        let open = eio.close_all(now);
        // The machine's `Close`s find the sessions gone: nothing more.
        self.run(eio, now, deferred);
        let mut done = Vec::new();
        if let Some(runtime) = self.runtime() {
            for mailbox in mailboxes {
                let (tx, rx) = tokio::sync::oneshot::channel();
                // Behind the disconnect handler `run` queued.
                let job: BoxFuture<()> = Box::pin(async move {
                    let _ = tx.send(());
                });
                if mailbox.push(job, true, &runtime).is_ok() {
                    done.push(rx);
                }
            }
        }
        (open, done)
    }

    /// Volatile packets dropped so far because their transport was not
    /// writable.
    pub(crate) fn volatile_dropped(&self) -> u64 {
        self.volatile_dropped
    }

    /// Whether connection state recovery is on.
    pub(super) fn recovery_on(&self) -> bool {
        self.server.config().recovery.is_some()
    }

    /// Sends an event to one socket (`socket.emit`). With recovery on and
    /// an adapter that keeps packets (in memory, or the streams cluster
    /// mode, through its stream; not the pub/sub cluster modes, where it
    /// stays direct), an event without an ack id goes to the room named
    /// by the socket's id,
    /// as Node's `socket.emit` does then: it is stored and offset whether
    /// or not the socket is connected now, so a handle kept while its
    /// client is away (a stream) keeps working, and a restored socket,
    /// on whatever connection it came back, gets it live or replayed.
    pub(crate) fn emit_to_socket(
        &mut self,
        eio: &mut EngineIoServer,
        session: &SessionId,
        socket: &SocketId,
        packet: &Packet,
        now: Instant,
    ) -> Result<(), SendError> {
        // Only where the adapter keeps packets (recovery in memory, or the
        // streams cluster mode): Node's pub/sub Redis adapters keep none,
        // and there direct emits stay direct.
        let stored = self.server.recovery_store(&packet.namespace).is_some()
            || self.server.cluster_keeps_sessions(&packet.namespace);
        if stored && packet.packet_type.is_event() && packet.ack_id.is_none() {
            let opts = duplex_socketio::cluster::Opts::rooms([socket.as_str()]);
            self.server.broadcast_opts(&packet.namespace, &opts, packet);
            return match self.write_transmits(eio, now).error {
                Some(e) => Err(e),
                None => Ok(()),
            };
        }
        self.send_packet(eio, session, packet, now)
    }

    /// Whether `socket` was restored with its session (Node's
    /// `socket.recovered`).
    pub(crate) fn recovered(&self, namespace: &str, socket: &SocketId) -> bool {
        self.server.recovered(namespace, socket)
    }

    /// The socket's data (Node's `socket.data`), kept with its session.
    pub(crate) fn data(&self, namespace: &str, socket: &SocketId) -> Option<Value> {
        self.server.data(namespace, socket).cloned()
    }

    /// Sets the socket's data; false if it is not connected.
    pub(crate) fn set_data(&mut self, namespace: &str, socket: &SocketId, data: Value) -> bool {
        self.server.set_data(namespace, socket, data)
    }
}
