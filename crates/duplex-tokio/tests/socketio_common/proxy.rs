//! A loopback TCP proxy that injects the network faults connection state
//! recovery must survive: a cut with FIN, a cut with RST, and a blackhole
//! (nothing forwarded either way, nothing closed, so that only the ping
//! timeouts notice). Per connection or all at once. Shared by
//! tests/socketio_recovery_faults.rs and examples/socketio_recovery_interop.rs
//! (and through it tests/socketio_client_recovery.rs).

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How a connection is broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Both sides see an orderly end of stream (`shutdown`, FIN).
    Fin,
    /// Both sides see a reset (`SO_LINGER` 0, RST).
    Rst,
    /// Nothing is forwarded any more, either way, and nothing is closed:
    /// only a timeout can tell.
    Blackhole,
}

/// What happens to a new connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Accept {
    /// Relayed to the upstream.
    Open,
    /// Reset at once, as a closed port would.
    Refuse,
    /// Accepted and held without a byte forwarded, until reopened.
    Hold,
}

/// The live connections, each with the switch that breaks it: `None`
/// until a fault, and back to `None` to release a blackholed one.
type Registry = Arc<Mutex<HashMap<u64, watch::Sender<Option<Fault>>>>>;

/// A loopback TCP proxy in front of one upstream address.
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    accept: watch::Sender<Accept>,
    connections: Registry,
    acceptor: JoinHandle<()>,
}

impl Proxy {
    /// A proxy to `upstream` on a fresh loopback port.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (accept, _) = watch::channel(Accept::Open);
        let connections = Registry::default();
        let acceptor = tokio::spawn(accept_loop(
            listener,
            upstream,
            accept.clone(),
            connections.clone(),
        ));
        Ok(Self {
            addr,
            accept,
            connections,
            acceptor,
        })
    }

    /// Breaks every current connection with `fault`; until
    /// [`Proxy::reopen`], new connections are reset (FIN, RST) or held
    /// silently (blackhole).
    pub fn fault(&self, fault: Fault) {
        self.close_door(fault);
        for switch in self.registry().values() {
            switch.send_replace(Some(fault));
        }
    }

    /// Breaks the connections `ids` (of [`Proxy::connections`]) with
    /// `fault`, and treats new ones as [`Proxy::fault`] does until
    /// [`Proxy::reopen`]; the others go on. Returns how many were broken
    /// (the others are gone already).
    pub fn fault_some(&self, ids: &[u64], fault: Fault) -> usize {
        self.close_door(fault);
        let registry = self.registry();
        let mut broken = 0;
        for switch in ids.iter().filter_map(|id| registry.get(id)) {
            switch.send_replace(Some(fault));
            broken += 1;
        }
        broken
    }

    fn close_door(&self, fault: Fault) {
        self.accept.send_replace(match fault {
            Fault::Fin | Fault::Rst => Accept::Refuse,
            Fault::Blackhole => Accept::Hold,
        });
    }

    /// Cuts every current connection (RST when `rst`, else FIN) and
    /// refuses new ones until [`Proxy::reopen`].
    pub fn cut(&self, rst: bool) {
        self.fault(if rst { Fault::Rst } else { Fault::Fin });
    }

    /// The ids of the connections being relayed or held, oldest first.
    pub fn connections(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self.registry().keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Lets new connections through again and closes the blackholed ones
    /// (their peers may have given up on them long ago).
    pub fn reopen(&self) {
        self.accept.send_replace(Accept::Open);
        for switch in self.registry().values() {
            if *switch.borrow() == Some(Fault::Blackhole) {
                switch.send_replace(None);
            }
        }
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, HashMap<u64, watch::Sender<Option<Fault>>>> {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.acceptor.abort();
        // Dropping the switches ends every relay and releases what is held.
        self.registry().clear();
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    accept: watch::Sender<Accept>,
    connections: Registry,
) {
    let ids = AtomicU64::new(0);
    while let Ok((client, _)) = listener.accept().await {
        let mode = *accept.borrow();
        match mode {
            Accept::Refuse => {
                let _ = client.set_zero_linger();
            }
            Accept::Hold => {
                let mut until = accept.subscribe();
                tokio::spawn(async move {
                    let _held = client;
                    let _ = until.wait_for(|a| *a != Accept::Hold).await;
                });
            }
            Accept::Open => {
                let id = ids.fetch_add(1, Ordering::Relaxed);
                let (switch, rx) = watch::channel(None);
                connections
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(id, switch);
                let connections = connections.clone();
                tokio::spawn(async move {
                    relay(client, upstream, rx).await;
                    connections
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&id);
                });
            }
        }
    }
}

async fn relay(
    mut client: TcpStream,
    upstream: SocketAddr,
    mut switch: watch::Receiver<Option<Fault>>,
) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let fault = tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => return,
        fault = switch.wait_for(Option::is_some) => match fault {
            Ok(fault) => *fault,
            Err(_) => return,
        },
    };
    match fault {
        Some(Fault::Rst) => {
            let _ = client.set_zero_linger();
            let _ = server.set_zero_linger();
        }
        Some(Fault::Fin) => {
            // An orderly close: FIN both ways, then read what is still
            // coming until the peers close, as closing a socket with
            // unread data would send RST instead.
            let _ = client.shutdown().await;
            let _ = server.shutdown().await;
            let drain = async {
                let (mut up, mut down) = ([0u8; 4096], [0u8; 4096]);
                let (mut c, mut s) = (true, true);
                while c || s {
                    tokio::select! {
                        n = client.read(&mut up), if c => c = matches!(n, Ok(n) if n > 0),
                        n = server.read(&mut down), if s => s = matches!(n, Ok(n) if n > 0),
                    }
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
        }
        Some(Fault::Blackhole) | None => {
            // Held, unread and unwritten, until released or the proxy goes.
            let _ = switch.wait_for(Option::is_none).await;
        }
    }
}
