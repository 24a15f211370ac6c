//! The embedded broker: one task owns a [`duplex_stomp::Broker`];
//! connections talk to it over channels.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use duplex_stomp::{Broker, BrokerConfig, ConnectionId, Frame, Version};
use tokio::sync::{mpsc, oneshot};

/// Commands waiting for the broker task; senders wait when it is full,
/// which slows the clients that publish fastest.
const COMMAND_QUEUE: usize = 1024;

enum Command {
    Connect {
        id: ConnectionId,
        version: Version,
        outbox: mpsc::Sender<Frame>,
    },
    Frame {
        id: ConnectionId,
        frame: Frame,
    },
    Disconnect {
        id: ConnectionId,
    },
    Inspect(Box<dyn FnOnce(&Broker) + Send>),
}

/// A handle on an embedded broker task: cheap to clone, all clones reach
/// the same broker. The task ends when the last handle is dropped.
///
/// Each connection registers an outbox (a bounded channel of frames). The
/// broker task never waits on a connection: when an outbox is full (the
/// client reads slower than it is sent to), the connection is dropped from
/// the broker (its unacknowledged queue messages go to other subscribers)
/// and its outbox is closed, which ends it with an `ERROR`.
#[derive(Clone, Debug)]
pub struct BrokerHandle {
    commands: mpsc::Sender<Command>,
    next_id: Arc<AtomicU64>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Connect { id, .. } => write!(f, "Connect({})", id.0),
            Command::Frame { id, frame } => write!(f, "Frame({}, {})", id.0, frame.command()),
            Command::Disconnect { id } => write!(f, "Disconnect({})", id.0),
            Command::Inspect(_) => f.write_str("Inspect"),
        }
    }
}

impl BrokerHandle {
    /// Starts a broker task with `config` on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn spawn(config: BrokerConfig) -> BrokerHandle {
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        tokio::spawn(run(Broker::new(config), rx));
        BrokerHandle {
            commands: tx,
            next_id: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Runs `f` on the broker (between two frames) and returns its result;
    /// `None` if the broker task is gone. For statistics and tests.
    pub async fn inspect<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Broker) -> R + Send + 'static,
    ) -> Option<R> {
        let (tx, rx) = oneshot::channel();
        let job = Box::new(move |broker: &Broker| {
            let _ = tx.send(f(broker));
        });
        self.commands.send(Command::Inspect(job)).await.ok()?;
        rx.await.ok()
    }

    pub(crate) fn allocate_id(&self) -> ConnectionId {
        ConnectionId(self.next_id.fetch_add(1, Ordering::Relaxed) + 1)
    }

    pub(crate) async fn connect(
        &self,
        id: ConnectionId,
        version: Version,
        outbox: mpsc::Sender<Frame>,
    ) -> bool {
        self.commands
            .send(Command::Connect {
                id,
                version,
                outbox,
            })
            .await
            .is_ok()
    }

    pub(crate) async fn frame(&self, id: ConnectionId, frame: Frame) -> bool {
        self.commands
            .send(Command::Frame { id, frame })
            .await
            .is_ok()
    }

    pub(crate) async fn disconnect(&self, id: ConnectionId) {
        let _ = self.commands.send(Command::Disconnect { id }).await;
    }
}

async fn run(mut broker: Broker, mut commands: mpsc::Receiver<Command>) {
    let mut outboxes: HashMap<ConnectionId, mpsc::Sender<Frame>> = HashMap::new();
    while let Some(command) = commands.recv().await {
        match command {
            Command::Connect {
                id,
                version,
                outbox,
            } => {
                broker.connect(id, version);
                outboxes.insert(id, outbox);
            }
            Command::Frame { id, frame } => broker.handle_frame(id, frame),
            Command::Disconnect { id } => {
                broker.disconnect(id);
                outboxes.remove(&id);
            }
            Command::Inspect(f) => f(&broker),
        }
        route(&mut broker, &mut outboxes);
    }
}

/// Hands every output frame to its connection's outbox.
fn route(broker: &mut Broker, outboxes: &mut HashMap<ConnectionId, mpsc::Sender<Frame>>) {
    let mut touched = Vec::new();
    while let Some(out) = broker.poll_transmit() {
        let Some(outbox) = outboxes.get(&out.connection) else {
            continue;
        };
        match outbox.try_send(out.frame) {
            Ok(()) => touched.push(out.connection),
            Err(e) => {
                if matches!(e, mpsc::error::TrySendError::Full(_)) {
                    tracing::debug!(
                        connection = out.connection.0,
                        "STOMP client too slow: outbox full, dropped from the broker"
                    );
                }
                // Dropping the sender closes the outbox; the connection
                // then ends. Its messages are redelivered elsewhere, and
                // the frames that causes are routed by this same loop.
                outboxes.remove(&out.connection);
                broker.disconnect(out.connection);
            }
        }
    }
    // After an ERROR, or the RECEIPT of a DISCONNECT, the broker has
    // forgotten the connection: close its outbox behind the last frame.
    for id in touched {
        if !broker.is_connected(id) {
            outboxes.remove(&id);
        }
    }
}
