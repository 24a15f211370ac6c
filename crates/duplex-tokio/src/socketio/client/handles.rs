//! What the application holds: the [`Manager`] of a connection, a
//! [`ClientSocket`] per namespace and the [`ClientAck`] of an event; each
//! sends commands to the manager's task through its bounded queue.

use std::time::Duration;

use duplex_socketio::Value;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};

use super::driver::manager_task;
use super::{COMMAND_QUEUE, ClientConfig, ClientError, ClientEvent, EVENT_QUEUE};
use crate::socketio::AckError;

/// The sending side of the manager's command queue, shared by every
/// handle.
#[derive(Clone, Debug)]
pub(super) struct Commands(pub(super) mpsc::Sender<Command>);

impl Commands {
    /// Queues `command` if there is room.
    fn try_send(&self, command: Command) -> Result<(), ClientError> {
        self.0.try_send(command).map_err(|e| match e {
            TrySendError::Full(_) => ClientError::QueueFull,
            TrySendError::Closed(_) => ClientError::Closed,
        })
    }

    /// Queues `command` now if there is room, else as soon as there is
    /// (for the commands that must not be lost).
    fn send_eventually(&self, command: Command) {
        match self.0.try_send(command) {
            Ok(()) | Err(TrySendError::Closed(_)) => {}
            Err(TrySendError::Full(command)) => {
                let tx = self.0.clone();
                tokio::spawn(async move {
                    let _ = tx.send(command).await;
                });
            }
        }
    }
}

/// Answers an event that asked for an ack.
#[derive(Debug)]
pub struct ClientAck {
    pub(super) commands: Commands,
    pub(super) namespace: String,
    pub(super) id: u64,
}

impl ClientAck {
    /// Acknowledges with `args` (dropped, and logged, if the manager's
    /// command queue is full: the server's ack then times out).
    pub fn send(self, args: Vec<Value>) {
        let command = Command::Ack {
            namespace: self.namespace,
            id: self.id,
            args,
        };
        if let Err(e) = self.commands.try_send(command) {
            tracing::warn!("Socket.IO client: ack {} not sent: {e}", self.id);
        }
    }
}

pub(super) type AckReply = oneshot::Sender<Result<Vec<Value>, AckError>>;

pub(super) enum Command {
    Join {
        namespace: String,
        auth: Option<Value>,
        events: mpsc::Sender<ClientEvent>,
    },
    Emit {
        namespace: String,
        event: String,
        args: Vec<Value>,
        ack: Option<(AckReply, Option<Duration>)>,
    },
    Ack {
        namespace: String,
        id: u64,
        args: Vec<Value>,
    },
    Leave {
        namespace: String,
    },
    Close,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

/// One connection to a server, shared by the sockets of every namespace
/// (the reference client's `Manager`). Cheap to clone; runs in a task of
/// its own until [`Manager::close`] or until reconnection gives up.
#[derive(Clone, Debug)]
pub struct Manager {
    commands: Commands,
}

impl Manager {
    /// Starts connecting to the server (on the current tokio runtime).
    pub fn new(config: ClientConfig) -> Self {
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let commands = Commands(tx);
        tokio::spawn(manager_task(config, rx, commands.clone()));
        Self { commands }
    }

    /// A socket on `namespace`, connecting with `auth` (now, or as soon as
    /// the connection is up, and again after each reconnection).
    pub fn socket(&self, namespace: &str, auth: Option<Value>) -> ClientSocket {
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        self.commands.send_eventually(Command::Join {
            namespace: namespace.to_owned(),
            auth,
            events: tx,
        });
        ClientSocket {
            commands: self.commands.clone(),
            namespace: namespace.to_owned(),
            events: rx,
        }
    }

    /// Closes the connection for good, after the commands already queued.
    pub fn close(&self) {
        self.commands.send_eventually(Command::Close);
    }
}

/// A namespace of a [`Manager`]'s connection.
#[derive(Debug)]
pub struct ClientSocket {
    commands: Commands,
    namespace: String,
    events: mpsc::Receiver<ClientEvent>,
}

impl ClientSocket {
    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The next event; `None` once the manager is closed.
    pub async fn next_event(&mut self) -> Option<ClientEvent> {
        self.events.recv().await
    }

    /// Emits `event`; buffered while the namespace is not connected.
    /// Dropped, and logged, if the manager's command queue is full (see
    /// [`ClientSocket::try_emit`] to know).
    pub fn emit(&self, event: &str, args: Vec<Value>) {
        if let Err(e) = self.try_emit(event, args) {
            tracing::warn!("Socket.IO client: emit {event:?} dropped: {e}");
        }
    }

    /// As [`ClientSocket::emit`], saying whether the event was queued:
    /// [`ClientError::QueueFull`] if the manager's command queue
    /// ([`COMMAND_QUEUE`]) is full, [`ClientError::Closed`] once the
    /// manager has ended.
    pub fn try_emit(&self, event: &str, args: Vec<Value>) -> Result<(), ClientError> {
        self.commands.try_send(Command::Emit {
            namespace: self.namespace.clone(),
            event: event.to_owned(),
            args,
            ack: None,
        })
    }

    /// Emits `event` asking for an ack, and waits for it (at most `timeout`,
    /// counted once the event is queued; waiting for room in a full
    /// command queue comes first).
    pub async fn emit_with_ack(
        &self,
        event: &str,
        args: Vec<Value>,
        timeout: Option<Duration>,
    ) -> Result<Vec<Value>, AckError> {
        let (tx, rx) = oneshot::channel();
        let command = Command::Emit {
            namespace: self.namespace.clone(),
            event: event.to_owned(),
            args,
            ack: Some((tx, timeout)),
        };
        if self.commands.0.send(command).await.is_err() {
            return Err(AckError::Disconnected);
        }
        rx.await.unwrap_or(Err(AckError::Disconnected))
    }

    /// Leaves the namespace (sends DISCONNECT); the connection stays.
    pub fn disconnect(&self) {
        self.commands.send_eventually(Command::Leave {
            namespace: self.namespace.clone(),
        });
    }
}
