//! The deadlines of many sessions, ordered, so that a server's
//! `poll_timeout` and `handle_timeout` cost O(log n) instead of a scan of
//! every session. Engine.IO, Socket.IO and the polling dialects each keep one
//! deadline per session (the earliest of that session's timers) in it.

use std::collections::BTreeSet;
use std::hash::Hash;
use std::time::Instant;

/// One deadline per key (a session id, a connection id), earliest first.
/// Keys are hashed as [`FastMap`](crate::FastMap)'s are: ids the server
/// generates, never keys a peer chooses.
///
/// The set holds no clock: the machine that owns it is told the time and
/// asks for what is due.
#[derive(Debug)]
pub struct Deadlines<K> {
    by_time: BTreeSet<(Instant, K)>,
    /// Looked up on every packet: a session's deadline moves with it.
    by_key: crate::FastMap<K, Instant>,
}

impl<K> Default for Deadlines<K> {
    // Derived `Default` would ask `K: Default`, which no session id is.
    fn default() -> Self {
        Self {
            by_time: BTreeSet::new(),
            by_key: crate::FastMap::default(),
        }
    }
}

impl<K: Clone + Eq + Hash + Ord> Deadlines<K> {
    /// Sets (or with `None` clears) the deadline of `key`, replacing the one
    /// it had.
    pub fn set(&mut self, key: &K, at: Option<Instant>) {
        // One lookup when the key has a deadline already (the usual case:
        // a session's deadline moves on every packet).
        if let Some(slot) = self.by_key.get_mut(key) {
            let old = *slot;
            if Some(old) == at {
                return;
            }
            self.by_time.remove(&(old, key.clone()));
            match at {
                Some(at) => {
                    *slot = at;
                    self.by_time.insert((at, key.clone()));
                }
                None => {
                    self.by_key.remove(key);
                }
            }
            return;
        }
        if let Some(at) = at {
            self.by_time.insert((at, key.clone()));
            self.by_key.insert(key.clone(), at);
        }
    }

    /// The earliest deadline, if any key has one.
    pub fn next(&self) -> Option<Instant> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// Removes and returns the keys whose deadline is `now` or earlier,
    /// earliest first.
    pub fn take_due(&mut self, now: Instant) -> Vec<K> {
        let mut due = Vec::new();
        while self.by_time.first().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, key)) = self.by_time.pop_first() {
                self.by_key.remove(&key);
                due.push(key);
            }
        }
        due
    }

    /// How many keys have a deadline.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether no key has a deadline.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn earliest_first_and_rescheduling_replaces() {
        let (a, b) = ("a".to_owned(), "b".to_owned());
        let t0 = Instant::now();
        let mut t = Deadlines::default();
        t.set(&a, Some(t0 + Duration::from_secs(5)));
        t.set(&b, Some(t0 + Duration::from_secs(3)));
        assert_eq!(t.next(), Some(t0 + Duration::from_secs(3)));
        t.set(&b, Some(t0 + Duration::from_secs(9)));
        assert_eq!(t.next(), Some(t0 + Duration::from_secs(5)));
        assert_eq!(t.len(), 2);
        assert!(t.take_due(t0 + Duration::from_secs(4)).is_empty());
        assert_eq!(
            t.take_due(t0 + Duration::from_secs(9)),
            [a.clone(), b.clone()]
        );
        assert_eq!(t.next(), None);
        t.set(&a, Some(t0));
        t.set(&a, None);
        assert!(t.is_empty());
        assert_eq!(t.next(), None);
    }

    #[test]
    fn setting_the_same_deadline_again_keeps_one_entry() {
        let t0 = Instant::now();
        let mut t = Deadlines::default();
        t.set(&1u32, Some(t0));
        t.set(&1u32, Some(t0));
        assert_eq!(t.len(), 1);
        assert_eq!(t.take_due(t0), [1u32]);
        assert!(t.is_empty());
    }

    #[test]
    fn equal_deadlines_are_all_due() {
        let t0 = Instant::now();
        let mut t = Deadlines::default();
        for key in 0u32..4 {
            t.set(&key, Some(t0));
        }
        assert_eq!(t.take_due(t0), [0, 1, 2, 3]);
        assert_eq!(t.next(), None);
    }
}
