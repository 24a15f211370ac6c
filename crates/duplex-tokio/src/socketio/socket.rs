//! The handles handlers and applications hold: a [`Socket`] (one
//! client's membership of one namespace), the [`AckSender`] of an event
//! that asked for an ack, and an [`Operator`] selecting sockets to emit
//! to. Each is a server handle plus ids; every call takes the server's
//! lock for its own duration only, never across an `.await`.
//!
//! Emits come in two shapes: `emit(event, &data)` sends any
//! `Serialize` value (a [`Value`] too) as the one argument, its bytes
//! (`serde_bytes`, [`Value::Binary`]) as binary attachments;
//! `emit_args(event, args)` sends several arguments as they are.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use duplex_polling::{SessionId, TransportName};
use duplex_socketio::{Broadcast, Packet, Str};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

use super::handler::SocketExtensions;
use super::{AckError, Handshake, SendError, SocketId, SocketIo, Value};

/// One client's membership of one namespace, as handlers see it: a
/// cheap, cloneable, `Send` handle that reaches the whole server
/// ([`Socket::io`]).
#[derive(Clone)]
pub struct Socket {
    pub(super) io: SocketIo,
    pub(super) session: SessionId,
    pub(super) namespace: Str,
    pub(super) id: SocketId,
    pub(super) handshake: Arc<Handshake>,
    pub(super) extensions: SocketExtensions,
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

    /// The server: emit to any namespace or room from a handler.
    pub fn io(&self) -> &SocketIo {
        &self.io
    }

    /// The Engine.IO session id of the connection the socket connected
    /// on (after a restore by connection state recovery, the socket's
    /// calls follow it to its new session).
    pub fn session_id(&self) -> &str {
        self.session.as_str()
    }

    /// The session that carries this socket now, or the one it connected
    /// on when it is gone.
    fn session_in(&self, app: &super::SocketIoApp) -> SessionId {
        app.session_of(&self.namespace, &self.id)
            .unwrap_or_else(|| self.session.clone())
    }

    /// What the socket connected with (auth payload, headers, query).
    pub fn handshake(&self) -> &Handshake {
        &self.handshake
    }

    /// Per-socket state for the application, kept as long as the socket.
    pub fn extensions(&self) -> &SocketExtensions {
        &self.extensions
    }

    /// The transport the connection uses now.
    pub fn transport(&self) -> Option<TransportName> {
        self.io
            .service
            .with(|eio, app, _, _| eio.transport(&self.session_in(app)))
    }

    /// Whether the socket is still connected.
    pub fn connected(&self) -> bool {
        self.io
            .service
            .with(|_, app, _, _| app.is_connected(&self.session_in(app), &self.namespace, &self.id))
    }

    /// Emits `event` to this socket with `data` as its one argument
    /// (anything `Serialize`; its fields keep their order).
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), SendError> {
        self.emit_args(event, vec![to_value(data)?])
    }

    /// Emits `event` to this socket with `args` as they are (several
    /// arguments, binary attachments).
    pub fn emit_args(&self, event: &str, args: Vec<Value>) -> Result<(), SendError> {
        let packet = Packet::event_with(self.namespace.clone(), event, &args, None)
            .map_err(|_| SendError::Encode)?;
        self.io.service.with(|eio, app, now, _| {
            app.emit_to_socket(eio, &self.session_in(app), &self.id, &packet, now)
        })
    }

    /// Emits to this socket as Node's `socket.volatile.emit`: the event
    /// may be lost, and with connection state recovery on it is neither
    /// stored nor offset, so it is never replayed.
    pub fn volatile(&self) -> Operator {
        Operator {
            io: self.io.clone(),
            namespace: self.namespace.clone(),
            target: Broadcast::to(self.id.as_str()),
            local: true,
            volatile: true,
        }
    }

    /// Whether the socket came back with its session: connection state
    /// recovery restored its id, rooms and [`Socket::data`], and replayed
    /// what it missed (Node's `socket.recovered`). False for a new socket,
    /// and always with recovery off.
    pub fn recovered(&self) -> bool {
        self.io
            .service
            .with(|_, app, _, _| app.recovered(&self.namespace, &self.id))
    }

    /// The socket's data (Node's `socket.data`): `{}` for a new socket,
    /// what it had for a restored one. The only per-socket state that
    /// connection state recovery keeps ([`Socket::extensions`] is not).
    /// `None` once the socket is gone.
    pub fn data(&self) -> Option<Value> {
        self.io
            .service
            .with(|_, app, _, _| app.data(&self.namespace, &self.id))
    }

    /// Sets the socket's data, kept with its session when its connection
    /// is lost. False if the socket is gone.
    pub fn set_data(&self, data: Value) -> bool {
        self.io
            .service
            .with(|_, app, _, _| app.set_data(&self.namespace, &self.id, data))
    }

    /// Emits `event` with `data` as its one argument, asking for an ack:
    /// the future gives the client's answer as `R` (its one argument, or
    /// all of them as a sequence, as [`Data`](super::Data) reads them), or
    /// [`AckError::Timeout`] after `timeout`. The event is sent at once,
    /// whether or not the future is awaited.
    pub fn emit_with_ack<T: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        event: &str,
        data: &T,
        timeout: Duration,
    ) -> AckFuture<R> {
        match to_value(data) {
            Ok(value) => self
                .emit_args_with_ack(event, vec![value], Some(timeout))
                .convert(from_ack),
            Err(e) => AckFuture::failed(e),
        }
    }

    /// Emits `event` with `args` as they are, asking for an ack: the
    /// future gives the client's ack arguments as they came, or
    /// [`AckError::Timeout`] after `timeout` (`None`: wait until the
    /// socket disconnects).
    pub fn emit_args_with_ack(
        &self,
        event: &str,
        args: Vec<Value>,
        timeout: Option<Duration>,
    ) -> AckFuture<Vec<Value>> {
        let (tx, rx) = oneshot::channel();
        self.emit_with_ack_callback(event, args, timeout, move |result| {
            let _ = tx.send(result);
        });
        AckFuture {
            rx: Some(rx),
            failed: None,
            convert: Ok,
        }
    }

    /// Emits `event` with `args` asking for an ack: `callback` gets the
    /// client's ack arguments, or [`AckError::Timeout`] after `timeout`
    /// (`None`: wait until the socket disconnects). The callback runs
    /// outside the server's lock and must not block.
    pub fn emit_with_ack_callback(
        &self,
        event: &str,
        args: Vec<Value>,
        timeout: Option<Duration>,
        callback: impl FnOnce(Result<Vec<Value>, AckError>) + Send + 'static,
    ) {
        let failed = self.io.service.with(|eio, app, now, _| {
            let session = self.session_in(app);
            app.emit_with_ack(
                eio,
                &session,
                &self.namespace,
                event,
                &args,
                // A timeout too long to add to an instant is none.
                timeout.and_then(|t| now.checked_add(t)),
                Box::new(callback),
                now,
            )
            .err()
        });
        if let Some((error, callback)) = failed {
            callback(Err(error));
        }
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

    /// Emits to the members of `room`, this socket included if it is one.
    pub fn within(&self, room: &str) -> Operator {
        self.io.of(&self.namespace).to(room)
    }

    /// Emits to every socket of the namespace except this one.
    pub fn broadcast(&self) -> Operator {
        Operator {
            io: self.io.clone(),
            namespace: self.namespace.clone(),
            target: Broadcast::all().except_socket(self.id.clone()),
            local: false,
            volatile: false,
        }
    }

    /// Makes the socket leave the namespace (the client gets a DISCONNECT);
    /// the connection and its other namespaces stay.
    pub fn disconnect(&self) {
        self.io.service.with(|eio, app, now, deferred| {
            let session = self.session_in(app);
            app.disconnect_socket(eio, &session, &self.namespace, now, deferred);
        });
    }

    /// Closes the whole connection (every namespace of it).
    /// As after Node's `socket.disconnect(true)`, no session is kept for
    /// connection state recovery: the client, which sees its transport
    /// close and reconnects, gets a fresh one. The disconnect handlers get
    /// [`DisconnectReason::ServerNamespaceDisconnect`](super::DisconnectReason).
    pub fn close_connection(&self) {
        self.io.service.with(|eio, app, now, deferred| {
            let session = self.session_in(app);
            app.close_connection(eio, &session, now, deferred);
        });
    }
}

/// The answer to an event. Sending consumes it, so an event is answered
/// at most once; when the client asked for no ack, sending does nothing.
#[derive(Debug)]
pub struct AckSender {
    /// The socket and the ack id, if the client asked for an ack.
    pub(super) target: Option<(Socket, u64)>,
}

impl AckSender {
    /// Whether the client asked for an ack.
    pub fn requested(&self) -> bool {
        self.target.is_some()
    }

    /// Acknowledges with `data` as the one argument (anything `Serialize`).
    pub fn send<T: Serialize + ?Sized>(self, data: &T) -> Result<(), SendError> {
        if self.target.is_none() {
            return Ok(());
        }
        self.send_args(vec![to_value(data)?])
    }

    /// Acknowledges with `args` as they are (several arguments, binary
    /// attachments).
    pub fn send_args(self, args: Vec<Value>) -> Result<(), SendError> {
        let Some((socket, id)) = self.target else {
            return Ok(());
        };
        // Encoded here, outside the lock, header and arguments in one
        // buffer (not copied into a `Value::Array` first either).
        let ack = Packet::encode_ack(socket.namespace.clone(), id, &args)
            .map_err(|_| SendError::Encode)?;
        socket
            .io
            .service
            .with(|eio, app, now, _| app.send_ack(eio, &socket.session, ack, now))
    }
}

/// The client's answer to an event sent with
/// [`Socket::emit_with_ack`]: its arguments as `R`, or why none came.
#[must_use = "the ack is only seen by awaiting the future"]
#[derive(Debug)]
pub struct AckFuture<R> {
    rx: Option<oneshot::Receiver<Result<Vec<Value>, AckError>>>,
    failed: Option<AckError>,
    convert: fn(Vec<Value>) -> Result<R, AckError>,
}

impl<R> AckFuture<R> {
    fn failed(error: AckError) -> Self {
        Self {
            rx: None,
            failed: Some(error),
            convert: |_| Err(AckError::Closed),
        }
    }

    fn convert<S>(self, convert: fn(Vec<Value>) -> Result<S, AckError>) -> AckFuture<S> {
        AckFuture {
            rx: self.rx,
            failed: self.failed,
            convert,
        }
    }
}

impl<R> Future for AckFuture<R> {
    type Output = Result<R, AckError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Every field is Unpin: the future moves freely.
        let this = self.get_mut();
        if let Some(error) = this.failed.take() {
            return Poll::Ready(Err(error));
        }
        let Some(rx) = this.rx.as_mut() else {
            return Poll::Ready(Err(AckError::Closed));
        };
        let result = match Pin::new(rx).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Ok(result)) => result,
            // The server dropped the callback: it is gone.
            Poll::Ready(Err(_)) => Err(AckError::Disconnected),
        };
        this.rx = None;
        Poll::Ready(result.and_then(this.convert))
    }
}

/// Ack arguments as `R`, as [`Value::from_args`] reads them.
fn from_ack<R: DeserializeOwned>(args: Vec<Value>) -> Result<R, AckError> {
    Value::from_args(&args).map_err(AckError::InvalidPayload)
}

/// `data` as a payload value: its fields in the order it serializes
/// them, bytes as binary attachments ([`Value::from_serialize`]).
pub(super) fn to_value<T: Serialize + ?Sized>(data: &T) -> Result<Value, SendError> {
    Value::from_serialize(data).map_err(|e| {
        tracing::debug!("cannot serialize the payload: {e}");
        SendError::Encode
    })
}

/// A selection of sockets of one namespace to emit to.
#[derive(Clone, Debug)]
pub struct Operator {
    pub(super) io: SocketIo,
    pub(super) namespace: Str,
    pub(super) target: Broadcast<SocketId>,
    /// Node's `local` flag: this server's sockets only, nothing published.
    pub(super) local: bool,
    /// Node's `volatile` flag: may be lost, never stored for recovery.
    pub(super) volatile: bool,
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

    /// Marks the emits as volatile (Node's `volatile`): they may be lost,
    /// and connection state recovery neither stores nor replays them.
    pub fn volatile(mut self) -> Self {
        self.volatile = true;
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

    /// Emits `event` with `data` as its one argument (anything
    /// `Serialize`) to every selected socket; returns how many it was sent
    /// to.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<usize, SendError> {
        self.emit_args(event, vec![to_value(data)?])
    }

    /// Emits `event` with `args` as they are (several arguments, binary
    /// attachments) to every selected socket; returns how many it was sent
    /// to.
    pub fn emit_args(&self, event: &str, args: Vec<Value>) -> Result<usize, SendError> {
        let packet = Packet::event_with(self.namespace.clone(), event, &args, None)
            .map_err(|_| SendError::Encode)?;
        Ok(self.io.service.with(|eio, app, now, _| {
            let flags = super::app::EmitFlags {
                local: self.local,
                volatile: self.volatile,
            };
            app.broadcast(eio, &self.namespace, &self.target, flags, &packet, now)
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
