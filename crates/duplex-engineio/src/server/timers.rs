//! The deadlines of all sessions, ordered, so that `poll_timeout` and
//! `handle_timeout` cost O(log n) instead of a scan of every session.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use super::SessionId;

/// One deadline per session (the earliest of its timers).
#[derive(Debug, Default)]
pub(crate) struct Deadlines {
    by_time: BTreeSet<(Instant, SessionId)>,
    by_session: HashMap<SessionId, Instant>,
}

impl Deadlines {
    /// Sets (or with `None` clears) the deadline of `session`.
    pub(crate) fn set(&mut self, session: &SessionId, at: Option<Instant>) {
        if let Some(old) = self.by_session.get(session).copied() {
            if Some(old) == at {
                return;
            }
            self.by_time.remove(&(old, session.clone()));
            self.by_session.remove(session);
        }
        if let Some(at) = at {
            self.by_time.insert((at, session.clone()));
            self.by_session.insert(session.clone(), at);
        }
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// Removes and returns the sessions whose deadline is `now` or earlier,
    /// earliest first.
    pub(crate) fn take_due(&mut self, now: Instant) -> Vec<SessionId> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn earliest_first_and_rescheduling_replaces() {
        let (a, b) = (SessionId::from("a"), SessionId::from("b"));
        let t0 = Instant::now();
        let mut t = Deadlines::default();
        t.set(&a, Some(t0 + Duration::from_secs(5)));
        t.set(&b, Some(t0 + Duration::from_secs(3)));
        assert_eq!(t.next(), Some(t0 + Duration::from_secs(3)));
        t.set(&b, Some(t0 + Duration::from_secs(9)));
        assert_eq!(t.next(), Some(t0 + Duration::from_secs(5)));
        assert!(t.take_due(t0 + Duration::from_secs(4)).is_empty());
        assert_eq!(
            t.take_due(t0 + Duration::from_secs(9)),
            [a.clone(), b.clone()]
        );
        assert_eq!(t.next(), None);
        t.set(&a, Some(t0));
        t.set(&a, None);
        assert_eq!(t.next(), None);
    }
}
