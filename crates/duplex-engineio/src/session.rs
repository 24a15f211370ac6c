//! The time-driven parts of an Engine.IO session, sans-IO: the heartbeat
//! and the transport upgrade. Every state and transition of both lives in
//! this module; neither knows about sockets or clocks; the caller feeds
//! received packets and the current time, and asks for the next deadline.
//!
//! Both are written from the server's point of view, which is where the
//! protocol puts the timers that close a session (the v4 server pings and
//! waits for pongs; the v3 server answers pings and waits for them).

use std::time::{Duration, Instant};

use crate::{Error, Packet, PacketType, ProtocolVersion};

/// Heartbeat timing, as announced in the `open` packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeartbeatConfig {
    /// Time between pings. Default 25 s, as the reference server.
    pub ping_interval: Duration,
    /// Time to wait for the answer. Default 20 s, as the reference server.
    pub ping_timeout: Duration,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
        }
    }
}

/// What the heartbeat asks the session to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeartbeatEvent {
    /// Send a `ping` (`2`) to the client (v4).
    SendPing,
    /// Send a `pong` (`3`) to the client, answering its ping (v3).
    SendPong,
    /// No sign of life in time: close the session ("ping timeout").
    TimedOut,
}

/// Where a heartbeat is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeartbeatState {
    /// Running.
    Alive,
    /// The peer missed its deadline; [`HeartbeatEvent::TimedOut`] was raised.
    TimedOut,
    /// Stopped by [`Heartbeat::stop`] (the session closed for another reason).
    Stopped,
}

/// A session's heartbeat, server side, in both protocol versions.
///
/// * v4: the server sends the first `ping` one `ping_interval` **after** the
///   handshake (never at once: the official suite expects the client's own
///   echo, not a ping, as the first thing it reads), then expects a `pong`
///   within `ping_timeout`; a pong schedules the next ping one interval
///   later.
/// * v3: the client pings and the server answers each ping with a pong.
///
/// In both, any packet from the client proves liveness and pushes the
/// deadline to `ping_interval + ping_timeout` from its arrival; a v4 ping
/// moves it to `ping_timeout` after the ping. A ping from a v4 client or a
/// pong from a v3 client is an error, as in the reference.
///
/// ```
/// use std::time::{Duration, Instant};
/// use duplex_engineio::{Heartbeat, HeartbeatConfig, HeartbeatEvent, ProtocolVersion, PacketType};
/// let config = HeartbeatConfig { ping_interval: Duration::from_millis(300), ping_timeout: Duration::from_millis(200) };
/// let t0 = Instant::now();
/// let mut hb = Heartbeat::new(ProtocolVersion::V4, config, t0);
/// assert_eq!(hb.poll_timeout(), Some(t0 + Duration::from_millis(300)));
/// hb.handle_timeout(t0 + Duration::from_millis(300));
/// assert_eq!(hb.poll_event(), Some(HeartbeatEvent::SendPing));
/// hb.handle_timeout(t0 + Duration::from_millis(500));
/// assert_eq!(hb.poll_event(), Some(HeartbeatEvent::TimedOut));
/// ```
#[derive(Clone, Debug)]
pub struct Heartbeat {
    version: ProtocolVersion,
    config: HeartbeatConfig,
    state: HeartbeatState,
    /// v4: when the next ping goes out; `None` while a ping awaits its pong.
    next_ping: Option<Instant>,
    /// When the session is declared dead without news from the client.
    deadline: Option<Instant>,
    ping_owed: bool,
    pongs_owed: u32,
    timeout_reported: bool,
}

impl Heartbeat {
    /// Starts the heartbeat of a session whose handshake (`open` packet)
    /// went out at `now`.
    pub fn new(version: ProtocolVersion, config: HeartbeatConfig, now: Instant) -> Self {
        let (next_ping, deadline) = match version {
            ProtocolVersion::V4 => (Some(now + config.ping_interval), None),
            ProtocolVersion::V3 => (None, Some(now + config.ping_interval + config.ping_timeout)),
        };
        Self {
            version,
            config,
            state: HeartbeatState::Alive,
            next_ping,
            deadline,
            ping_owed: false,
            pongs_owed: 0,
            timeout_reported: false,
        }
    }

    /// The current state.
    pub fn state(&self) -> HeartbeatState {
        self.state
    }

    /// The configuration.
    pub fn config(&self) -> HeartbeatConfig {
        self.config
    }

    /// Records a packet received from the client at `now`.
    pub fn handle_packet(&mut self, packet_type: PacketType, now: Instant) -> Result<(), Error> {
        if self.state != HeartbeatState::Alive {
            return Ok(());
        }
        self.deadline = Some(now + self.config.ping_interval + self.config.ping_timeout);
        match (packet_type, self.version) {
            (PacketType::Ping, ProtocolVersion::V3) => {
                self.pongs_owed = self.pongs_owed.saturating_add(1);
            }
            (PacketType::Pong, ProtocolVersion::V4) => {
                self.next_ping = Some(now + self.config.ping_interval);
            }
            (PacketType::Ping, ProtocolVersion::V4) | (PacketType::Pong, ProtocolVersion::V3) => {
                return Err(Error::InvalidHeartbeatDirection);
            }
            _ => {}
        }
        Ok(())
    }

    /// Asks the peer for a sign of life now, judged by the rule that
    /// judges it anyway: v4, one extra `ping` goes out at once (a pending
    /// regular ping is replaced by it) and the session times out unless
    /// something arrives within `ping_timeout` (never later than a deadline
    /// already set); v3, where the client pings, nothing is sent and the
    /// deadline stays (its next ping or the timeout). Any packet received
    /// afterwards is the answer ([`Heartbeat::handle_packet`]).
    pub fn probe(&mut self, now: Instant) {
        if self.state != HeartbeatState::Alive || self.version == ProtocolVersion::V3 {
            return;
        }
        self.ping_owed = true;
        self.next_ping = None;
        let by = now + self.config.ping_timeout;
        self.deadline = Some(self.deadline.map_or(by, |d| d.min(by)));
    }

    /// Advances the timers to `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state != HeartbeatState::Alive {
            return;
        }
        if self.deadline.is_some_and(|d| d <= now) {
            self.state = HeartbeatState::TimedOut;
            self.next_ping = None;
            self.deadline = None;
            return;
        }
        if let Some(due) = self.next_ping.filter(|p| *p <= now) {
            self.ping_owed = true;
            self.next_ping = None;
            // From when the ping was due, not from when we were woken: a
            // late timer must not stretch the session's lifetime.
            self.deadline = Some(due + self.config.ping_timeout);
        }
    }

    /// When [`Heartbeat::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.next_ping, self.deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next thing to do, if any.
    pub fn poll_event(&mut self) -> Option<HeartbeatEvent> {
        if self.state == HeartbeatState::TimedOut {
            if self.timeout_reported {
                return None;
            }
            self.timeout_reported = true;
            return Some(HeartbeatEvent::TimedOut);
        }
        if std::mem::take(&mut self.ping_owed) {
            return Some(HeartbeatEvent::SendPing);
        }
        if self.pongs_owed > 0 {
            self.pongs_owed -= 1;
            return Some(HeartbeatEvent::SendPong);
        }
        None
    }

    /// Stops all timers (the session closed).
    pub fn stop(&mut self) {
        if self.state == HeartbeatState::Alive {
            self.state = HeartbeatState::Stopped;
        }
        self.next_ping = None;
        self.deadline = None;
        self.ping_owed = false;
        self.pongs_owed = 0;
    }
}

/// Upgrade timing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpgradeConfig {
    /// Time for the client to finish the upgrade with `5` after opening the
    /// new transport. Default 10 s, the reference's `upgradeTimeout`.
    pub timeout: Duration,
    /// After the probe, how often a `noop` is pushed down the old polling
    /// transport to end its pending GET. Default 100 ms, as the reference.
    pub noop_interval: Duration,
}

impl Default for UpgradeConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            noop_interval: Duration::from_millis(100),
        }
    }
}

/// What the upgrade asks the session to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpgradeEvent {
    /// Send `3probe` on the new transport.
    SendProbePong,
    /// Send `6` (noop) on the old polling transport if a GET is pending, to
    /// end it (the reference skips the noop when no GET is waiting). While
    /// the upgrade is [`UpgradeState::Probed`], a GET that arrives should be
    /// answered with `6` at once.
    SendNoop,
    /// The client sent `5`: the new transport is the session's now; flush
    /// the queued packets down it and close the old one.
    Completed,
    /// The upgrade failed (an unexpected packet, or the timeout): close the
    /// new transport; the session goes on over the old one.
    Aborted,
}

/// Where an upgrade is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpgradeState {
    /// The new transport is open; waiting for `2probe`.
    AwaitingProbe,
    /// `3probe` was sent; waiting for `5`. Polling GETs get a `noop` at once.
    Probed,
    /// Done: the new transport carries the session.
    Completed,
    /// Failed.
    Aborted,
}

/// The upgrade of a polling session to a new transport (WebSocket), server
/// side, fed with the packets received on the *new* transport.
///
/// ```
/// use std::time::Instant;
/// use duplex_engineio::{Packet, Upgrade, UpgradeConfig, UpgradeEvent, UpgradeState};
/// let now = Instant::now();
/// let mut up = Upgrade::new(UpgradeConfig::default(), now);
/// up.handle_packet(&Packet::probe_ping(), now);
/// assert_eq!(up.poll_event(), Some(UpgradeEvent::SendProbePong));
/// assert_eq!(up.poll_event(), Some(UpgradeEvent::SendNoop));
/// up.handle_packet(&Packet::Upgrade, now);
/// assert_eq!(up.poll_event(), Some(UpgradeEvent::Completed));
/// assert_eq!(up.state(), UpgradeState::Completed);
/// ```
#[derive(Clone, Debug)]
pub struct Upgrade {
    config: UpgradeConfig,
    state: UpgradeState,
    deadline: Instant,
    next_noop: Option<Instant>,
    probe_pongs_owed: u32,
    noop_owed: bool,
    outcome_reported: bool,
}

impl Upgrade {
    /// Starts an upgrade whose new transport opened at `now`.
    pub fn new(config: UpgradeConfig, now: Instant) -> Self {
        Self {
            config,
            state: UpgradeState::AwaitingProbe,
            deadline: now + config.timeout,
            next_noop: None,
            probe_pongs_owed: 0,
            noop_owed: false,
            outcome_reported: false,
        }
    }

    /// The current state.
    pub fn state(&self) -> UpgradeState {
        self.state
    }

    /// Whether the upgrade is under way (polling requests should be
    /// answered with `noop` once [`UpgradeState::Probed`]).
    pub fn is_pending(&self) -> bool {
        matches!(
            self.state,
            UpgradeState::AwaitingProbe | UpgradeState::Probed
        )
    }

    /// Records a packet received on the new transport. Once the upgrade
    /// completed, packets belong to the session and are ignored here.
    pub fn handle_packet(&mut self, packet: &Packet, now: Instant) {
        if !self.is_pending() {
            return;
        }
        match packet {
            Packet::Ping(_) if packet.is_probe() => {
                self.state = UpgradeState::Probed;
                self.probe_pongs_owed = self.probe_pongs_owed.saturating_add(1);
                self.noop_owed = true;
                self.next_noop = Some(now + self.config.noop_interval);
            }
            Packet::Upgrade => self.finish(UpgradeState::Completed),
            _ => self.finish(UpgradeState::Aborted),
        }
    }

    /// Aborts the upgrade (the new transport or the session closed).
    pub fn abort(&mut self) {
        if self.is_pending() {
            self.finish(UpgradeState::Aborted);
        }
    }

    fn finish(&mut self, state: UpgradeState) {
        self.state = state;
        self.next_noop = None;
        self.noop_owed = false;
    }

    /// Advances the timers to `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.is_pending() {
            return;
        }
        if self.deadline <= now {
            self.finish(UpgradeState::Aborted);
            return;
        }
        if self.next_noop.is_some_and(|t| t <= now) {
            self.noop_owed = true;
            self.next_noop = Some(now + self.config.noop_interval);
        }
    }

    /// When [`Upgrade::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.is_pending() {
            return None;
        }
        Some(
            self.next_noop
                .map_or(self.deadline, |t| t.min(self.deadline)),
        )
    }

    /// The next thing to do, if any.
    pub fn poll_event(&mut self) -> Option<UpgradeEvent> {
        if self.probe_pongs_owed > 0 {
            self.probe_pongs_owed -= 1;
            return Some(UpgradeEvent::SendProbePong);
        }
        if std::mem::take(&mut self.noop_owed) {
            return Some(UpgradeEvent::SendNoop);
        }
        if !self.is_pending() && !self.outcome_reported {
            self.outcome_reported = true;
            return Some(match self.state {
                UpgradeState::Completed => UpgradeEvent::Completed,
                _ => UpgradeEvent::Aborted,
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn conformance() -> HeartbeatConfig {
        HeartbeatConfig {
            ping_interval: 300 * MS,
            ping_timeout: 200 * MS,
        }
    }

    fn drain(hb: &mut Heartbeat) -> Vec<HeartbeatEvent> {
        std::iter::from_fn(|| hb.poll_event()).collect()
    }

    #[test]
    fn v4_first_ping_goes_out_one_interval_after_the_handshake() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(ProtocolVersion::V4, conformance(), t0);
        hb.handle_timeout(t0);
        assert!(drain(&mut hb).is_empty(), "no ping at once");
        hb.handle_timeout(t0 + 299 * MS);
        assert!(drain(&mut hb).is_empty());
        assert_eq!(hb.poll_timeout(), Some(t0 + 300 * MS));
        hb.handle_timeout(t0 + 300 * MS);
        assert_eq!(drain(&mut hb), [HeartbeatEvent::SendPing]);
        assert_eq!(hb.poll_timeout(), Some(t0 + 500 * MS));
    }

    #[test]
    fn a_late_wake_up_does_not_stretch_the_pong_deadline() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(ProtocolVersion::V4, conformance(), t0);
        // The runtime woke us 40 ms after the ping was due.
        hb.handle_timeout(t0 + 340 * MS);
        assert_eq!(drain(&mut hb), [HeartbeatEvent::SendPing]);
        assert_eq!(hb.poll_timeout(), Some(t0 + 500 * MS));
    }

    #[test]
    fn v4_session_dies_interval_plus_timeout_after_handshake_without_pong() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(ProtocolVersion::V4, conformance(), t0);
        hb.handle_timeout(t0 + 300 * MS);
        hb.handle_timeout(t0 + 499 * MS);
        assert_eq!(drain(&mut hb), [HeartbeatEvent::SendPing]);
        hb.handle_timeout(t0 + 500 * MS);
        assert_eq!(drain(&mut hb), [HeartbeatEvent::TimedOut]);
        assert_eq!(hb.state(), HeartbeatState::TimedOut);
        assert_eq!(hb.poll_timeout(), None);
        hb.handle_timeout(t0 + 10_000 * MS);
        assert!(drain(&mut hb).is_empty(), "timeout reported once");
    }

    #[test]
    fn v4_pong_schedules_the_next_ping_an_interval_later() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(ProtocolVersion::V4, conformance(), t0);
        hb.handle_timeout(t0 + 300 * MS);
        assert_eq!(drain(&mut hb), [HeartbeatEvent::SendPing]);
        hb.handle_packet(PacketType::Pong, t0 + 350 * MS).unwrap();
        assert_eq!(hb.poll_timeout(), Some(t0 + 650 * MS));
        hb.handle_timeout(t0 + 649 * MS);
        assert!(drain(&mut hb).is_empty());
        hb.handle_timeout(t0 + 650 * MS);
        assert_eq!(drain(&mut hb), [HeartbeatEvent::SendPing]);
        hb.handle_packet(PacketType::Pong, t0 + 700 * MS).unwrap();
        hb.handle_timeout(t0 + 1000 * MS);
        assert_eq!(drain(&mut hb), [HeartbeatEvent::SendPing]);
        assert_eq!(hb.state(), HeartbeatState::Alive);
    }

    #[test]
    fn v4_client_ping_is_an_error() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(ProtocolVersion::V4, conformance(), t0);
        assert!(matches!(
            hb.handle_packet(PacketType::Ping, t0),
            Err(Error::InvalidHeartbeatDirection)
        ));
    }

    #[test]
    fn v3_server_answers_pings_and_times_out_without_them() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(ProtocolVersion::V3, conformance(), t0);
        assert_eq!(hb.poll_timeout(), Some(t0 + 500 * MS));
        hb.handle_packet(PacketType::Ping, t0 + 100 * MS).unwrap();
        hb.handle_packet(PacketType::Ping, t0 + 101 * MS).unwrap();
        assert_eq!(
            drain(&mut hb),
            [HeartbeatEvent::SendPong, HeartbeatEvent::SendPong]
        );
        assert_eq!(hb.poll_timeout(), Some(t0 + 601 * MS));
        hb.handle_packet(PacketType::Message, t0 + 200 * MS)
            .unwrap();
        hb.handle_timeout(t0 + 699 * MS);
        assert!(drain(&mut hb).is_empty());
        hb.handle_timeout(t0 + 700 * MS);
        assert_eq!(drain(&mut hb), [HeartbeatEvent::TimedOut]);
        assert!(matches!(
            Heartbeat::new(ProtocolVersion::V3, conformance(), t0)
                .handle_packet(PacketType::Pong, t0),
            Err(Error::InvalidHeartbeatDirection)
        ));
    }

    #[test]
    fn a_probe_pings_at_once_and_times_out_after_ping_timeout() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(ProtocolVersion::V4, conformance(), t0);
        hb.probe(t0 + 100 * MS);
        assert_eq!(drain(&mut hb), [HeartbeatEvent::SendPing]);
        // No regular ping meanwhile: the probe's pong is awaited.
        assert_eq!(hb.poll_timeout(), Some(t0 + 300 * MS));
        hb.handle_timeout(t0 + 299 * MS);
        assert!(drain(&mut hb).is_empty());
        hb.handle_timeout(t0 + 300 * MS);
        assert_eq!(drain(&mut hb), [HeartbeatEvent::TimedOut]);

        // Answered: the heartbeat goes on from the pong.
        let mut hb = Heartbeat::new(ProtocolVersion::V4, conformance(), t0);
        hb.probe(t0 + 100 * MS);
        assert_eq!(drain(&mut hb), [HeartbeatEvent::SendPing]);
        hb.handle_packet(PacketType::Pong, t0 + 150 * MS).unwrap();
        assert_eq!(hb.poll_timeout(), Some(t0 + 450 * MS));
        hb.handle_timeout(t0 + 450 * MS);
        assert_eq!(drain(&mut hb), [HeartbeatEvent::SendPing]);
        assert_eq!(hb.state(), HeartbeatState::Alive);

        // A ping already awaiting its pong keeps its earlier deadline.
        let mut hb = Heartbeat::new(ProtocolVersion::V4, conformance(), t0);
        hb.handle_timeout(t0 + 300 * MS);
        assert_eq!(drain(&mut hb), [HeartbeatEvent::SendPing]);
        hb.probe(t0 + 400 * MS);
        assert_eq!(drain(&mut hb), [HeartbeatEvent::SendPing]);
        assert_eq!(hb.poll_timeout(), Some(t0 + 500 * MS));
    }

    #[test]
    fn a_v3_probe_sends_nothing_and_keeps_the_deadline() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(ProtocolVersion::V3, conformance(), t0);
        hb.probe(t0 + 100 * MS);
        assert!(drain(&mut hb).is_empty());
        assert_eq!(hb.poll_timeout(), Some(t0 + 500 * MS));
    }

    #[test]
    fn stopped_heartbeat_is_silent() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(ProtocolVersion::V4, conformance(), t0);
        hb.stop();
        hb.handle_timeout(t0 + 10_000 * MS);
        assert!(drain(&mut hb).is_empty());
        assert_eq!(hb.state(), HeartbeatState::Stopped);
        assert_eq!(hb.poll_timeout(), None);
    }

    #[test]
    fn upgrade_probe_noop_and_completion() {
        let t0 = Instant::now();
        let mut up = Upgrade::new(UpgradeConfig::default(), t0);
        assert_eq!(up.poll_timeout(), Some(t0 + Duration::from_secs(10)));
        up.handle_packet(&Packet::probe_ping(), t0 + MS);
        assert_eq!(up.state(), UpgradeState::Probed);
        assert_eq!(up.poll_event(), Some(UpgradeEvent::SendProbePong));
        assert_eq!(up.poll_event(), Some(UpgradeEvent::SendNoop));
        assert_eq!(up.poll_event(), None);
        assert_eq!(up.poll_timeout(), Some(t0 + 101 * MS));
        up.handle_timeout(t0 + 101 * MS);
        assert_eq!(up.poll_event(), Some(UpgradeEvent::SendNoop));
        up.handle_packet(&Packet::Upgrade, t0 + 150 * MS);
        assert_eq!(up.poll_event(), Some(UpgradeEvent::Completed));
        assert_eq!(up.poll_event(), None);
        assert_eq!(up.poll_timeout(), None);
        up.handle_packet(&Packet::message("after"), t0 + 200 * MS);
        assert_eq!(up.state(), UpgradeState::Completed);
    }

    #[test]
    fn upgrade_aborts_on_unexpected_packet_or_timeout() {
        let t0 = Instant::now();
        let mut up = Upgrade::new(UpgradeConfig::default(), t0);
        up.handle_packet(&Packet::message("hi"), t0);
        assert_eq!(up.poll_event(), Some(UpgradeEvent::Aborted));
        let mut up = Upgrade::new(UpgradeConfig::default(), t0);
        up.handle_packet(&Packet::ping(), t0);
        assert_eq!(up.state(), UpgradeState::Aborted);
        let mut up = Upgrade::new(UpgradeConfig::default(), t0);
        up.handle_timeout(t0 + Duration::from_secs(10));
        assert_eq!(up.poll_event(), Some(UpgradeEvent::Aborted));
        let mut up = Upgrade::new(UpgradeConfig::default(), t0);
        up.abort();
        assert_eq!(up.poll_event(), Some(UpgradeEvent::Aborted));
    }
}
