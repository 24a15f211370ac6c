//! The client side of an Engine.IO v4 session, sans-IO: the handshake, the
//! heartbeat watchdog, the scheduling of long-polling requests, and the
//! upgrade from polling to WebSocket. Every state and transition of the
//! client lives in this module.
//!
//! The caller owns the HTTP client and the WebSocket; the session tells it
//! what to do ([`ClientTransmit`]: start a GET, POST a body, open, write to or
//! close the WebSocket), is told what happened (a GET's body, a POST done,
//! a WebSocket message, a transport error) and the time, and reports
//! [`ClientEvent`]s.
//!
//! The upgrade, as the reference client does it:
//!
//! | upgrade state | input | output | next |
//! |---|---|---|---|
//! | `Opening` | WebSocket open | `2probe` on the WebSocket | `Probing` |
//! | `Probing` | `3probe` | no new GET or POST | `Pausing` |
//! | `Pausing` | last GET and POST done | `5` on the WebSocket, queued packets after it | `Completed` |
//! | `Opening`..`Pausing` | anything else on the WebSocket, its failure, the timeout | close the WebSocket, resume polling | `Failed` |

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::{
    Limits, OpenPacket, Packet, PayloadFormat, ProtocolVersion, TransportKind, Utf8Bytes,
    WsMessage, decode_payload,
};

/// Client session settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// The transport of the handshake. Default polling.
    pub transport: TransportKind,
    /// Whether to upgrade a polling session to WebSocket when the server
    /// offers it (the reference client's `upgrade`). Default on.
    pub upgrade: bool,
    /// Whether [`ClientEvent::Opened`] waits until the upgrade completed or
    /// failed, so that the application's first packets already travel on
    /// the final transport. The reference client opens at once and upgrades
    /// in the background; waiting costs one probe round trip. Default on.
    pub open_after_upgrade: bool,
    /// The longest the handshake may take (the reference client's
    /// `timeout`). Default 20 s.
    pub handshake_timeout: Duration,
    /// The longest the upgrade may take before the client gives it up and
    /// stays on polling. Default 10 s, the reference server's
    /// `upgradeTimeout`.
    pub upgrade_timeout: Duration,
    /// Limits on the polling bodies received.
    pub limits: Limits,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            transport: TransportKind::Polling,
            upgrade: true,
            open_after_upgrade: true,
            handshake_timeout: Duration::from_secs(20),
            upgrade_timeout: Duration::from_secs(10),
            limits: Limits::default(),
        }
    }
}

/// Where a client session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientState {
    /// The handshake request is out; waiting for the `open` packet.
    Opening,
    /// The session is open.
    Open,
    /// The session is over ([`ClientEvent::Closed`] says why).
    Closed,
}

/// Where the upgrade of a polling session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientUpgradeState {
    /// No upgrade (a WebSocket session, no `websocket` in `upgrades`, or
    /// upgrades not wanted).
    None,
    /// The WebSocket is being opened.
    Opening,
    /// `2probe` was sent on the WebSocket; waiting for `3probe`.
    Probing,
    /// `3probe` arrived; waiting for the GET and POST in flight to finish
    /// before switching.
    Pausing,
    /// `5` was sent: the WebSocket carries the session.
    Completed,
    /// The upgrade failed; the session stays on polling.
    Failed,
}

/// Something the caller must do for the session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientTransmit {
    /// Start a long-polling GET (query: [`ClientSession::query`] with
    /// [`TransportKind::Polling`]) and report it with
    /// [`ClientSession::handle_get_response`] or
    /// [`ClientSession::handle_get_error`]. At most one is in flight.
    Get,
    /// POST this body (a v4 payload, `text/plain;charset=UTF-8`) and report
    /// it with [`ClientSession::handle_post_done`] or
    /// [`ClientSession::handle_post_error`]. At most one is in flight, but
    /// for the closing `1`.
    Post(Bytes),
    /// Open a WebSocket (query: [`ClientSession::query`] with
    /// [`TransportKind::WebSocket`]) and report it with
    /// [`ClientSession::handle_ws_open`] or [`ClientSession::handle_ws_closed`].
    OpenWebSocket,
    /// Write this message on the WebSocket.
    WebSocket(WsMessage),
    /// Close the WebSocket (the upgrade failed or the session ended).
    CloseWebSocket,
}

/// The old name of [`ClientTransmit`], kept for one release.
#[deprecated(note = "renamed `ClientTransmit`, beside the server's `ServerTransmit`")]
pub type Transmit = ClientTransmit;

/// Why a session ended, named as the reference client names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The server closed the session (`1`) or the transport closed.
    TransportClose,
    /// A request or the WebSocket failed.
    TransportError,
    /// No `ping` within `pingInterval + pingTimeout`.
    PingTimeout,
    /// The server sent something that does not decode, or a packet that
    /// does not fit the handshake.
    ParseError,
    /// No `open` packet within the handshake timeout.
    Timeout,
    /// The local side closed the session.
    ForcedClose,
}

impl CloseReason {
    /// The reference client's name for it (`"transport close"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::TransportClose => "transport close",
            CloseReason::TransportError => "transport error",
            CloseReason::PingTimeout => "ping timeout",
            CloseReason::ParseError => "parse error",
            CloseReason::Timeout => "timeout",
            CloseReason::ForcedClose => "forced close",
        }
    }
}

/// What happened to the session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientEvent {
    /// The handshake is done.
    Opened(OpenPacket),
    /// A text message from the server.
    Message(Utf8Bytes),
    /// A binary message from the server.
    Binary(Bytes),
    /// The session moved to the WebSocket.
    Upgraded,
    /// The upgrade failed; the session goes on over polling.
    UpgradeFailed,
    /// The session ended; nothing else happens after this.
    Closed(CloseReason),
}

/// One Engine.IO v4 client session.
///
/// ```
/// use std::time::Instant;
/// use bytes::Bytes;
/// use duplex_engineio::client::{ClientConfig, ClientEvent, ClientSession, ClientTransmit};
/// use duplex_engineio::TransportKind;
///
/// let now = Instant::now();
/// let config = ClientConfig { upgrade: false, ..ClientConfig::default() };
/// let mut session = ClientSession::new(config, now);
/// assert_eq!(session.poll_transmit(), Some(ClientTransmit::Get));
/// assert_eq!(session.query(TransportKind::Polling), "EIO=4&transport=polling");
/// let open = br#"0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000}"#;
/// session.handle_get_response(Bytes::from_static(open), now);
/// assert!(matches!(session.poll_event(), Some(ClientEvent::Opened(_))));
/// assert_eq!(session.query(TransportKind::Polling), "EIO=4&transport=polling&sid=abc");
/// assert_eq!(session.poll_transmit(), Some(ClientTransmit::Get)); // the long poll
/// ```
#[derive(Debug)]
pub struct ClientSession {
    config: ClientConfig,
    state: ClientState,
    transport: TransportKind,
    upgrade: ClientUpgradeState,
    open: Option<OpenPacket>,
    /// The handshake deadline while opening, the ping watchdog once open.
    deadline: Option<Instant>,
    upgrade_deadline: Option<Instant>,
    get_in_flight: bool,
    post_in_flight: bool,
    /// Packets waiting for the transport to be writable.
    queue: Vec<Packet>,
    transmits: VecDeque<ClientTransmit>,
    events: VecDeque<ClientEvent>,
    /// Whether `Opened` waits for the upgrade; events received meanwhile
    /// wait in `held`.
    open_deferred: bool,
    held: Vec<ClientEvent>,
    /// The application's packets sent while `Opened` is deferred.
    held_out: Vec<Packet>,
}

impl ClientSession {
    /// Starts a session whose handshake begins at `now`: the first
    /// [`ClientTransmit`] is the handshake GET or the WebSocket to open.
    pub fn new(config: ClientConfig, now: Instant) -> Self {
        let mut this = Self {
            config,
            state: ClientState::Opening,
            transport: config.transport,
            upgrade: ClientUpgradeState::None,
            open: None,
            deadline: Some(now + config.handshake_timeout),
            upgrade_deadline: None,
            get_in_flight: false,
            post_in_flight: false,
            queue: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            open_deferred: false,
            held: Vec::new(),
            held_out: Vec::new(),
        };
        match config.transport {
            TransportKind::Polling => this.start_get(),
            TransportKind::WebSocket => this.transmits.push_back(ClientTransmit::OpenWebSocket),
        }
        this
    }

    /// The current state.
    pub fn state(&self) -> ClientState {
        self.state
    }

    /// The transport carrying the session.
    pub fn transport(&self) -> TransportKind {
        self.transport
    }

    /// Where the upgrade is.
    pub fn upgrade_state(&self) -> ClientUpgradeState {
        self.upgrade
    }

    /// The handshake data, once open.
    pub fn open_packet(&self) -> Option<&OpenPacket> {
        self.open.as_ref()
    }

    /// The session id, once open.
    pub fn sid(&self) -> Option<&str> {
        self.open.as_ref().map(|o| o.sid.as_str())
    }

    /// The Engine.IO query of a request on `transport`:
    /// `EIO=4&transport=<name>`, plus `&sid=<sid>` once open.
    pub fn query(&self, transport: TransportKind) -> String {
        let mut q = format!("EIO=4&transport={}", transport.as_str());
        if let Some(sid) = self.sid() {
            q.push_str("&sid=");
            for b in sid.bytes() {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    q.push(char::from(b));
                } else {
                    q.push_str(&format!("%{b:02X}"));
                }
            }
        }
        q
    }

    /// Sends a text message (queued until the session is open).
    pub fn send_message(&mut self, text: Utf8Bytes) {
        self.send_app(Packet::Message(text));
    }

    /// Sends a binary message (queued until the session is open).
    pub fn send_binary(&mut self, data: Bytes) {
        self.send_app(Packet::Binary(data));
    }

    /// Closes the session from this side: `1` goes out if it is open, and
    /// [`ClientEvent::Closed`] reports [`CloseReason::ForcedClose`].
    pub fn close(&mut self) {
        self.close_with(CloseReason::ForcedClose);
    }

    /// Closes the session from this side for `reason` (a parse error in
    /// the layer above, say), sending `1` if it is open.
    pub fn close_with(&mut self, reason: CloseReason) {
        if self.state == ClientState::Open {
            self.queue.push(Packet::Close);
            self.flush_final();
        }
        self.finish(reason);
    }

    /// A GET's body arrived at `now`.
    pub fn handle_get_response(&mut self, body: Bytes, now: Instant) {
        self.get_in_flight = false;
        if self.state == ClientState::Closed {
            return;
        }
        for packet in decode_payload(body, PayloadFormat::V4, self.config.limits) {
            match packet {
                Ok(p) => self.on_packet(p, now),
                Err(_) => self.finish(CloseReason::ParseError),
            }
            if self.state == ClientState::Closed {
                return;
            }
        }
        if self.state == ClientState::Opening {
            // The handshake body had no `open` packet.
            self.finish(CloseReason::ParseError);
            return;
        }
        if self.upgrade == ClientUpgradeState::Pausing {
            self.try_switch();
        } else if self.transport == TransportKind::Polling {
            self.start_get();
        }
    }

    /// A GET failed (an HTTP error status or a broken connection).
    pub fn handle_get_error(&mut self) {
        self.get_in_flight = false;
        self.finish(CloseReason::TransportError);
    }

    /// The POST in flight succeeded.
    pub fn handle_post_done(&mut self) {
        self.post_in_flight = false;
        if self.upgrade == ClientUpgradeState::Pausing {
            self.try_switch();
        } else {
            self.flush();
        }
    }

    /// The POST in flight failed.
    pub fn handle_post_error(&mut self) {
        self.post_in_flight = false;
        self.finish(CloseReason::TransportError);
    }

    /// The WebSocket asked for by [`ClientTransmit::OpenWebSocket`] is open.
    pub fn handle_ws_open(&mut self) {
        if self.state == ClientState::Closed {
            return;
        }
        if self.upgrade == ClientUpgradeState::Opening {
            self.upgrade = ClientUpgradeState::Probing;
            self.transmits.push_back(ClientTransmit::WebSocket(
                Packet::probe_ping().to_websocket(ProtocolVersion::V4),
            ));
        }
        // A WebSocket session waits for the `open` packet.
    }

    /// A message arrived on the WebSocket at `now`.
    pub fn handle_ws_message(&mut self, message: WsMessage, now: Instant) {
        if self.state == ClientState::Closed {
            return;
        }
        let packet = Packet::from_websocket(message, ProtocolVersion::V4);
        if self.transport == TransportKind::WebSocket {
            match packet {
                Ok(p) => self.on_packet(p, now),
                Err(_) => self.finish(CloseReason::ParseError),
            }
            return;
        }
        match (self.upgrade, packet) {
            (ClientUpgradeState::Probing, Ok(p))
                if matches!(&p, Packet::Pong(_)) && p.is_probe() =>
            {
                self.upgrade = ClientUpgradeState::Pausing;
                self.try_switch();
            }
            // Anything else on a probing WebSocket is the reference's "probe error".
            _ => self.fail_upgrade(),
        }
    }

    /// The WebSocket closed or failed (or could not be opened); `error`
    /// tells a failure from a clean close.
    pub fn handle_ws_closed(&mut self, error: bool) {
        if self.state == ClientState::Closed {
            return;
        }
        if self.transport == TransportKind::WebSocket {
            self.finish(if error {
                CloseReason::TransportError
            } else {
                CloseReason::TransportClose
            });
        } else if self.upgrade_in_progress() {
            self.fail_upgrade();
        }
    }

    /// Advances the timers to `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_some_and(|d| d <= now) {
            let reason = match self.state {
                ClientState::Opening => CloseReason::Timeout,
                _ => CloseReason::PingTimeout,
            };
            self.finish(reason);
            return;
        }
        if self.upgrade_in_progress() && self.upgrade_deadline.is_some_and(|d| d <= now) {
            self.fail_upgrade();
        }
    }

    /// When [`ClientSession::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let upgrade = self.upgrade_deadline.filter(|_| self.upgrade_in_progress());
        match (self.deadline, upgrade) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next thing to do, if any.
    pub fn poll_transmit(&mut self) -> Option<ClientTransmit> {
        self.transmits.pop_front()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    fn upgrade_in_progress(&self) -> bool {
        matches!(
            self.upgrade,
            ClientUpgradeState::Opening | ClientUpgradeState::Probing | ClientUpgradeState::Pausing
        )
    }

    fn start_get(&mut self) {
        if !self.get_in_flight {
            self.get_in_flight = true;
            self.transmits.push_back(ClientTransmit::Get);
        }
    }

    /// The application's packets wait while `Opened` is deferred, so that
    /// they do not keep the polling transport busy during the upgrade.
    fn send_app(&mut self, packet: Packet) {
        if self.open_deferred {
            self.held_out.push(packet);
        } else {
            self.send(packet);
        }
    }

    fn send(&mut self, packet: Packet) {
        if self.state == ClientState::Closed {
            return;
        }
        self.queue.push(packet);
        self.flush();
    }

    /// Writes the queued packets if the transport can take them now.
    fn flush(&mut self) {
        if self.state != ClientState::Open || self.queue.is_empty() {
            return;
        }
        match self.transport {
            TransportKind::WebSocket => {
                for p in self.queue.drain(..) {
                    self.transmits.push_back(ClientTransmit::WebSocket(
                        p.to_websocket(ProtocolVersion::V4),
                    ));
                }
            }
            TransportKind::Polling => {
                if self.post_in_flight || self.upgrade == ClientUpgradeState::Pausing {
                    return;
                }
                self.post_in_flight = true;
                let body = PayloadFormat::V4.encode_to_bytes(&self.queue);
                self.queue.clear();
                self.transmits.push_back(ClientTransmit::Post(body));
            }
        }
    }

    /// Writes what is queued (the closing `1` last) whatever is in flight:
    /// the session ends right after.
    fn flush_final(&mut self) {
        match self.transport {
            TransportKind::WebSocket => self.flush(),
            TransportKind::Polling => {
                let body = PayloadFormat::V4.encode_to_bytes(&self.queue);
                self.queue.clear();
                self.transmits.push_back(ClientTransmit::Post(body));
            }
        }
    }

    fn on_packet(&mut self, packet: Packet, now: Instant) {
        if self.state == ClientState::Opening {
            let Ok(open) = OpenPacket::from_packet(&packet) else {
                self.finish(CloseReason::ParseError);
                return;
            };
            self.on_open(open, now);
            return;
        }
        match packet {
            Packet::Ping(_) => {
                self.arm_watchdog(now);
                self.send(Packet::pong());
            }
            Packet::Message(text) => self.emit(ClientEvent::Message(text)),
            Packet::Binary(data) => self.emit(ClientEvent::Binary(data)),
            Packet::Close => self.finish(CloseReason::TransportClose),
            // Pongs, noops (the server releasing a GET), a stray `open` or
            // `upgrade`: nothing to do, as in the reference.
            Packet::Pong(_) | Packet::Noop | Packet::Open(_) | Packet::Upgrade => {}
        }
    }

    fn on_open(&mut self, open: OpenPacket, now: Instant) {
        self.state = ClientState::Open;
        self.arm_watchdog_with(&open, now);
        let upgrade = self.transport == TransportKind::Polling
            && self.config.upgrade
            && open
                .upgrades
                .iter()
                .any(|u| u == TransportKind::WebSocket.as_str());
        self.open = Some(open.clone());
        if upgrade {
            self.upgrade = ClientUpgradeState::Opening;
            self.upgrade_deadline = Some(now + self.config.upgrade_timeout);
            self.transmits.push_back(ClientTransmit::OpenWebSocket);
        }
        if upgrade && self.config.open_after_upgrade {
            self.open_deferred = true;
        } else {
            self.events.push_back(ClientEvent::Opened(open));
        }
        self.flush();
    }

    fn arm_watchdog(&mut self, now: Instant) {
        if let Some(open) = self.open.clone() {
            self.arm_watchdog_with(&open, now);
        }
    }

    fn arm_watchdog_with(&mut self, open: &OpenPacket, now: Instant) {
        let window = Duration::from_millis(open.ping_interval.saturating_add(open.ping_timeout));
        self.deadline = Some(now + window);
    }

    /// An event for the application, held back while `Opened` is deferred.
    fn emit(&mut self, event: ClientEvent) {
        if self.open_deferred {
            self.held.push(event);
        } else {
            self.events.push_back(event);
        }
    }

    fn release_open(&mut self) {
        if std::mem::take(&mut self.open_deferred) {
            if let Some(open) = self.open.clone() {
                self.events.push_back(ClientEvent::Opened(open));
            }
            self.events.extend(self.held.drain(..));
            self.queue.append(&mut self.held_out);
        }
    }

    /// Switches to the WebSocket once polling is quiet.
    fn try_switch(&mut self) {
        if self.get_in_flight || self.post_in_flight {
            return;
        }
        self.transmits.push_back(ClientTransmit::WebSocket(
            Packet::Upgrade.to_websocket(ProtocolVersion::V4),
        ));
        self.transport = TransportKind::WebSocket;
        self.upgrade = ClientUpgradeState::Completed;
        self.upgrade_deadline = None;
        self.release_open();
        self.events.push_back(ClientEvent::Upgraded);
        self.flush();
    }

    fn fail_upgrade(&mut self) {
        if !self.upgrade_in_progress() {
            return;
        }
        self.upgrade = ClientUpgradeState::Failed;
        self.upgrade_deadline = None;
        self.transmits.push_back(ClientTransmit::CloseWebSocket);
        self.release_open();
        self.events.push_back(ClientEvent::UpgradeFailed);
        // Polling resumes where the pause left it.
        self.start_get();
        self.flush();
    }

    fn finish(&mut self, reason: CloseReason) {
        if self.state == ClientState::Closed {
            return;
        }
        let ws_open = self.transport == TransportKind::WebSocket || self.upgrade_in_progress();
        self.state = ClientState::Closed;
        self.deadline = None;
        self.upgrade_deadline = None;
        if self.upgrade_in_progress() {
            self.upgrade = ClientUpgradeState::Failed;
        }
        self.queue.clear();
        if ws_open {
            self.transmits.push_back(ClientTransmit::CloseWebSocket);
        }
        // `Opened` was never reported: what it held back is dropped too.
        self.open_deferred = false;
        self.held.clear();
        self.held_out.clear();
        self.events.push_back(ClientEvent::Closed(reason));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn open_json(upgrades: &str) -> String {
        format!(
            r#"0{{"sid":"s1","upgrades":{upgrades},"pingInterval":300,"pingTimeout":200,"maxPayload":1000000}}"#
        )
    }

    fn events(s: &mut ClientSession) -> Vec<ClientEvent> {
        std::iter::from_fn(|| s.poll_event()).collect()
    }

    fn transmits(s: &mut ClientSession) -> Vec<ClientTransmit> {
        std::iter::from_fn(|| s.poll_transmit()).collect()
    }

    fn text(t: &str) -> WsMessage {
        WsMessage::Text(Utf8Bytes::from(t.to_owned()))
    }

    fn ws(t: &str) -> ClientTransmit {
        ClientTransmit::WebSocket(text(t))
    }

    fn polling(t0: Instant) -> ClientSession {
        let config = ClientConfig {
            upgrade: false,
            ..ClientConfig::default()
        };
        let mut s = ClientSession::new(config, t0);
        assert_eq!(transmits(&mut s), [ClientTransmit::Get]);
        s.handle_get_response(Bytes::from(open_json(r#"["websocket"]"#)), t0);
        assert!(matches!(events(&mut s).as_slice(), [ClientEvent::Opened(o)] if o.sid == "s1"));
        assert_eq!(transmits(&mut s), [ClientTransmit::Get]);
        s
    }

    #[test]
    fn handshake_times_out_without_open_packet() {
        let t0 = Instant::now();
        let mut s = ClientSession::new(ClientConfig::default(), t0);
        assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(20)));
        s.handle_timeout(t0 + Duration::from_secs(19));
        assert!(events(&mut s).is_empty());
        s.handle_timeout(t0 + Duration::from_secs(20));
        assert_eq!(events(&mut s), [ClientEvent::Closed(CloseReason::Timeout)]);
        assert_eq!(s.state(), ClientState::Closed);
        assert_eq!(s.poll_timeout(), None);
    }

    #[test]
    fn a_first_packet_other_than_open_is_a_parse_error() {
        let t0 = Instant::now();
        let mut s = ClientSession::new(ClientConfig::default(), t0);
        s.handle_get_response(Bytes::from_static(b"4hello"), t0);
        assert_eq!(
            events(&mut s),
            [ClientEvent::Closed(CloseReason::ParseError)]
        );
        let mut s = ClientSession::new(ClientConfig::default(), t0);
        s.handle_get_response(Bytes::from_static(b"0{not json"), t0);
        assert_eq!(
            events(&mut s),
            [ClientEvent::Closed(CloseReason::ParseError)]
        );
    }

    #[test]
    fn heartbeat_pong_and_ping_timeout_in_simulated_time() {
        let t0 = Instant::now();
        let mut s = polling(t0);
        // No ping yet: the watchdog is pingInterval + pingTimeout away.
        assert_eq!(s.poll_timeout(), Some(t0 + 500 * MS));
        s.handle_get_response(Bytes::from_static(b"2"), t0 + 300 * MS);
        assert_eq!(
            transmits(&mut s),
            [
                ClientTransmit::Post(Bytes::from_static(b"3")),
                ClientTransmit::Get
            ]
        );
        assert_eq!(s.poll_timeout(), Some(t0 + 800 * MS));
        s.handle_post_done();
        s.handle_timeout(t0 + 799 * MS);
        assert!(events(&mut s).is_empty());
        s.handle_timeout(t0 + 800 * MS);
        assert_eq!(
            events(&mut s),
            [ClientEvent::Closed(CloseReason::PingTimeout)]
        );
        assert!(transmits(&mut s).is_empty());
    }

    #[test]
    fn polling_batches_writes_behind_the_post_in_flight() {
        let t0 = Instant::now();
        let mut s = polling(t0);
        s.send_message(Utf8Bytes::from_static("a"));
        s.send_message(Utf8Bytes::from_static("b"));
        s.send_binary(Bytes::from_static(&[1, 2]));
        assert_eq!(
            transmits(&mut s),
            [ClientTransmit::Post(Bytes::from_static(b"4a"))]
        );
        s.handle_post_done();
        assert_eq!(
            transmits(&mut s),
            [ClientTransmit::Post(Bytes::from_static(b"4b\x1ebAQI="))]
        );
    }

    #[test]
    fn messages_binary_noop_and_server_close() {
        let t0 = Instant::now();
        let mut s = polling(t0);
        s.handle_get_response(Bytes::from_static(b"4hi\x1ebAQI=\x1e6"), t0);
        assert_eq!(
            events(&mut s),
            [
                ClientEvent::Message(Utf8Bytes::from_static("hi")),
                ClientEvent::Binary(Bytes::from_static(&[1, 2]))
            ]
        );
        assert_eq!(transmits(&mut s), [ClientTransmit::Get]);
        s.handle_get_response(Bytes::from_static(b"1"), t0);
        assert_eq!(
            events(&mut s),
            [ClientEvent::Closed(CloseReason::TransportClose)]
        );
        assert!(transmits(&mut s).is_empty(), "no GET after the close");
    }

    #[test]
    fn local_close_posts_the_close_packet() {
        let t0 = Instant::now();
        let mut s = polling(t0);
        s.send_message(Utf8Bytes::from_static("a"));
        assert_eq!(
            transmits(&mut s),
            [ClientTransmit::Post(Bytes::from_static(b"4a"))]
        );
        s.send_message(Utf8Bytes::from_static("b"));
        s.close();
        assert_eq!(
            transmits(&mut s),
            [ClientTransmit::Post(Bytes::from_static(b"4b\x1e1"))]
        );
        assert_eq!(
            events(&mut s),
            [ClientEvent::Closed(CloseReason::ForcedClose)]
        );
    }

    #[test]
    fn websocket_session() {
        let t0 = Instant::now();
        let config = ClientConfig {
            transport: TransportKind::WebSocket,
            ..ClientConfig::default()
        };
        let mut s = ClientSession::new(config, t0);
        assert_eq!(transmits(&mut s), [ClientTransmit::OpenWebSocket]);
        assert_eq!(
            s.query(TransportKind::WebSocket),
            "EIO=4&transport=websocket"
        );
        s.send_message(Utf8Bytes::from_static("early"));
        s.handle_ws_open();
        assert!(transmits(&mut s).is_empty(), "held until open");
        s.handle_ws_message(text(&open_json("[]")), t0);
        assert!(matches!(
            events(&mut s).as_slice(),
            [ClientEvent::Opened(_)]
        ));
        assert_eq!(transmits(&mut s), [ws("4early")]);
        s.handle_ws_message(text("2"), t0 + 300 * MS);
        assert_eq!(transmits(&mut s), [ws("3")]);
        s.handle_ws_message(WsMessage::Binary(Bytes::from_static(&[7])), t0);
        assert_eq!(
            events(&mut s),
            [ClientEvent::Binary(Bytes::from_static(&[7]))]
        );
        s.handle_ws_closed(false);
        assert_eq!(
            events(&mut s),
            [ClientEvent::Closed(CloseReason::TransportClose)]
        );
        assert_eq!(transmits(&mut s), [ClientTransmit::CloseWebSocket]);
    }

    fn upgrading(t0: Instant) -> ClientSession {
        let mut s = ClientSession::new(ClientConfig::default(), t0);
        assert_eq!(transmits(&mut s), [ClientTransmit::Get]);
        s.handle_get_response(Bytes::from(open_json(r#"["websocket"]"#)), t0);
        // The open is held back until the upgrade settles.
        assert!(events(&mut s).is_empty());
        assert_eq!(
            s.query(TransportKind::WebSocket),
            "EIO=4&transport=websocket&sid=s1"
        );
        assert_eq!(
            transmits(&mut s),
            [ClientTransmit::OpenWebSocket, ClientTransmit::Get]
        );
        assert_eq!(s.upgrade_state(), ClientUpgradeState::Opening);
        s.handle_ws_open();
        assert_eq!(transmits(&mut s), [ws("2probe")]);
        assert_eq!(s.upgrade_state(), ClientUpgradeState::Probing);
        s
    }

    #[test]
    fn upgrade_probe_pause_and_switch() {
        let t0 = Instant::now();
        let mut s = upgrading(t0);
        s.send_message(Utf8Bytes::from_static("queued"));
        assert!(transmits(&mut s).is_empty(), "not open yet");
        // A ping over polling during the probe is answered over polling.
        s.handle_get_response(Bytes::from_static(b"2"), t0 + 10 * MS);
        assert_eq!(
            transmits(&mut s),
            [
                ClientTransmit::Post(Bytes::from_static(b"3")),
                ClientTransmit::Get
            ]
        );
        s.handle_ws_message(text("3probe"), t0 + 20 * MS);
        assert_eq!(s.upgrade_state(), ClientUpgradeState::Pausing);
        assert!(transmits(&mut s).is_empty(), "GET and POST still in flight");
        s.handle_post_done();
        assert!(transmits(&mut s).is_empty(), "GET still in flight");
        // The server ends the parked GET with a noop and a last message.
        s.handle_get_response(Bytes::from_static(b"4last\x1e6"), t0 + 30 * MS);
        assert_eq!(transmits(&mut s), [ws("5"), ws("4queued")]);
        assert_eq!(s.transport(), TransportKind::WebSocket);
        assert_eq!(s.upgrade_state(), ClientUpgradeState::Completed);
        let ev = events(&mut s);
        assert!(matches!(ev.first(), Some(ClientEvent::Opened(_))), "{ev:?}");
        assert_eq!(
            ev.get(1..),
            Some(
                &[
                    ClientEvent::Message(Utf8Bytes::from_static("last")),
                    ClientEvent::Upgraded
                ][..]
            )
        );
        s.send_message(Utf8Bytes::from_static("x"));
        assert_eq!(transmits(&mut s), [ws("4x")]);
        // The watchdog runs on: armed by the ping at 10 ms.
        assert_eq!(s.poll_timeout(), Some(t0 + 510 * MS));
    }

    #[test]
    fn upgrade_fails_on_a_wrong_answer_and_polling_goes_on() {
        let t0 = Instant::now();
        let mut s = upgrading(t0);
        s.handle_ws_message(text("3nope"), t0);
        assert_eq!(transmits(&mut s), [ClientTransmit::CloseWebSocket]);
        assert_eq!(s.upgrade_state(), ClientUpgradeState::Failed);
        let ev = events(&mut s);
        assert!(matches!(
            ev.as_slice(),
            [ClientEvent::Opened(_), ClientEvent::UpgradeFailed]
        ));
        assert_eq!(s.transport(), TransportKind::Polling);
        s.handle_get_response(Bytes::from_static(b"6"), t0);
        assert_eq!(transmits(&mut s), [ClientTransmit::Get]);
    }

    #[test]
    fn upgrade_fails_when_the_websocket_cannot_open_or_times_out() {
        let t0 = Instant::now();
        let mut s = upgrading(t0);
        s.handle_ws_closed(true);
        assert_eq!(s.upgrade_state(), ClientUpgradeState::Failed);
        assert_eq!(s.state(), ClientState::Open);

        let mut s = upgrading(t0);
        assert_eq!(s.poll_timeout(), Some(t0 + 500 * MS), "watchdog first");
        // Keep the session alive with pings while the probe hangs.
        for k in 1..=24u32 {
            s.handle_get_response(Bytes::from_static(b"2"), t0 + k * 400 * MS);
            s.handle_post_done();
            s.handle_timeout(t0 + k * 400 * MS);
        }
        let _ = transmits(&mut s);
        s.handle_timeout(t0 + Duration::from_secs(10));
        assert_eq!(s.upgrade_state(), ClientUpgradeState::Failed);
        assert_eq!(transmits(&mut s), [ClientTransmit::CloseWebSocket]);
        assert_eq!(s.state(), ClientState::Open);
    }

    #[test]
    fn upgrade_without_waiting_opens_at_once() {
        let t0 = Instant::now();
        let config = ClientConfig {
            open_after_upgrade: false,
            ..ClientConfig::default()
        };
        let mut s = ClientSession::new(config, t0);
        s.handle_get_response(Bytes::from(open_json(r#"["websocket"]"#)), t0);
        assert!(matches!(
            events(&mut s).as_slice(),
            [ClientEvent::Opened(_)]
        ));
        assert_eq!(s.upgrade_state(), ClientUpgradeState::Opening);
    }

    #[test]
    fn no_upgrade_when_the_server_offers_none() {
        let t0 = Instant::now();
        let mut s = ClientSession::new(ClientConfig::default(), t0);
        s.handle_get_response(Bytes::from(open_json("[]")), t0);
        assert!(matches!(
            events(&mut s).as_slice(),
            [ClientEvent::Opened(_)]
        ));
        assert_eq!(
            transmits(&mut s),
            [ClientTransmit::Get, ClientTransmit::Get]
        );
    }

    #[test]
    fn sid_is_escaped_in_the_query() {
        let t0 = Instant::now();
        let mut s = ClientSession::new(ClientConfig::default(), t0);
        s.handle_get_response(
            Bytes::from_static(
                br#"0{"sid":"a+b/c=","upgrades":[],"pingInterval":1,"pingTimeout":1}"#,
            ),
            t0,
        );
        assert_eq!(
            s.query(TransportKind::Polling),
            "EIO=4&transport=polling&sid=a%2Bb%2Fc%3D"
        );
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Input {
        Body(Vec<&'static str>),
        GetError,
        PostDone,
        PostError,
        WsOpen,
        Ws(&'static str),
        WsClosed(bool),
        Send,
        Close,
        Wait(u64),
    }

    const PACKETS: [&str; 12] = [
        r#"0{"sid":"s","upgrades":["websocket"],"pingInterval":300,"pingTimeout":200}"#,
        "1",
        "2",
        "2probe",
        "3probe",
        "4hi",
        "bAQI=",
        "5",
        "6",
        "9",
        "",
        "0{",
    ];

    fn input() -> impl Strategy<Value = Input> {
        let packet = proptest::sample::select(&PACKETS[..]);
        prop_oneof![
            proptest::collection::vec(packet.clone(), 0..4).prop_map(Input::Body),
            Just(Input::GetError),
            Just(Input::PostDone),
            Just(Input::PostError),
            Just(Input::WsOpen),
            packet.prop_map(Input::Ws),
            any::<bool>().prop_map(Input::WsClosed),
            Just(Input::Send),
            Just(Input::Close),
            (0u64..600).prop_map(Input::Wait),
        ]
    }

    proptest! {
        /// Driven as a real adapter drives it (reports only for requests
        /// it asked for), the session never panics, never has two GETs or
        /// two POSTs in flight while open, and reports `Closed` once.
        #[test]
        fn never_two_requests_in_flight(
            upgrade in any::<bool>(),
            websocket in any::<bool>(),
            inputs in proptest::collection::vec(input(), 0..60),
        ) {
            let t0 = Instant::now();
            let config = ClientConfig {
                upgrade,
                transport: if websocket { TransportKind::WebSocket } else { TransportKind::Polling },
                ..ClientConfig::default()
            };
            let mut s = ClientSession::new(config, t0);
            let (mut now, mut gets, mut posts, mut ws, mut closed) = (t0, 0u32, 0u32, false, 0u32);
            for input in inputs {
                match input {
                    Input::Body(packets) if gets > 0 => {
                        gets -= 1;
                        s.handle_get_response(Bytes::from(packets.join("\x1e")), now);
                    }
                    Input::GetError if gets > 0 => {
                        gets -= 1;
                        s.handle_get_error();
                    }
                    Input::PostDone if posts > 0 => {
                        posts -= 1;
                        s.handle_post_done();
                    }
                    Input::PostError if posts > 0 => {
                        posts -= 1;
                        s.handle_post_error();
                    }
                    Input::WsOpen if ws => s.handle_ws_open(),
                    Input::Ws(p) if ws => {
                        s.handle_ws_message(WsMessage::Text(Utf8Bytes::from(p.to_owned())), now);
                    }
                    Input::WsClosed(error) if ws => {
                        ws = false;
                        s.handle_ws_closed(error);
                    }
                    Input::Send => s.send_message(Utf8Bytes::from_static("x")),
                    Input::Close => s.close(),
                    Input::Wait(ms) => {
                        now += Duration::from_millis(ms);
                        s.handle_timeout(now);
                    }
                    _ => {}
                }
                while let Some(t) = s.poll_transmit() {
                    match t {
                        ClientTransmit::Get => gets += 1,
                        ClientTransmit::Post(_) => posts += 1,
                        ClientTransmit::OpenWebSocket => ws = true,
                        ClientTransmit::CloseWebSocket => ws = false,
                        ClientTransmit::WebSocket(_) => {}
                    }
                }
                while let Some(e) = s.poll_event() {
                    if matches!(e, ClientEvent::Closed(_)) {
                        closed += 1;
                    }
                }
                prop_assert!(gets <= 1, "two GETs in flight");
                if s.state() != ClientState::Closed {
                    prop_assert!(posts <= 1, "two POSTs in flight");
                }
                prop_assert!(closed <= 1);
                prop_assert_eq!(closed == 1, s.state() == ClientState::Closed);
            }
        }
    }
}
