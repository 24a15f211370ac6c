//! [`StompClient`]: a [`ClientSession`] driven in its own task over TCP or a
//! WebSocket. The task moves bytes, runs the heart-beat timer, hands events
//! out and settles the receipts callers await; every command is a session
//! method run inside the task. The client splits into a [`StompSender`]
//! (cloneable, for any number of tasks) and a [`StompReceiver`].

use std::collections::{HashMap, VecDeque};
use std::ops::Deref;
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

type Job = Box<dyn FnOnce(&mut ClientSession, &mut Receipts) + Send>;

/// Commands waiting for the task.
const JOB_QUEUE: usize = 64;
/// Events the task holds for the application before it stops reading the
/// socket (so a slow reader slows the server down instead of growing a
/// buffer).
const EVENT_BACKLOG: usize = 1024;
/// The longest one write may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long [`StompClient::disconnect`] waits for the `DISCONNECT` receipt.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(10);

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
///
/// Its commands are [`StompSender`]'s (through `Deref`); [`StompClient::split`]
/// gives the sending and receiving halves to different tasks.
#[derive(Debug)]
pub struct StompClient {
    sender: StompSender,
    events: StompReceiver,
    connected: Connected,
}

/// The sending half of a [`StompClient`]: every command, the `RECEIPT`s to
/// await and `DISCONNECT`. Clones share the connection.
#[derive(Clone, Debug)]
pub struct StompSender {
    jobs: mpsc::Sender<Job>,
}

/// The receiving half of a [`StompClient`]: its events.
#[derive(Debug)]
pub struct StompReceiver {
    events: mpsc::Receiver<ClientEvent>,
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
            websocket.protocols = config
                .websocket_subprotocols()
                .into_iter()
                .map(str::to_owned)
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
                sender: StompSender { jobs: job_tx },
                events: StompReceiver { events: event_rx },
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

    /// A sender for another task; the client keeps working.
    pub fn sender(&self) -> StompSender {
        self.sender.clone()
    }

    /// Splits the client into its sending and receiving halves.
    pub fn split(self) -> (StompSender, StompReceiver) {
        (self.sender, self.events)
    }

    /// The next event: messages, receipts, the server's `ERROR`, a failure.
    /// `None` once the connection is over and every event was taken.
    pub async fn next_event(&mut self) -> Option<ClientEvent> {
        self.events.next_event().await
    }

    /// Sends `DISCONNECT` and waits (at most 10 s) for its receipt; events
    /// arriving meanwhile are dropped.
    pub async fn disconnect(self) -> Result<(), StompError> {
        // Without a reader the task drops events instead of holding them,
        // so that the receipt is read however many arrive first.
        drop(self.events);
        tokio::time::timeout(DISCONNECT_TIMEOUT, self.sender.disconnect())
            .await
            .map_err(|_| StompError::Timeout)?
    }
}

impl Deref for StompClient {
    type Target = StompSender;

    fn deref(&self) -> &StompSender {
        &self.sender
    }
}

impl StompSender {
    /// Runs `f` on the session inside the task and writes what it queued.
    /// Every other command is a shorthand for this.
    pub async fn with<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut ClientSession) -> R + Send + 'static,
    ) -> Result<R, StompError> {
        let (tx, rx) = oneshot::channel();
        self.job(Box::new(move |session, _| {
            let _ = tx.send(f(session));
        }))
        .await?;
        rx.await.map_err(|_| StompError::Closed)
    }

    async fn job(&self, job: Job) -> Result<(), StompError> {
        self.jobs.send(job).await.map_err(|_| StompError::Closed)
    }

    /// Sends `SEND` with a `receipt` header and waits for the server's
    /// `RECEIPT`: it returns once the server has processed the frame. The
    /// `RECEIPT` is not also handed out as an event. An `ERROR` instead
    /// ends the wait with [`StompError::Refused`].
    pub async fn send_with_receipt(
        &self,
        destination: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<(), StompError> {
        let send = owned_send(ClientSession::send_with_receipt, destination, headers, body);
        self.await_answer(send, Receipts::await_receipt).await
    }

    /// Sends `DISCONNECT` and waits for its receipt, after which the
    /// connection closes. Unbounded in time: [`StompClient::disconnect`]
    /// gives up after 10 s.
    pub async fn disconnect(&self) -> Result<(), StompError> {
        self.await_answer(ClientSession::disconnect, |receipts, _, waiter| {
            receipts.await_disconnect(waiter)
        })
        .await
    }

    /// Runs `command` in the task and, if the session took it, hands
    /// `wait` what it returned and the waiter that the server's answer
    /// (a `RECEIPT`, or an `ERROR`) settles; returns that answer.
    async fn await_answer<T>(
        &self,
        command: impl FnOnce(&mut ClientSession) -> Result<T, duplex_stomp::Error> + Send + 'static,
        wait: impl FnOnce(&mut Receipts, T, Waiter) + Send + 'static,
    ) -> Result<(), StompError> {
        let (tx, rx) = oneshot::channel();
        self.job(Box::new(move |s, receipts| match command(s) {
            Ok(sent) => wait(receipts, sent, tx),
            Err(e) => {
                let _ = tx.send(Err(e.into()));
            }
        }))
        .await?;
        rx.await.map_err(|_| StompError::Closed)?
    }

    /// Sends `SEND` to `destination` with extra `headers` and `body`.
    pub async fn send(
        &self,
        destination: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<(), StompError> {
        let send = owned_send(ClientSession::send, destination, headers, body);
        self.with(send).await??;
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
}

impl StompReceiver {
    /// The next event: messages, receipts, the server's `ERROR`, a failure.
    /// `None` once the connection is over and every event was taken.
    pub async fn next_event(&mut self) -> Option<ClientEvent> {
        self.events.recv().await
    }
}

/// [`ClientSession::send`] or [`ClientSession::send_with_receipt`].
type SendFn<R> = fn(&mut ClientSession, &str, &[(&str, &str)], &[u8]) -> R;

/// A `SEND` (plain or with a receipt) as a job: the job runs in the
/// connection's task, after the caller's borrows end, so its arguments
/// travel owned.
fn owned_send<R: 'static>(
    send: SendFn<R>,
    destination: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> impl FnOnce(&mut ClientSession) -> R + Send + 'static {
    let destination = destination.to_owned();
    let headers = owned(headers);
    let body = body.into();
    move |s| send(s, &destination, &borrowed(&headers), &body)
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

/// Where an awaited receipt's outcome goes.
type Waiter = oneshot::Sender<Result<(), StompError>>;

/// The `RECEIPT`s callers await, settled by the session's events.
#[derive(Default)]
struct Receipts {
    waiting: HashMap<String, Waiter>,
    /// The caller of [`StompSender::disconnect`]; the session reports that
    /// receipt as [`ClientEvent::Disconnected`].
    disconnect: Option<Waiter>,
}

impl Receipts {
    fn await_receipt(&mut self, id: String, waiter: Waiter) {
        // Callers that gave up (a timeout around the await) would stay
        // until a RECEIPT that may never come.
        self.waiting.retain(|_, w| !w.is_closed());
        self.waiting.insert(id, waiter);
    }

    fn await_disconnect(&mut self, waiter: Waiter) {
        self.disconnect = Some(waiter);
    }

    /// Settles the waits `event` ends; returns it unless it was only the
    /// answer to one of them. Waits still open when the task ends fail with
    /// [`StompError::Closed`] (their senders are dropped).
    fn settle(&mut self, event: ClientEvent) -> Option<ClientEvent> {
        match &event {
            ClientEvent::Receipt { receipt_id } => {
                if let Some(waiter) = self.waiting.remove(receipt_id) {
                    let _ = waiter.send(Ok(()));
                    return None;
                }
            }
            ClientEvent::Disconnected => {
                if let Some(waiter) = self.disconnect.take() {
                    let _ = waiter.send(Ok(()));
                }
            }
            ClientEvent::Error(frame) => {
                self.fail(|| StompError::Refused(Box::new(frame.clone())));
            }
            ClientEvent::Failed(e) => self.fail(|| StompError::Stomp(e.clone())),
            ClientEvent::Connected(_) | ClientEvent::Message(_) => {}
        }
        Some(event)
    }

    /// The session ended: every wait gets `error`.
    fn fail(&mut self, error: impl Fn() -> StompError) {
        for waiter in self
            .waiting
            .drain()
            .map(|(_, w)| w)
            .chain(self.disconnect.take())
        {
            let _ = waiter.send(Err(error()));
        }
    }
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
    let mut receipts = Receipts::default();
    let mut reading = true;
    let mut senders_alive = true;
    take(&mut session, &mut chunks);
    loop {
        if !write(&mut io, &mut chunks, WRITE_TIMEOUT).await {
            break;
        }
        if session.is_closed() && backlog.is_empty() {
            break;
        }
        // Without a reader, events are dropped rather than held (a sender
        // may still be waiting for a receipt behind them).
        let reader_alive = !events.is_closed();
        if !reader_alive {
            backlog.clear();
            if !senders_alive {
                break;
            }
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
            job = jobs.recv(), if senders_alive => match job {
                Some(job) => job(&mut session, &mut receipts),
                // No more commands; the receiver may still read events.
                None => senders_alive = false,
            },
            permit = events.reserve(), if !backlog.is_empty() => match permit {
                Ok(permit) => {
                    if let Some(event) = backlog.pop_front() {
                        permit.send(event);
                    }
                }
                Err(_) => backlog.clear(),
            },
            () = sleep_until(deadline) => session.handle_timeout(Instant::now()),
        }
        while let Some(event) = session.poll_event() {
            if let Some(event) = receipts.settle(event) {
                if !events.is_closed() {
                    backlog.push_back(event);
                }
            }
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
