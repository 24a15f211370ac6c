//! The bounded per-session queue of outgoing messages.

use std::collections::VecDeque;

/// What a dialect's `send` ([`EngineIoServer::send`](crate::EngineIoServer::send), ...) does when a session's queue is
/// full: the application sees its client falling behind either way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OverflowPolicy {
    /// `send` fails with [`Error::QueueFull`](crate::Error::QueueFull); the
    /// message is not queued and the session goes on. The default.
    #[default]
    Reject,
    /// The session is closed with
    /// [`CloseReason::QueueOverflow`](crate::CloseReason::QueueOverflow) (a
    /// slow consumer is dropped) and `send` fails with
    /// [`Error::NoSuchSession`](crate::Error::NoSuchSession).
    CloseSession,
}

/// Bounds of a session's outgoing queue: messages the application sent that
/// no receiving request has carried yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueConfig {
    /// Most messages waiting. Default 1024.
    pub max_messages: usize,
    /// Most bytes of message content waiting. Default 8 MiB.
    pub max_bytes: usize,
    /// What happens beyond either bound.
    pub overflow: OverflowPolicy,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            max_messages: 1024,
            max_bytes: 8 << 20,
            overflow: OverflowPolicy::Reject,
        }
    }
}

/// A message that would not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Full;

#[derive(Debug)]
struct Queued<T> {
    item: T,
    /// Content bytes of the message.
    bytes: usize,
}

/// A FIFO of outgoing application messages with bounds on their count
/// and bytes.
#[derive(Debug)]
pub(crate) struct OutQueue<T> {
    items: VecDeque<Queued<T>>,
    messages: usize,
    bytes: usize,
    config: QueueConfig,
}

impl<T> OutQueue<T> {
    pub(crate) fn new(config: QueueConfig) -> Self {
        Self {
            items: VecDeque::new(),
            messages: 0,
            bytes: 0,
            config,
        }
    }

    /// Queues an application message of `bytes` bytes, or refuses it.
    pub(crate) fn push(&mut self, item: T, bytes: usize) -> Result<(), Full> {
        if self.messages >= self.config.max_messages
            || self.bytes.saturating_add(bytes) > self.config.max_bytes
        {
            return Err(Full);
        }
        self.messages += 1;
        self.bytes += bytes;
        self.items.push_back(Queued { item, bytes });
        Ok(())
    }

    /// Puts already accepted messages back at the front, in order (a
    /// Server-Sent Events replay). They count against the bounds again but
    /// are never refused: they were accepted once.
    pub(crate) fn requeue_front(&mut self, items: impl DoubleEndedIterator<Item = (T, usize)>) {
        for (item, bytes) in items.rev() {
            self.messages += 1;
            self.bytes += bytes;
            self.items.push_front(Queued { item, bytes });
        }
    }

    /// Whether nothing waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// How many more application messages fit by count.
    pub(crate) fn free_slots(&self) -> usize {
        self.config.max_messages.saturating_sub(self.messages)
    }

    /// The overflow policy.
    pub(crate) fn policy(&self) -> OverflowPolicy {
        self.config.overflow
    }

    /// Takes everything, oldest first.
    pub(crate) fn drain(&mut self) -> Vec<T> {
        self.messages = 0;
        self.bytes = 0;
        self.items.drain(..).map(|q| q.item).collect()
    }

    /// Takes the oldest item.
    pub(crate) fn pop(&mut self) -> Option<T> {
        let q = self.items.pop_front()?;
        self.messages -= 1;
        self.bytes -= q.bytes;
        Some(q.item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_count_messages_and_bytes() {
        let mut q = OutQueue::new(QueueConfig {
            max_messages: 2,
            max_bytes: 10,
            overflow: OverflowPolicy::Reject,
        });
        q.push("a", 4).unwrap();
        assert_eq!(q.push("b", 7), Err(Full), "bytes bound");
        q.push("c", 6).unwrap();
        assert_eq!(q.push("d", 0), Err(Full), "count bound");
        assert_eq!(q.free_slots(), 0);
        assert_eq!(q.pop(), Some("a"));
        assert_eq!(q.free_slots(), 1);
        assert_eq!(q.drain(), ["c"]);
        assert!(q.is_empty());
        q.push("e", 10).unwrap();
        q.requeue_front([("x", 5), ("y", 5)].into_iter());
        assert_eq!(q.drain(), ["x", "y", "e"]);
    }
}
