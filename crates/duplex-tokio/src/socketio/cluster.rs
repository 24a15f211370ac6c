//! Socket.IO across servers (feature `cluster`): the server API that
//! spans the cluster (server-side emits, fetches, broadcasts with acks,
//! every room) and the backend-neutral interface of its transport.
//!
//! Every decision is the [`ClusterNode`](duplex_socketio::cluster::ClusterNode)'s,
//! inside the server machine: what a broadcast publishes, what another
//! node's message means for the local sockets. A transport (the
//! `duplex-redis` crate for Redis, wire-compatible with Node's
//! `@socket.io/redis-adapter`; any other pub/sub engine alike) gets a
//! [`ClusterPort`] from [`SocketIo::attach_cluster`]: it subscribes to the
//! channels the port names, hands what arrives to [`ClusterPort::deliver`],
//! publishes what [`ClusterPort::recv`] gives, and answers the server
//! counts. Nothing here ever blocks a socket's loop: the machine hands its
//! messages over through a bounded queue with `try_send`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use duplex_polling::EngineIoServer;
use duplex_polling::SessionId;
use duplex_socketio::cluster::streams::{RemoteSession, RestoreQuery};
use duplex_socketio::cluster::{Protocol, RequestsConfig, StreamsOptions, Subscription, Transmit};
use tokio::sync::mpsc;

use super::{SocketIo, SocketIoApp};
use crate::Error;
use crate::polling::WeakPollingService;

/// What the server hands its cluster transport.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClusterOut {
    /// Publish these bytes on this channel (with `sharded`, Redis's
    /// SPUBLISH rather than PUBLISH).
    Publish(Transmit),
    /// A subscription change of the node of a namespace (the first
    /// field): subscribe to a channel or pattern, or unsubscribe.
    Subscription(String, Subscription),
    /// How many servers subscribe to this channel (Redis's `PUBSUB
    /// NUMSUB`, or `SHARDNUMSUB` in sharded mode): the server count of a
    /// request. Dropping the sender fails the request (transport down).
    Count(String, tokio::sync::oneshot::Sender<usize>),
    /// Streams protocol: add the entry of `transmit.stream` to the stream
    /// `transmit.channel` (`XADD .. MAXLEN ~ ..`); when it has a token,
    /// report the id (or the failure) with [`ClusterPort::published`]
    /// for the namespace (the first field).
    Append(String, Transmit),
    /// Streams protocol with recovery: run this restore (its steps, see
    /// [`RestoreQuery::step`]) and answer with [`RestoreTicket::answer`].
    /// A ticket dropped unanswered answers "nothing found".
    Restore(RestoreTicket, RestoreQuery),
    /// Streams protocol with recovery: keep a session, `SET <key> <value>
    /// PX <ttl>`. Never refused for a full queue: a session dropped here
    /// would make its client start afresh (see [`ClusterPort::recv`]).
    Persist {
        /// The session key.
        key: String,
        /// The encoded session.
        value: String,
        /// How long Redis keeps it.
        ttl: Duration,
    },
    /// Answer (send `()`) once every [`ClusterOut::Persist`] handed out
    /// before this one is written, or given up (the transport is down):
    /// [`SocketIo::shutdown`] waits for it, bounded by
    /// [`CLUSTER_WRITE_WAIT`]. Dropping it unanswered tells the server not
    /// to wait, which is right for a transport that keeps no sessions.
    Written(tokio::sync::oneshot::Sender<()>),
}

/// The longest [`SocketIo::shutdown`] waits for the cluster transport to
/// write the sessions its sockets left behind ([`ClusterOut::Written`]):
/// 5 s, as long as `duplex-redis` waits for one command.
pub const CLUSTER_WRITE_WAIT: Duration = Duration::from_secs(5);

/// A CONNECT waiting for its session to be looked up in the cluster
/// ([`ClusterOut::Restore`]): answer it once. Dropped unanswered, it
/// answers `None`, so that the CONNECT never waits forever.
pub struct RestoreTicket {
    io: Weak,
    session: SessionId,
    namespace: String,
    answered: bool,
}

impl std::fmt::Debug for RestoreTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestoreTicket")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl RestoreTicket {
    /// The namespace of the CONNECT.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Answers the CONNECT: the session found and what it missed, or
    /// `None` (a fresh session).
    pub fn answer(mut self, found: Option<RemoteSession>) {
        self.answered = true;
        self.send(found);
    }

    pub(crate) fn disarm(&mut self) {
        self.answered = true;
    }

    pub(crate) fn parts(&self) -> (SessionId, String) {
        (self.session.clone(), self.namespace.clone())
    }

    fn send(&self, found: Option<RemoteSession>) {
        // The CONNECT goes on with the answer.
        cluster_input(&self.io, |server, _| {
            server.restore_answer(&self.session, &self.namespace, found);
        });
    }
}

impl Drop for RestoreTicket {
    fn drop(&mut self) {
        if !self.answered {
            self.send(None);
        }
    }
}

/// Settings of [`SocketIo::attach_cluster`].
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// The adapter protocol (classic or sharded), with its channel prefix.
    pub protocol: Protocol,
    /// The streams protocol instead (`@socket.io/redis-streams-adapter`):
    /// `protocol` is then unused, and [`StreamsOptions::offsets`] follows
    /// the server's connection state recovery. Default `None`.
    pub streams: Option<StreamsOptions>,
    /// This server's uid in the cluster (random; Node's are 6 characters
    /// in classic mode, 16 hex digits in sharded mode).
    pub uid: String,
    /// The namespaces that join the cluster. Default `/`.
    pub namespaces: Vec<String>,
    /// The timeouts and limits of the requests to other servers.
    pub requests: RequestsConfig,
    /// Most messages waiting for the transport; beyond it they are dropped
    /// (and counted) rather than holding up a socket. Default 4096.
    pub queue: usize,
}

impl ClusterConfig {
    /// The defaults, for `protocol` under `uid`.
    pub fn new(protocol: Protocol, uid: impl Into<String>) -> Self {
        Self {
            protocol,
            streams: None,
            uid: uid.into(),
            namespaces: vec!["/".to_owned()],
            requests: RequestsConfig::default(),
            queue: 4096,
        }
    }
}

type Weak = WeakPollingService<EngineIoServer, SocketIoApp>;

/// Hands the Socket.IO machine of the server behind `io` an input from
/// the cluster transport ([`SocketIoApp::cluster_input`]); false once the
/// server is gone.
fn cluster_input(
    io: &Weak,
    input: impl FnOnce(&mut duplex_socketio::server::Server<SessionId, super::AckCallback>, Instant),
) -> bool {
    let Some(service) = io.upgrade() else {
        return false;
    };
    service.with(|eio, app, now, deferred| app.cluster_input(eio, now, deferred, input));
    true
}

/// The server's end of a cluster transport: what to subscribe to and
/// publish, and where received messages go. The transport owns it (in its
/// task) for as long as the server is in the cluster.
pub struct ClusterPort {
    rx: mpsc::Receiver<ClusterOut>,
    /// The sessions to keep and the [`ClusterOut::Written`] markers: a
    /// lane of their own, unbounded because refusing a Persist loses a
    /// session, and bounded in fact by the sockets (one Persist per
    /// socket that leaves), whose sessions the server held anyway.
    persists: mpsc::UnboundedReceiver<ClusterOut>,
    io: Weak,
    initial: Vec<(String, Subscription)>,
    overflow: Arc<AtomicU64>,
}

impl std::fmt::Debug for ClusterPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterPort")
            .field("initial", &self.initial)
            .field("overflow", &self.overflow)
            .finish_non_exhaustive()
    }
}

impl ClusterPort {
    /// The subscriptions the nodes start with, each with its namespace
    /// (taken once: later changes come from [`ClusterPort::recv`]).
    pub fn take_initial_subscriptions(&mut self) -> Vec<(String, Subscription)> {
        std::mem::take(&mut self.initial)
    }

    /// The next thing to do; `None` once the server is gone. Sessions to
    /// keep ([`ClusterOut::Persist`]) come first: they travel apart from
    /// the bounded queue so that none is refused, however many sockets
    /// leave at once.
    pub async fn recv(&mut self) -> Option<ClusterOut> {
        tokio::select! {
            biased;
            Some(out) = self.persists.recv() => Some(out),
            out = self.rx.recv() => out,
        }
    }

    /// The next thing to do if there is one now, without waiting (`None`
    /// also once the server is gone): with [`ClusterPort::recv`], what a
    /// transport needs to take several at once and write them together.
    pub fn try_recv(&mut self) -> Option<ClusterOut> {
        self.persists
            .try_recv()
            .ok()
            .or_else(|| self.rx.try_recv().ok())
    }

    /// Hands `payload`, received on `channel`, to the node of
    /// `namespace`; false once the server is gone.
    pub fn deliver(&self, namespace: &str, channel: &str, payload: &[u8]) -> bool {
        cluster_input(&self.io, |server, _| {
            if let Err(e) = server.cluster_receive(namespace, channel, payload) {
                // Another node's malformed message: nothing changed here.
                tracing::debug!(error = %e, channel, "cluster: message ignored");
            }
        })
    }

    /// Hands a stream entry read from the stream (streams protocol) to
    /// the node of its namespace (its `nsp` field); false once the server
    /// is gone.
    pub fn deliver_entry(&self, id: &str, fields: &[(String, String)]) -> bool {
        let Some(namespace) = duplex_socketio::cluster::streams::entry_namespace(fields) else {
            return self.io.upgrade().is_some();
        };
        cluster_input(&self.io, |server, now| {
            if let Err(e) = server.cluster_receive_entry(namespace, id, fields, now) {
                tracing::debug!(error = %e, id, "cluster: stream entry ignored");
            }
        })
    }

    /// The `XADD` of the broadcast `token` of `namespace` returned `id`
    /// (`None`: it failed): the local sockets get it now.
    pub fn published(&self, namespace: &str, token: u64, id: Option<&str>) -> bool {
        cluster_input(&self.io, |server, _| {
            server.cluster_published(namespace, token, id);
        })
    }

    pub(crate) fn ticket(io: Weak, session: SessionId, namespace: String) -> RestoreTicket {
        RestoreTicket {
            io,
            session,
            namespace,
            answered: false,
        }
    }

    /// Messages the server could not queue for the transport (the queue
    /// was full): the remote part of those operations did not happen.
    /// Shared, so that a transport's handle can report it.
    pub fn overflow(&self) -> Arc<AtomicU64> {
        self.overflow.clone()
    }
}

impl SocketIo {
    /// Puts this server's `config.namespaces` in a cluster: from now on
    /// their broadcasts, room operations and requests also go to the
    /// returned port's transport, and what it delivers reaches the local
    /// sockets. Local delivery never waits for the transport.
    pub fn attach_cluster(&self, config: ClusterConfig) -> ClusterPort {
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        let (persists_tx, persists) = mpsc::unbounded_channel();
        let overflow = Arc::new(AtomicU64::new(0));
        let counter = overflow.clone();
        let on_dropped: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        let weak = self.service.downgrade();
        let initial = self.service.with(|_, app, now, _| {
            app.attach_cluster(&config, tx, persists_tx, on_dropped, weak, now)
        });
        ClusterPort {
            rx,
            persists,
            io: self.service.downgrade(),
            initial,
            overflow,
        }
    }
}

/// A socket's `data` (Node's `socket.data`), kept in its
/// [`Socket::extensions`](super::Socket::extensions): what other servers'
/// `fetch_sockets` see of it.
#[derive(Clone, Debug, PartialEq)]
pub struct SocketData(pub duplex_socketio::Value);

/// A socket of any server of the cluster, as `fetch_sockets` gives it.
pub use duplex_socketio::cluster::FetchedSocket as RemoteSocket;

/// Where the caller of a cluster request waits for every server's
/// answer, or for why they did not all come.
pub(crate) type PendingAnswers = tokio::sync::oneshot::Receiver<
    Result<Vec<duplex_socketio::cluster::Answer>, crate::ClusterFailure>,
>;

/// A listener of other servers' `server_side_emit`.
pub(crate) type ServerSideHandler =
    Arc<dyn Fn(Vec<duplex_socketio::Value>, Option<ServerSideReply>) + Send + Sync>;

/// The callback of a `server_side_emit_with_ack` from another server:
/// [`ServerSideReply::send`] answers it once.
#[derive(Debug)]
pub struct ServerSideReply {
    pub(crate) io: SocketIo,
    pub(crate) namespace: String,
    pub(crate) requester: String,
    pub(crate) request_id: String,
}

impl ServerSideReply {
    /// Answers the requesting server with `value`.
    pub fn send(self, value: duplex_socketio::Value) {
        self.io.service.with(|eio, app, now, _| {
            app.answer_server_side(
                eio,
                &self.namespace,
                &self.requester,
                &self.request_id,
                value,
                now,
            );
        });
    }
}

impl super::NamespaceHandlers {
    /// Listens to `event` sent by other servers of the cluster with
    /// [`SocketIo::server_side_emit`] (a server does not hear its own);
    /// the reply is there when the sender wants an ack.
    pub fn on_server_side(
        mut self,
        event: &str,
        handler: impl Fn(Vec<duplex_socketio::Value>, Option<ServerSideReply>) + Send + Sync + 'static,
    ) -> Self {
        self.server_side.insert(event.to_owned(), Arc::new(handler));
        self
    }
}

impl SocketIo {
    /// How many servers a request about `namespace` goes to: asked of the
    /// transport in a cluster, 1 without one or for a `local` operation.
    ///
    /// [`Error::Cluster`] when the transport cannot tell.
    async fn servers(&self, namespace: &str, local: bool) -> Result<usize, Error> {
        let count = self
            .service
            .with(|_, app, _, _| app.server_count(namespace, local));
        match count {
            Some(rx) => rx
                .await
                .map_err(|_| Error::Cluster(crate::ClusterFailure::Unavailable)),
            None => Ok(1),
        }
    }

    /// Sends `event` with `args` to the server-side listeners
    /// ([`NamespaceHandlers::on_server_side`](super::NamespaceHandlers::on_server_side))
    /// of every other server of the cluster (Node's `serverSideEmit`).
    pub fn server_side_emit(
        &self,
        namespace: &str,
        event: &str,
        args: Vec<duplex_socketio::Value>,
    ) {
        let mut data = vec![duplex_socketio::Value::from(event)];
        data.extend(args);
        self.service.with(|eio, app, now, deferred| {
            app.server_side_emit(eio, namespace, data, None, now, deferred);
        });
    }

    /// [`SocketIo::server_side_emit`] waiting for every other server's
    /// answer (Node's `serverSideEmitWithAck`): one value per server.
    ///
    /// [`Error::Cluster`] when the transport is down or a server did not answer
    /// in time.
    pub async fn server_side_emit_with_ack(
        &self,
        namespace: &str,
        event: &str,
        args: Vec<duplex_socketio::Value>,
    ) -> Result<Vec<duplex_socketio::Value>, Error> {
        let servers = self.servers(namespace, false).await?;
        let mut data = vec![duplex_socketio::Value::from(event)];
        data.extend(args);
        let rx = self.service.with(|eio, app, now, deferred| {
            app.server_side_emit(eio, namespace, data, Some(servers), now, deferred)
        });
        let answers = match rx {
            Some(rx) => answers(rx).await?,
            None => Vec::new(),
        };
        Ok(answers
            .into_iter()
            .filter_map(|a| match a {
                duplex_socketio::cluster::Answer::Emit(v) => Some(v),
                _ => None,
            })
            .collect())
    }

    /// Every room of `namespace` on every server of the cluster, socket-id
    /// rooms included, each once (Node's `adapter.allRooms()`, classic
    /// mode). Without a cluster, this server's.
    ///
    /// [`Error::Cluster`] when the transport is down or a server did not answer
    /// in time.
    pub async fn all_rooms(&self, namespace: &str) -> Result<Vec<String>, Error> {
        let servers = self.servers(namespace, false).await?;
        let rx = self
            .service
            .with(|eio, app, now, deferred| app.all_rooms(eio, namespace, servers, now, deferred));
        let mut rooms: Vec<String> = answers(rx)
            .await?
            .into_iter()
            .flat_map(|a| match a {
                duplex_socketio::cluster::Answer::Rooms(r) => r,
                _ => Vec::new(),
            })
            .collect();
        rooms.sort();
        rooms.dedup();
        Ok(rooms)
    }
}

impl super::Operator {
    /// Emits `event` to every selected socket of every server, each with
    /// an ack (Node's `io.timeout(t).emit(event, ...args, callback)`):
    /// the first argument of every client's ack, in arrival order, once
    /// all came. A server with none of the sockets answers 0, so an empty
    /// selection completes at once.
    ///
    /// At `timeout`, [`Error::Timeout`] with the acks that came.
    pub async fn emit_with_acks(
        &self,
        event: &str,
        args: Vec<duplex_socketio::Value>,
        timeout: Duration,
    ) -> Result<Vec<duplex_socketio::Value>, (Error, Vec<duplex_socketio::Value>)> {
        let servers = self
            .io
            .servers(&self.namespace, self.local)
            .await
            .map_err(|e| (e, Vec::new()))?;
        let (request_id, rx) = self.io.service.with(|eio, app, now, deferred| {
            app.broadcast_with_acks(
                eio,
                &self.namespace,
                &self.target,
                self.local,
                event,
                &args,
                timeout,
                servers,
                now,
                deferred,
            )
        });
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(responses)) => Ok(responses),
            Ok(Err(_)) => Err((Error::Closed, Vec::new())),
            Err(_) => {
                let partial = self
                    .io
                    .service
                    .with(|_, app, _, _| app.ack_broadcast_take(&request_id));
                Err((Error::Timeout, partial))
            }
        }
    }

    /// The selected sockets of every server of the cluster (Node's
    /// `fetchSockets`): this server's at once, the others' as they
    /// answer, within 5 s. Without a cluster, this server's.
    ///
    /// [`Error::Cluster`] when the transport is down or a server did not answer
    /// in time.
    pub async fn fetch_sockets(&self) -> Result<Vec<RemoteSocket>, Error> {
        let servers = self.io.servers(&self.namespace, self.local).await?;
        let rx = self.io.service.with(|eio, app, now, deferred| {
            app.fetch_sockets(
                eio,
                &self.namespace,
                &self.target,
                self.local,
                servers,
                now,
                deferred,
            )
        });
        Ok(answers(rx)
            .await?
            .into_iter()
            .flat_map(|a| match a {
                duplex_socketio::cluster::Answer::Sockets(s) => s,
                _ => Vec::new(),
            })
            .collect())
    }
}

/// The answers of every server to a request, once all came.
///
/// [`Error::Cluster`] when a server did not answer in time or the request
/// was dropped.
async fn answers(rx: PendingAnswers) -> Result<Vec<duplex_socketio::cluster::Answer>, Error> {
    rx.await
        .map_err(|_| Error::Cluster(crate::ClusterFailure::ServerGone))?
        .map_err(Error::Cluster)
}
