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
/// incoming data only sets a flag; the next `handle_timeout(now)` moves the
/// receive deadline to `now + receive * tolerance`. A silent peer is
/// therefore noticed between one and two deadlines after its last octet.
/// Outgoing heart-beats are sent every `send` interval whether or not frames
/// went out in between: an extra LF now and then is cheaper than the risk of
/// the peer timing out on a guess about when bytes left.
#[derive(Debug, Clone)]
pub(crate) struct HeartBeatTimer {
    intervals: HeartBeatIntervals,
    tolerance: u32,
    next_send: Option<Instant>,
    receive_deadline: Option<Instant>,
    received: bool,
}

/// What a timer tick asks the session to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Tick {
    pub(crate) send_heart_beat: bool,
    pub(crate) peer_silent: bool,
}

impl HeartBeatTimer {
    pub(crate) fn disarmed() -> HeartBeatTimer {
        HeartBeatTimer {
            intervals: HeartBeatIntervals::default(),
            tolerance: 2,
            next_send: None,
            receive_deadline: None,
            received: false,
        }
    }

    pub(crate) fn arm(&mut self, intervals: HeartBeatIntervals, tolerance: u32, now: Instant) {
        self.intervals = intervals;
        self.tolerance = tolerance.max(1);
        self.next_send = intervals.send.and_then(|d| now.checked_add(d));
        self.receive_deadline = intervals
            .receive
            .and_then(|d| now.checked_add(d * self.tolerance));
        self.received = false;
    }

    pub(crate) fn disarm(&mut self) {
        self.next_send = None;
        self.receive_deadline = None;
    }

    pub(crate) fn intervals(&self) -> HeartBeatIntervals {
        self.intervals
    }

    pub(crate) fn on_receive(&mut self) {
        self.received = true;
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        match (self.next_send, self.receive_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Tick {
        let mut tick = Tick::default();
        if let (Some(deadline), Some(every)) = (self.receive_deadline, self.intervals.receive) {
            if self.received {
                self.received = false;
                self.receive_deadline = now.checked_add(every * self.tolerance);
            } else if now >= deadline {
                tick.peer_silent = true;
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
    fn timer_sends_on_schedule_and_detects_silence() {
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
        // Data keeps the peer alive past its first deadline.
        timer.on_receive();
        assert!(!timer.handle_timeout(t0 + ms(1999)).peer_silent);
        assert!(!timer.handle_timeout(t0 + ms(2500)).peer_silent);
        // deadline moved to 1999 + 2000 = 3999
        assert!(!timer.handle_timeout(t0 + ms(3998)).peer_silent);
        assert!(timer.handle_timeout(t0 + ms(3999)).peer_silent);
    }
}
