//! The handles handlers and applications hold: a [`Socket`] (one
//! client's membership of one namespace), the [`AckSender`] of an event
//! that asked for an ack, and an [`Operator`] selecting sockets to emit
//! to. Each is a server handle plus ids; every call takes the server's
//! lock for its own duration only.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use duplex_polling::{SessionId, TransportName};
use duplex_socketio::{Broadcast, Packet, Str};
use serde::Serialize;

use super::{AckError, Handshake, SendError, SocketId, SocketIo, Value};

/// One client's membership of one namespace, as handlers see it.
#[derive(Clone)]
pub struct Socket {
    pub(super) io: SocketIo,
    pub(super) session: SessionId,
    pub(super) namespace: Str,
    pub(super) id: SocketId,
    pub(super) handshake: Arc<Handshake>,
    pub(super) extensions: Arc<Mutex<http::Extensions>>,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("id", &self.id)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl Socket {
    /// The socket's id (its namespace CONNECT answer's `sid`).
    pub fn id(&self) -> &SocketId {
        &self.id
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The Engine.IO session id of the connection.
    pub fn session_id(&self) -> &str {
        self.session.as_str()
    }

    /// What the socket connected with (auth payload, headers, query).
    pub fn handshake(&self) -> &Handshake {
        &self.handshake
    }

    /// Per-socket state for the application, kept as long as the socket.
    pub fn extensions(&self) -> std::sync::MutexGuard<'_, http::Extensions> {
        self.extensions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The transport the connection uses now.
    pub fn transport(&self) -> Option<TransportName> {
        self.io
            .service
            .with(|eio, _, _, _| eio.transport(&self.session))
    }

    /// Whether the socket is still connected.
    pub fn connected(&self) -> bool {
        self.io
            .service
            .with(|_, app, _, _| app.is_connected(&self.session, &self.namespace, &self.id))
    }

    /// Emits `event` with `args` to this socket.
    pub fn emit(&self, event: &str, args: Vec<Value>) -> Result<(), SendError> {
        let packet = Packet::event_with(self.namespace.clone(), event, &args, None)
            .map_err(|_| SendError::Encode)?;
        self.io
            .service
            .with(|eio, app, now, _| app.send_packet(eio, &self.session, &packet, now))
    }

    /// Emits `event` with `data` serialized to JSON as its one argument.
    pub fn emit_json<T: Serialize>(&self, event: &str, data: &T) -> Result<(), SendError> {
        self.emit(event, vec![json_value(data)?])
    }

    /// Emits `event` asking for an ack: `callback` gets the client's ack
    /// arguments, or [`AckError::Timeout`] after `timeout` (`None`: wait
    /// until the socket disconnects).
    pub fn emit_with_ack(
        &self,
        event: &str,
        args: Vec<Value>,
        timeout: Option<Duration>,
        callback: impl FnOnce(Result<Vec<Value>, AckError>) + Send + 'static,
    ) {
        let failed = self.io.service.with(|eio, app, now, _| {
            app.emit_with_ack(
                eio,
                &self.session,
                &self.namespace,
                event,
                &args,
                timeout.map(|t| now + t),
                Box::new(callback),
                now,
            )
            .err()
        });
        if let Some((error, callback)) = failed {
            callback(Err(error));
        }
    }

    /// As [`Socket::emit_with_ack`], awaiting the ack.
    pub async fn emit_with_ack_async(
        &self,
        event: &str,
        args: Vec<Value>,
        timeout: Option<Duration>,
    ) -> Result<Vec<Value>, AckError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.emit_with_ack(event, args, timeout, move |result| {
            let _ = tx.send(result);
        });
        rx.await.unwrap_or(Err(AckError::Disconnected))
    }

    /// Puts the socket in `room`.
    pub fn join(&self, room: &str) {
        self.join_all(&[room]);
    }

    /// Puts the socket in each of `rooms`.
    pub fn join_all(&self, rooms: &[&str]) {
        let rooms: Vec<String> = rooms.iter().map(|r| (*r).to_owned()).collect();
        self.io
            .service
            .with(|_, app, _, _| app.join(&self.namespace, &self.id, &rooms));
    }

    /// Takes the socket out of `room`.
    pub fn leave(&self, room: &str) {
        self.io
            .service
            .with(|_, app, _, _| app.leave(&self.namespace, &self.id, room));
    }

    /// The rooms the socket is in (including the one named by its id).
    pub fn rooms(&self) -> Vec<String> {
        self.io
            .service
            .with(|_, app, _, _| app.rooms_of(&self.namespace, &self.id))
    }

    /// Emits to the members of `room`, except this socket.
    pub fn to(&self, room: &str) -> Operator {
        self.broadcast().to(room)
    }

    /// Emits to every socket of the namespace except this one.
    pub fn broadcast(&self) -> Operator {
        Operator {
            io: self.io.clone(),
            namespace: self.namespace.clone(),
            target: Broadcast::all().except_socket(self.id.clone()),
            local: false,
        }
    }

    /// Makes the socket leave the namespace (the client gets a DISCONNECT);
    /// the connection and its other namespaces stay.
    pub fn disconnect(&self) {
        self.io.service.with(|eio, app, now, deferred| {
            app.disconnect_socket(eio, &self.session, &self.namespace, now, deferred);
        });
    }

    /// Closes the whole connection (every namespace of it).
    pub fn close_connection(&self) {
        self.io
            .service
            .with(|eio, app, now, _| app.close_connection(eio, &self.session, now));
    }
}

/// The answer to an event that asked for an ack.
#[derive(Debug)]
pub struct AckSender {
    pub(super) socket: Socket,
    pub(super) id: u64,
}

impl AckSender {
    /// Acknowledges with `args` (binary attachments allowed).
    pub fn send(self, args: Vec<Value>) -> Result<(), SendError> {
        let packet = Packet::ack_with(self.socket.namespace.clone(), &args, self.id)
            .map_err(|_| SendError::Encode)?;
        let socket = &self.socket;
        socket
            .io
            .service
            .with(|eio, app, now, _| app.send_packet(eio, &socket.session, &packet, now))
    }

    /// Acknowledges with `data` serialized to JSON as the one argument.
    pub fn send_json<T: Serialize>(self, data: &T) -> Result<(), SendError> {
        self.send(vec![json_value(data)?])
    }
}

/// `data` as a payload value, its fields in the order it serializes them.
/// Through JSON text rather than `serde_json::to_value`: a
/// `serde_json::Map` sorts its keys unless the application turns on
/// serde_json's `preserve_order`, while [`Value`] keeps them as they come.
fn json_value<T: Serialize>(data: &T) -> Result<Value, SendError> {
    let json = serde_json::to_vec(data).map_err(|_| SendError::Encode)?;
    serde_json::from_slice(&json).map_err(|_| SendError::Encode)
}

/// A selection of sockets of one namespace to emit to.
#[derive(Clone, Debug)]
pub struct Operator {
    pub(super) io: SocketIo,
    pub(super) namespace: Str,
    pub(super) target: Broadcast<SocketId>,
    /// Node's `local` flag: this server's sockets only, nothing published.
    pub(super) local: bool,
}

impl Operator {
    /// Narrows to the members of `room` (several calls: any of the rooms).
    pub fn to(mut self, room: &str) -> Self {
        self.target = self.target.and_to(room);
        self
    }

    /// Leaves out the members of `room`.
    pub fn except(mut self, room: &str) -> Self {
        self.target = self.target.except_room(room);
        self
    }

    /// Narrows to this server's sockets: in a cluster, nothing is
    /// published to the other servers (Node's `io.local`).
    pub fn local(mut self) -> Self {
        self.local = true;
        self
    }

    /// Puts every selected socket in `rooms`, on every server of the
    /// cluster (Node's `socketsJoin`); this server's sockets move at once
    /// or when Redis echoes the request, as Node's do.
    pub fn sockets_join(&self, rooms: &[&str]) {
        self.sockets_rooms(rooms, false);
    }

    /// Takes every selected socket out of `rooms`, on every server
    /// (Node's `socketsLeave`).
    pub fn sockets_leave(&self, rooms: &[&str]) {
        self.sockets_rooms(rooms, true);
    }

    fn sockets_rooms(&self, rooms: &[&str], leave: bool) {
        let rooms: Vec<String> = rooms.iter().map(|r| (*r).to_owned()).collect();
        self.io.service.with(|eio, app, now, _| {
            app.sockets_rooms(
                eio,
                &self.namespace,
                &self.target,
                self.local,
                &rooms,
                leave,
                now,
            );
        });
    }

    /// Emits `event` with `args` to every selected socket; returns how many
    /// it was sent to.
    pub fn emit(&self, event: &str, args: Vec<Value>) -> Result<usize, SendError> {
        let packet = Packet::event_with(self.namespace.clone(), event, &args, None)
            .map_err(|_| SendError::Encode)?;
        Ok(self.io.service.with(|eio, app, now, _| {
            app.broadcast(eio, &self.namespace, &self.target, self.local, &packet, now)
        }))
    }

    /// The selected sockets.
    pub fn sockets(&self) -> Vec<Socket> {
        self.io.service.with(|_, app, _, _| {
            let ids = app.recipients(&self.namespace, &self.target);
            app.sockets(&self.namespace, &ids)
        })
    }

    /// Makes every selected socket leave the namespace, on every server of
    /// the cluster.
    pub fn disconnect_sockets(&self) {
        self.disconnect_sockets_with(false);
    }

    /// [`Operator::disconnect_sockets`], closing each selected socket's
    /// whole connection when `close` (Node's `disconnectSockets(true)`).
    pub fn disconnect_sockets_with(&self, close: bool) {
        self.io.service.with(|eio, app, now, deferred| {
            app.disconnect_sockets(
                eio,
                &self.namespace,
                &self.target,
                self.local,
                close,
                now,
                deferred,
            );
        });
    }
}
