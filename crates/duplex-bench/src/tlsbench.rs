//! The cost of TLS (issue #17): the same WebSocket echo servers over
//! `wss://` and `ws://`, duplex (duplex-tokio's [`duplex_tokio::TlsAcceptor`]
//! and `accept_with`) beside tokio-tungstenite behind tokio-rustls, measured
//! by one client (the harness's raw-frame client, over tokio-rustls for
//! `wss://`) in the same run.
//!
//! Both servers get the same certificate (made at start with rcgen, an
//! ECDSA P-256 key), the same rustls (ring provider, TLS 1.2 and 1.3
//! defaults, `http/1.1` as the only ALPN) and the same session-ticket
//! defaults; the client offers no ALPN and resumes no sessions, so every
//! handshake measured is a full one.
//!
//! The cells, each run for a fixed time and counted:
//! - echo: C connections each sending one message of S bytes and awaiting
//!   its echo, over and over ([`echo_rate`]);
//! - handshakes: a few loops each opening TCP, TLS and the WebSocket, then
//!   closing it (client close frame, awaiting the server's end of stream)
//!   ([`handshake_rate`]);
//! - idle memory: N connections opened and held, the server's RSS before
//!   and after, divided by N ([`idle_rss`]; the server must be another
//!   process for its RSS to mean anything).

use std::sync::Arc;
use std::time::{Duration, Instant};

use duplex_ws::apply_mask;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_util::either::Either;

use crate::loadgen::{Error, ServerImpl, Target, echo_frames, handshake_on};

/// A self-signed certificate for `127.0.0.1` and `localhost`, made with
/// rcgen, as PEM text.
#[derive(Debug, Clone)]
pub struct BenchCert {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key (PKCS#8), PEM.
    pub key_pem: String,
}

impl BenchCert {
    /// Makes a fresh one.
    pub fn generate() -> Result<Self, Error> {
        let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
            .map_err(|e| Error::Protocol(format!("rcgen: {e}")))?;
        Ok(Self {
            cert_pem: made.cert.pem(),
            key_pem: made.signing_key.serialize_pem(),
        })
    }
}

fn tls_error(e: impl std::fmt::Display) -> Error {
    Error::Protocol(format!("tls: {e}"))
}

/// The server side of TLS for one echo server implementation: duplex's
/// own acceptor for duplex, tokio-rustls directly for tokio-tungstenite
/// (what a tungstenite user writes).
#[derive(Clone)]
pub enum ServerTls {
    /// [`duplex_tokio::TlsAcceptor`] with HTTP/2 off (a bare WebSocket
    /// server: ALPN `http/1.1` only).
    Duplex(duplex_tokio::TlsAcceptor),
    /// A `tokio_rustls::TlsAcceptor` over a rustls `ServerConfig` built
    /// the way duplex builds its own (ring provider, safe default
    /// versions, ALPN `http/1.1`).
    Rustls(tokio_rustls::TlsAcceptor),
}

/// How long the tokio-rustls acceptor gives a TLS handshake: the bound
/// duplex's acceptor applies by default.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl ServerTls {
    /// The acceptor for `imp` serving `cert`; only duplex and
    /// tokio-tungstenite have a TLS echo server.
    pub fn new(imp: ServerImpl, cert: &str, key: &str) -> Result<Self, Error> {
        match imp {
            ServerImpl::Duplex => {
                let config = duplex_tokio::TlsServerConfig {
                    http2: false,
                    ..Default::default()
                };
                duplex_tokio::TlsAcceptor::from_pem(cert.as_bytes(), key.as_bytes(), config)
                    .map(Self::Duplex)
                    .map_err(tls_error)
            }
            ServerImpl::Tungstenite => {
                let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(tls_error)?;
                let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(tls_error)?;
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let mut config = rustls::ServerConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(tls_error)?
                    .with_no_client_auth()
                    .with_single_cert(chain, key)
                    .map_err(tls_error)?;
                config.alpn_protocols = vec![b"http/1.1".to_vec()];
                Ok(Self::Rustls(tokio_rustls::TlsAcceptor::from(Arc::new(
                    config,
                ))))
            }
            other => Err(Error::Protocol(format!("{other:?} has no TLS echo server"))),
        }
    }
}

/// A client stream: TCP, or TLS over TCP.
pub type ClientStream = Either<TcpStream, tokio_rustls::client::TlsStream<TcpStream>>;

/// Opens WebSockets to one echo server, over TLS when built with a
/// certificate to trust.
#[derive(Clone)]
pub struct Client {
    target: Target,
    tls: Option<tokio_rustls::TlsConnector>,
}

impl Client {
    /// A `ws://` client for `target`.
    pub fn plain(target: Target) -> Self {
        Self { target, tls: None }
    }

    /// A `wss://` client for `target` trusting exactly `cert_pem`, with
    /// session resumption off (every handshake a full one) and no ALPN.
    pub fn tls(target: Target, cert_pem: &str) -> Result<Self, Error> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(cert_pem.as_bytes()) {
            roots.add(cert.map_err(tls_error)?).map_err(tls_error)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(tls_error)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.resumption = rustls::client::Resumption::disabled();
        Ok(Self {
            target,
            tls: Some(tokio_rustls::TlsConnector::from(Arc::new(config))),
        })
    }

    /// TCP connect, TLS handshake when `wss://`, WebSocket handshake.
    pub async fn connect(&self) -> Result<ClientStream, Error> {
        let tcp = TcpStream::connect(self.target.addr).await?;
        tcp.set_nodelay(true)?;
        let mut stream = match &self.tls {
            None => Either::Left(tcp),
            Some(connector) => {
                let name = ServerName::from(self.target.addr.ip());
                Either::Right(connector.connect(name, tcp).await?)
            }
        };
        handshake_on(&mut stream, &self.target).await?;
        Ok(stream)
    }
}

/// Sends a masked close 1000 and waits (at most `wait`) for the server's
/// reply or end of stream.
async fn close(stream: &mut ClientStream, key: [u8; 4], wait: Duration) {
    let mut frame = vec![0x88, 0x82, key[0], key[1], key[2], key[3], 0x03, 0xe8];
    apply_mask(&mut frame[6..], key, 0);
    if stream.write_all(&frame).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(wait, async {
        let mut sink = [0u8; 256];
        // Until end of stream (or an error: a TLS peer may close without
        // close_notify); a reply close frame alone is not the end.
        while let Ok(n) = stream.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// A timed cell's outcome.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    /// Operations (echoes or handshakes) per second.
    pub per_sec: f64,
    /// The server's CPU time (user + system) per operation in µs over the
    /// timed part, when its pid was given (10 ms tick resolution).
    pub server_cpu_us: Option<f64>,
}

/// Counts `server_pid`'s CPU from construction to [`CpuMeter::per_op`].
struct CpuMeter(Option<(u32, u64)>);

impl CpuMeter {
    fn start(server_pid: Option<u32>) -> Self {
        Self(server_pid.and_then(|pid| Some((pid, crate::sioload::cpu_ticks(pid)?))))
    }

    /// µs of CPU per operation since `start` (`USER_HZ` is 100).
    fn per_op(&self, ops: u64) -> Option<f64> {
        let (pid, before) = self.0?;
        let spent = crate::sioload::cpu_ticks(pid)?.checked_sub(before)?;
        (ops > 0).then(|| spent as f64 * 10_000.0 / ops as f64)
    }
}

fn join_error(e: tokio::task::JoinError) -> Error {
    Error::Io(std::io::Error::other(e))
}

/// Opens `connections` WebSockets, then has each send a `size`-byte
/// message and await its echo (checked byte for byte), over and over, for
/// `run_for`. Returns echoed messages per second over all of them (and
/// `server_pid`'s CPU per message, the handshakes before the timed part
/// left out).
pub async fn echo_rate(
    client: &Client,
    connections: usize,
    size: usize,
    run_for: Duration,
    server_pid: Option<u32>,
) -> Result<Rate, Error> {
    let mut streams = Vec::with_capacity(connections);
    for _ in 0..connections {
        streams.push(client.connect().await?);
    }
    let cpu = CpuMeter::start(server_pid);
    let start = Instant::now();
    let deadline = start + run_for;
    let mut tasks = JoinSet::new();
    for (id, mut stream) in streams.into_iter().enumerate() {
        let key = (id as u32).wrapping_mul(0x9e37_79b9).to_le_bytes();
        let (request, reply) = echo_frames(size, key);
        tasks.spawn(async move {
            let mut got = vec![0u8; reply.len()];
            let mut echoed = 0u64;
            // One round trip is far under this bound; a stalled server
            // ends the cell instead of hanging it.
            let step = Duration::from_secs(10);
            while Instant::now() < deadline {
                tokio::time::timeout(step, async {
                    stream.write_all(&request).await?;
                    stream.read_exact(&mut got).await
                })
                .await
                .map_err(|_| Error::Timeout(step))??;
                if got != reply {
                    return Err(Error::WrongEcho {
                        connection: id,
                        message: echoed as usize,
                    });
                }
                echoed += 1;
            }
            Ok::<_, Error>((echoed, stream, key))
        });
    }
    let mut total = 0u64;
    let mut done = Vec::with_capacity(connections);
    while let Some(joined) = tasks.join_next().await {
        let (echoed, stream, key) = joined.map_err(join_error)??;
        total += echoed;
        done.push((stream, key));
    }
    let elapsed = start.elapsed();
    let server_cpu_us = cpu.per_op(total);
    for (mut stream, key) in done {
        close(&mut stream, key, Duration::from_millis(200)).await;
    }
    Ok(Rate {
        per_sec: total as f64 / elapsed.as_secs_f64(),
        server_cpu_us,
    })
}

/// `concurrency` loops, each opening a WebSocket (TCP, TLS, upgrade) and
/// closing it again, for `run_for`. Returns completed handshakes per
/// second (and `server_pid`'s CPU per handshake, close included).
pub async fn handshake_rate(
    client: &Client,
    concurrency: usize,
    run_for: Duration,
    server_pid: Option<u32>,
) -> Result<Rate, Error> {
    let cpu = CpuMeter::start(server_pid);
    let start = Instant::now();
    let deadline = start + run_for;
    let mut tasks = JoinSet::new();
    for id in 0..concurrency.max(1) {
        let client = client.clone();
        let key = (id as u32).wrapping_mul(0x9e37_79b9).to_le_bytes();
        tasks.spawn(async move {
            let step = Duration::from_secs(10);
            let mut opened = 0u64;
            while Instant::now() < deadline {
                let mut stream = tokio::time::timeout(step, client.connect())
                    .await
                    .map_err(|_| Error::Timeout(step))??;
                opened += 1;
                // The server closes first, so TIME_WAIT stays on its side
                // and the client's ports do not run out.
                close(&mut stream, key, Duration::from_secs(1)).await;
            }
            Ok::<_, Error>(opened)
        });
    }
    let mut total = 0u64;
    while let Some(joined) = tasks.join_next().await {
        total += joined.map_err(join_error)??;
    }
    Ok(Rate {
        per_sec: total as f64 / start.elapsed().as_secs_f64(),
        server_cpu_us: cpu.per_op(total),
    })
}

/// Opens `connections` WebSockets, `concurrency` handshakes at a time,
/// holds them idle for `hold`, and returns the growth of `server_pid`'s
/// RSS per connection, in bytes.
pub async fn idle_rss(
    client: &Client,
    connections: usize,
    concurrency: usize,
    hold: Duration,
    server_pid: u32,
) -> Result<f64, Error> {
    let rss = || {
        crate::procstat::rss_kib(server_pid)
            .ok_or_else(|| Error::Protocol(format!("no RSS for pid {server_pid}")))
    };
    let before = rss()?;
    let limit = Duration::from_secs(120);
    let held = tokio::time::timeout(limit, async {
        let mut held = Vec::with_capacity(connections);
        let mut tasks = JoinSet::new();
        let mut started = 0;
        while held.len() < connections {
            while started < connections && tasks.len() < concurrency.max(1) {
                let client = client.clone();
                tasks.spawn(async move { client.connect().await });
                started += 1;
            }
            if let Some(joined) = tasks.join_next().await {
                held.push(joined.map_err(join_error)??);
            }
        }
        Ok::<_, Error>(held)
    })
    .await
    .map_err(|_| Error::Timeout(limit))??;
    tokio::time::sleep(hold).await;
    let after = rss()?;
    let per = (after as f64 - before as f64) * 1024.0 / held.len() as f64;
    // Closed politely, so that the server frees them before the next cell.
    let mut closes = JoinSet::new();
    for (id, mut stream) in held.into_iter().enumerate() {
        let key = (id as u32).to_le_bytes();
        closes.spawn(async move { close(&mut stream, key, Duration::from_secs(2)).await });
    }
    while closes.join_next().await.is_some() {}
    Ok(per)
}

/// How the `tls` scenario runs.
#[derive(Debug, Clone)]
pub struct ScenarioConfig {
    /// The duplex-bench binary, started as the echo servers (one process
    /// per server and transport, so that each one's RSS is its own).
    pub exe: std::path::PathBuf,
    /// Where the certificate's PEM files go for the server processes.
    pub dir: std::path::PathBuf,
    /// Rounds; each starts fresh servers and runs every cell once for each,
    /// the servers interleaved cell by cell.
    pub rounds: usize,
    /// How long each echo and handshake cell runs.
    pub cell: Duration,
    /// Idle connections held per server for the memory cell.
    pub idle: usize,
    /// Handshake loops in flight for the handshake cell.
    pub handshake_concurrency: usize,
}

/// One measured figure: which server, which transport, what.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// `duplex` or `tungstenite`.
    pub server: &'static str,
    /// `ws` or `wss`.
    pub transport: &'static str,
    /// The cell (see [`CELLS`]).
    pub cell: &'static str,
    /// Its value (msgs/s, handshakes/s or bytes per connection).
    pub value: f64,
    /// The server's CPU µs per message or handshake (timed cells).
    pub server_cpu_us: Option<f64>,
}

/// The cells in the order they run, with their units. Idle memory comes
/// first, on servers that have only seen their warm-up connection: after
/// the echo cells' 100 connections the allocator would hand freed memory
/// back to new connections and the RSS would barely grow.
pub const CELLS: [(&str, &str); 6] = [
    ("idle RSS", "B/conn"),
    ("handshakes", "/s"),
    ("echo C=1 16 B", "msgs/s"),
    ("echo C=1 1 KiB", "msgs/s"),
    ("echo C=100 16 B", "msgs/s"),
    ("echo C=100 1 KiB", "msgs/s"),
];

const SERVERS: [(&str, ServerImpl); 2] = [
    ("duplex", ServerImpl::Duplex),
    ("tungstenite", ServerImpl::Tungstenite),
];

/// A running echo server process.
struct Child {
    server: &'static str,
    transport: &'static str,
    process: tokio::process::Child,
    pid: u32,
    client: Client,
}

async fn start_server(
    config: &ScenarioConfig,
    server: &'static str,
    secure: bool,
    cert: &BenchCert,
) -> Result<Child, Error> {
    use tokio::io::AsyncBufReadExt;
    let mut command = tokio::process::Command::new(&config.exe);
    command
        .args(["echo-server", "--impl", server, "--addr", "127.0.0.1:0"])
        .args(["--max-seconds", "3600"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true);
    if secure {
        command
            .arg("--tls-cert")
            .arg(config.dir.join("cert.pem"))
            .arg("--tls-key")
            .arg(config.dir.join("key.pem"));
    }
    let mut process = command.spawn()?;
    let pid = process
        .id()
        .ok_or_else(|| Error::Protocol("server exited at once".into()))?;
    let stdout = process
        .stdout
        .take()
        .ok_or_else(|| Error::Protocol("no server stdout".into()))?;
    let mut line = String::new();
    let limit = Duration::from_secs(30);
    tokio::time::timeout(
        limit,
        tokio::io::BufReader::new(stdout).read_line(&mut line),
    )
    .await
    .map_err(|_| Error::Timeout(limit))??;
    // "... echo server on ws://127.0.0.1:PORT/ (pid ...)" or wss://.
    let addr = line
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .ok_or_else(|| Error::Protocol(format!("server said {line:?}")))?;
    let target = Target::parse(&format!("ws://{addr}/"))?;
    let client = if secure {
        Client::tls(target, &cert.cert_pem)?
    } else {
        Client::plain(target)
    };
    Ok(Child {
        server,
        transport: if secure { "wss" } else { "ws" },
        process,
        pid,
        client,
    })
}

/// Runs every round, printing each sample as it is measured (`report`),
/// and returns them all.
pub async fn run_scenario(
    config: &ScenarioConfig,
    mut report: impl FnMut(usize, &Sample),
) -> Result<Vec<Sample>, Error> {
    let cert = BenchCert::generate()?;
    std::fs::create_dir_all(&config.dir)?;
    std::fs::write(config.dir.join("cert.pem"), &cert.cert_pem)?;
    std::fs::write(config.dir.join("key.pem"), &cert.key_pem)?;
    let mut samples = Vec::new();
    for round in 1..=config.rounds {
        let mut children = Vec::new();
        for (name, _) in SERVERS {
            for secure in [false, true] {
                children.push(start_server(config, name, secure, &cert).await?);
            }
        }
        // A warm-up connection each (first-use allocations, ring's tables)
        // before the memory baseline.
        for child in &children {
            echo_rate(&child.client, 1, 16, Duration::from_millis(50), None).await?;
        }
        for (cell, _) in CELLS {
            for child in &children {
                let pid = Some(child.pid);
                let echo = |c, size| echo_rate(&child.client, c, size, config.cell, pid);
                let rate = match cell {
                    "echo C=1 16 B" => echo(1, 16).await?,
                    "echo C=1 1 KiB" => echo(1, 1024).await?,
                    "echo C=100 16 B" => echo(100, 16).await?,
                    "echo C=100 1 KiB" => echo(100, 1024).await?,
                    "handshakes" => {
                        let n = config.handshake_concurrency;
                        handshake_rate(&child.client, n, config.cell, pid).await?
                    }
                    "idle RSS" => Rate {
                        per_sec: idle_rss(
                            &child.client,
                            config.idle,
                            64,
                            Duration::from_secs(1),
                            child.pid,
                        )
                        .await?,
                        server_cpu_us: None,
                    },
                    other => return Err(Error::Protocol(format!("unknown cell {other}"))),
                };
                let sample = Sample {
                    server: child.server,
                    transport: child.transport,
                    cell,
                    value: rate.per_sec,
                    server_cpu_us: rate.server_cpu_us,
                };
                report(round, &sample);
                samples.push(sample);
            }
        }
        for mut child in children {
            let _ = child.process.kill().await;
        }
    }
    let _ = std::fs::remove_dir_all(&config.dir);
    Ok(samples)
}

/// The median over the rounds of `pick` of the `server`/`transport`/`cell`
/// samples.
pub fn median(
    samples: &[Sample],
    server: &str,
    transport: &str,
    cell: &str,
    pick: fn(&Sample) -> Option<f64>,
) -> Option<f64> {
    let mut values: Vec<f64> = samples
        .iter()
        .filter(|s| s.server == server && s.transport == transport && s.cell == cell)
        .filter_map(pick)
        .collect();
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

/// The medians as a Markdown table: each server over ws and wss with the
/// TLS ÷ cleartext ratio, then duplex ÷ tungstenite on each transport; the
/// figures, or with `cpu` the server's CPU µs per operation (timed cells
/// only).
pub fn table(samples: &[Sample], cpu: bool) -> String {
    let pick: fn(&Sample) -> Option<f64> = if cpu {
        |s| s.server_cpu_us
    } else {
        |s| Some(s.value)
    };
    let mut out = String::from(
        "| cell | duplex ws | duplex wss | duplex wss/ws | tungstenite ws | tungstenite wss | tungstenite wss/ws | duplex/tungstenite ws | duplex/tungstenite wss |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let fmt = |v: Option<f64>| {
        v.map_or("?".to_string(), |v| {
            if cpu {
                format!("{v:.1}")
            } else {
                format!("{v:.0}")
            }
        })
    };
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => format!("{:.2}", a / b),
        _ => "?".to_string(),
    };
    for (cell, unit) in CELLS {
        if cpu && cell == "idle RSS" {
            continue;
        }
        let unit = if cpu { "server CPU µs/op" } else { unit };
        let m = |server, transport| median(samples, server, transport, cell, pick);
        let (dw, ds) = (m("duplex", "ws"), m("duplex", "wss"));
        let (tw, ts) = (m("tungstenite", "ws"), m("tungstenite", "wss"));
        out += &format!(
            "| {cell} ({unit}) | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            fmt(dw),
            fmt(ds),
            ratio(ds, dw),
            fmt(tw),
            fmt(ts),
            ratio(ts, tw),
            ratio(dw, tw),
            ratio(ds, ts),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::echo_server_with;
    use tokio::net::TcpListener;

    /// Each TLS echo server answers the `wss://` client's echo, handshake
    /// and idle cells (and a `ws://` client is refused by the TLS port).
    #[tokio::test(flavor = "current_thread")]
    async fn both_servers_echo_over_tls() {
        let cert = BenchCert::generate().unwrap();
        for imp in [ServerImpl::Duplex, ServerImpl::Tungstenite] {
            let tls = ServerTls::new(imp, &cert.cert_pem, &cert.key_pem).unwrap();
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server = tokio::spawn(echo_server_with(
                imp,
                listener,
                Duration::from_secs(30),
                Some(tls),
            ));
            let target = Target::parse(&format!("ws://{addr}/")).unwrap();
            let client = Client::tls(target.clone(), &cert.cert_pem).unwrap();
            let run = Duration::from_millis(200);
            let me = Some(std::process::id());
            let rate = echo_rate(&client, 3, 1024, run, me).await.unwrap();
            assert!(rate.per_sec > 0.0, "{imp:?}: no echo over TLS");
            assert!(rate.server_cpu_us.is_some(), "{imp:?}: no CPU figure");
            let rate = handshake_rate(&client, 2, run, None).await.unwrap();
            assert!(rate.per_sec > 0.0, "{imp:?}: no handshake over TLS");
            assert!(rate.server_cpu_us.is_none());
            let per = idle_rss(&client, 20, 5, Duration::ZERO, std::process::id())
                .await
                .unwrap();
            assert!(per.is_finite(), "{imp:?}");
            let cleartext = Client::plain(target);
            let refused = tokio::time::timeout(Duration::from_secs(10), cleartext.connect())
                .await
                .unwrap();
            assert!(refused.is_err(), "{imp:?}: cleartext accepted on TLS");
            server.abort();
        }
    }

    #[test]
    fn table_shows_medians_and_ratios() {
        let mut samples = Vec::new();
        for (server, transport, values) in [
            ("duplex", "ws", [100.0, 300.0, 200.0]),
            ("duplex", "wss", [50.0, 50.0, 60.0]),
            ("tungstenite", "ws", [100.0, 100.0, 100.0]),
            ("tungstenite", "wss", [25.0, 25.0, 25.0]),
        ] {
            for value in values {
                samples.push(Sample {
                    server,
                    transport,
                    cell: "handshakes",
                    value,
                    server_cpu_us: Some(value / 10.0),
                });
            }
        }
        let table = table(&samples, false);
        let row = table
            .lines()
            .find(|l| l.starts_with("| handshakes"))
            .unwrap();
        assert_eq!(
            row,
            "| handshakes (/s) | 200 | 50 | 0.25 | 100 | 25 | 0.25 | 2.00 | 2.00 |"
        );
        let idle = table.lines().find(|l| l.starts_with("| idle RSS")).unwrap();
        assert!(idle.contains("| ? |"), "{idle}");
        let cpu = super::table(&samples, true);
        assert!(cpu.contains("| 20.0 | 5.0 | 0.25 |"), "{cpu}");
        assert!(!cpu.contains("idle RSS"), "{cpu}");
    }

    #[test]
    fn only_duplex_and_tungstenite_have_tls() {
        let cert = BenchCert::generate().unwrap();
        assert!(ServerTls::new(ServerImpl::FastWebSockets, &cert.cert_pem, &cert.key_pem).is_err());
        assert!(ServerTls::new(ServerImpl::Duplex, "junk", "junk").is_err());
    }
}
