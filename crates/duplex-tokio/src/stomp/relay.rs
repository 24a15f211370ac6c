//! Broker relay: each client connection gets its own upstream session to an
//! external STOMP broker (RabbitMQ's STOMP plugin, ActiveMQ, Artemis), so
//! several duplex servers share one broker.
//!
//! Every decision (held `CONNECTED`, pending frames, refusals, receipts,
//! heart-beats on both hops) is [`duplex_stomp::Relay`]'s; this driver
//! opens the upstream TCP connection when the machine asks (raced with
//! the client's reads, never blocking them), moves bytes and sleeps until
//! `poll_timeout`.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use duplex_stomp::{Relay, RelayEvent, ServerSession, Side};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::connection::{sleep_until, write};
use super::transport::{ByteStream, Transport};

/// How long the last bytes to a broker that is being left may take.
const UPSTREAM_FAREWELL: Duration = Duration::from_secs(1);

/// Where the relay connects upstream, and the relay machine's settings.
///
/// The address stays here, apart from [`duplex_stomp::RelayConfig`]: only
/// this driver knows it, so no text the machine sends a client can name it.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// The broker's STOMP address, e.g. `127.0.0.1:61613`.
    pub addr: String,
    /// Login, virtual host, heart-beats, connect timeout and pending-frame
    /// bound (see [`duplex_stomp::RelayConfig`] for their defaults).
    pub machine: duplex_stomp::RelayConfig,
}

impl RelayConfig {
    /// Defaults for a broker at `addr`.
    pub fn new(addr: impl Into<String>) -> RelayConfig {
        RelayConfig {
            addr: addr.into(),
            machine: duplex_stomp::RelayConfig::default(),
        }
    }
}

type Connecting = Pin<Box<dyn Future<Output = io::Result<TcpStream>> + Send>>;

/// What [`Upstream::next`] saw.
enum UpstreamNews {
    Connected(io::Result<TcpStream>),
    Received(Option<io::Result<Bytes>>),
}

/// The upstream connection, as far as the driver has got with it.
enum Upstream {
    /// Not asked for, or closed.
    None,
    /// Being opened: polled beside the client's reads.
    Connecting(Connecting),
    /// Open.
    Open(ByteStream<TcpStream>),
}

impl Upstream {
    /// What happens next upstream: the connect attempt ends, or bytes
    /// arrive; forever when there is no connection.
    async fn next(&mut self) -> UpstreamNews {
        match self {
            Upstream::Connecting(attempt) => UpstreamNews::Connected(attempt.await),
            Upstream::Open(io) => UpstreamNews::Received(io.recv().await),
            Upstream::None => std::future::pending().await,
        }
    }

    /// Writes out the last bytes (briefly) and closes.
    async fn close(&mut self, last: Vec<Bytes>) {
        if let Upstream::Open(mut io) = std::mem::replace(self, Upstream::None) {
            let mut last = last;
            let _ = write(&mut io, &mut last, UPSTREAM_FAREWELL).await;
            io.close(false).await;
        }
    }
}

/// Serves one client connection through its own upstream session.
pub(crate) async fn serve<T: Transport>(
    mut io: T,
    session: ServerSession,
    relay: Arc<RelayConfig>,
    write_timeout: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut machine = Relay::new(session, relay.machine.clone(), Instant::now());
    let mut upstream = Upstream::None;
    let mut errored = false;
    let mut stopping = false;
    let mut going_away = false;
    let mut client_open = true;
    while client_open && !machine.is_closed() {
        tokio::select! {
            changed = shutdown.wait_for(|down| *down), if !stopping => {
                // An error means the server is gone without a shutdown:
                // stop listening and carry on.
                stopping = true;
                if changed.is_ok() {
                    going_away = true;
                    machine.shutdown();
                }
            },
            received = io.recv() => match received {
                Some(Ok(data)) => machine.receive(Side::Client, &data),
                _ => {
                    client_open = false;
                    machine.handle_client_closed();
                }
            },
            news = upstream.next() => match news {
                UpstreamNews::Connected(Ok(tcp)) => {
                    let _ = tcp.set_nodelay(true);
                    upstream = Upstream::Open(ByteStream::new(tcp));
                    machine.handle_upstream_connected();
                }
                UpstreamNews::Connected(Err(e)) => {
                    // The address goes to the log only, never to the client.
                    tracing::debug!(broker = %relay.addr, "STOMP relay cannot reach the broker: {e}");
                    upstream = Upstream::None;
                    machine.handle_upstream_failed();
                }
                UpstreamNews::Received(Some(Ok(data))) => machine.receive(Side::Upstream, &data),
                UpstreamNews::Received(_) => {
                    upstream = Upstream::None;
                    machine.handle_upstream_closed();
                }
            },
            () = sleep_until(machine.poll_timeout()) => machine.handle_timeout(Instant::now()),
        }
        errored |= apply_events(&mut machine, &mut upstream, &relay).await;
        let mut up_chunks = drain(&mut machine, Side::Upstream);
        if let Upstream::Open(up) = &mut upstream {
            if !write(up, &mut up_chunks, write_timeout).await {
                upstream = Upstream::None;
                machine.handle_upstream_closed();
                errored |= apply_events(&mut machine, &mut upstream, &relay).await;
            }
        }
        let mut chunks = drain(&mut machine, Side::Client);
        if client_open && !write(&mut io, &mut chunks, write_timeout).await {
            client_open = false;
            machine.handle_client_closed();
            errored |= apply_events(&mut machine, &mut upstream, &relay).await;
        }
    }
    // Whatever is still open upstream (the client went away mid-session)
    // gets the machine's farewell.
    upstream.close(drain(&mut machine, Side::Upstream)).await;
    if going_away {
        io.close_going_away().await;
    } else {
        io.close(errored).await;
    }
}

/// Carries out the machine's requests; `true` when the relay failed.
async fn apply_events(machine: &mut Relay, upstream: &mut Upstream, relay: &RelayConfig) -> bool {
    let mut failed = false;
    while let Some(event) = machine.poll_event() {
        match event {
            RelayEvent::OpenUpstream => {
                let addr = relay.addr.clone();
                *upstream = Upstream::Connecting(Box::pin(async move {
                    TcpStream::connect(addr.as_str()).await
                }));
            }
            RelayEvent::CloseUpstream => {
                // Dropping a connect attempt cancels it.
                upstream.close(drain(machine, Side::Upstream)).await;
                *upstream = Upstream::None;
            }
            RelayEvent::Failed(e) => {
                failed = true;
                tracing::debug!("STOMP relay ended: {e}");
            }
        }
    }
    failed
}

fn drain(machine: &mut Relay, side: Side) -> Vec<Bytes> {
    std::iter::from_fn(|| machine.poll_transmit(side)).collect()
}
