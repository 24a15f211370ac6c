//! [`StompClient`]: a [`ClientSession`] driven in its own task over TCP or a
//! WebSocket. The task moves bytes, runs the heart-beat timer and hands
//! events out; every command is a session method run inside the task.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use duplex_stomp::{AckMode, ClientConfig, ClientEvent, ClientSession, Connected, Frame, Message};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio::sync::{mpsc, oneshot};

use super::StompError;
use super::connection::{sleep_until, write};
use super::transport::{ByteStream, Transport, WebSocketTransport};
use crate::WebSocketStream;

type Job = Box<dyn FnOnce(&mut ClientSession) + Send>;

/// Commands waiting for the task.
const JOB_QUEUE: usize = 64;
/// Events the task holds for the application before it stops reading the
/// socket (so a slow reader slows the server down instead of growing a
/// buffer).
const EVENT_BACKLOG: usize = 1024;
/// The longest one write may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// A connected STOMP client.
///
/// ```no_run
/// # async fn demo() -> Result<(), duplex_tokio::stomp::StompError> {
/// use duplex_stomp::{AckMode, ClientConfig, ClientEvent};
/// use duplex_tokio::stomp::StompClient;
///
/// let mut client = StompClient::connect("127.0.0.1:61613", ClientConfig::new("/")).await?;
/// client.subscribe("/queue/jobs", AckMode::ClientIndividual).await?;
/// client.send("/queue/jobs", &[("content-type", "text/plain")], "job 1").await?;
/// while let Some(ClientEvent::Message(job)) = client.next_event().await {
///     println!("{:?}", job.body());
///     client.ack(&job).await?;
///     break;
/// }
/// client.disconnect().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct StompClient {
    jobs: mpsc::Sender<Job>,
    events: mpsc::Receiver<ClientEvent>,
    connected: Connected,
}

impl StompClient {
    /// Connects over TCP and waits for `CONNECTED`.
    pub async fn connect(
        addr: impl ToSocketAddrs,
        config: ClientConfig,
    ) -> Result<StompClient, StompError> {
        let timeout = config.connect_timeout.unwrap_or(Duration::from_secs(30));
        let tcp = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| StompError::Timeout)??;
        tcp.set_nodelay(true)?;
        StompClient::over_stream(tcp, config).await
    }

    /// Connects to a STOMP-over-WebSocket endpoint (`ws://host/stomp`) and
    /// waits for `CONNECTED`. Unless `websocket.protocols` names some, the
    /// `v1x.stomp` subprotocols of the configured versions are offered,
    /// highest first.
    pub async fn connect_websocket(
        url: &str,
        config: ClientConfig,
        mut websocket: crate::ClientConfig,
    ) -> Result<StompClient, StompError> {
        if websocket.protocols.is_empty() {
            let mut versions = config.versions.clone();
            versions.sort_unstable_by(|a, b| b.cmp(a));
            websocket.protocols = versions
                .iter()
                .map(|v| v.websocket_subprotocol().to_owned())
                .collect();
        }
        let (ws, _) = crate::connect_with(url, websocket).await?;
        StompClient::over_websocket(ws, config).await
    }

    /// Runs a client over a byte stream the caller opened.
    pub async fn over_stream<S>(io: S, config: ClientConfig) -> Result<StompClient, StompError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        StompClient::start(ByteStream::new(io), config).await
    }

    /// Runs a client over a WebSocket the caller opened (one frame per
    /// message).
    pub async fn over_websocket<S>(
        ws: WebSocketStream<S>,
        config: ClientConfig,
    ) -> Result<StompClient, StompError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        StompClient::start(WebSocketTransport(ws), config).await
    }

    async fn start<T: Transport + 'static>(
        io: T,
        config: ClientConfig,
    ) -> Result<StompClient, StompError> {
        let session = ClientSession::new(config, Instant::now())?;
        let (job_tx, job_rx) = mpsc::channel(JOB_QUEUE);
        let (event_tx, mut event_rx) = mpsc::channel(EVENT_BACKLOG);
        tokio::spawn(run(io, session, job_rx, event_tx));
        // The session fails on its own when CONNECTED does not come within
        // its connect timeout.
        match event_rx.recv().await {
            Some(ClientEvent::Connected(connected)) => Ok(StompClient {
                jobs: job_tx,
                events: event_rx,
                connected,
            }),
            Some(ClientEvent::Error(frame)) => Err(StompError::Refused(Box::new(frame))),
            Some(ClientEvent::Failed(e)) => Err(StompError::Stomp(e)),
            _ => Err(StompError::Closed),
        }
    }

    /// What `CONNECTED` settled (version, heart-beats, server).
    pub fn connected(&self) -> &Connected {
        &self.connected
    }

    /// Runs `f` on the session inside the task and writes what it queued.
    /// Every other command is a shorthand for this.
    pub async fn with<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut ClientSession) -> R + Send + 'static,
    ) -> Result<R, StompError> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |session| {
            let _ = tx.send(f(session));
        });
        self.jobs.send(job).await.map_err(|_| StompError::Closed)?;
        rx.await.map_err(|_| StompError::Closed)
    }

    /// Sends `SEND` to `destination` with extra `headers` and `body`.
    pub async fn send(
        &self,
        destination: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<(), StompError> {
        let destination = destination.to_owned();
        let headers = owned(headers);
        let body = body.into();
        self.with(move |s| s.send(&destination, &borrowed(&headers), &body))
            .await??;
        Ok(())
    }

    /// Sends any client frame (see [`ClientSession::send_frame`]).
    pub async fn send_frame(&self, frame: Frame) -> Result<(), StompError> {
        self.with(move |s| s.send_frame(&frame)).await??;
        Ok(())
    }

    /// Subscribes; returns the subscription id.
    pub async fn subscribe(&self, destination: &str, ack: AckMode) -> Result<String, StompError> {
        self.subscribe_with(destination, ack, &[]).await
    }

    /// Subscribes with extra headers (such as `receipt`); returns the id.
    pub async fn subscribe_with(
        &self,
        destination: &str,
        ack: AckMode,
        headers: &[(&str, &str)],
    ) -> Result<String, StompError> {
        let destination = destination.to_owned();
        let headers = owned(headers);
        Ok(self
            .with(move |s| s.subscribe_with(&destination, ack, &borrowed(&headers)))
            .await??)
    }

    /// Ends subscription `id`.
    pub async fn unsubscribe(&self, id: &str) -> Result<(), StompError> {
        let id = id.to_owned();
        self.with(move |s| s.unsubscribe(&id, &[])).await??;
        Ok(())
    }

    /// Acknowledges `message`.
    pub async fn ack(&self, message: &Message) -> Result<(), StompError> {
        let message = message.clone();
        self.with(move |s| s.ack(&message, None)).await??;
        Ok(())
    }

    /// Refuses `message` (1.1+).
    pub async fn nack(&self, message: &Message) -> Result<(), StompError> {
        let message = message.clone();
        self.with(move |s| s.nack(&message, None)).await??;
        Ok(())
    }

    /// Begins a transaction; returns its id.
    pub async fn begin(&self) -> Result<String, StompError> {
        Ok(self.with(ClientSession::begin).await??)
    }

    /// Commits transaction `id`.
    pub async fn commit(&self, id: &str) -> Result<(), StompError> {
        let id = id.to_owned();
        self.with(move |s| s.commit(&id)).await??;
        Ok(())
    }

    /// Aborts transaction `id`.
    pub async fn abort(&self, id: &str) -> Result<(), StompError> {
        let id = id.to_owned();
        self.with(move |s| s.abort(&id)).await??;
        Ok(())
    }

    /// The next event: messages, receipts, the server's `ERROR`, a failure.
    /// `None` once the connection is over and every event was taken.
    pub async fn next_event(&mut self) -> Option<ClientEvent> {
        self.events.recv().await
    }

    /// Sends `DISCONNECT` and waits (at most 10 s) for its receipt; events
    /// arriving meanwhile are dropped.
    pub async fn disconnect(mut self) -> Result<(), StompError> {
        self.with(ClientSession::disconnect).await??;
        let wait = async {
            loop {
                match self.events.recv().await {
                    Some(ClientEvent::Disconnected) => return Ok(()),
                    Some(ClientEvent::Error(frame)) => {
                        return Err(StompError::Refused(Box::new(frame)));
                    }
                    Some(ClientEvent::Failed(e)) => return Err(StompError::Stomp(e)),
                    Some(_) => {}
                    None => return Err(StompError::Closed),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .map_err(|_| StompError::Timeout)?
    }
}

fn owned(headers: &[(&str, &str)]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

fn borrowed(headers: &[(String, String)]) -> Vec<(&str, &str)> {
    headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}

fn take(session: &mut ClientSession, chunks: &mut Vec<Bytes>) {
    if session.has_transmit() {
        let mut out = BytesMut::new();
        session.poll_transmit(&mut out);
        chunks.push(out.freeze());
    }
}

async fn run<T: Transport>(
    mut io: T,
    mut session: ClientSession,
    mut jobs: mpsc::Receiver<Job>,
    events: mpsc::Sender<ClientEvent>,
) {
    let mut chunks = Vec::new();
    let mut backlog: VecDeque<ClientEvent> = VecDeque::new();
    let mut reading = true;
    let mut handles_alive = true;
    take(&mut session, &mut chunks);
    loop {
        if !write(&mut io, &mut chunks, WRITE_TIMEOUT).await {
            break;
        }
        if session.is_closed() && backlog.is_empty() {
            break;
        }
        if !reading && !handles_alive && backlog.is_empty() {
            break;
        }
        let deadline = session.poll_timeout();
        tokio::select! {
            received = io.recv(), if reading && backlog.len() < EVENT_BACKLOG => match received {
                Some(Ok(data)) => session.receive(&data),
                Some(Err(e)) => {
                    tracing::debug!("STOMP client transport failed: {e}");
                    reading = false;
                }
                None => reading = false,
            },
            job = jobs.recv(), if handles_alive => match job {
                Some(job) => job(&mut session),
                // Every handle is gone: nobody can read events any more.
                None => break,
            },
            permit = events.reserve(), if !backlog.is_empty() => match permit {
                Ok(permit) => {
                    if let Some(event) = backlog.pop_front() {
                        permit.send(event);
                    }
                }
                Err(_) => {
                    handles_alive = false;
                    backlog.clear();
                }
            },
            () = sleep_until(deadline) => session.handle_timeout(Instant::now()),
        }
        while let Some(event) = session.poll_event() {
            backlog.push_back(event);
        }
        take(&mut session, &mut chunks);
        if !reading && !session.is_closed() && backlog.is_empty() {
            // The server went away without a word.
            break;
        }
    }
    // Whatever is left (the last events before a close) still reaches the
    // application, as long as it reads.
    for event in backlog {
        if events.send(event).await.is_err() {
            break;
        }
    }
    io.close(false).await;
}
