//! Running one upgraded WebSocket for an endpoint: what the endpoint
//! transmits is written to it, what arrives is handed back, until either
//! side closes. Written once for every dialect.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use duplex_polling::Message;
use futures_util::{SinkExt, StreamExt};

/// Messages waiting to be written on one WebSocket; past it the client is
/// not reading and the connection is closed.
pub(crate) const WEBSOCKET_QUEUE: usize = 4096;

/// What the endpoint wants written on a WebSocket.
pub(crate) enum WsOut {
    Message(Message),
    Close(u16, String),
}

/// A queue past this many slots is freed once drained, so that a burst
/// does not leave an idle connection holding its high-water mark.
const OUTBOX_KEPT_SLOTS: usize = 8;

/// The queue between the core (which routes the endpoint's transmits
/// under its lock) and one WebSocket's task: a bounded channel of one
/// sender and one receiver. Not a tokio `mpsc` channel, which allocates a
/// block of 32 slots and a cache-padded channel (1.8 KB) when it is made:
/// this one is a hundred bytes, and its queue grows only with what is
/// actually queued (an idle connection holds a handful of slots).
struct Outbox {
    state: Mutex<OutboxState>,
}

struct OutboxState {
    queue: VecDeque<WsOut>,
    /// The receiver's task, when it waits for a message.
    waker: Option<Waker>,
    sender_gone: bool,
    receiver_gone: bool,
}

impl Outbox {
    fn lock(&self) -> MutexGuard<'_, OutboxState> {
        // The critical sections cannot panic; a poisoned queue is still whole.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A bounded channel of at most `limit` messages for one WebSocket.
pub(crate) fn outbox(limit: usize) -> (OutboxSender, OutboxReceiver) {
    let shared = Arc::new(Outbox {
        state: Mutex::new(OutboxState {
            queue: VecDeque::new(),
            waker: None,
            sender_gone: false,
            receiver_gone: false,
        }),
    });
    (
        OutboxSender {
            shared: shared.clone(),
            limit,
        },
        OutboxReceiver { shared },
    )
}

/// The core's end of an [`outbox`]; dropping it ends the receiver's stream
/// once the queued messages are taken.
pub(crate) struct OutboxSender {
    shared: Arc<Outbox>,
    limit: usize,
}

/// Why a message was not queued.
#[derive(Debug)]
pub(crate) struct SendFailed;

impl OutboxSender {
    /// Queues `out` without waiting; fails if the queue is full or the
    /// WebSocket's task is gone.
    pub(crate) fn try_send(&self, out: WsOut) -> Result<(), SendFailed> {
        let mut state = self.shared.lock();
        if state.receiver_gone || state.queue.len() >= self.limit {
            return Err(SendFailed);
        }
        state.queue.push_back(out);
        let waker = state.waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }
}

impl Drop for OutboxSender {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.sender_gone = true;
        let waker = state.waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The WebSocket task's end of an [`outbox`].
pub(crate) struct OutboxReceiver {
    shared: Arc<Outbox>,
}

/// What [`OutboxReceiver::try_recv`] found.
enum TryRecv {
    Message(WsOut),
    Empty,
    Disconnected,
}

impl OutboxReceiver {
    /// The next message, or `None` once the sender is gone and the queue
    /// is empty.
    async fn recv(&mut self) -> Option<WsOut> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<WsOut>> {
        let mut state = self.shared.lock();
        match Self::take(&mut state) {
            TryRecv::Message(out) => Poll::Ready(Some(out)),
            TryRecv::Disconnected => Poll::Ready(None),
            TryRecv::Empty => {
                match &mut state.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    slot => *slot = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }

    fn try_recv(&mut self) -> TryRecv {
        Self::take(&mut self.shared.lock())
    }

    fn take(state: &mut OutboxState) -> TryRecv {
        match state.queue.pop_front() {
            Some(out) => {
                if state.queue.is_empty() && state.queue.capacity() > OUTBOX_KEPT_SLOTS {
                    state.queue = VecDeque::new();
                }
                TryRecv::Message(out)
            }
            None if state.sender_gone => TryRecv::Disconnected,
            None => TryRecv::Empty,
        }
    }
}

impl Drop for OutboxReceiver {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.receiver_gone = true;
        // What was queued will never be written.
        state.queue = VecDeque::new();
    }
}

/// Moves messages between `ws` and the endpoint: `outgoing` carries the
/// endpoint's transmits, `incoming` takes each received message (and
/// returns `false` when the endpoint is gone), `sent` hears how many
/// messages each flush wrote. Returns when the socket closes or fails, or
/// when `outgoing` ends (the endpoint dropped the connection: closed with
/// 1001 Going Away).
///
/// `ws` is borrowed, not moved in: the caller's task then holds the
/// stream once, where a moved stream took its size more than once in the
/// task's future (the argument and the caller's binding).
pub(crate) async fn run_websocket<S>(
    ws: &mut crate::WebSocketStream<S>,
    mut outgoing: OutboxReceiver,
    mut incoming: impl FnMut(Message) -> bool,
    mut sent: impl FnMut(usize),
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        tokio::select! {
            out = outgoing.recv() => {
                // Everything queued is fed before one flush, so that a
                // burst costs one write.
                let mut next = out;
                let mut fed = 0;
                loop {
                    match next {
                        Some(WsOut::Message(m)) => {
                            if ws.feed(to_ws(m)).await.is_err() {
                                return;
                            }
                            fed += 1;
                        }
                        Some(WsOut::Close(code, reason)) => {
                            let _ = SinkExt::flush(ws).await;
                            let _ = ws.close_with(duplex_ws::CloseCode::from(code), &reason).await;
                            return;
                        }
                        None => {
                            let _ = SinkExt::flush(ws).await;
                            let _ = ws.close_with(duplex_ws::CloseCode::GOING_AWAY, "").await;
                            return;
                        }
                    }
                    match outgoing.try_recv() {
                        TryRecv::Message(m) => next = Some(m),
                        TryRecv::Empty => break,
                        TryRecv::Disconnected => next = None,
                    }
                }
                if SinkExt::flush(ws).await.is_err() {
                    return;
                }
                sent(fed);
            }
            message = ws.next() => match message {
                Some(Ok(message)) => {
                    if !incoming(from_ws(message)) {
                        return;
                    }
                }
                Some(Err(e)) => {
                    tracing::debug!("websocket failed: {e}");
                    return;
                }
                None => return,
            },
        }
    }
}

/// The one conversion of an endpoint's message to a WebSocket message:
/// both crates carry text as `duplex_core::Utf8Bytes`, so nothing is copied
/// or checked again.
fn to_ws(message: Message) -> duplex_ws::Message {
    match message {
        Message::Text(t) => duplex_ws::Message::Text(t),
        Message::Binary(b) => duplex_ws::Message::Binary(b),
    }
}

/// The one conversion of a received WebSocket message for an endpoint.
fn from_ws(message: duplex_ws::Message) -> Message {
    match message {
        duplex_ws::Message::Text(t) => Message::Text(t),
        duplex_ws::Message::Binary(b) => Message::Binary(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &'static str) -> WsOut {
        WsOut::Message(Message::Text(duplex_polling::Utf8Bytes::from_static(s)))
    }

    fn is_text(out: Option<WsOut>, want: &str) -> bool {
        matches!(out, Some(WsOut::Message(Message::Text(t))) if t.as_str() == want)
    }

    /// The outbox keeps order, refuses past its limit, ends after the
    /// sender is dropped (what was queued still comes out first), and
    /// refuses once the receiver is gone.
    #[tokio::test]
    async fn outbox_is_a_bounded_ordered_channel() {
        let (tx, mut rx) = outbox(2);
        tx.try_send(text("a")).unwrap();
        tx.try_send(text("b")).unwrap();
        assert!(tx.try_send(text("c")).is_err(), "past the limit");
        assert!(is_text(rx.recv().await, "a"));
        tx.try_send(text("c")).unwrap();
        assert!(is_text(rx.recv().await, "b"));
        assert!(matches!(rx.try_recv(), TryRecv::Message(_)));
        assert!(matches!(rx.try_recv(), TryRecv::Empty));
        tx.try_send(text("d")).unwrap();
        drop(tx);
        assert!(is_text(rx.recv().await, "d"));
        assert!(rx.recv().await.is_none());
        assert!(matches!(rx.try_recv(), TryRecv::Disconnected));

        let (tx, rx) = outbox(2);
        drop(rx);
        assert!(tx.try_send(text("x")).is_err(), "nobody to read it");
    }

    /// A receiver waiting on an empty outbox is woken by a send from
    /// another task, and by the sender's drop; a drained burst gives its
    /// queue back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn outbox_wakes_its_receiver() {
        let (tx, mut rx) = outbox(WEBSOCKET_QUEUE);
        let reader = tokio::spawn(async move {
            let mut got = 0;
            while let Some(out) = rx.recv().await {
                assert!(matches!(out, WsOut::Message(_)));
                got += 1;
            }
            (got, rx.shared.lock().queue.capacity())
        });
        for _ in 0..3 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            for _ in 0..100 {
                tx.try_send(text("m")).unwrap();
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        drop(tx);
        let (got, capacity) = tokio::time::timeout(std::time::Duration::from_secs(5), reader)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, 300);
        assert!(capacity <= OUTBOX_KEPT_SLOTS, "{capacity}");
    }
}
