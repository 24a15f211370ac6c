//! What a test sees of a server's sockets: the connect and disconnect
//! handlers report to a [`Probe`].

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use duplex_tokio::socketio::{DisconnectReason, NamespaceHandlers, Socket};
use tokio::sync::mpsc;

use super::WAIT;

/// The server's sockets as its handlers see them.
pub struct Probe {
    /// Each socket handed to the connect handler, with `recovered()`.
    connects: mpsc::UnboundedReceiver<(Socket, bool)>,
    /// Each disconnect handler's reason.
    disconnects: mpsc::UnboundedReceiver<DisconnectReason>,
    /// How many times a middleware ran, for a test whose middleware
    /// counts here.
    pub middleware_runs: Arc<AtomicUsize>,
}

/// The handlers that report to a [`Probe`].
pub struct ProbeFeed {
    connects: mpsc::UnboundedSender<(Socket, bool)>,
    disconnects: mpsc::UnboundedSender<DisconnectReason>,
}

impl Probe {
    /// A probe, and the handlers that feed it.
    pub fn new() -> (Probe, ProbeFeed) {
        let (connect_tx, connects) = mpsc::unbounded_channel();
        let (disconnect_tx, disconnects) = mpsc::unbounded_channel();
        let probe = Probe {
            connects,
            disconnects,
            middleware_runs: Arc::new(AtomicUsize::new(0)),
        };
        let feed = ProbeFeed {
            connects: connect_tx,
            disconnects: disconnect_tx,
        };
        (probe, feed)
    }

    /// The next socket the connect handler got, with `recovered()`.
    pub async fn connect(&mut self) -> (Socket, bool) {
        tokio::time::timeout(WAIT, self.connects.recv())
            .await
            .expect("no connect handler call in time")
            .unwrap()
    }

    /// The next disconnect handler's reason.
    pub async fn disconnect(&mut self) -> DisconnectReason {
        tokio::time::timeout(WAIT, self.disconnects.recv())
            .await
            .expect("no disconnect handler call in time")
            .unwrap()
    }

    /// The disconnect reasons already reported.
    pub fn disconnects(&mut self) -> Vec<DisconnectReason> {
        std::iter::from_fn(|| self.disconnects.try_recv().ok()).collect()
    }
}

impl ProbeFeed {
    /// `ns` with the connect and disconnect handlers that report to the
    /// probe.
    pub fn handlers(self, ns: NamespaceHandlers) -> NamespaceHandlers {
        let ProbeFeed {
            connects,
            disconnects,
        } = self;
        ns.on_connect(move |socket: Socket| {
            let recovered = socket.recovered();
            let _ = connects.send((socket, recovered));
        })
        .on_disconnect(move |reason: DisconnectReason| {
            let _ = disconnects.send(reason);
        })
    }
}
