//! The bounded queue of packets waiting for a session's transport.

use std::collections::VecDeque;

use crate::Packet;

/// Bounds of a session's send queue: packets the application sent that no
/// poll or WebSocket has carried yet. They bound what is sent between two
/// flushes (each `poll_transmit`): a message an idle WebSocket session
/// takes at once, without waiting in the queue, counts until the next
/// flush all the same. What was handed out is the caller's to bound (its
/// write buffer; [`Server::writable`](super::Server::writable)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueLimits {
    /// Most application messages waiting. Default 1024.
    pub max_messages: usize,
    /// Most bytes of message content waiting. Default 8 MiB.
    pub max_bytes: usize,
    /// Beyond either bound: `true` closes the session
    /// ([`CloseReason::QueueOverflow`](super::CloseReason::QueueOverflow)),
    /// `false` (the default) only refuses the message.
    pub close_on_overflow: bool,
}

impl Default for QueueLimits {
    fn default() -> Self {
        Self {
            max_messages: 1024,
            max_bytes: 8 << 20,
            close_on_overflow: false,
        }
    }
}

/// A FIFO of packets; only application messages count against the bounds,
/// since refusing a heartbeat would kill a healthy session.
#[derive(Debug)]
pub(crate) struct SendQueue {
    packets: VecDeque<Packet>,
    messages: usize,
    bytes: usize,
    limits: QueueLimits,
}

impl SendQueue {
    pub(crate) fn new(limits: QueueLimits) -> Self {
        Self {
            packets: VecDeque::new(),
            messages: 0,
            bytes: 0,
            limits,
        }
    }

    /// Whether `count` messages of `bytes` bytes in all would be accepted.
    pub(crate) fn fits(&self, count: usize, bytes: usize) -> bool {
        self.messages.saturating_add(count) <= self.limits.max_messages
            && self.bytes.saturating_add(bytes) <= self.limits.max_bytes
    }

    /// Queues an application message of `bytes` content bytes; false if
    /// it does not fit.
    pub(crate) fn push(&mut self, packet: Packet, bytes: usize) -> bool {
        if !self.fits(1, bytes) {
            return false;
        }
        self.messages += 1;
        self.bytes += bytes;
        self.packets.push_back(packet);
        true
    }

    /// Queues one of the protocol's own packets (never refused).
    pub(crate) fn push_control(&mut self, packet: Packet) {
        self.packets.push_back(packet);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    pub(crate) fn free_slots(&self) -> usize {
        self.limits.max_messages.saturating_sub(self.messages)
    }

    pub(crate) fn close_on_overflow(&self) -> bool {
        self.limits.close_on_overflow
    }

    /// Takes everything, oldest first. The queue's buffer goes with it
    /// (a `Vec` from a `VecDeque` reuses its allocation): an idle session
    /// keeps no buffer. The queue then grows again from nothing: one
    /// allocation for a flush of up to four packets (the collect into a
    /// new `Vec` this replaced made one per flush too), a few more as it
    /// doubles for a larger one.
    pub(crate) fn drain(&mut self) -> Vec<Packet> {
        self.messages = 0;
        self.bytes = 0;
        Vec::from(std::mem::take(&mut self.packets))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_count_messages_and_bytes_but_not_control_packets() {
        let mut q = SendQueue::new(QueueLimits {
            max_messages: 2,
            max_bytes: 10,
            close_on_overflow: false,
        });
        assert!(q.push(Packet::message("a"), 4));
        q.push_control(Packet::ping());
        assert!(!q.push(Packet::message("b"), 7), "bytes bound");
        assert!(q.push(Packet::message("c"), 6));
        assert!(!q.push(Packet::message("d"), 0), "count bound");
        q.push_control(Packet::pong());
        assert_eq!(q.free_slots(), 0);
        assert_eq!(
            q.drain(),
            [
                Packet::message("a"),
                Packet::ping(),
                Packet::message("c"),
                Packet::pong()
            ]
        );
        assert!(q.is_empty());
        assert_eq!(q.free_slots(), 2);
    }

    #[test]
    fn a_drained_queue_keeps_no_buffer() {
        let mut q = SendQueue::new(QueueLimits::default());
        for _ in 0..5 {
            q.push_control(Packet::ping());
        }
        assert_eq!(q.drain().len(), 5);
        // An idle session's queue costs nothing beyond its fields.
        assert_eq!(q.packets.capacity(), 0);
        assert!(q.push(Packet::message("a"), 1));
        assert_eq!(q.drain(), [Packet::message("a")]);
    }
}
