//! [`SseSession`] and [`SseSender`]: one Server-Sent Events session as
//! the application sees it, sending through the HTTP driver.

use duplex_polling::{CloseReason, Message, OpenInfo, SessionId};
use tokio::sync::oneshot;

use super::app::Driver;

/// Why a send or close on an [`SseSession`] failed.
#[derive(Debug, thiserror::Error)]
pub enum SseError {
    /// The session is closed (or the service is gone).
    #[error("the session is closed")]
    Closed,
    /// The machine refused it: the queue is full, or an event name with a
    /// line break.
    #[error(transparent)]
    Session(#[from] duplex_polling::Error),
}

/// One session as the application sees it: events go out, the client's
/// reconnections and resumptions are the machine's business, and
/// [`SseSession::closed`] says when it is over.
pub struct SseSession {
    info: OpenInfo,
    sender: SseSender,
    closed: Option<oneshot::Receiver<CloseReason>>,
    reason: Option<CloseReason>,
}

impl std::fmt::Debug for SseSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseSession")
            .field("id", &self.sender.session)
            .field("reason", &self.reason)
            .finish_non_exhaustive()
    }
}

impl SseSession {
    /// The session id (the part before `:` in every event id).
    pub fn id(&self) -> &SessionId {
        &self.sender.session
    }

    /// The opening request: path, query, headers.
    pub fn info(&self) -> &OpenInfo {
        &self.info
    }

    /// A cloneable handle to send on this session from other tasks.
    pub fn sender(&self) -> SseSender {
        self.sender.clone()
    }

    /// Sends `data` as an unnamed event (`onmessage` in the browser).
    pub async fn send(&self, data: impl Into<String>) -> Result<(), SseError> {
        self.sender.send(data).await
    }

    /// Sends `data` as an event named `event`.
    pub async fn send_event(&self, event: &str, data: impl Into<String>) -> Result<(), SseError> {
        self.sender.send_event(event, data).await
    }

    /// Closes the session: what is queued is written, the stream ends, and
    /// a reconnecting client gets 204 (which stops `EventSource`).
    pub async fn close(&self) -> Result<(), SseError> {
        self.sender.close().await
    }

    /// Waits until the session is closed, by the application, by expiry
    /// (no stream for `disconnect_delay`), or because the service is gone
    /// (`None`). Cancel-safe: it can be raced against other work in a
    /// `select!` loop.
    pub async fn closed(&mut self) -> Option<CloseReason> {
        if let Some(rx) = self.closed.as_mut() {
            let reason = rx.await.ok();
            self.closed = None;
            self.reason = reason;
        }
        self.reason
    }
}

/// A cloneable handle on one session: send and close from any task.
#[derive(Clone)]
pub struct SseSender {
    session: SessionId,
    driver: Driver,
}

impl std::fmt::Debug for SseSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseSender")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl SseSender {
    /// The session id.
    pub fn id(&self) -> &SessionId {
        &self.session
    }

    /// Sends `data` as an unnamed event. A full queue (the client is not
    /// reading) is [`SseError::Session`] with `QueueFull`: the caller
    /// decides whether to drop the event or close the session.
    pub async fn send(&self, data: impl Into<String>) -> Result<(), SseError> {
        self.command(None, data.into()).await
    }

    /// Sends `data` as an event named `event`.
    pub async fn send_event(&self, event: &str, data: impl Into<String>) -> Result<(), SseError> {
        self.command(Some(event.to_owned()), data.into()).await
    }

    async fn command(&self, event: Option<String>, data: String) -> Result<(), SseError> {
        self.driver.with(|server, _, now, _| {
            let result = match event {
                Some(name) => server.send_event(&self.session, &name, data, now),
                None => server.send(&self.session, Message::text(data), now),
            };
            result.map_err(|e| match e {
                duplex_polling::Error::NoSuchSession => SseError::Closed,
                e => SseError::Session(e),
            })
        })
    }

    /// Closes the session (see [`SseSession::close`]).
    pub async fn close(&self) -> Result<(), SseError> {
        self.driver.with(|server, _, now, _| {
            server
                .close(&self.session, now)
                .map_err(|_| SseError::Closed)
        })
    }
}

impl SseSession {
    pub(crate) fn new(
        session: SessionId,
        info: OpenInfo,
        closed: oneshot::Receiver<CloseReason>,
        driver: Driver,
    ) -> SseSession {
        SseSession {
            info,
            sender: SseSender { session, driver },
            closed: Some(closed),
            reason: None,
        }
    }
}
