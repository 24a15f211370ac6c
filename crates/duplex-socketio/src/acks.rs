//! Acknowledgement bookkeeping: ids for outgoing events that want an
//! answer, matching of the answers, and their timeouts.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::Instant;

use crate::Error;

/// The events of one socket (one namespace of a connection) that await an
/// acknowledgement, each with a caller's token `T` (a callback id, a
/// channel...).
///
/// Ids count up from 0 as in the reference client and server. Timeouts are
/// optional per event, driven by [`Acks::handle_timeout`] and
/// [`Acks::poll_timeout`]; expired tokens come out of [`Acks::poll_expired`].
///
/// ```
/// use std::time::{Duration, Instant};
/// use duplex_socketio::Acks;
///
/// let now = Instant::now();
/// let mut acks = Acks::new(1024);
/// let a = acks.register("first", Some(now + Duration::from_secs(5))).unwrap();
/// let b = acks.register("second", Some(now + Duration::from_secs(1))).unwrap();
/// assert_eq!((a, b), (0, 1));
/// assert_eq!(acks.resolve(a), Some("first"));
/// acks.handle_timeout(now + Duration::from_secs(1));
/// assert_eq!(acks.poll_expired(), Some((1, "second")));
/// assert!(acks.is_empty());
/// ```
#[derive(Debug)]
pub struct Acks<T> {
    next_id: u64,
    pending: HashMap<u64, (Option<Instant>, T)>,
    deadlines: BinaryHeap<Reverse<(Instant, u64)>>,
    expired: VecDeque<(u64, T)>,
    max_pending: usize,
}

impl<T> Acks<T> {
    /// An empty set that holds at most `max_pending` awaited acks (the
    /// reference has no limit; 1024 is a sensible default).
    pub fn new(max_pending: usize) -> Self {
        Self {
            next_id: 0,
            pending: HashMap::new(),
            deadlines: BinaryHeap::new(),
            expired: VecDeque::new(),
            max_pending,
        }
    }

    /// Allocates the ack id of an outgoing event, remembering `token` until
    /// the ack arrives or `deadline` passes.
    pub fn register(&mut self, token: T, deadline: Option<Instant>) -> Result<u64, Error> {
        self.try_register(token, deadline).map_err(|(e, _)| e)
    }

    /// As [`Acks::register`], handing the token back when it is refused
    /// (for tokens that must not be lost, like a callback still to call).
    pub fn try_register(&mut self, token: T, deadline: Option<Instant>) -> Result<u64, (Error, T)> {
        if self.pending.len() >= self.max_pending {
            let limit = self.max_pending;
            return Err((Error::TooManyPendingAcks { limit }, token));
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        if let Some(at) = deadline {
            self.deadlines.push(Reverse((at, id)));
        }
        self.pending.insert(id, (deadline, token));
        Ok(id)
    }

    /// Matches a received ACK: the token of `id`, or `None` for an unknown
    /// or already answered (or expired) id, which the reference ignores.
    pub fn resolve(&mut self, id: u64) -> Option<T> {
        let (_, token) = self.pending.remove(&id)?;
        self.compact();
        Some(token)
    }

    /// Advances the timers: every ack whose deadline is at or before `now`
    /// expires.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&Reverse((at, id))) = self.deadlines.peek() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            if self.pending.get(&id).is_some_and(|(d, _)| *d == Some(at)) {
                if let Some((_, token)) = self.pending.remove(&id) {
                    self.expired.push_back((id, token));
                }
            }
        }
        self.compact();
    }

    /// The earliest deadline still pending.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.peek().map(|Reverse((at, _))| *at)
    }

    /// The next expired ack (its id and token).
    pub fn poll_expired(&mut self) -> Option<(u64, T)> {
        self.expired.pop_front()
    }

    /// Drops every pending ack (the socket disconnected) and returns their
    /// ids and tokens, for the caller to fail them.
    pub fn clear(&mut self) -> Vec<(u64, T)> {
        self.deadlines.clear();
        let mut all: Vec<(u64, T)> = self.pending.drain().map(|(id, (_, t))| (id, t)).collect();
        all.sort_unstable_by_key(|(id, _)| *id);
        all
    }

    /// Number of awaited acks.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether no ack is awaited.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Keeps the deadline heap from growing with answered acks: drops
    /// stale entries at its top, and rebuilds it when mostly stale.
    fn compact(&mut self) {
        while let Some(&Reverse((_, id))) = self.deadlines.peek() {
            if self.pending.contains_key(&id) {
                break;
            }
            self.deadlines.pop();
        }
        if self.deadlines.len() > 2 * self.pending.len() + 16 {
            self.deadlines = self
                .pending
                .iter()
                .filter_map(|(id, (d, _))| d.map(|at| Reverse((at, *id))))
                .collect();
        }
    }
}
