//! [`SockJsSocket`]: one SockJS session as the application sees it, shaped
//! like a WebSocket whatever transport the client picked.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};

use duplex_polling::{CloseReason, Message, OpenInfo, SessionId};
use futures_core::Stream;
use futures_sink::Sink;
use tokio::sync::mpsc;

use super::app::{Driver, Opened};
use super::error::SockJsError;
use crate::http::WeakPollingService;

/// Closes the session as a WebSocket would when the last handle on it is
/// dropped. Weak, so that a socket never keeps a stopped service alive
/// from its destructor.
pub(crate) struct SessionGuard {
    session: SessionId,
    driver: WeakPollingService<duplex_polling::SockJsServer, super::app::SockJsApp>,
}

impl std::fmt::Debug for SessionGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionGuard")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        if let Some(driver) = self.driver.upgrade() {
            driver.with(|server, _, now, _| {
                let _ = server.close_normally(&self.session, now);
            });
        }
    }
}

type SendFuture = Pin<Box<dyn Future<Output = Result<(), SockJsError>> + Send>>;

/// The sending half of a session: cheap to clone, usable from any task.
/// The session stays open while the socket or any sender is alive.
#[derive(Clone)]
pub struct SockJsSender {
    session: SessionId,
    driver: Driver,
    _guard: Arc<SessionGuard>,
}

impl std::fmt::Debug for SockJsSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SockJsSender")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl SockJsSender {
    /// Queues `message` on the session; waits while the session's queue is
    /// full (a client that does not poll slows the sender down).
    pub async fn send(&self, message: impl Into<Message>) -> Result<(), SockJsError> {
        let message = message.into();
        let queued = self
            .driver
            .with(|_, app, _, _| app.queue_send(&self.session, message))?;
        queued.await.map_err(|_| SockJsError::Closed)?
    }

    /// Sends a text message.
    pub async fn send_text(&self, text: impl Into<String>) -> Result<(), SockJsError> {
        self.send(Message::text(text)).await
    }

    /// Closes the session with `code` and `reason` (`c[code,"reason"]`, or
    /// a WebSocket close on the raw endpoint), after the queued messages.
    pub async fn close(&self, code: u16, reason: &str) -> Result<(), SockJsError> {
        self.driver.with(|server, _, now, _| {
            server
                .close(&self.session, code, reason, now)
                .map_err(|_| SockJsError::Closed)
        })
    }

    /// Closes the session as done (`c[1000,"Normal closure"]`).
    fn close_normally(&self) -> Result<(), SockJsError> {
        self.driver.with(|server, _, now, _| {
            server
                .close_normally(&self.session, now)
                .map_err(|_| SockJsError::Closed)
        })
    }
}

/// One SockJS session: a [`Stream`] of received messages and a [`Sink`]
/// of messages to send, closed with a code and a reason, as a WebSocket is.
///
/// The stream ends when the session closes ([`SockJsSocket::close_reason`]
/// says why). Dropping the socket and every [`SockJsSender`] closes the
/// session with `1000 "Normal closure"`.
pub struct SockJsSocket {
    sender: SockJsSender,
    info: OpenInfo,
    incoming: mpsc::Receiver<Message>,
    closed: Arc<OnceLock<CloseReason>>,
    /// The sink's send in flight. In a mutex only so that the socket is
    /// `Sync` (it is reached through `&mut self`, never locked).
    sending: std::sync::Mutex<Option<SendFuture>>,
}

impl std::fmt::Debug for SockJsSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SockJsSocket")
            .field("session", &self.sender.session)
            .field("transport", &self.info.transport)
            .finish_non_exhaustive()
    }
}

impl SockJsSocket {
    pub(crate) fn new(opened: Opened, driver: Driver) -> SockJsSocket {
        let guard = Arc::new(SessionGuard {
            session: opened.session.clone(),
            driver: driver.downgrade(),
        });
        SockJsSocket {
            sender: SockJsSender {
                session: opened.session,
                driver,
                _guard: guard,
            },
            info: opened.info,
            incoming: opened.incoming,
            closed: opened.closed,
            sending: std::sync::Mutex::new(None),
        }
    }

    /// The session id (the server's own, not the client's session key).
    pub fn id(&self) -> &SessionId {
        &self.sender.session
    }

    /// The request that opened the session: transport, path, query,
    /// headers.
    pub fn info(&self) -> &OpenInfo {
        &self.info
    }

    /// A sender for other tasks.
    pub fn sender(&self) -> SockJsSender {
        self.sender.clone()
    }

    /// The next received message; `None` once the session is closed.
    pub async fn recv(&mut self) -> Option<Message> {
        self.incoming.recv().await
    }

    /// Sends a message (see [`SockJsSender::send`]), after any message
    /// still in flight through the [`Sink`].
    pub async fn send(&mut self, message: impl Into<Message>) -> Result<(), SockJsError> {
        std::future::poll_fn(|cx| self.poll_sending(cx)).await?;
        self.sender.send(message).await
    }

    /// Sends a text message.
    pub async fn send_text(&mut self, text: impl Into<String>) -> Result<(), SockJsError> {
        self.send(Message::text(text)).await
    }

    /// Closes the session (see [`SockJsSender::close`]), after any message
    /// still in flight through the [`Sink`].
    pub async fn close(&mut self, code: u16, reason: &str) -> Result<(), SockJsError> {
        std::future::poll_fn(|cx| self.poll_sending(cx)).await?;
        self.sender.close(code, reason).await
    }

    /// Why the session closed, once it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.closed.get().copied()
    }
}

impl Stream for SockJsSocket {
    type Item = Message;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        self.get_mut().incoming.poll_recv(cx)
    }
}

impl SockJsSocket {
    fn sending(&mut self) -> &mut Option<SendFuture> {
        self.sending
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn poll_sending(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), SockJsError>> {
        let slot = self.sending();
        if let Some(fut) = slot.as_mut() {
            let result = ready!(fut.as_mut().poll(cx));
            *slot = None;
            result?;
        }
        Poll::Ready(Ok(()))
    }
}

impl Sink<Message> for SockJsSocket {
    type Error = SockJsError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SockJsError>> {
        self.get_mut().poll_sending(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), SockJsError> {
        let this = self.get_mut();
        let sender = this.sender.clone();
        *this.sending() = Some(Box::pin(async move { sender.send(item).await }));
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SockJsError>> {
        self.get_mut().poll_sending(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SockJsError>> {
        let this = self.get_mut();
        ready!(this.poll_sending(cx))?;
        if this.closed.get().is_some() {
            return Poll::Ready(Ok(()));
        }
        let sender = this.sender.clone();
        *this.sending() = Some(Box::pin(async move {
            match sender.close_normally() {
                Ok(()) | Err(SockJsError::Closed) => Ok(()),
                Err(e) => Err(e),
            }
        }));
        this.poll_sending(cx)
    }
}
