//! Broker relay: each client connection gets its own upstream session to an
//! external STOMP broker (RabbitMQ's STOMP plugin, ActiveMQ, Artemis), so
//! several duplex servers share one broker.
//!
//! Two session machines meet here and nothing else: a [`ServerSession`]
//! facing the client (version, login check, heart-beats, validation) and a
//! [`ClientSession`] facing the broker. Client frames are forwarded upstream
//! as they are (subscription ids, ack ids and receipt ids are the client's
//! own), and the broker's `MESSAGE`, `RECEIPT` and `ERROR` frames come back
//! the same way. Both hops use the version the client negotiated, so `ACK`
//! headers mean the same on both. Heart-beats are kept on each hop by its
//! own session; a silence on either side ends both.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use duplex_stomp::{
    ClientConfig, ClientEvent, ClientSession, Command, Frame, HeartBeat, ServerEvent,
    ServerSession, Version,
};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::connection::{sleep_until, take_server, write};
use super::transport::{ByteStream, Transport};

/// Where and how the relay connects upstream.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// The broker's STOMP address, e.g. `127.0.0.1:61613`.
    pub addr: String,
    /// The `host` header (RabbitMQ's virtual host). Default `/`.
    pub host: String,
    /// The login the relay presents for every client. Default `guest`.
    pub login: Option<String>,
    /// The passcode. Default `guest`.
    pub passcode: Option<String>,
    /// The heart-beats the relay asks of the broker. Default 10 s both ways.
    pub heart_beat: HeartBeat,
    /// How long the TCP connect and the `CONNECTED` may take. Default 10 s.
    pub connect_timeout: Duration,
    /// Frames a client may send before the broker has answered `CONNECT`;
    /// more end the connection with `ERROR`. Default 1024.
    pub max_pending_frames: usize,
}

impl RelayConfig {
    /// Defaults for a broker at `addr`.
    pub fn new(addr: impl Into<String>) -> RelayConfig {
        RelayConfig {
            addr: addr.into(),
            host: "/".to_owned(),
            login: Some("guest".to_owned()),
            passcode: Some("guest".to_owned()),
            heart_beat: HeartBeat::every(Duration::from_secs(10)),
            connect_timeout: Duration::from_secs(10),
            max_pending_frames: 1024,
        }
    }

    fn client_config(&self, version: Version) -> ClientConfig {
        let mut config = ClientConfig::new(self.host.clone());
        config.login.clone_from(&self.login);
        config.passcode.clone_from(&self.passcode);
        config.versions = vec![version];
        config.heart_beat = self.heart_beat;
        config.connect_timeout = Some(self.connect_timeout);
        config
    }
}

struct Upstream {
    io: ByteStream<TcpStream>,
    session: ClientSession,
    connected: bool,
}

impl Upstream {
    async fn open(config: &RelayConfig, version: Version) -> Result<Upstream, String> {
        let connect = TcpStream::connect(config.addr.as_str());
        let tcp = match tokio::time::timeout(config.connect_timeout, connect).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => return Err(format!("cannot reach {}: {e}", config.addr)),
            Err(_) => return Err(format!("cannot reach {}: timed out", config.addr)),
        };
        let _ = tcp.set_nodelay(true);
        let session = ClientSession::new(config.client_config(version), Instant::now())
            .map_err(|e| e.to_string())?;
        Ok(Upstream {
            io: ByteStream::new(tcp),
            session,
            connected: false,
        })
    }

    fn take(&mut self, chunks: &mut Vec<Bytes>) {
        if self.session.has_transmit() {
            let mut out = BytesMut::new();
            self.session.poll_transmit(&mut out);
            chunks.push(out.freeze());
        }
    }
}

/// Where the client's outgoing bytes go: held back from `CONNECT` until
/// the broker has answered, so that a broker refusing the connection turns
/// into an `ERROR` instead of a `CONNECTED`.
struct ClientOut {
    holding: bool,
    held: Vec<Bytes>,
    chunks: Vec<Bytes>,
}

impl ClientOut {
    fn take(&mut self, session: &mut ServerSession) {
        let target = if self.holding {
            &mut self.held
        } else {
            &mut self.chunks
        };
        take_server(session, target);
    }

    fn release(&mut self) {
        self.holding = false;
        self.chunks.append(&mut self.held);
    }

    /// Replaces everything held (the `CONNECTED`) with an `ERROR`.
    fn refuse(&mut self, session: &mut ServerSession, message: &str, body: &str) {
        self.held.clear();
        self.holding = false;
        let _ = session.send_error(message, None, body);
        self.take(session);
    }
}

/// Serves one client connection through its own upstream session.
pub(crate) async fn serve<T: Transport>(
    mut io: T,
    mut session: ServerSession,
    relay: Arc<RelayConfig>,
    write_timeout: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut upstream: Option<Upstream> = None;
    let mut pending: VecDeque<Frame> = VecDeque::new();
    let mut disconnect_receipt: Option<String> = None;
    let mut out = ClientOut {
        holding: false,
        held: Vec::new(),
        chunks: Vec::new(),
    };
    let mut up_chunks = Vec::new();
    let mut errored = false;
    let mut stopping = false;
    let mut going_away = false;
    loop {
        let deadline = [
            session.poll_timeout(),
            upstream.as_ref().and_then(|u| u.session.poll_timeout()),
        ]
        .into_iter()
        .flatten()
        .min();
        tokio::select! {
            changed = shutdown.wait_for(|down| *down), if !stopping => {
                stopping = true;
                if changed.is_ok() {
                    going_away = true;
                    out.refuse(&mut session, "server shutting down", "The server is shutting down.");
                }
            },
            received = io.recv() => match received {
                Some(Ok(data)) => session.receive(&data),
                _ => break,
            },
            received = recv_upstream(&mut upstream) => match received {
                Some(Ok(data)) => {
                    if let Some(up) = upstream.as_mut() {
                        up.session.receive(&data);
                    }
                }
                _ => {
                    upstream = None;
                    if !session.is_closed() {
                        errored = true;
                        out.refuse(&mut session, "broker connection lost", "the upstream broker closed the connection");
                    }
                }
            },
            () = sleep_until(deadline) => {
                let now = Instant::now();
                session.handle_timeout(now);
                out.take(&mut session);
                if let Some(up) = upstream.as_mut() {
                    up.session.handle_timeout(now);
                    up.take(&mut up_chunks);
                }
            }
        }

        while let Some(event) = session.poll_event() {
            match event {
                ServerEvent::Connected(accepted) => {
                    // The CONNECTED just queued waits for the broker's.
                    out.holding = true;
                    out.take(&mut session);
                    match Upstream::open(&relay, accepted.version).await {
                        Ok(mut up) => {
                            up.take(&mut up_chunks);
                            upstream = Some(up);
                        }
                        Err(reason) => {
                            errored = true;
                            out.refuse(&mut session, "broker unavailable", &reason);
                        }
                    }
                }
                ServerEvent::Frame(frame) => match upstream.as_mut() {
                    Some(up) if up.connected => {
                        forward(up, &frame, &mut disconnect_receipt, &mut session);
                        up.take(&mut up_chunks);
                        out.take(&mut session);
                    }
                    _ if pending.len() < relay.max_pending_frames => pending.push_back(frame),
                    _ => {
                        errored = true;
                        out.refuse(
                            &mut session,
                            "too many frames",
                            "too many frames before the broker answered",
                        );
                    }
                },
                ServerEvent::Failed(e) => {
                    errored = true;
                    tracing::debug!("STOMP client failed: {e}");
                }
            }
            out.take(&mut session);
        }

        if let Some(up) = upstream.as_mut() {
            while let Some(event) = up.session.poll_event() {
                match event {
                    ClientEvent::Connected(_) => {
                        up.connected = true;
                        out.release();
                        while let Some(frame) = pending.pop_front() {
                            forward(up, &frame, &mut disconnect_receipt, &mut session);
                        }
                    }
                    ClientEvent::Message(message) => {
                        if let Err(e) = session.send_frame(message.frame()) {
                            tracing::debug!("STOMP frame not deliverable: {e}");
                        }
                    }
                    ClientEvent::Receipt { receipt_id } => {
                        let _ = session.send_receipt(&receipt_id);
                    }
                    ClientEvent::Disconnected => {
                        if let Some(receipt) = disconnect_receipt.take() {
                            let _ = session.send_receipt(&receipt);
                        }
                    }
                    ClientEvent::Error(frame) => {
                        errored = true;
                        if out.holding {
                            out.held.clear();
                            out.holding = false;
                        }
                        if session.send_frame(&frame).is_err() {
                            let _ = session.send_error("broker error", None, "");
                        }
                    }
                    ClientEvent::Failed(e) => {
                        errored = true;
                        out.refuse(&mut session, "broker failed", &e.to_string());
                    }
                }
                out.take(&mut session);
            }
            up.take(&mut up_chunks);
        }

        out.take(&mut session);
        if let Some(up) = upstream.as_mut() {
            if !write(&mut up.io, &mut up_chunks, write_timeout).await {
                upstream = None;
                if !session.is_closed() {
                    errored = true;
                    out.refuse(
                        &mut session,
                        "broker connection lost",
                        "writing to the upstream broker failed",
                    );
                }
            }
        }
        if !write(&mut io, &mut out.chunks, write_timeout).await {
            break;
        }
        if session.is_closed() {
            break;
        }
    }
    if let Some(mut up) = upstream {
        // The client left without DISCONNECT: end the upstream session
        // politely, without waiting for its receipt.
        if up.session.disconnect().is_ok() {
            let mut chunks = Vec::new();
            up.take(&mut chunks);
            let _ = write(&mut up.io, &mut chunks, Duration::from_secs(1)).await;
        }
        up.io.close(false).await;
    }
    if going_away {
        io.close_going_away().await;
    } else {
        io.close(errored).await;
    }
}

async fn recv_upstream(upstream: &mut Option<Upstream>) -> Option<std::io::Result<Bytes>> {
    match upstream {
        Some(up) => up.io.recv().await,
        None => std::future::pending().await,
    }
}

/// Sends one client frame upstream. A frame the upstream session refuses
/// (an unknown subscription or transaction, which the broker would refuse
/// too) ends the client's connection with `ERROR`.
fn forward(
    up: &mut Upstream,
    frame: &Frame,
    disconnect_receipt: &mut Option<String>,
    session: &mut ServerSession,
) {
    if frame.command() == Command::Disconnect {
        disconnect_receipt.clone_from(&frame.header("receipt").map(str::to_owned));
    }
    if let Err(e) = up.session.send_frame(frame) {
        let _ = session.send_error(&e.to_string(), frame.header("receipt"), "");
    }
}
