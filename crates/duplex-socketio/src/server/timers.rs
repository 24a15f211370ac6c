//! Deadlines by session, earliest first: one entry per connection, the
//! earliest of its connect timeout and its sockets' ack timeouts.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::time::Instant;

#[derive(Debug)]
pub(super) struct Timers<K> {
    by_time: BTreeSet<(Instant, K)>,
    by_session: HashMap<K, Instant>,
}

impl<K> Default for Timers<K> {
    fn default() -> Self {
        Self {
            by_time: BTreeSet::new(),
            by_session: HashMap::new(),
        }
    }
}

impl<K: Clone + Eq + Hash + Ord> Timers<K> {
    /// Sets (or with `None` clears) the deadline of `session`.
    pub(super) fn set(&mut self, session: &K, at: Option<Instant>) {
        if let Some(old) = self.by_session.remove(session) {
            if Some(old) == at {
                self.by_session.insert(session.clone(), old);
                return;
            }
            self.by_time.remove(&(old, session.clone()));
        }
        if let Some(at) = at {
            self.by_time.insert((at, session.clone()));
            self.by_session.insert(session.clone(), at);
        }
    }

    pub(super) fn next(&self) -> Option<Instant> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// Removes and returns the sessions whose deadline is at or before `now`.
    pub(super) fn take_due(&mut self, now: Instant) -> Vec<K> {
        let mut due = Vec::new();
        while self.by_time.first().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, session)) = self.by_time.pop_first() {
                self.by_session.remove(&session);
                due.push(session);
            }
        }
        due
    }
}
