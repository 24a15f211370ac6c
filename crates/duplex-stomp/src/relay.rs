//! The relay: one client's STOMP connection carried to an upstream broker
//! (RabbitMQ's STOMP plugin, ActiveMQ, Artemis, another duplex server)
//! through a session of its own. Every state and transition of the pair
//! lives in this module; the adapter only opens sockets and moves bytes.
//!
//! ```text
//!   new() ─▶ AwaitingConnect ──client CONNECT accepted──▶ OpeningUpstream ──handle_upstream_connected──▶ Handshaking
//!                  │             (CONNECTED held back,          │                                          │
//!                  │              RelayEvent::OpenUpstream)     │ handle_upstream_failed,                  │ broker's CONNECTED:
//!                  │                                            │ connect timeout                          │ CONNECTED released,
//!                  │                                            ▼                                          ▼ pending frames sent
//!                  └── client fault, client gone ──────────▶ Closed ◀── either side ends, refusals ──── Relaying
//! ```
//!
//! Two session machines sit side by side: a [`ServerSession`] facing the
//! client (version, login check, heart-beats, validation) and a
//! [`ClientSession`] facing the broker. Client frames are forwarded as they
//! are (subscription, ack and receipt ids are the client's own), and the
//! broker's `MESSAGE`, `RECEIPT` and `ERROR` frames come back the same way.
//! Both hops use the version the client negotiated, so `ACK` headers mean
//! the same on both; heart-beats are kept on each hop by its own session.
//!
//! The client's `CONNECTED` waits until the broker has answered, so that a
//! broker refusing the relay turns into an `ERROR` rather than a
//! `CONNECTED` followed by an `ERROR`. Frames the client sends meanwhile
//! wait too, up to [`RelayConfig::max_pending_frames`]. Every refusal is
//! an [`Error`] whose `ERROR` frame [`ServerSession::abort`] writes; none
//! names the broker's address, which this machine never knows.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::client::{ClientConfig, ClientEvent, ClientSession, ClientState};
use crate::error::Error;
use crate::frame::{Command, Frame};
use crate::heartbeat::HeartBeat;
use crate::server::{ServerEvent, ServerSession};
use crate::version::Version;

/// How a [`Relay`] talks to the upstream broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayConfig {
    /// The `host` header (RabbitMQ's virtual host). Default `/`.
    pub host: String,
    /// The login the relay presents for every client. Default `guest`.
    pub login: Option<String>,
    /// The passcode. Default `guest`.
    pub passcode: Option<String>,
    /// The heart-beats the relay asks of the broker. Default 10 s both ways.
    pub heart_beat: HeartBeat,
    /// How long opening the upstream connection and the broker's
    /// `CONNECTED` may take together, from the client's `CONNECT`.
    /// Default 10 s.
    pub connect_timeout: Duration,
    /// Frames a client may send before the broker has answered `CONNECT`;
    /// one more ends the connection with `ERROR` `too many frames`.
    /// Default 1024 (each at most the server session's frame limit).
    pub max_pending_frames: usize,
}

impl Default for RelayConfig {
    fn default() -> RelayConfig {
        RelayConfig {
            host: "/".to_owned(),
            login: Some("guest".to_owned()),
            passcode: Some("guest".to_owned()),
            heart_beat: HeartBeat::every(Duration::from_secs(10)),
            connect_timeout: Duration::from_secs(10),
            max_pending_frames: 1024,
        }
    }
}

impl RelayConfig {
    fn client_config(&self, version: Version) -> ClientConfig {
        let mut config = ClientConfig::new(self.host.clone());
        config.login.clone_from(&self.login);
        config.passcode.clone_from(&self.passcode);
        config.versions = vec![version];
        config.heart_beat = self.heart_beat;
        // The relay keeps this deadline itself: it covers opening the
        // connection too, and starts when the relay is told the time.
        config.connect_timeout = None;
        config
    }
}

/// One of the relay's two connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The client's connection (TCP, WebSocket, SockJS).
    Client,
    /// The connection to the upstream broker.
    Upstream,
}

/// What the adapter must do for a [`Relay`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayEvent {
    /// Open the connection to the upstream broker, without blocking the
    /// client's connection, and report with
    /// [`Relay::handle_upstream_connected`] or
    /// [`Relay::handle_upstream_failed`].
    OpenUpstream,
    /// The upstream connection (or the attempt to open it) is no longer
    /// needed: write out what [`Relay::poll_transmit`] hands for
    /// [`Side::Upstream`], then close it.
    CloseUpstream,
    /// The relay ended in error (the client's fault or the broker's); the
    /// `ERROR` frame for the client, if one was due, is queued. For logs
    /// and for transports whose close carries a status.
    Failed(Error),
}

/// Where a [`Relay`] is. See the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayState {
    /// Waiting for the client's `CONNECT`.
    AwaitingConnect,
    /// The client is accepted; the adapter is opening the upstream
    /// connection.
    OpeningUpstream,
    /// `CONNECT` is on its way upstream; the client's `CONNECTED` waits.
    Handshaking,
    /// Both sessions are connected; frames flow both ways.
    Relaying,
    /// Over: write out what is queued on both sides and close them.
    Closed,
}

/// A sans-IO relay between one STOMP client and an upstream broker.
pub struct Relay {
    config: RelayConfig,
    state: RelayState,
    client: ServerSession,
    upstream: Option<ClientSession>,
    /// Whether the adapter holds an upstream connection or attempt that a
    /// [`RelayEvent::CloseUpstream`] must end.
    upstream_open: bool,
    /// Client frames waiting for the broker's `CONNECTED`.
    pending: VecDeque<Frame>,
    /// The client's `CONNECTED` (and heart-beats after it), held back
    /// until the broker answers.
    held: Option<Vec<Bytes>>,
    to_client: VecDeque<Bytes>,
    to_upstream: BytesMut,
    events: VecDeque<RelayEvent>,
    /// The receipt of the client's `DISCONNECT`, answered when the broker
    /// confirms its own.
    disconnect_receipt: Option<String>,
    /// When the broker must have answered `CONNECT`, from the client's
    /// `CONNECT` on.
    connect_deadline: Option<Instant>,
    /// Received bytes come without a time, so after the client's `CONNECT`
    /// the relay asks for the time (a `poll_timeout` already passed) to
    /// start [`Relay::connect_deadline`] from the right moment.
    wants_clock: bool,
    /// The last time the relay was told.
    now: Instant,
}

impl fmt::Debug for Relay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Relay")
            .field("state", &self.state)
            .field("client", &self.client)
            .field(
                "upstream",
                &self.upstream.as_ref().map(ClientSession::state),
            )
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl Relay {
    /// A relay for a client connection accepted at `now`, whose side is
    /// served by `client` (made with the server's [`crate::ServerConfig`]).
    pub fn new(client: ServerSession, config: RelayConfig, now: Instant) -> Relay {
        Relay {
            config,
            state: RelayState::AwaitingConnect,
            client,
            upstream: None,
            upstream_open: false,
            pending: VecDeque::new(),
            held: None,
            to_client: VecDeque::new(),
            to_upstream: BytesMut::new(),
            events: VecDeque::new(),
            disconnect_receipt: None,
            connect_deadline: None,
            wants_clock: false,
            now,
        }
    }

    /// Where the relay is.
    pub fn state(&self) -> RelayState {
        self.state
    }

    /// Whether the relay is over: once [`Relay::poll_transmit`] is drained
    /// for both sides, close the client's connection.
    pub fn is_closed(&self) -> bool {
        self.state == RelayState::Closed
    }

    /// Client frames waiting for the broker's `CONNECTED`.
    pub fn pending_frames(&self) -> usize {
        self.pending.len()
    }

    // ---- inputs ----

    /// Bytes received from one side.
    pub fn receive(&mut self, side: Side, data: &[u8]) {
        match side {
            Side::Client => self.client.receive(data),
            Side::Upstream => match (&mut self.upstream, self.state) {
                (Some(up), RelayState::Handshaking | RelayState::Relaying) => up.receive(data),
                // Nothing can come from a connection not yet open, and
                // nothing is read once the relay is over.
                _ => return,
            },
        }
        self.pump();
    }

    /// The upstream connection asked for by [`RelayEvent::OpenUpstream`]
    /// is open: the relay's `CONNECT` goes out.
    pub fn handle_upstream_connected(&mut self) {
        if self.state == RelayState::OpeningUpstream {
            self.state = RelayState::Handshaking;
            self.pump();
        }
    }

    /// The upstream connection could not be opened: the client is refused
    /// with [`Error::UpstreamUnavailable`].
    pub fn handle_upstream_failed(&mut self) {
        if self.state == RelayState::OpeningUpstream {
            // Nothing to close: the attempt is over.
            self.upstream_open = false;
            self.refuse(Error::UpstreamUnavailable, None);
        }
    }

    /// The upstream connection ended (end of stream, a read or write
    /// error): the client is refused with [`Error::UpstreamClosed`].
    pub fn handle_upstream_closed(&mut self) {
        if matches!(self.state, RelayState::Handshaking | RelayState::Relaying) {
            self.refuse(Error::UpstreamClosed, None);
        }
    }

    /// The client's connection ended: the upstream session is ended
    /// politely (a `DISCONNECT` whose receipt is not waited for).
    pub fn handle_client_closed(&mut self) {
        self.finish();
    }

    /// The server is shutting down: the client gets `ERROR` `server
    /// shutting down` and the relay ends.
    pub fn shutdown(&mut self) {
        if self.state != RelayState::Closed {
            self.held = None;
            let _ = self.client.abort(&Error::ShuttingDown, None);
            self.drain_client();
            self.finish();
        }
    }

    /// Tells the relay the time: both sessions send due heart-beats and
    /// notice silent peers and missed connect deadlines.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if self.state == RelayState::Closed {
            // Both sessions are done with: no heart-beats pile up unsent.
            return;
        }
        if std::mem::take(&mut self.wants_clock) {
            self.connect_deadline = now.checked_add(self.config.connect_timeout);
        }
        if self.connect_deadline.is_some_and(|at| now >= at) {
            self.connect_deadline = None;
            match self.state {
                RelayState::OpeningUpstream => self.refuse(Error::UpstreamUnavailable, None),
                RelayState::Handshaking => self.refuse(
                    Error::UpstreamFailed {
                        cause: Box::new(Error::ConnectTimeout),
                    },
                    None,
                ),
                _ => {}
            }
            if self.state == RelayState::Closed {
                return;
            }
        }
        self.client.handle_timeout(now);
        if let Some(up) = self.upstream.as_mut() {
            up.handle_timeout(now);
        }
        self.pump();
    }

    // ---- outputs ----

    /// The next thing for the adapter to do.
    pub fn poll_event(&mut self) -> Option<RelayEvent> {
        self.events.pop_front()
    }

    /// The next bytes to write to `side`. Toward the client each chunk is
    /// one frame or heart-beat, for transports that carry one frame per
    /// message (WebSocket, SockJS).
    pub fn poll_transmit(&mut self, side: Side) -> Option<Bytes> {
        match side {
            Side::Client => self.to_client.pop_front(),
            Side::Upstream if self.to_upstream.is_empty() => None,
            Side::Upstream => Some(self.to_upstream.split().freeze()),
        }
    }

    /// When [`Relay::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == RelayState::Closed {
            return None;
        }
        if self.wants_clock {
            return Some(self.now);
        }
        [
            self.client.poll_timeout(),
            self.upstream.as_ref().and_then(ClientSession::poll_timeout),
            self.connect_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ---- transitions ----

    /// Runs both sessions' events until neither has more, then ends the
    /// relay if either session has.
    fn pump(&mut self) {
        if self.state == RelayState::Closed {
            return;
        }
        while let Some(event) = self.client.poll_event() {
            // Not drained before: a CONNECTED just queued must be held.
            self.on_client_event(event);
            self.drain_client();
        }
        self.drain_client();
        while let Some(event) = self.upstream.as_mut().and_then(ClientSession::poll_event) {
            self.on_upstream_event(event);
            self.drain_client();
        }
        self.drain_upstream();
        if self.state == RelayState::Closed {
            return;
        }
        if self.client.is_closed() {
            self.finish();
        } else if self.upstream.as_ref().is_some_and(ClientSession::is_closed) {
            // The broker ended its session without an event that ends the
            // client's (which cannot happen today): do not leave the
            // client talking to nobody.
            self.refuse(Error::UpstreamClosed, None);
        }
    }

    fn on_client_event(&mut self, event: ServerEvent) {
        match (self.state, event) {
            (RelayState::AwaitingConnect, ServerEvent::Connected(accepted)) => {
                // The CONNECTED just queued waits for the broker's.
                let mut held = Vec::new();
                let mut out = BytesMut::new();
                if self.client.poll_transmit(&mut out) > 0 {
                    held.push(out.freeze());
                }
                self.held = Some(held);
                match ClientSession::new(self.config.client_config(accepted.version), self.now) {
                    Ok(up) => {
                        self.upstream = Some(up);
                        self.upstream_open = true;
                        self.wants_clock = true;
                        self.state = RelayState::OpeningUpstream;
                        self.events.push_back(RelayEvent::OpenUpstream);
                    }
                    // Only a login or host that cannot be encoded gets
                    // here: the relay's configuration, not the client.
                    Err(e) => self.refuse(e, None),
                }
            }
            (RelayState::Relaying, ServerEvent::Frame(frame)) => self.forward(&frame),
            (RelayState::OpeningUpstream | RelayState::Handshaking, ServerEvent::Frame(frame)) => {
                if self.pending.len() < self.config.max_pending_frames {
                    self.pending.push_back(frame);
                } else {
                    let limit = self.config.max_pending_frames;
                    self.refuse(
                        Error::TooManyPendingFrames { limit },
                        frame.header("receipt"),
                    );
                }
            }
            (_, ServerEvent::Failed(e)) => {
                // The session has queued its ERROR and closed.
                self.held = None;
                self.events.push_back(RelayEvent::Failed(e));
            }
            // A server session emits Connected once and frames only after
            // it; nothing else reaches here.
            (_, ServerEvent::Connected(_) | ServerEvent::Frame(_)) => {}
        }
    }

    fn on_upstream_event(&mut self, event: ClientEvent) {
        match event {
            ClientEvent::Connected(_) => {
                self.state = RelayState::Relaying;
                self.connect_deadline = None;
                if let Some(held) = self.held.take() {
                    self.to_client.extend(held);
                }
                while let Some(frame) = self.pending.pop_front() {
                    self.forward(&frame);
                    if self.state == RelayState::Closed {
                        break;
                    }
                }
            }
            ClientEvent::Message(message) => {
                // A message whose headers the client's version cannot
                // carry is dropped; the broker redelivers it if it needed
                // an acknowledgement.
                let _ = self.client.send_frame(message.frame());
            }
            ClientEvent::Receipt { receipt_id } => {
                let _ = self.client.send_receipt(&receipt_id);
            }
            ClientEvent::Disconnected => {
                if let Some(receipt) = self.disconnect_receipt.take() {
                    let _ = self.client.send_receipt(&receipt);
                }
            }
            ClientEvent::Error(frame) => {
                // The broker's own ERROR (a refused login, a bad
                // destination) reaches the client as it is.
                self.held = None;
                let message = frame.header("message").unwrap_or_default().to_owned();
                let error = Error::ServerError { message };
                if self.client.send_frame(&frame).is_err() {
                    let _ = self.client.abort(&error, None);
                }
                self.events.push_back(RelayEvent::Failed(error));
            }
            ClientEvent::Failed(cause) => {
                let error = Error::UpstreamFailed {
                    cause: Box::new(cause),
                };
                self.refuse(error, None);
            }
        }
    }

    /// Sends one client frame upstream. A frame the upstream session
    /// refuses ends the client's connection with `ERROR`.
    fn forward(&mut self, frame: &Frame) {
        let Some(up) = self.upstream.as_mut() else {
            return;
        };
        if frame.command() == Command::Disconnect {
            self.disconnect_receipt = frame.header("receipt").map(str::to_owned);
        }
        if let Err(cause) = up.send_frame(frame) {
            let error = Error::NotRelayable {
                cause: Box::new(cause),
            };
            self.refuse(error, frame.header("receipt"));
        }
    }

    /// Ends the client's connection with the `ERROR` `error` decides (in
    /// place of a held `CONNECTED`), then the relay.
    fn refuse(&mut self, error: Error, receipt: Option<&str>) {
        if self.state == RelayState::Closed {
            return;
        }
        self.held = None;
        if self.client.abort(&error, receipt).is_ok() {
            self.drain_client();
            self.events.push_back(RelayEvent::Failed(error));
        }
        self.finish();
    }

    /// Ends the relay: a polite `DISCONNECT` upstream when the broker's
    /// session is connected, then [`RelayEvent::CloseUpstream`].
    fn finish(&mut self) {
        if self.state == RelayState::Closed {
            return;
        }
        let reachable = matches!(self.state, RelayState::Handshaking | RelayState::Relaying);
        if let Some(up) = self.upstream.as_mut() {
            if reachable && *up.state() == ClientState::Connected {
                let _ = up.disconnect();
            }
        }
        if reachable {
            self.drain_upstream();
        }
        if std::mem::take(&mut self.upstream_open) {
            self.events.push_back(RelayEvent::CloseUpstream);
        }
        self.state = RelayState::Closed;
        self.connect_deadline = None;
        self.wants_clock = false;
        self.pending.clear();
        self.held = None;
    }

    /// Moves what the client's session wrote to the client's queue, or to
    /// the held bytes while the broker has not answered.
    fn drain_client(&mut self) {
        let mut out = BytesMut::new();
        if self.client.poll_transmit(&mut out) == 0 {
            return;
        }
        let chunk = out.freeze();
        match self.held.as_mut() {
            Some(held) if !self.client.is_closed() => held.push(chunk),
            _ => {
                // An ERROR replaces whatever was held.
                self.held = None;
                self.to_client.push_back(chunk);
            }
        }
    }

    fn drain_upstream(&mut self) {
        if !matches!(self.state, RelayState::Handshaking | RelayState::Relaying) {
            return;
        }
        if let Some(up) = self.upstream.as_mut() {
            up.poll_transmit(&mut self.to_upstream);
        }
    }
}
