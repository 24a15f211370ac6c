//! The Socket.IO echo load (`scenarios/socketio-echo.sh`): a duplex
//! Socket.IO echo server on one current-thread runtime, and a lean load
//! client that speaks Engine.IO v4 / Socket.IO v5 over raw TCP, over
//! WebSocket or HTTP long-polling, so that one client process can drive a
//! thousand connections without being the limit (npm socket.io-client
//! could not: it ran at 100 % of a core at 100 clients).
//!
//! The client does what socket.io-client does on the wire, minus its
//! bookkeeping: the Engine.IO handshake, the Socket.IO `CONNECT` to `/`,
//! then for each event `42<id>["message-with-ack","xxx…"]` and waiting for
//! `43<id>["xxx…"]`, answering every ping with a pong. Over polling each
//! client keeps a GET parked on one keep-alive connection and POSTs on a
//! second one, as the browser client does. Every ack is compared with the
//! text the server must send back.
//!
//! Every loop is bounded: the server stops after a deadline, each client
//! stops emitting at the run's end, every round trip has a time limit, and
//! only loopback addresses are accepted.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::ops::Range;
use std::time::{Duration, Instant};

use duplex_tokio::socketio::{
    AckSender, Args, NamespaceHandlers, Socket, SocketIo, SocketIoConfig, Value,
};
use duplex_ws::{FrameHeader, OpCode, apply_mask};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::loadgen::{Error, Percentiles, ensure_loopback, rss_kib};

/// How the harness's Socket.IO servers (duplex's and socketioxide's) run.
#[derive(Debug, Clone, Copy)]
pub struct ServeConfig {
    /// Engine.IO `pingInterval`.
    pub ping_interval: Duration,
    /// Engine.IO `pingTimeout`.
    pub ping_timeout: Duration,
    /// Stop accepting after this.
    pub run_for: Duration,
    /// Also serve the broadcast scenario's handlers, those of the cluster
    /// contract (shared/conformance/socketio-cluster.md) that
    /// [`crate::clusterload`] drives: `join` puts the socket in the room
    /// its argument names, `to-room` emits `room-msg` with its payload to
    /// the room; both ack `"ok"`. Off for the echo and idle rows:
    /// socketioxide and Node register handlers per socket, and two more
    /// would weigh on their idle memory.
    pub rooms: bool,
}

/// Serves Socket.IO at `/socket.io/` on `listener` with `config`'s
/// heartbeat, `message-with-ack` acking its arguments (the handler of the
/// Node reference echo server), and the room handlers if asked, until
/// `run_for` has passed. Returns how many TCP connections it accepted.
pub async fn echo_server(listener: TcpListener, config: ServeConfig) -> Result<u64, Error> {
    ensure_loopback(listener.local_addr()?)?;
    let io_config = SocketIoConfig {
        ping_interval: config.ping_interval,
        ping_timeout: config.ping_timeout,
        ..SocketIoConfig::default()
    };
    let io = SocketIo::builder(io_config)
        .namespace("/", |ns| {
            let ns = ns.on("message-with-ack", |Args(args): Args, ack: AckSender| {
                ack.send_args(args)
            });
            if config.rooms { room_handlers(ns) } else { ns }
        })
        .build();
    Ok(accept_until(listener, config.run_for, |tcp| {
        let io = io.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let io = io.clone();
                async move { Ok::<_, Infallible>(io.handle(req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .with_upgrades()
                .await;
        });
    })
    .await)
}

/// `join` and `to-room` (see [`ServeConfig::rooms`]) on duplex's server:
/// the broadcast goes through `Operator::emit_args`, the path a handler
/// of any duplex application takes.
fn room_handlers(ns: NamespaceHandlers) -> NamespaceHandlers {
    ns.on(
        "join",
        |socket: Socket, Args(args): Args, ack: AckSender| {
            if let Some(room) = args.first().and_then(Value::as_str) {
                socket.join(room);
            }
            ack.send(&"ok")
        },
    )
    .on(
        "to-room",
        |socket: Socket, Args(args): Args, ack: AckSender| {
            let mut args = args.into_iter();
            if let (Some(Value::String(room)), Some(payload)) = (args.next(), args.next()) {
                let _ = socket.within(&room).emit_args("room-msg", vec![payload]);
            }
            ack.send(&"ok")
        },
    )
}

/// The accept loop both echo servers share, so that they are compared
/// behind the same one: hands every accepted connection (with
/// `TCP_NODELAY`) to `serve` until `run_for` has passed; returns how many
/// it accepted.
async fn accept_until(
    listener: TcpListener,
    run_for: Duration,
    mut serve: impl FnMut(TcpStream),
) -> u64 {
    let deadline = tokio::time::Instant::now() + run_for;
    let mut accepted = 0u64;
    loop {
        let (tcp, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of descriptors: keep serving the connections open.
                    eprintln!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = tokio::time::sleep_until(deadline) => return accepted,
        };
        accepted += 1;
        let _ = tcp.set_nodelay(true);
        serve(tcp);
    }
}

/// socketioxide's Socket.IO server (its hyper service) behind the same
/// accept loop as [`echo_server`], with the same heartbeat and the same
/// handlers: `message-with-ack` acks its argument, and `join` / `to-room`
/// if asked. The peer Rust users compare duplex with (issues #18, #19).
/// Returns how many TCP connections it accepted once `run_for` has passed.
pub async fn socketioxide_echo_server(
    listener: TcpListener,
    config: ServeConfig,
) -> Result<u64, Error> {
    use socketioxide::extract::{AckSender as SxAck, Data, SocketRef};
    use socketioxide::handler::ConnectHandler;

    ensure_loopback(listener.local_addr()?)?;
    let (svc, io) = socketioxide::SocketIo::builder()
        .ping_interval(config.ping_interval)
        .ping_timeout(config.ping_timeout)
        .build_svc();
    // The client sends one string argument: `Data<Value>` is that string and
    // the ack carries it back as `43<id>["…"]`, the bytes duplex sends.
    async fn on_message(Data(data): Data<serde_json::Value>, ack: SxAck) {
        let _ = ack.send(&data);
    }
    async fn join(socket: SocketRef, Data(room): Data<String>, ack: SxAck) {
        socket.join(room);
        let _ = ack.send(&"ok");
    }
    async fn to_room(
        socket: SocketRef,
        Data((room, payload)): Data<(String, serde_json::Value)>,
        ack: SxAck,
    ) {
        let _ = socket.within(room).emit("room-msg", &payload).await;
        let _ = ack.send(&"ok");
    }
    // socketioxide spawns the connect handler after it has sent CONNECT, so
    // a client's first event can arrive before an `on` made there and be
    // dropped unanswered (seen in CI: a 10 s ack timeout). A middleware is
    // awaited before CONNECT is sent: the handlers are registered there.
    async fn register(socket: SocketRef) -> Result<(), std::convert::Infallible> {
        socket.on("message-with-ack", on_message);
        Ok(())
    }
    async fn register_rooms(socket: SocketRef) -> Result<(), std::convert::Infallible> {
        socket.on("join", join);
        socket.on("to-room", to_room);
        register(socket).await
    }
    if config.rooms {
        io.ns("/", { async |_: SocketRef| {} }.with(register_rooms));
    } else {
        io.ns("/", { async |_: SocketRef| {} }.with(register));
    }
    Ok(accept_until(listener, config.run_for, |tcp| {
        let svc = svc.clone();
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), svc)
                .with_upgrades()
                .await;
        });
    })
    .await)
}

/// Which Engine.IO transport the clients use (one only, no upgrade).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// WebSocket from the start (`transport=websocket`).
    WebSocket,
    /// HTTP long-polling (`transport=polling`).
    Polling,
}

impl Transport {
    /// The name used in the query string and the report.
    pub fn name(self) -> &'static str {
        match self {
            Self::WebSocket => "websocket",
            Self::Polling => "polling",
        }
    }
}

/// How a Socket.IO load run goes.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The server (loopback).
    pub addr: SocketAddr,
    /// The transport every client uses.
    pub transport: Transport,
    /// Concurrent clients, each with one event in flight.
    pub clients: usize,
    /// How long the clients emit, once all are connected.
    pub duration: Duration,
    /// Characters in the string each event carries.
    pub size: usize,
    /// Handshakes in flight at once while connecting.
    pub connect_concurrency: usize,
    /// The longest one round trip (or one handshake) may take; a client
    /// that waits longer is counted as dropped and stops.
    pub step_timeout: Duration,
    /// Server processes whose CPU time to report over the measured window.
    pub server_pids: Vec<u32>,
}

/// What a Socket.IO load run measured.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// Clients connected.
    pub clients: usize,
    /// Acks received with the right echo, all clients together.
    pub acks: u64,
    /// Wall time from the first emit to the last client stopping.
    pub elapsed: Duration,
    /// Median round trip (emit to ack).
    pub p50: Duration,
    /// 99th percentile round trip.
    pub p99: Duration,
    /// Acks whose arguments differed from what was sent.
    pub wrong: u64,
    /// Clients that stopped early (closed, or a round trip over the limit).
    pub dropped: u64,
    /// CPU the client process used over the run, in cores (1.0 = one core
    /// busy all the time), from /proc.
    pub client_cpu: Option<f64>,
    /// CPU each server process in `server_pids` used over the run, in cores.
    pub server_cpu: Vec<Option<f64>>,
    /// Resident set of each server process at the end, in KiB.
    pub server_rss_kib: Vec<Option<u64>>,
}

impl LoadReport {
    /// Acks per second.
    pub fn acks_per_sec(&self) -> f64 {
        self.acks as f64 / self.elapsed.as_secs_f64()
    }
}

/// User plus system CPU time of process `pid` so far, in clock ticks
/// (Linux; fields 14 and 15 of /proc/PID/stat, all threads included).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it do not.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second of /proc/PID/stat: `USER_HZ`, 100 on every
/// Linux architecture tokio runs on.
pub const TICKS_PER_SEC: f64 = 100.0;

/// One client's Engine.IO and Socket.IO handshake over `transport`,
/// bounded by `limit`.
async fn connect_session(
    addr: SocketAddr,
    host: &str,
    transport: Transport,
    limit: Duration,
) -> Result<Session, Error> {
    let connect = async {
        Ok::<_, Error>(match transport {
            Transport::WebSocket => Session::Ws(WsSession::connect(addr, host).await?),
            Transport::Polling => Session::Poll(PollSession::connect(addr, host).await?),
        })
    };
    tokio::time::timeout(limit, connect)
        .await
        .map_err(|_| Error::Timeout(limit))?
}

/// Connects every client, then has each emit events one at a time for
/// `duration`, each awaiting its ack.
pub async fn run_load(config: &LoadConfig) -> Result<LoadReport, Error> {
    ensure_loopback(config.addr)?;
    let host = config.addr.to_string();
    let payload = "x".repeat(config.size);

    // Connect everyone first, a bounded number of handshakes at a time.
    let mut sessions = Vec::with_capacity(config.clients);
    let mut tasks = JoinSet::new();
    let mut started = 0;
    while sessions.len() < config.clients {
        while started < config.clients && tasks.len() < config.connect_concurrency.max(1) {
            let (addr, host, transport) = (config.addr, host.clone(), config.transport);
            let limit = config.step_timeout;
            tasks.spawn(async move { connect_session(addr, &host, transport, limit).await });
            started += 1;
        }
        match tasks.join_next().await {
            Some(joined) => {
                sessions.push(joined.map_err(|e| Error::Io(std::io::Error::other(e)))??)
            }
            None => break,
        }
    }

    let pids = &config.server_pids;
    let me = std::process::id();
    let client_before = cpu_ticks(me);
    let servers_before: Vec<_> = pids.iter().map(|&p| cpu_ticks(p)).collect();
    let start = Instant::now();
    let end = start + config.duration;
    let mut runs = JoinSet::new();
    for session in sessions {
        let payload = payload.clone();
        let limit = config.step_timeout;
        runs.spawn(async move { session.run(&payload, end, limit).await });
    }
    let mut all = Vec::new();
    let (mut wrong, mut dropped) = (0, 0);
    while let Some(joined) = runs.join_next().await {
        let outcome = joined.map_err(|e| Error::Io(std::io::Error::other(e)))?;
        all.extend(outcome.latencies);
        wrong += outcome.wrong;
        if let Some(e) = outcome.stopped_by {
            dropped += 1;
            if dropped == 1 {
                eprintln!("a client stopped early: {e}");
            }
        }
    }
    let elapsed = start.elapsed();
    let secs = elapsed.as_secs_f64();
    let usage = |before: Option<u64>, pid: u32| {
        let spent = cpu_ticks(pid)?.checked_sub(before?)?;
        Some(spent as f64 / TICKS_PER_SEC / secs)
    };
    let client_cpu = usage(client_before, me);
    let server_cpu = pids
        .iter()
        .zip(servers_before)
        .map(|(&pid, before)| usage(before, pid))
        .collect();
    let server_rss_kib = pids.iter().map(|&p| rss_kib(p)).collect();
    let spread = Percentiles::of(&mut all);
    Ok(LoadReport {
        clients: config.clients,
        acks: all.len() as u64,
        elapsed,
        p50: spread.p50,
        p99: spread.p99,
        wrong,
        dropped,
        client_cpu,
        server_cpu,
        server_rss_kib,
    })
}

/// How an idle Socket.IO run goes (`sio-idle`): clients that connect
/// (the Engine.IO handshake and the Socket.IO `CONNECT` to `/`) and then
/// only answer the server's pings.
#[derive(Debug, Clone)]
pub struct IdleConfig {
    /// The server (loopback).
    pub addr: SocketAddr,
    /// The transport every client uses.
    pub transport: Transport,
    /// Clients to connect and hold.
    pub clients: usize,
    /// Handshakes in flight at once.
    pub concurrency: usize,
    /// How long to hold them once all are connected, before measuring.
    pub hold: Duration,
    /// End the hold as soon as this file exists (`hold` is then the
    /// longest wait): a profiler's harness measures, then releases.
    pub release: Option<std::path::PathBuf>,
    /// One client's handshake must finish within this.
    pub connect_timeout: Duration,
    /// The server's process, to read its resident set.
    pub server_pid: Option<u32>,
}

/// What an idle Socket.IO run measured.
#[derive(Debug, Clone)]
pub struct IdleReport {
    /// Clients connected.
    pub clients: usize,
    /// From the first handshake to the last client connected.
    pub connect_elapsed: Duration,
    /// The server's resident set before the first client, KiB.
    pub baseline_rss_kib: Option<u64>,
    /// ... once every client was connected.
    pub ramped_rss_kib: Option<u64>,
    /// ... at the end of the hold.
    pub held_rss_kib: Option<u64>,
    /// Pings the clients answered during the hold.
    pub pings: u64,
    /// Clients the server closed during the hold.
    pub lost: u64,
}

impl IdleReport {
    /// The server's RSS growth per held client at the end of the hold,
    /// in bytes.
    pub fn rss_per_client(&self) -> Option<f64> {
        crate::ramp::per_connection(
            self.baseline_rss_kib,
            self.held_rss_kib,
            self.clients as u64,
        )
    }
}

/// Connects `clients` Socket.IO clients, `concurrency` at a time, holds
/// them idle (answering pings) for the hold, and measures the server's
/// resident set before, after the ramp and after the hold. `on_ramped` is
/// called once every client is connected (a harness waits for it).
pub async fn run_idle(
    config: &IdleConfig,
    on_ramped: impl FnOnce(usize, Option<u64>),
) -> Result<IdleReport, Error> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    ensure_loopback(config.addr)?;
    let host = config.addr.to_string();
    let rss = || config.server_pid.and_then(rss_kib);
    let baseline_rss_kib = rss();
    let pings = Arc::new(AtomicU64::new(0));
    let lost = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut connecting = JoinSet::new();
    let mut holding = JoinSet::new();
    let (mut started, mut connected) = (0, 0);
    while connected < config.clients {
        while started < config.clients && connecting.len() < config.concurrency.max(1) {
            let (addr, host, transport) = (config.addr, host.clone(), config.transport);
            let limit = config.connect_timeout;
            connecting.spawn(async move { connect_session(addr, &host, transport, limit).await });
            started += 1;
        }
        let Some(joined) = connecting.join_next().await else {
            break;
        };
        let session = joined.map_err(|e| Error::Io(std::io::Error::other(e)))??;
        connected += 1;
        let (pings, lost) = (pings.clone(), lost.clone());
        holding.spawn(async move {
            // Runs until the hold ends (the task is aborted) or the server
            // closes the session.
            if session.idle(&pings).await.is_err() {
                lost.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let connect_elapsed = start.elapsed();
    let ramped_rss_kib = rss();
    on_ramped(connected, ramped_rss_kib);
    let until = Instant::now() + config.hold;
    while Instant::now() < until
        && !config
            .release
            .as_deref()
            .is_some_and(std::path::Path::exists)
    {
        tokio::time::sleep(Duration::from_millis(100).min(config.hold)).await;
    }
    let held_rss_kib = rss();
    holding.abort_all();
    while holding.join_next().await.is_some() {}
    Ok(IdleReport {
        clients: connected,
        connect_elapsed,
        baseline_rss_kib,
        ramped_rss_kib,
        held_rss_kib,
        pings: pings.load(Ordering::Relaxed),
        lost: lost.load(Ordering::Relaxed),
    })
}

/// What one client's run gave.
struct Outcome {
    /// One round trip per right ack.
    latencies: Vec<Duration>,
    /// Acks with the wrong arguments.
    wrong: u64,
    /// Why the client stopped before the end, if it did.
    stopped_by: Option<Error>,
}

/// One connected client.
enum Session {
    Ws(WsSession),
    Poll(PollSession),
}

impl Session {
    /// Emits until `end`, one event in flight, then closes.
    async fn run(mut self, payload: &str, end: Instant, limit: Duration) -> Outcome {
        let mut outcome = Outcome {
            latencies: Vec::with_capacity(1024),
            wrong: 0,
            stopped_by: None,
        };
        let mut event = Vec::with_capacity(payload.len() + 40);
        let mut expected = Vec::with_capacity(payload.len() + 20);
        let mut id: u64 = 0;
        while Instant::now() < end {
            id += 1;
            event.clear();
            expected.clear();
            // What socket.io-client sends for emitWithAck, and the ack the
            // server must answer with: the same arguments.
            event.extend_from_slice(format!("42{id}[\"message-with-ack\",\"").as_bytes());
            event.extend_from_slice(payload.as_bytes());
            event.extend_from_slice(b"\"]");
            expected.extend_from_slice(format!("43{id}[\"").as_bytes());
            expected.extend_from_slice(payload.as_bytes());
            expected.extend_from_slice(b"\"]");
            let sent = Instant::now();
            let round_trip = async {
                match &mut self {
                    Session::Ws(s) => s.round_trip(&event, id).await,
                    Session::Poll(s) => s.round_trip(&event, id).await,
                }
            };
            match tokio::time::timeout(limit, round_trip).await {
                Ok(Ok(ack)) => {
                    if ack == expected {
                        outcome.latencies.push(sent.elapsed());
                    } else {
                        outcome.wrong += 1;
                    }
                }
                Ok(Err(e)) => {
                    outcome.stopped_by = Some(e);
                    return outcome;
                }
                Err(_) => {
                    outcome.stopped_by = Some(Error::Timeout(limit));
                    return outcome;
                }
            }
        }
        // Leave politely, briefly: the servers then free the session now
        // rather than at the next heartbeat.
        let close = async {
            match &mut self {
                Session::Ws(s) => s.close().await,
                Session::Poll(s) => s.close().await,
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), close).await;
        outcome
    }
}

impl Session {
    /// Holds the session idle, answering every ping (counted in `pings`),
    /// until the server closes it.
    async fn idle(self, pings: &std::sync::atomic::AtomicU64) -> Result<(), Error> {
        match self {
            Session::Ws(mut s) => loop {
                let packet = s.next_packet().await?;
                match s.text(packet) {
                    b"2" => {
                        s.send(b"3").await?;
                        pings.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    p if p.starts_with(b"1") => return Err(Error::Closed),
                    _ => {}
                }
            },
            Session::Poll(mut s) => loop {
                s.get.read_response().await?;
                s.get.send_get(&s.path).await?;
                let mut ping = false;
                for packet in s.get.body.split(|&b| b == 0x1e) {
                    if packet == b"2" {
                        ping = true;
                    } else if packet.starts_with(b"1") {
                        return Err(Error::Closed);
                    }
                }
                if ping {
                    s.post_packet(b"3").await?;
                    pings.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            },
        }
    }
}

/// The ack id of a Socket.IO ACK packet inside an Engine.IO message
/// (`43<id>…`), if `packet` is one.
fn ack_id(packet: &[u8]) -> Option<u64> {
    let digits = packet.strip_prefix(b"43")?;
    let len = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(digits.get(..len)?).ok()?.parse().ok()
}

/// Where `needle` first occurs in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The `sid` of an Engine.IO open packet (`0{"sid":"…",…}`).
fn open_sid(packet: &[u8]) -> Result<String, Error> {
    let bad = || {
        Error::Protocol(format!(
            "not an open packet: {}",
            String::from_utf8_lossy(packet)
        ))
    };
    let json = packet.strip_prefix(b"0").ok_or_else(bad)?;
    let at = find(json, b"\"sid\":\"").ok_or_else(bad)? + 7;
    let rest = json.get(at..).ok_or_else(bad)?;
    let len = rest.iter().position(|&b| b == b'"').ok_or_else(bad)?;
    let sid = rest.get(..len).ok_or_else(bad)?;
    String::from_utf8(sid.to_vec()).map_err(|_| bad())
}

/// A client WebSocket carrying Engine.IO packets, one per text frame.
pub(crate) struct WsSession {
    tcp: TcpStream,
    /// Bytes read and not yet consumed start at `pos`.
    buf: Vec<u8>,
    pos: usize,
    key: [u8; 4],
    out: Vec<u8>,
}

/// RFC 6455's sample key and the accept value it must get.
const WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const WS_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

impl WsSession {
    pub(crate) async fn connect(addr: SocketAddr, host: &str) -> Result<Self, Error> {
        let mut tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let request = format!(
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host}\r\n\
             Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {WS_KEY}\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        );
        tcp.write_all(request.as_bytes()).await?;
        let mut buf = Vec::with_capacity(8192);
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            if buf.len() > 8192 {
                return Err(Error::Protocol("response head over 8 KiB".into()));
            }
            if tcp.read_buf(&mut buf).await? == 0 {
                return Err(Error::Closed);
            }
        };
        let head = String::from_utf8_lossy(buf.get(..head_end).unwrap_or_default()).into_owned();
        let accepted = head.starts_with("HTTP/1.1 101")
            && head.lines().any(|l| {
                l.to_ascii_lowercase().starts_with("sec-websocket-accept:")
                    && l.trim_end().ends_with(WS_ACCEPT)
            });
        if !accepted {
            let first = head.lines().next().unwrap_or_default().to_string();
            return Err(Error::Protocol(format!("upgrade refused: {first}")));
        }
        let key = (addr.port() as u32 ^ std::process::id()).to_le_bytes();
        let mut ws = Self {
            tcp,
            buf,
            pos: head_end,
            key,
            out: Vec::with_capacity(256),
        };
        let open = ws.next_packet().await?;
        open_sid(ws.buf.get(open).unwrap_or_default())?;
        ws.send(b"40").await?;
        loop {
            let packet = ws.next_packet().await?;
            match ws.buf.get(packet).unwrap_or_default() {
                b"2" => ws.send(b"3").await?,
                p if p.starts_with(b"40") => return Ok(ws),
                p if p.starts_with(b"44") => {
                    return Err(Error::Protocol(format!(
                        "CONNECT refused: {}",
                        String::from_utf8_lossy(p)
                    )));
                }
                _ => {}
            }
        }
    }

    /// Sends one Engine.IO packet as a masked text frame.
    pub(crate) async fn send(&mut self, text: &[u8]) -> Result<(), Error> {
        self.send_frame(OpCode::Text, text).await
    }

    /// The next text message, as a range of `buf`, valid until the next
    /// call; answers WebSocket pings on the way.
    pub(crate) async fn next_packet(&mut self) -> Result<Range<usize>, Error> {
        loop {
            let available = self.buf.get(self.pos..).unwrap_or_default();
            if let Some((fin, opcode, header, len)) = parse_ws_header(available)? {
                if available.len() >= header + len {
                    let payload = self.pos + header..self.pos + header + len;
                    self.pos += header + len;
                    if !fin {
                        return Err(Error::Protocol("fragmented message".into()));
                    }
                    match opcode {
                        1 => return Ok(payload),
                        8 => return Err(Error::Closed),
                        9 => {
                            let data = self.buf.get(payload).unwrap_or_default().to_vec();
                            self.send_frame(OpCode::Pong, &data).await?;
                        }
                        _ => {}
                    }
                    continue;
                }
            }
            // Keep the partial frame at the front, then read more.
            self.buf.drain(..self.pos);
            self.pos = 0;
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(8192);
            }
            if self.tcp.read_buf(&mut self.buf).await? == 0 {
                return Err(Error::Closed);
            }
        }
    }

    /// Sends one whole masked frame of type `opcode`.
    async fn send_frame(&mut self, opcode: OpCode, data: &[u8]) -> Result<(), Error> {
        self.out.clear();
        FrameHeader::new(opcode, true, Some(self.key), data.len() as u64).encode(&mut self.out);
        let start = self.out.len();
        self.out.extend_from_slice(data);
        if let Some(payload) = self.out.get_mut(start..) {
            apply_mask(payload, self.key, 0);
        }
        self.tcp.write_all(&self.out).await?;
        Ok(())
    }

    /// The bytes of a packet [`WsSession::next_packet`] returned.
    pub(crate) fn text(&self, packet: Range<usize>) -> &[u8] {
        self.buf.get(packet).unwrap_or_default()
    }

    /// Emits `event` and returns the ACK with id `id`.
    pub(crate) async fn round_trip(&mut self, event: &[u8], id: u64) -> Result<Vec<u8>, Error> {
        self.send(event).await?;
        loop {
            let packet = self.next_packet().await?;
            let text = self.buf.get(packet).unwrap_or_default();
            if text == b"2" {
                self.send(b"3").await?;
            } else if ack_id(text) == Some(id) {
                return Ok(text.to_vec());
            } else if text.starts_with(b"1") {
                return Err(Error::Closed);
            }
        }
    }

    pub(crate) async fn close(&mut self) -> Result<(), Error> {
        self.send_frame(OpCode::Close, &1000u16.to_be_bytes())
            .await?;
        let mut sink = [0u8; 256];
        while self.tcp.read(&mut sink).await? > 0 {}
        Ok(())
    }
}

/// FIN, opcode, header length and payload length of an unmasked server
/// frame at the start of `bytes`, or `None` if the header is incomplete.
fn parse_ws_header(bytes: &[u8]) -> Result<Option<(bool, u8, usize, usize)>, Error> {
    let (Some(&b0), Some(&b1)) = (bytes.first(), bytes.get(1)) else {
        return Ok(None);
    };
    if b1 & 0x80 != 0 {
        return Err(Error::Protocol("masked server frame".into()));
    }
    let (header, len) = match b1 & 0x7f {
        126 => match bytes.get(2..4) {
            Some(&[a, b]) => (4, u16::from_be_bytes([a, b]) as usize),
            _ => return Ok(None),
        },
        127 => match bytes.get(2..10).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
            Some(b) => (
                10,
                usize::try_from(u64::from_be_bytes(b)).unwrap_or(usize::MAX),
            ),
            None => return Ok(None),
        },
        n => (2, n as usize),
    };
    if len > 16 << 20 {
        return Err(Error::Protocol("server frame over 16 MiB".into()));
    }
    Ok(Some((b0 & 0x80 != 0, b0 & 0x0f, header, len)))
}

/// One keep-alive HTTP/1.1 connection to the server.
struct HttpConn {
    tcp: TcpStream,
    buf: Vec<u8>,
    /// The last response's body (de-chunked).
    body: Vec<u8>,
    host: String,
}

impl HttpConn {
    async fn open(addr: SocketAddr, host: &str) -> Result<Self, Error> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        Ok(Self {
            tcp,
            buf: Vec::with_capacity(4096),
            body: Vec::with_capacity(1024),
            host: host.to_string(),
        })
    }

    async fn send_get(&mut self, path: &str) -> Result<(), Error> {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: */*\r\n\r\n",
            self.host
        );
        self.tcp.write_all(request.as_bytes()).await?;
        Ok(())
    }

    async fn send_post(&mut self, path: &str, body: &[u8]) -> Result<(), Error> {
        let mut request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nAccept: */*\r\n\
             Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n",
            self.host,
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        self.tcp.write_all(&request).await?;
        Ok(())
    }

    /// Reads one response; its body is left in `self.body`. Fails on any
    /// status but 200.
    async fn read_response(&mut self) -> Result<(), Error> {
        loop {
            self.body.clear();
            if let Some(consumed) = parse_response(&self.buf, &mut self.body)? {
                self.buf.drain(..consumed);
                return Ok(());
            }
            if self.buf.capacity() - self.buf.len() < 2048 {
                self.buf.reserve(4096);
            }
            if self.tcp.read_buf(&mut self.buf).await? == 0 {
                return Err(Error::Closed);
            }
        }
    }
}

/// Parses one whole HTTP/1.1 response at the start of `bytes` (a
/// `Content-Length` body or a chunked one), copying its body into `body`;
/// returns the bytes it spans, or `None` if it is not all there yet.
fn parse_response(bytes: &[u8], body: &mut Vec<u8>) -> Result<Option<usize>, Error> {
    let Some(head_len) = find(bytes, b"\r\n\r\n").map(|i| i + 4) else {
        return Ok(None);
    };
    let head = std::str::from_utf8(bytes.get(..head_len).unwrap_or_default())
        .map_err(|_| Error::Protocol("response head is not UTF-8".into()))?;
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    if !status.starts_with("HTTP/1.1 200") {
        return Err(Error::Protocol(format!("response: {status}")));
    }
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| Error::Protocol(format!("content-length {value}")))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        }
    }
    let rest = bytes.get(head_len..).unwrap_or_default();
    if !chunked {
        let length = length.unwrap_or(0);
        return Ok(rest.get(..length).map(|b| {
            body.extend_from_slice(b);
            head_len + length
        }));
    }
    let mut at = 0;
    loop {
        let Some(line_end) = rest.get(at..).and_then(|r| find(r, b"\r\n")) else {
            return Ok(None);
        };
        let size_line = std::str::from_utf8(rest.get(at..at + line_end).unwrap_or_default())
            .map_err(|_| Error::Protocol("chunk size".into()))?;
        let hex = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(hex, 16)
            .map_err(|_| Error::Protocol(format!("chunk size {hex}")))?;
        at += line_end + 2;
        if size == 0 {
            // No trailers from these servers: the last chunk ends with CRLF.
            return Ok(rest.get(at..at + 2).map(|_| head_len + at + 2));
        }
        let Some(chunk) = rest.get(at..at + size) else {
            return Ok(None);
        };
        body.extend_from_slice(chunk);
        at += size + 2;
    }
}

/// A polling client: a GET kept parked on one connection, POSTs on another.
struct PollSession {
    get: HttpConn,
    post: HttpConn,
    path: String,
    addr: SocketAddr,
    /// When the POST connection last finished a request.
    post_used: Instant,
}

/// A keep-alive connection idle this long is replaced before the next POST:
/// Node's HTTP server closes idle ones after 5 s (`keepAliveTimeout`), which
/// the wait for a thousand handshakes can exceed; a browser's connection
/// pool opens a new one then too.
const POST_IDLE_LIMIT: Duration = Duration::from_secs(4);

impl PollSession {
    async fn connect(addr: SocketAddr, host: &str) -> Result<Self, Error> {
        let mut get = HttpConn::open(addr, host).await?;
        get.send_get("/socket.io/?EIO=4&transport=polling").await?;
        get.read_response().await?;
        let sid = open_sid(get.body.split(|&b| b == 0x1e).next().unwrap_or_default())?;
        let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
        let post = HttpConn::open(addr, host).await?;
        let mut session = Self {
            get,
            post,
            path,
            addr,
            post_used: Instant::now(),
        };
        session.post_packet(b"40").await?;
        session.get.send_get(&session.path).await?;
        loop {
            session.get.read_response().await?;
            let (mut connected, mut ping) = (false, false);
            for packet in session.get.body.split(|&b| b == 0x1e) {
                match packet {
                    b"2" => ping = true,
                    p if p.starts_with(b"40") => connected = true,
                    p if p.starts_with(b"44") || p.starts_with(b"1") => {
                        return Err(Error::Protocol(format!(
                            "CONNECT refused: {}",
                            String::from_utf8_lossy(p)
                        )));
                    }
                    _ => {}
                }
            }
            // Park the next GET at once, as the browser client does.
            session.get.send_get(&session.path).await?;
            if ping {
                session.post_packet(b"3").await?;
            }
            if connected {
                return Ok(session);
            }
        }
    }

    async fn post_packet(&mut self, packet: &[u8]) -> Result<(), Error> {
        if self.post_used.elapsed() > POST_IDLE_LIMIT {
            self.post = HttpConn::open(self.addr, &self.post.host).await?;
        }
        self.post.send_post(&self.path, packet).await?;
        self.post.read_response().await?;
        self.post_used = Instant::now();
        if self.post.body != b"ok" {
            return Err(Error::Protocol(format!(
                "POST answered {}",
                String::from_utf8_lossy(&self.post.body)
            )));
        }
        Ok(())
    }

    /// POSTs `event` and reads the parked GETs until the ACK with id `id`
    /// arrives, parking the next GET as soon as each one returns.
    async fn round_trip(&mut self, event: &[u8], id: u64) -> Result<Vec<u8>, Error> {
        self.post_packet(event).await?;
        loop {
            self.get.read_response().await?;
            self.get.send_get(&self.path).await?;
            let (mut ack, mut ping) = (None, false);
            for packet in self.get.body.split(|&b| b == 0x1e) {
                if packet == b"2" {
                    ping = true;
                } else if ack_id(packet) == Some(id) {
                    ack = Some(packet.to_vec());
                } else if packet.starts_with(b"1") {
                    return Err(Error::Closed);
                }
            }
            if ping {
                self.post_packet(b"3").await?;
            }
            if let Some(ack) = ack {
                return Ok(ack);
            }
        }
    }

    async fn close(&mut self) -> Result<(), Error> {
        // Engine.IO close: the server ends the session and answers the
        // parked GET.
        self.post_packet(b"1").await
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn parses_content_length_and_chunked_responses() {
        let mut body = Vec::new();
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP";
        assert_eq!(parse_response(r, &mut body).unwrap(), Some(r.len() - 4));
        assert_eq!(body, b"ok");
        body.clear();
        let c = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\n40{\r\n2\r\n}x\r\n0\r\n\r\n";
        assert_eq!(parse_response(c, &mut body).unwrap(), Some(c.len()));
        assert_eq!(body, b"40{}x");
        body.clear();
        assert_eq!(parse_response(&c[..c.len() - 1], &mut body).unwrap(), None);
        assert!(parse_response(b"HTTP/1.1 400 Bad\r\n\r\n", &mut body).is_err());
    }

    #[test]
    fn reads_ack_ids_and_sids() {
        assert_eq!(ack_id(b"4312[\"x\"]"), Some(12));
        assert_eq!(ack_id(b"42[\"x\"]"), None);
        assert_eq!(
            open_sid(b"0{\"sid\":\"abc\",\"upgrades\":[]}").unwrap(),
            "abc"
        );
        assert!(open_sid(b"40{\"sid\":\"abc\"}").is_err());
    }

    /// Serves `server` on a loopback port for 30 s at most, pinging every
    /// 100 ms (answered within 1 s), with the room handlers if `rooms`.
    pub(crate) async fn spawn_server<F, S>(
        server: S,
        rooms: bool,
    ) -> (SocketAddr, tokio::task::JoinHandle<Result<u64, Error>>)
    where
        S: FnOnce(TcpListener, ServeConfig) -> F,
        F: Future<Output = Result<u64, Error>> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let config = ServeConfig {
            ping_interval: Duration::from_millis(100),
            ping_timeout: Duration::from_millis(1000),
            run_for: Duration::from_secs(30),
            rooms,
        };
        (addr, tokio::spawn(server(listener, config)))
    }

    /// Starts `server` and runs a short load of five clients on each
    /// transport against it (its pings answered too): every ack comes
    /// back right, nobody is dropped, and the percentiles are in order.
    async fn load_both_transports<F, S>(server: S, server_pids: Vec<u32>)
    where
        S: FnOnce(TcpListener, ServeConfig) -> F,
        F: Future<Output = Result<u64, Error>> + Send + 'static,
    {
        let (addr, server) = spawn_server(server, false).await;
        for transport in [Transport::WebSocket, Transport::Polling] {
            let config = LoadConfig {
                addr,
                transport,
                clients: 5,
                // Longer than the ping interval, so pings are answered too.
                duration: Duration::from_millis(400),
                size: 16,
                connect_concurrency: 2,
                step_timeout: Duration::from_secs(10),
                server_pids: server_pids.clone(),
            };
            let report = run_load(&config).await.unwrap();
            assert!(report.acks > 10, "{transport:?}: {report:?}");
            assert_eq!((report.wrong, report.dropped), (0, 0), "{transport:?}");
            assert!(report.p50 <= report.p99);
        }
        server.abort();
    }

    /// Idle clients of both transports connect, stay connected through a
    /// hold longer than the ping interval (answering the pings), and the
    /// server's resident set is read at each point.
    #[tokio::test(flavor = "current_thread")]
    async fn idle_clients_answer_pings_over_both_transports() {
        let (addr, server) = spawn_server(echo_server, false).await;
        for transport in [Transport::WebSocket, Transport::Polling] {
            let config = IdleConfig {
                addr,
                transport,
                clients: 6,
                concurrency: 4,
                hold: Duration::from_millis(450),
                release: None,
                connect_timeout: Duration::from_secs(10),
                server_pid: Some(std::process::id()),
            };
            let mut ramped = None;
            let report = run_idle(&config, |n, _| ramped = Some(n)).await.unwrap();
            assert_eq!(ramped, Some(6), "{transport:?}");
            assert_eq!((report.clients, report.lost), (6, 0), "{transport:?}");
            // Four pings per client in 450 ms at 100 ms, give or take.
            assert!(report.pings >= 6, "{transport:?}: {report:?}");
            assert!(report.held_rss_kib.is_some() && report.rss_per_client().is_some());
        }
        server.abort();
    }

    /// The lean client against duplex's server, over both transports:
    /// every ack comes back right and nobody is dropped.
    #[tokio::test(flavor = "current_thread")]
    async fn echoes_over_both_transports() {
        load_both_transports(echo_server, vec![std::process::id()]).await;
    }

    /// socketioxide's server answers the load client's acks with the bytes
    /// the client checks, on both transports and on a multi-thread runtime
    /// (`sio-server --impl socketioxide --workers 2`).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn socketioxide_echoes_over_both_transports() {
        load_both_transports(socketioxide_echo_server, vec![]).await;
    }
}
