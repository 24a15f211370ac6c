//! The loopback load generator: echo servers for duplex, tokio-tungstenite
//! and fastwebsockets built the same way (one tokio current-thread runtime,
//! `TCP_NODELAY`, read one message then write and flush it), and one
//! minimal raw-frame client used against all of them, so that the server
//! is what gets measured.
//!
//! Every loop is bounded: servers stop after a deadline, clients send a
//! fixed number of messages under an overall timeout, and only loopback
//! addresses are accepted.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use duplex_ws::{FrameHeader, OpCode, apply_mask};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::tlsbench::ServerTls;

/// What went wrong in a load run or an echo server (WebSocket or
/// Socket.IO).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A socket operation failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The target is not a loopback address (the harness only talks to
    /// this machine).
    #[error("{0} is not a loopback address")]
    NotLoopback(String),
    /// The URL could not be understood.
    #[error("bad url {0}: expected ws://127.0.0.1:PORT/path")]
    BadUrl(String),
    /// The server's handshake response was not a valid 101.
    #[error("handshake refused: {0}")]
    Handshake(String),
    /// The echo did not match what was sent.
    #[error("connection {connection}: echo {message} differs from what was sent")]
    WrongEcho {
        /// Which connection.
        connection: usize,
        /// Which message.
        message: usize,
    },
    /// The Socket.IO server said something this client does not expect.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The Socket.IO server closed the connection (or the Engine.IO session).
    #[error("closed by the server")]
    Closed,
    /// The run, or one step of it, did not finish within its time limit.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
}

/// The echo server implementations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerImpl {
    /// duplex-tokio's `accept` and `WebSocketStream`.
    Duplex,
    /// The same with `Config::min_shared_payload` at `usize::MAX`: every
    /// payload copied into the write buffer, as before duplex-ws could send
    /// without copying (for comparing the two in one build).
    DuplexCopy,
    /// tokio-tungstenite's `accept_async` and `WebSocketStream`.
    Tungstenite,
    /// fastwebsockets behind hyper's upgrade, with `FragmentCollector`.
    FastWebSockets,
}

/// Refuses anything but a loopback address.
pub fn ensure_loopback(addr: SocketAddr) -> Result<SocketAddr, Error> {
    if addr.ip().is_loopback() {
        Ok(addr)
    } else {
        Err(Error::NotLoopback(addr.to_string()))
    }
}

/// Accepts connections on `listener` and echoes every text or binary
/// message with `imp`, until `run_for` has passed. Returns how many
/// connections it accepted.
pub async fn echo_server(
    imp: ServerImpl,
    listener: TcpListener,
    run_for: Duration,
) -> Result<u64, Error> {
    echo_server_with(imp, listener, run_for, None).await
}

/// [`echo_server`], over TLS when `tls` is given: each connection's TLS
/// handshake runs on its own task before the WebSocket one, with the
/// acceptor that goes with `imp` (see [`crate::tlsbench::ServerTls`]).
pub async fn echo_server_with(
    imp: ServerImpl,
    listener: TcpListener,
    run_for: Duration,
    tls: Option<ServerTls>,
) -> Result<u64, Error> {
    ensure_loopback(listener.local_addr()?)?;
    let deadline = tokio::time::Instant::now() + run_for;
    let mut accepted = 0u64;
    loop {
        let accepted_now = tokio::select! {
            r = listener.accept() => r,
            () = tokio::time::sleep_until(deadline) => return Ok(accepted),
        };
        let tcp = match accepted_now {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                // Out of descriptors (EMFILE) and the like: the held
                // connections are still served, and accepting resumes
                // when some close, as duplex's own servers do.
                eprintln!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        accepted += 1;
        tcp.set_nodelay(true)?;
        // One task per server type: one async block matching on both
        // would be as large as the larger of the two futures (a task is
        // allocated whole at spawn), charging each server's idle
        // connections with the other's.
        match &tls {
            Some(ServerTls::Duplex(acceptor)) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let run = async {
                        let (stream, _) = acceptor.accept(tcp).await.map_err(|e| e.to_string())?;
                        echo_duplex(stream, false).await
                    };
                    if let Err(e) = run.await {
                        eprintln!("echo connection ended: {e}");
                    }
                });
                continue;
            }
            Some(ServerTls::Rustls(acceptor)) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let run = async {
                        let stream = tokio::time::timeout(
                            crate::tlsbench::HANDSHAKE_TIMEOUT,
                            acceptor.accept(tcp),
                        )
                        .await
                        .map_err(|_| "TLS handshake timed out".to_string())?
                        .map_err(|e| e.to_string())?;
                        echo_tungstenite(stream).await
                    };
                    if let Err(e) = run.await {
                        eprintln!("echo connection ended: {e}");
                    }
                });
                continue;
            }
            None => {}
        }
        tokio::spawn(async move {
            let result = match imp {
                ServerImpl::Duplex => echo_duplex(tcp, false).await,
                ServerImpl::DuplexCopy => echo_duplex(tcp, true).await,
                ServerImpl::Tungstenite => echo_tungstenite(tcp).await,
                ServerImpl::FastWebSockets => echo_fastwebsockets(tcp).await,
            };
            if let Err(e) = result {
                eprintln!("echo connection ended: {e}");
            }
        });
    }
}

async fn echo_duplex<S>(tcp: S, copy: bool) -> Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut config = duplex_tokio::ServerConfig::default();
    if copy {
        config.connection.min_shared_payload = usize::MAX;
    }
    let (mut ws, _) =
        duplex_tokio::accept_with(tcp, config, |_| Ok(duplex_tokio::Acceptance::default()))
            .await
            .map_err(|e| e.to_string())?;
    while let Some(msg) = ws.next().await {
        let msg = msg.map_err(|e| e.to_string())?;
        ws.send(msg).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

async fn echo_tungstenite<S>(tcp: S) -> Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio_tungstenite::tungstenite::Message;
    let mut ws = tokio_tungstenite::accept_async(tcp)
        .await
        .map_err(|e| e.to_string())?;
    while let Some(msg) = ws.next().await {
        match msg.map_err(|e| e.to_string())? {
            msg @ (Message::Text(_) | Message::Binary(_)) => {
                ws.send(msg).await.map_err(|e| e.to_string())?
            }
            Message::Close(_) => break,
            _ => {}
        }
    }
    // Drive the close reply out.
    while ws.next().await.is_some() {}
    Ok(())
}

async fn echo_fastwebsockets(tcp: TcpStream) -> Result<(), String> {
    use http_body_util::Empty;
    use hyper::body::Incoming;
    use hyper::{Request, Response};

    async fn upgrade(
        mut req: Request<Incoming>,
    ) -> Result<Response<Empty<Bytes>>, fastwebsockets::WebSocketError> {
        let (response, fut) = fastwebsockets::upgrade::upgrade(&mut req)?;
        tokio::spawn(async move {
            let run = async {
                let mut ws = fastwebsockets::FragmentCollector::new(fut.await?);
                loop {
                    let frame = ws.read_frame().await?;
                    match frame.opcode {
                        fastwebsockets::OpCode::Close => break,
                        fastwebsockets::OpCode::Text | fastwebsockets::OpCode::Binary => {
                            ws.write_frame(frame).await?
                        }
                        _ => {}
                    }
                }
                Ok::<_, fastwebsockets::WebSocketError>(())
            };
            if let Err(e) = run.await {
                eprintln!("echo connection ended: {e}");
            }
        });
        Ok(response)
    }

    let io = hyper_util::rt::TokioIo::new(tcp);
    hyper::server::conn::http1::Builder::new()
        .serve_connection(io, hyper::service::service_fn(upgrade))
        .with_upgrades()
        .await
        .map_err(|e| e.to_string())
}

/// Where to connect: a loopback `ws://` URL, resolved.
#[derive(Debug, Clone)]
pub struct Target {
    /// The resolved loopback address.
    pub addr: SocketAddr,
    /// The Host header.
    pub host: String,
    /// The request target.
    pub path: String,
}

impl Target {
    /// Parses `ws://HOST:PORT/path`; the host must be a loopback address or
    /// `localhost`.
    pub fn parse(url: &str) -> Result<Self, Error> {
        let bad = || Error::BadUrl(url.to_string());
        let rest = url.strip_prefix("ws://").ok_or_else(bad)?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let resolved = authority.replace("localhost", "127.0.0.1");
        let addr: SocketAddr = resolved.parse().map_err(|_| bad())?;
        Ok(Self {
            addr: ensure_loopback(addr)?,
            host: authority.to_string(),
            path: path.to_string(),
        })
    }
}

/// RFC 6455's sample key; the client checks the matching accept value.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// Opens a TCP connection and performs the opening handshake with a fixed
/// key, checking the 101 and the accept value.
pub async fn raw_connect(target: &Target) -> Result<TcpStream, Error> {
    handshake(TcpStream::connect(target.addr).await?, target).await
}

/// Performs the opening handshake on a connected socket with a fixed key,
/// checking the 101 and the accept value.
pub async fn handshake(mut tcp: TcpStream, target: &Target) -> Result<TcpStream, Error> {
    tcp.set_nodelay(true)?;
    handshake_on(&mut tcp, target).await?;
    Ok(tcp)
}

/// The opening handshake of [`handshake`] on any byte stream (a TLS one
/// for `wss://`).
pub async fn handshake_on<S>(tcp: &mut S, target: &Target) -> Result<(), Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n",
        target.path, target.host
    );
    tcp.write_all(request.as_bytes()).await?;
    let mut response = Vec::with_capacity(256);
    let mut chunk = [0u8; 1024];
    while !response.ends_with(b"\r\n\r\n") {
        if response.len() > 8192 {
            return Err(Error::Handshake("response head over 8 KiB".into()));
        }
        let n = tcp.read(&mut chunk).await?;
        if n == 0 {
            return Err(Error::Handshake("connection closed".into()));
        }
        response.extend_from_slice(&chunk[..n]);
        // The server sends nothing after its 101 until the client speaks,
        // so the head ends exactly where a read ends.
        if let Some(end) = response.windows(4).position(|w| w == b"\r\n\r\n") {
            if end + 4 != response.len() {
                return Err(Error::Handshake("bytes after the response head".into()));
            }
        }
    }
    let text = String::from_utf8_lossy(&response);
    let accepted = text.starts_with("HTTP/1.1 101")
        && text.lines().any(|line| {
            line.to_ascii_lowercase()
                .starts_with("sec-websocket-accept:")
                && line.trim_end().ends_with(ACCEPT)
        });
    if !accepted {
        let first = text.lines().next().unwrap_or_default().to_string();
        return Err(Error::Handshake(first));
    }
    Ok(())
}

/// One text message of `size` printable ASCII bytes, masked with `key` as
/// a client sends it, and the unmasked frame a server echoes back.
pub fn echo_frames(size: usize, key: [u8; 4]) -> (Vec<u8>, Vec<u8>) {
    let payload: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
    let mut request = Vec::with_capacity(size + 14);
    FrameHeader::new(OpCode::Text, true, Some(key), size as u64).encode(&mut request);
    let start = request.len();
    request.extend_from_slice(&payload);
    apply_mask(&mut request[start..], key, 0);
    let mut reply = Vec::with_capacity(size + 10);
    FrameHeader::new(OpCode::Text, true, None, size as u64).encode(&mut reply);
    reply.extend_from_slice(&payload);
    (request, reply)
}

/// What a load run measured.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// Connections used.
    pub connections: usize,
    /// Messages echoed, all connections together.
    pub messages: u64,
    /// Wall time from the first message sent to the last echo received.
    pub elapsed: Duration,
    /// Median round trip (send to echo received).
    pub p50: Duration,
    /// 99th percentile round trip.
    pub p99: Duration,
    /// Slowest round trip.
    pub max: Duration,
}

impl LoadReport {
    /// Echoed messages per second.
    pub fn msgs_per_sec(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64()
    }
}

/// How a load run goes.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The server.
    pub target: Target,
    /// Concurrent connections, each with one message in flight.
    pub connections: usize,
    /// Messages each connection sends (and awaits the echo of).
    pub messages: usize,
    /// Payload bytes per message.
    pub size: usize,
    /// The whole run, handshakes included, must end within this.
    pub timeout: Duration,
}

/// Opens every connection, then has each send `messages` messages one at a
/// time, awaiting each echo and checking it byte for byte.
pub async fn run_load(config: &LoadConfig) -> Result<LoadReport, Error> {
    tokio::time::timeout(config.timeout, load_inner(config))
        .await
        .map_err(|_| Error::Timeout(config.timeout))?
}

async fn load_inner(config: &LoadConfig) -> Result<LoadReport, Error> {
    let mut streams = Vec::with_capacity(config.connections);
    for _ in 0..config.connections {
        streams.push(raw_connect(&config.target).await?);
    }
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for (id, mut tcp) in streams.into_iter().enumerate() {
        let key = (id as u32).wrapping_mul(0x9e37_79b9).to_le_bytes();
        let (request, reply) = echo_frames(config.size, key);
        let messages = config.messages;
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(messages);
            let mut got = vec![0u8; reply.len()];
            for message in 0..messages {
                let sent = Instant::now();
                tcp.write_all(&request).await?;
                tcp.read_exact(&mut got).await?;
                latencies.push(sent.elapsed());
                if got != reply {
                    return Err(Error::WrongEcho {
                        connection: id,
                        message,
                    });
                }
            }
            // Close politely: a masked close 1000, then wait (briefly) for
            // the server's reply or its end of stream.
            let mut close = vec![0x88, 0x82, key[0], key[1], key[2], key[3], 0x03, 0xe8];
            apply_mask(&mut close[6..], key, 0);
            tcp.write_all(&close).await?;
            let mut sink = [0u8; 64];
            let _ = tokio::time::timeout(Duration::from_secs(1), tcp.read(&mut sink)).await;
            Ok::<_, Error>(latencies)
        });
    }
    let mut all = Vec::with_capacity(config.connections * config.messages);
    while let Some(joined) = tasks.join_next().await {
        let latencies = joined.map_err(|e| Error::Io(std::io::Error::other(e)))??;
        all.extend(latencies);
    }
    // Messages are counted up to the last echo, not the closing handshakes.
    let elapsed = start.elapsed();
    let messages = all.len() as u64;
    let Percentiles { p50, p99, max } = Percentiles::of(&mut all);
    Ok(LoadReport {
        connections: config.connections,
        messages,
        elapsed,
        p50,
        p99,
        max,
    })
}

/// The median, 99th percentile and largest of a set of durations (zero
/// for an empty set): the latency columns every load run reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Percentiles {
    /// The median.
    pub p50: Duration,
    /// The 99th percentile.
    pub p99: Duration,
    /// The largest.
    pub max: Duration,
}

impl Percentiles {
    /// Sorts `samples` and reads the percentiles off them (the sample at
    /// index `len * q / 100`).
    pub fn of(samples: &mut [Duration]) -> Self {
        samples.sort_unstable();
        let pick = |q: usize| {
            samples
                .get(samples.len() * q / 100)
                .copied()
                .unwrap_or_default()
        };
        Self {
            p50: pick(50),
            p99: pick(99),
            max: samples.last().copied().unwrap_or_default(),
        }
    }
}

/// What an idle-connection run measured.
#[derive(Debug, Clone)]
pub struct IdleReport {
    /// Connections opened and held.
    pub connections: usize,
    /// Time to open them all (handshakes included).
    pub elapsed: Duration,
    /// The server's resident set before and after, in KiB, if its pid was
    /// given.
    pub server_rss_kib: Option<(u64, u64)>,
    /// The kernel's TCP memory (pages, from /proc/net/sockstat) before and
    /// after.
    pub tcp_mem_pages: Option<(u64, u64)>,
}

impl IdleReport {
    /// Completed handshakes per second.
    pub fn handshakes_per_sec(&self) -> f64 {
        self.connections as f64 / self.elapsed.as_secs_f64()
    }

    /// Server RSS growth per held connection, in bytes.
    pub fn rss_per_connection(&self) -> Option<f64> {
        self.server_rss_kib.map(|(before, after)| {
            (after as f64 - before as f64) * 1024.0 / self.connections as f64
        })
    }
}

pub use crate::procstat::rss_kib;

/// The kernel's TCP memory in pages (the `mem` field of /proc/net/sockstat).
pub fn tcp_mem_pages() -> Option<u64> {
    crate::procstat::sockstat().map(|t| t.mem_pages)
}

/// Opens `connections` connections, `concurrency` handshakes at a time,
/// holds them all for `hold`, and measures the server's memory.
pub async fn run_idle(
    target: &Target,
    connections: usize,
    concurrency: usize,
    hold: Duration,
    server_pid: Option<u32>,
    timeout: Duration,
) -> Result<IdleReport, Error> {
    let rss_before = server_pid.and_then(rss_kib);
    let mem_before = tcp_mem_pages();
    let start = Instant::now();
    let opened = tokio::time::timeout(timeout, async {
        let mut held = Vec::with_capacity(connections);
        let mut tasks = JoinSet::new();
        let mut started = 0;
        while held.len() < connections {
            while started < connections && tasks.len() < concurrency.max(1) {
                let target = target.clone();
                tasks.spawn(async move { raw_connect(&target).await });
                started += 1;
            }
            if let Some(joined) = tasks.join_next().await {
                held.push(joined.map_err(|e| Error::Io(std::io::Error::other(e)))??);
            }
        }
        Ok::<_, Error>(held)
    })
    .await
    .map_err(|_| Error::Timeout(timeout))??;
    let elapsed = start.elapsed();
    tokio::time::sleep(hold).await;
    let rss_after = server_pid.and_then(rss_kib);
    let mem_after = tcp_mem_pages();
    drop(opened);
    Ok(IdleReport {
        connections,
        elapsed,
        server_rss_kib: rss_before.zip(rss_after),
        tcp_mem_pages: mem_before.zip(mem_after),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_loopback() {
        let t = Target::parse("ws://127.0.0.1:9001/echo").unwrap();
        assert_eq!(t.addr, "127.0.0.1:9001".parse().unwrap());
        assert_eq!(t.path, "/echo");
        assert_eq!(Target::parse("ws://localhost:80").unwrap().path, "/");
        assert!(matches!(
            Target::parse("ws://10.0.0.1:80/"),
            Err(Error::NotLoopback(_))
        ));
        assert!(matches!(
            Target::parse("http://127.0.0.1:80/"),
            Err(Error::BadUrl(_))
        ));
    }

    #[test]
    fn percentiles_pick_the_sorted_samples() {
        let ms = Duration::from_millis;
        let mut samples: Vec<Duration> = (1..=200).rev().map(ms).collect();
        let p = Percentiles::of(&mut samples);
        // Index 100 and 198 of 1..=200 ms, sorted.
        assert_eq!((p.p50, p.p99, p.max), (ms(101), ms(199), ms(200)));
        assert_eq!(Percentiles::of(&mut []), Percentiles::default());
        assert_eq!(Percentiles::of(&mut [ms(7)]).p99, ms(7));
    }

    #[test]
    fn echo_frames_unmask_to_the_reply_payload() {
        let (mut request, reply) = echo_frames(200, [1, 2, 3, 4]);
        assert_eq!(&request[..2], &[0x81, 0xfe]);
        assert_eq!(&reply[..4], &[0x81, 0x7e, 0x00, 200]);
        apply_mask(&mut request[8..], [1, 2, 3, 4], 0);
        assert_eq!(&request[8..], &reply[4..]);
    }

    /// Each server echoes every message of a short run over loopback, as
    /// the raw client checks byte for byte.
    #[tokio::test(flavor = "current_thread")]
    async fn every_server_echoes_the_load() {
        for imp in [
            ServerImpl::Duplex,
            ServerImpl::DuplexCopy,
            ServerImpl::Tungstenite,
            ServerImpl::FastWebSockets,
        ] {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server = tokio::spawn(echo_server(imp, listener, Duration::from_secs(20)));
            let config = LoadConfig {
                target: Target::parse(&format!("ws://{addr}/")).unwrap(),
                connections: 3,
                messages: 50,
                size: 300,
                timeout: Duration::from_secs(20),
            };
            let report = run_load(&config).await.unwrap();
            assert_eq!(report.messages, 150, "{imp:?}");
            assert!(report.p50 <= report.p99 && report.p99 <= report.max);
            // Large enough for duplex to echo the payload uncopied.
            let large = LoadConfig {
                size: 70_000,
                messages: 5,
                ..config.clone()
            };
            let report = run_load(&large).await.unwrap();
            assert_eq!(report.messages, 15, "{imp:?}, 70 kB");
            let idle = run_idle(
                &config.target,
                20,
                5,
                Duration::ZERO,
                Some(std::process::id()),
                Duration::from_secs(20),
            )
            .await
            .unwrap();
            assert_eq!(idle.connections, 20);
            assert!(idle.server_rss_kib.is_some());
            server.abort();
        }
    }
}
