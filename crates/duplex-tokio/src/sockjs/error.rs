//! [`SockJsError`]: what can go wrong when sending on or closing a
//! [`super::SockJsSocket`].

/// What can go wrong when sending on or closing a [`super::SockJsSocket`].
#[derive(Debug, thiserror::Error)]
pub enum SockJsError {
    /// The session is closed (by the client, the application, a timeout).
    #[error("the SockJS session is closed")]
    Closed,
    /// The endpoint refused the message (binary data on a session that
    /// carries only text).
    #[error(transparent)]
    Session(duplex_polling::Error),
}
