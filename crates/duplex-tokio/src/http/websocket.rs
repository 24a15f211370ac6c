//! Running one upgraded WebSocket for an endpoint: what the endpoint
//! transmits is written to it, what arrives is handed back, until either
//! side closes. Written once for every dialect.

use duplex_polling::Message;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;

/// Messages waiting to be written on one WebSocket; past it the client is
/// not reading and the connection is closed.
pub(crate) const WEBSOCKET_QUEUE: usize = 4096;

/// What the endpoint wants written on a WebSocket.
pub(crate) enum WsOut {
    Message(Message),
    Close(u16, String),
}

/// Moves messages between `ws` and the endpoint: `outgoing` carries the
/// endpoint's transmits, `incoming` takes each received message (and
/// returns `false` when the endpoint is gone), `sent` hears how many
/// messages each flush wrote. Returns when the socket closes or fails, or
/// when `outgoing` ends (the endpoint dropped the connection: closed with
/// 1001 Going Away).
pub(crate) async fn run_websocket<S>(
    mut ws: crate::WebSocketStream<S>,
    mut outgoing: mpsc::Receiver<WsOut>,
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
                            let _ = SinkExt::flush(&mut ws).await;
                            let _ = ws.close_with(duplex_ws::CloseCode::from(code), &reason).await;
                            return;
                        }
                        None => {
                            let _ = SinkExt::flush(&mut ws).await;
                            let _ = ws.close_with(duplex_ws::CloseCode::GOING_AWAY, "").await;
                            return;
                        }
                    }
                    match outgoing.try_recv() {
                        Ok(m) => next = Some(m),
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => next = None,
                    }
                }
                if SinkExt::flush(&mut ws).await.is_err() {
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
