//! Heart-beat negotiation (STOMP 1.1+) and the timer both sessions share.

use std::time::{Duration, Instant};

/// The two numbers of a `heart-beat` header, as one side declares them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeartBeat {
    /// The smallest interval at which this side can send heart-beats;
    /// zero when it cannot send any.
    pub send: Duration,
    /// The interval at which this side wants to receive heart-beats; zero
    /// when it does not want any.
    pub receive: Duration,
}

impl HeartBeat {
    /// No heart-beats in either direction (`0,0`, also what a missing header
    /// means).
    pub const NONE: HeartBeat = HeartBeat {
        send: Duration::ZERO,
        receive: Duration::ZERO,
    };

    /// Both directions at `interval`.
    pub fn every(interval: Duration) -> HeartBeat {
        HeartBeat {
            send: interval,
            receive: interval,
        }
    }

    /// Parses a `heart-beat` header value: two non-negative integers in
    /// milliseconds separated by a comma (spaces around them tolerated).
    pub fn parse(value: &str) -> Option<HeartBeat> {
        let (send, receive) = value.split_once(',')?;
        let millis = |s: &str| -> Option<Duration> {
            let s = s.trim();
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse::<u64>().ok().map(Duration::from_millis)
        };
        Some(HeartBeat {
            send: millis(send)?,
            receive: millis(receive)?,
        })
    }

    /// The header value, `<send>,<receive>` in milliseconds.
    pub fn to_header_value(self) -> String {
        format!("{},{}", self.send.as_millis(), self.receive.as_millis())
    }

    /// The effective intervals for the side that declared `self`, once it
    /// knows what the peer declared: it sends every `max(self.send,
    /// peer.receive)` unless either is zero, and expects data every
    /// `max(peer.send, self.receive)` unless either is zero.
    pub fn negotiate(self, peer: HeartBeat) -> HeartBeatIntervals {
        let pick = |a: Duration, b: Duration| (!a.is_zero() && !b.is_zero()).then(|| a.max(b));
        HeartBeatIntervals {
            send: pick(self.send, peer.receive),
            receive: pick(peer.send, self.receive),
        }
    }
}

/// The heart-beat intervals in force on a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeartBeatIntervals {
    /// How often this side sends an EOL when it has nothing else to send.
    pub send: Option<Duration>,
    /// How often the peer promised to send something.
    pub receive: Option<Duration>,
}

/// Sends heart-beats on a fixed schedule and notices a silent peer.
///
/// The machine never reads a clock, and `receive` is not told the time, so
/// incoming data only sets a flag; the timer looks at it every quarter of
/// the receive interval (a check), and the last check that found data
/// stands for the peer's last octet, at most one check late. The peer is
/// declared silent one check before `receive * tolerance` has passed since
/// that check, so a peer silent for `receive * tolerance` is always
/// noticed, and one silent for less than `receive * (tolerance - 1/4)`
/// never is. Outgoing heart-beats are sent every `send` interval whether or
/// not frames went out in between: an extra LF now and then is cheaper
/// than the risk of the peer timing out on a guess about when bytes left.
#[derive(Debug, Clone)]
pub(crate) struct HeartBeatTimer {
    intervals: HeartBeatIntervals,
    tolerance: u32,
    next_send: Option<Instant>,
    /// When the receive side is next looked at.
    next_check: Option<Instant>,
    /// The last check that found data (or when the timer was armed);
    /// `None` while disarmed, since the machine never reads a clock.
    last_heard: Option<Instant>,
    received: bool,
}

/// What a timer tick asks the session to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Tick {
    pub(crate) send_heart_beat: bool,
    pub(crate) peer_silent: bool,
}

/// How many checks per receive interval.
const CHECKS_PER_INTERVAL: u32 = 4;

impl HeartBeatTimer {
    pub(crate) fn disarmed() -> HeartBeatTimer {
        HeartBeatTimer {
            intervals: HeartBeatIntervals::default(),
            tolerance: 2,
            next_send: None,
            next_check: None,
            last_heard: None,
            received: false,
        }
    }

    pub(crate) fn arm(&mut self, intervals: HeartBeatIntervals, tolerance: u32, now: Instant) {
        self.intervals = intervals;
        self.tolerance = tolerance.max(1);
        self.next_send = intervals.send.and_then(|d| now.checked_add(d));
        self.last_heard = Some(now);
        self.received = false;
        self.next_check = self.receive_step().and_then(|step| now.checked_add(step));
    }

    pub(crate) fn disarm(&mut self) {
        self.next_send = None;
        self.next_check = None;
    }

    pub(crate) fn intervals(&self) -> HeartBeatIntervals {
        self.intervals
    }

    pub(crate) fn on_receive(&mut self) {
        self.received = true;
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        match (self.next_send, self.next_check) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The time between checks, at least a millisecond.
    fn receive_step(&self) -> Option<Duration> {
        self.intervals
            .receive
            .map(|every| (every / CHECKS_PER_INTERVAL).max(Duration::from_millis(1)))
    }

    /// When the peer counts as silent unless a check finds data first.
    fn silent_at(&self, step: Duration) -> Option<Instant> {
        let limit = self.intervals.receive?.checked_mul(self.tolerance)?;
        self.last_heard?
            .checked_add(limit.saturating_sub(step).max(step))
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Tick {
        let mut tick = Tick::default();
        if let (Some(check), Some(step)) = (self.next_check, self.receive_step()) {
            if std::mem::take(&mut self.received) {
                self.last_heard = Some(now);
            }
            let silent_at = self.silent_at(step);
            if silent_at.is_some_and(|at| now >= at) {
                tick.peer_silent = true;
            } else if now >= check {
                let next = now.checked_add(step);
                self.next_check = match (next, silent_at) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
        }
        if let (Some(due), Some(every)) = (self.next_send, self.intervals.send) {
            if now >= due {
                tick.send_heart_beat = true;
                self.next_send = now.checked_add(every);
            }
        }
        tick
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_negotiate_per_specification() {
        assert_eq!(HeartBeat::parse("0,0"), Some(HeartBeat::NONE));
        assert_eq!(
            HeartBeat::parse("10000, 20000"),
            Some(HeartBeat {
                send: Duration::from_secs(10),
                receive: Duration::from_secs(20)
            })
        );
        for bad in ["", "1", "a,b", "-1,0", "1,2,3", ",1"] {
            assert_eq!(HeartBeat::parse(bad), None, "{bad:?}");
        }
        let ms = Duration::from_millis;
        // Client <cx>,<cy> = 100,200; server <sx>,<sy> = 300,50.
        let client = HeartBeat {
            send: ms(100),
            receive: ms(200),
        };
        let server = HeartBeat {
            send: ms(300),
            receive: ms(50),
        };
        // client to server every max(cx, sy) = 100; server to client max(sx, cy) = 300
        assert_eq!(
            client.negotiate(server),
            HeartBeatIntervals {
                send: Some(ms(100)),
                receive: Some(ms(300))
            }
        );
        assert_eq!(
            server.negotiate(client),
            HeartBeatIntervals {
                send: Some(ms(300)),
                receive: Some(ms(100))
            }
        );
        // A zero on either end switches that direction off.
        let silent = HeartBeat {
            send: Duration::ZERO,
            receive: ms(10),
        };
        assert_eq!(
            silent.negotiate(server),
            HeartBeatIntervals {
                send: None,
                receive: Some(ms(300))
            }
        );
        assert_eq!(
            HeartBeat::NONE.negotiate(server),
            HeartBeatIntervals::default()
        );
        assert_eq!(client.to_header_value(), "100,200");
    }

    #[test]
    fn timer_sends_on_schedule_and_detects_silence_within_the_tolerance() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut timer = HeartBeatTimer::disarmed();
        assert_eq!(timer.poll_timeout(), None);
        timer.arm(
            HeartBeatIntervals {
                send: Some(ms(100)),
                receive: Some(ms(1000)),
            },
            2,
            t0,
        );
        assert_eq!(timer.poll_timeout(), Some(t0 + ms(100)));
        assert_eq!(timer.handle_timeout(t0 + ms(50)), Tick::default());
        let tick = timer.handle_timeout(t0 + ms(100));
        assert!(tick.send_heart_beat && !tick.peer_silent);
        assert_eq!(timer.poll_timeout(), Some(t0 + ms(200)));
    }

    /// Drives the timer as an adapter would (waking at each deadline, the
    /// peer sending steadily until `last_data`) and returns when silence
    /// was noticed.
    fn silence_noticed(receive: u64, tolerance: u32, last_data: u64) -> Duration {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut timer = HeartBeatTimer::disarmed();
        timer.arm(
            HeartBeatIntervals {
                send: None,
                receive: Some(ms(receive)),
            },
            tolerance,
            t0,
        );
        let mut previous = t0;
        loop {
            let at = timer.poll_timeout().expect("armed");
            if previous < t0 + ms(last_data) {
                // Some data landed since the previous wake-up.
                timer.on_receive();
            }
            previous = at;
            if timer.handle_timeout(at).peer_silent {
                return at - t0;
            }
            assert!(at - t0 < ms(100 * receive), "never noticed");
        }
    }

    #[test]
    fn silence_is_noticed_by_tolerance_times_the_interval_after_the_last_octet() {
        let ms = Duration::from_millis;
        for last in [0, 1, 249, 250, 251, 999, 1000, 1001, 1600, 3333] {
            let noticed = silence_noticed(1000, 2, last);
            let silent_for = noticed - ms(last);
            assert!(silent_for <= ms(2000), "last {last}: {silent_for:?} > 2x");
            assert!(
                silent_for >= ms(1750),
                "last {last}: {silent_for:?} too eager"
            );
        }
        // Tolerance 1 still waits most of an interval.
        let silent_for = silence_noticed(1000, 1, 400) - ms(400);
        assert!(
            silent_for <= ms(1000) && silent_for >= ms(750),
            "{silent_for:?}"
        );
    }
}
