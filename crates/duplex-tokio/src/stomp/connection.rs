//! The server-side driver of one STOMP connection on the embedded broker:
//! bytes between the transport and a [`ServerSession`], frames between the
//! session and the broker task, and the session's timer.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use duplex_stomp::{Frame, ServerEvent, ServerSession};
use tokio::sync::{mpsc, watch};

use super::BrokerHandle;
use super::transport::Transport;

/// Moves whatever the session wants written into `chunks` (one chunk per
/// call, so that a message transport carries one frame per message).
pub(crate) fn take_server(session: &mut ServerSession, chunks: &mut Vec<Bytes>) {
    if session.has_transmit() {
        let mut out = BytesMut::new();
        session.poll_transmit(&mut out);
        chunks.push(out.freeze());
    }
}

/// Sleeps until `deadline`, or forever without one.
pub(crate) async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

/// Writes `chunks` within `limit`; `false` when the peer is gone or stuck.
pub(crate) async fn write<T: Transport>(
    io: &mut T,
    chunks: &mut Vec<Bytes>,
    limit: Duration,
) -> bool {
    if chunks.is_empty() {
        return true;
    }
    let batch = std::mem::take(chunks);
    matches!(
        tokio::time::timeout(limit, io.send(batch)).await,
        Ok(Ok(()))
    )
}

/// Serves one connection on the embedded broker until it ends.
pub(crate) async fn serve<T: Transport>(
    mut io: T,
    mut session: ServerSession,
    broker: BrokerHandle,
    outbox_len: usize,
    write_timeout: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let id = broker.allocate_id();
    let (outbox_tx, mut outbox) = mpsc::channel::<Frame>(outbox_len.max(1));
    let mut outbox_tx = Some(outbox_tx);
    let mut registered = false;
    let mut chunks = Vec::new();
    let mut errored = false;
    let mut stopping = false;
    let mut going_away = false;
    loop {
        let deadline = session.poll_timeout();
        tokio::select! {
            changed = shutdown.wait_for(|down| *down), if !stopping => {
                stopping = true;
                if changed.is_ok() {
                    // What the broker already handed over goes out first.
                    while let Ok(frame) = outbox.try_recv() {
                        deliver(&mut session, &frame, &mut chunks);
                    }
                    going_away = true;
                    let _ = session.abort(&duplex_stomp::Error::ShuttingDown, None);
                    take_server(&mut session, &mut chunks);
                }
            },
            received = io.recv() => match received {
                Some(Ok(data)) => session.receive(&data),
                Some(Err(e)) => {
                    tracing::debug!(connection = id.0, "STOMP transport failed: {e}");
                    break;
                }
                None => break,
            },
            frame = outbox.recv(), if registered => match frame {
                Some(frame) => {
                    errored |= deliver(&mut session, &frame, &mut chunks);
                    // Take what else is ready, so a burst costs one write.
                    while let Ok(frame) = outbox.try_recv() {
                        errored |= deliver(&mut session, &frame, &mut chunks);
                    }
                }
                None => {
                    // The broker let go of this connection: it read too
                    // slowly (or the broker is gone).
                    registered = false;
                    errored = true;
                    let _ = session.abort(&duplex_stomp::Error::SlowConsumer, None);
                    take_server(&mut session, &mut chunks);
                }
            },
            () = sleep_until(deadline) => {
                session.handle_timeout(Instant::now());
                take_server(&mut session, &mut chunks);
            }
        }
        while let Some(event) = session.poll_event() {
            take_server(&mut session, &mut chunks);
            match event {
                ServerEvent::Connected(accepted) => {
                    if let Some(tx) = outbox_tx.take() {
                        registered = broker.connect(id, accepted.version, tx).await;
                    }
                }
                ServerEvent::Frame(frame) => {
                    broker.frame(id, frame).await;
                }
                ServerEvent::Failed(e) => {
                    errored = true;
                    tracing::debug!(connection = id.0, "STOMP client failed: {e}");
                }
            }
        }
        take_server(&mut session, &mut chunks);
        if !write(&mut io, &mut chunks, write_timeout).await {
            break;
        }
        if session.is_closed() {
            break;
        }
    }
    if registered || outbox_tx.is_none() {
        broker.disconnect(id).await;
    }
    if going_away {
        io.close_going_away().await;
    } else {
        io.close(errored).await;
    }
}

/// Hands one broker frame to the session; `true` for an `ERROR` (the
/// broker has dropped the connection). A message whose headers the
/// session's version cannot carry stays unacknowledged in the broker until
/// the subscription ends (see duplex-stomp's known limits).
fn deliver(session: &mut ServerSession, frame: &Frame, chunks: &mut Vec<Bytes>) -> bool {
    if let Err(e) = session.send_frame(frame) {
        tracing::debug!("STOMP frame not deliverable: {e}");
    }
    take_server(session, chunks);
    frame.command() == duplex_stomp::Command::Error
}
