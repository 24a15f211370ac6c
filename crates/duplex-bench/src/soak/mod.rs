//! `duplex-bench soak`: a mix of clients against one `duplex serve` for a
//! given time, checking that nothing the protocols promise is lost or
//! doubled, that no connection or session outlives its client, and that
//! the server's memory does not creep.
//!
//! Each worker loops sessions of one kind until the deadline:
//!
//! | kind | what one session does | what is checked |
//! |------|-----------------------|-----------------|
//! | `ws` | WebSocket `/echo`: numbered messages out, echoes in; every 4th session is killed (dropped without a close) half way | every echo arrives once, in order |
//! | `stomp-tcp`, `stomp-ws` | a queue of its own: numbered SENDs, a `client-individual` subscription, each MESSAGE acked; every 3rd session is killed with messages unacked (after a receipt confirmed its acks), and a second client takes the rest | every number acked exactly once (redeliveries of unacked ones allowed) |
//! | `sio-ws`, `sio-polling`, `sio-upgrade` | Socket.IO on `/`: numbered `message-with-ack` emits; every 4th session is dropped half way | every ack arrives once, with its own number |
//! | `stomp-sockjs-ws`, `stomp-sockjs-xhr`, `stomp-sockjs-stream` | as `stomp-ws`, over SockJS (`/sockjs/stomp`) on its `websocket`, `xhr` (polling) and `xhr_streaming` transports; a killed client stops polling, and the server must expire its session (5 s) to hand the unacked messages on | every number acked exactly once |
//! | `sse` | the demo's chat over Server-Sent Events: join the worker's room, say numbered messages, read them back; every 4th session drops its stream half way and reconnects with `Last-Event-ID` | every message once, none repeated after the resume |
//! | `kill-mid` | a WebSocket frame, a STOMP `SEND` or an Engine.IO `POST` body half written, then the connection dropped (see [`kill`]) | the half STOMP frame never delivered |
//!
//! After the deadline the run waits (bounded) for `/stats` to show no
//! connection and no session left and for the server's open file
//! descriptors to be back to what they were before the run, and compares
//! the server's RSS over the second and the last third of the run. The
//! descriptors catch what `/stats` does not count: its `socket.io` and
//! `stomp` counters are the demo chat's members, not the soak's Socket.IO
//! sessions on `/` or its STOMP queue sessions.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use duplex_stomp::{AckMode, ClientConfig as StompConfig, ClientEvent as StompEvent, Command};
use duplex_tokio::socketio::Value;
use duplex_tokio::socketio::client::{ClientConfig as SioConfig, ClientTransports, Manager};
use duplex_tokio::stomp::StompClient;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod kill;
mod sockjs;
mod sse;
mod web;

/// Every single wait of a session is bounded by this.
const STEP: Duration = Duration::from_secs(10);
/// The pause between two SSE sessions of a worker. A session's member
/// stays in its chat room for the 30 s the server waits for a reconnection,
/// and receives what the next sessions say there: without a pause a worker
/// leaves hundreds of them behind, and each join sends the member list to
/// all of them (see docs/reliability.md, "SSE sessions and memory").
const SSE_PAUSE: Duration = Duration::from_millis(200);
/// How long the run waits for `/stats` to show nothing open.
const SETTLE: Duration = Duration::from_secs(60);
/// Most RSS growth (KiB) between the second and the last third of the run
/// that still counts as flat: allocator noise, not a leak.
const RSS_SLACK_KIB: u64 = 8 * 1024;

/// What to run.
#[derive(Debug, Clone)]
pub struct SoakConfig {
    /// The server, `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its STOMP TCP listener, if STOMP over TCP is to be soaked.
    pub stomp_addr: Option<String>,
    /// How long to run.
    pub duration: Duration,
    /// The server's pid, for RSS (Linux `/proc`).
    pub server_pid: Option<u32>,
    /// Workers per kind of client.
    pub workers: usize,
    /// Numbered messages per session.
    pub messages: u32,
    /// Only these kinds of client (their names as printed); all when empty.
    pub kinds: Vec<String>,
}

/// The kinds of client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ws,
    StompTcp,
    StompWs,
    SioWs,
    SioPolling,
    SioUpgrade,
    StompSockJsWs,
    StompSockJsXhr,
    StompSockJsStream,
    Sse,
    KillMid,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Ws => "ws",
            Kind::StompTcp => "stomp-tcp",
            Kind::StompWs => "stomp-ws",
            Kind::SioWs => "sio-ws",
            Kind::SioPolling => "sio-polling",
            Kind::SioUpgrade => "sio-upgrade",
            Kind::StompSockJsWs => "stomp-sockjs-ws",
            Kind::StompSockJsXhr => "stomp-sockjs-xhr",
            Kind::StompSockJsStream => "stomp-sockjs-stream",
            Kind::Sse => "sse",
            Kind::KillMid => "kill-mid",
        }
    }

    fn is_stomp(self) -> bool {
        matches!(
            self,
            Kind::StompTcp
                | Kind::StompWs
                | Kind::StompSockJsWs
                | Kind::StompSockJsXhr
                | Kind::StompSockJsStream
        )
    }
}

/// Counts of one kind.
#[derive(Debug, Default)]
struct Tally {
    sessions: AtomicU64,
    killed: AtomicU64,
    messages: AtomicU64,
    failed: AtomicU64,
    /// The first failures, for the report.
    errors: std::sync::Mutex<Vec<String>>,
}

impl Tally {
    fn fail(&self, what: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut errors) = self.errors.lock()
            && errors.len() < 5
        {
            errors.push(what);
        }
    }
}

/// Runs the soak; prints progress and the checks, and returns the number
/// of failed checks.
pub async fn run(config: SoakConfig) -> u32 {
    let mut kinds = vec![
        Kind::Ws,
        Kind::StompWs,
        Kind::SioWs,
        Kind::SioPolling,
        Kind::SioUpgrade,
        Kind::StompSockJsWs,
        Kind::StompSockJsXhr,
        Kind::StompSockJsStream,
        Kind::Sse,
        Kind::KillMid,
    ];
    if config.stomp_addr.is_some() {
        kinds.push(Kind::StompTcp);
    }
    if !config.kinds.is_empty() {
        kinds.retain(|k| config.kinds.iter().any(|name| name == k.name()));
    }
    let fds_before = config.server_pid.and_then(crate::procstat::fd_count);
    let deadline = Instant::now() + config.duration;
    let config = Arc::new(config);
    let mut tallies = Vec::new();
    let mut workers = tokio::task::JoinSet::new();
    for kind in kinds {
        let tally = Arc::new(Tally::default());
        tallies.push((kind, tally.clone()));
        for w in 0..config.workers {
            let tally = tally.clone();
            let config = config.clone();
            workers.spawn(worker(kind, w, config, tally, deadline));
        }
    }
    // RSS every second while the workers run.
    let mut rss = Vec::new();
    let start = Instant::now();
    while Instant::now() < deadline {
        if let Some(kib) = config.server_pid.and_then(crate::procstat::rss_kib) {
            rss.push(kib);
        }
        let elapsed = start.elapsed().as_secs();
        if elapsed > 0 && elapsed.is_multiple_of(10) {
            let done: u64 = tallies
                .iter()
                .map(|(_, t)| t.sessions.load(Ordering::Relaxed))
                .sum();
            println!(
                "soak: {elapsed} s, {done} sessions, RSS {} KiB",
                rss.last().copied().unwrap_or(0)
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let stragglers = tokio::time::timeout(STEP * 3, async {
        while workers.join_next().await.is_some() {}
    })
    .await
    .is_err();

    let (mut passed, mut failed) = (0u32, 0u32);
    let mut check = |name: &str, ok: bool, detail: String| {
        println!("{} {name}: {detail}", if ok { "ok  " } else { "FAIL" });
        if ok {
            passed += 1;
        } else {
            failed += 1;
        }
    };
    check(
        "every worker finished",
        !stragglers,
        format!("within {:?} of the deadline", STEP * 3),
    );
    for (kind, tally) in &tallies {
        let sessions = tally.sessions.load(Ordering::Relaxed);
        let bad = tally.failed.load(Ordering::Relaxed);
        let errors = tally
            .errors
            .lock()
            .map(|e| e.join("; "))
            .unwrap_or_default();
        check(
            &format!("{}: every promised message exactly once", kind.name()),
            bad == 0 && sessions > 0,
            format!(
                "{sessions} sessions ({} killed), {} messages, {bad} failed{}",
                tally.killed.load(Ordering::Relaxed),
                tally.messages.load(Ordering::Relaxed),
                if errors.is_empty() {
                    String::new()
                } else {
                    format!(": {errors}")
                }
            ),
        );
    }
    let (settled, doc) = settle(&config.url).await;
    check(
        "connections and sessions back to zero (/stats)",
        settled,
        doc,
    );
    if let (Some(pid), Some(before)) = (config.server_pid, fds_before) {
        let (back, after) = fds_settle(pid, before).await;
        check(
            "server file descriptors back to where they were",
            back,
            format!("{before} before the run, {after} after"),
        );
    }
    if config.server_pid.is_some() {
        let third = rss.len() / 3;
        let mean = |s: &[u64]| s.iter().sum::<u64>() / (s.len().max(1) as u64);
        let middle = mean(rss.get(third..2 * third).unwrap_or(&[]));
        let last = mean(rss.get(2 * third..).unwrap_or(&[]));
        check(
            "RSS flat after warm-up",
            third > 0 && last <= middle + RSS_SLACK_KIB,
            format!(
                "mean {middle} KiB over the second third, {last} KiB over the last (max {} KiB)",
                rss.iter().max().copied().unwrap_or(0)
            ),
        );
    }
    println!("soak: {passed} passed, {failed} failed");
    failed
}

/// Waits until `/stats` shows no open connection of any transport (the
/// counters under `connections`), at most [`SETTLE`]. Returns whether it
/// did and the last counters.
async fn settle(url: &str) -> (bool, String) {
    let until = Instant::now() + SETTLE;
    let mut last = String::new();
    while Instant::now() < until {
        match get_stats(url).await {
            Ok(body) => {
                let open = open_connections(&body);
                last = open
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ");
                if !open.is_empty() && open.iter().all(|(_, v)| *v == 0) {
                    return (true, last);
                }
            }
            Err(e) => last = format!("GET /stats: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    (false, format!("still open after {SETTLE:?}: {last}"))
}

/// Waits until process `pid` holds no more file descriptors than
/// `before`, at most [`SETTLE`]: idle keep-alive connections close at the
/// server's header read timeout (10 s), sessions at their expiry. Returns
/// whether it did and the last count (0 if unreadable).
async fn fds_settle(pid: u32, before: usize) -> (bool, usize) {
    let until = Instant::now() + SETTLE;
    loop {
        let now = crate::procstat::fd_count(pid).unwrap_or(0);
        if now <= before {
            return (true, now);
        }
        if Instant::now() >= until {
            return (false, now);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The `"connections":{...}` counters of a `/stats` document, read without
/// a JSON dependency: the object holds only `"name":number` pairs.
fn open_connections(body: &str) -> Vec<(String, i64)> {
    let Some(start) = body.find("\"connections\":{") else {
        return Vec::new();
    };
    let rest = &body[start + "\"connections\":{".len()..];
    let Some(end) = rest.find('}') else {
        return Vec::new();
    };
    rest[..end]
        .split(',')
        .filter_map(|pair| {
            let (k, v) = pair.split_once(':')?;
            Some((k.trim_matches('"').to_owned(), v.trim().parse().ok()?))
        })
        .collect()
}

async fn get_stats(url: &str) -> std::io::Result<String> {
    let host = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut tcp = tokio::time::timeout(STEP, tokio::net::TcpStream::connect(&host))
        .await
        .map_err(|_| std::io::Error::other("connect timed out"))??;
    tcp.write_all(
        format!("GET /stats HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut body = Vec::new();
    tokio::time::timeout(STEP, tcp.read_to_end(&mut body))
        .await
        .map_err(|_| std::io::Error::other("read timed out"))??;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

async fn worker(
    kind: Kind,
    w: usize,
    config: Arc<SoakConfig>,
    tally: Arc<Tally>,
    deadline: Instant,
) {
    let mut n: u64 = 0;
    while Instant::now() < deadline {
        n += 1;
        let kill = match kind {
            Kind::KillMid => true,
            k if k.is_stomp() => n.is_multiple_of(3),
            _ => n.is_multiple_of(4),
        };
        let id = format!("{}-{w}-{n}", kind.name());
        let result = tokio::time::timeout(STEP * 3, async {
            match kind {
                Kind::Ws => ws_session(&config, kill).await,
                k if k.is_stomp() => stomp_session(&config, kind, &id, kill).await,
                Kind::SioWs | Kind::SioPolling | Kind::SioUpgrade => {
                    sio_session(&config, kind, kill).await
                }
                Kind::Sse => sse::session(&config, w, n, kill).await,
                _ => kill::session(&config, w, n).await,
            }
        })
        .await
        .unwrap_or_else(|_| Err(format!("{id}: no end within {:?}", STEP * 3)));
        tally.sessions.fetch_add(1, Ordering::Relaxed);
        if kill {
            tally.killed.fetch_add(1, Ordering::Relaxed);
        }
        match result {
            Ok(messages) => {
                tally.messages.fetch_add(messages, Ordering::Relaxed);
            }
            Err(e) => tally.fail(format!("{id}: {e}")),
        }
        if kind == Kind::Sse {
            tokio::time::sleep(SSE_PAUSE).await;
        }
    }
}

fn ws_url(config: &SoakConfig, path: &str) -> String {
    format!(
        "ws://{}{path}",
        config
            .url
            .trim_start_matches("http://")
            .trim_end_matches('/')
    )
}

/// A WebSocket echo session; returns the echoes received.
async fn ws_session(config: &SoakConfig, kill: bool) -> Result<u64, String> {
    use duplex_tokio::ws::Message;
    let (mut ws, _) = duplex_tokio::connect(&ws_url(config, "/echo"))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let total = config.messages;
    let stop_at = if kill { total / 2 } else { total };
    for i in 0..total {
        ws.feed(Message::from(format!("{i}")))
            .await
            .map_err(|e| format!("send {i}: {e}"))?;
    }
    ws.flush().await.map_err(|e| format!("flush: {e}"))?;
    let mut expected = 0u32;
    while expected < stop_at {
        let msg = tokio::time::timeout(STEP, ws.next())
            .await
            .map_err(|_| format!("echo {expected}: timed out"))?
            .ok_or_else(|| format!("echo {expected}: the stream ended"))?
            .map_err(|e| format!("echo {expected}: {e}"))?;
        let text = match &msg {
            Message::Text(t) => t.as_str(),
            _ => "(binary)",
        };
        if text != expected.to_string() {
            return Err(format!("echo {expected}: got {text:?}"));
        }
        expected += 1;
    }
    if !kill {
        ws.close().await.map_err(|e| format!("close: {e}"))?;
    }
    // Killed: dropped with echoes in flight and no close.
    Ok(u64::from(expected))
}

fn stomp_config() -> StompConfig {
    StompConfig::new("/")
}

async fn stomp_connect(config: &SoakConfig, kind: Kind) -> Result<StompClient, String> {
    let sockjs = match kind {
        Kind::StompSockJsWs => Some(sockjs::Transport::WebSocket),
        Kind::StompSockJsXhr => Some(sockjs::Transport::Xhr),
        Kind::StompSockJsStream => Some(sockjs::Transport::XhrStreaming),
        _ => None,
    };
    if let Some(transport) = sockjs {
        static SESSIONS: AtomicU64 = AtomicU64::new(0);
        let session = format!(
            "soak{}-{}",
            std::process::id(),
            SESSIONS.fetch_add(1, Ordering::Relaxed)
        );
        let pipe = sockjs::open(&config.url, transport, &session).await?;
        return StompClient::over_stream(pipe, stomp_config())
            .await
            .map_err(|e| format!("connect: {e}"));
    }
    match (kind, &config.stomp_addr) {
        (Kind::StompTcp, Some(addr)) => StompClient::connect(addr.as_str(), stomp_config())
            .await
            .map_err(|e| format!("connect: {e}")),
        _ => StompClient::connect_websocket(
            &ws_url(config, "/stomp"),
            stomp_config(),
            duplex_tokio::ClientConfig::default(),
        )
        .await
        .map_err(|e| format!("connect: {e}")),
    }
}

/// Receives MESSAGEs of the subscription on `client`, acking each, until
/// `want.min(ack_until)` are acked (the rest left unacked). With
/// `confirm`, the last ack asks for a receipt and the receipt is awaited:
/// an ack the server confirmed must never be undone, while one a killed
/// client wrote just before it died may be lost with the connection (a
/// socket closed with unread data is reset) and its message redelivered,
/// as STOMP allows. Returns the numbers acked.
async fn stomp_consume(
    client: &mut StompClient,
    acked: &mut Vec<u32>,
    want: usize,
    ack_until: usize,
    confirm: bool,
) -> Result<(), String> {
    let until = want.min(ack_until);
    while acked.len() < until {
        let event = tokio::time::timeout(STEP, client.next_event())
            .await
            .map_err(|_| format!("after {} acks: no MESSAGE within {STEP:?}", acked.len()))?;
        match event {
            Some(StompEvent::Message(m)) => {
                let n: u32 = std::str::from_utf8(m.body())
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| format!("a body that is no number: {:?}", m.body()))?;
                if confirm && acked.len() + 1 == until {
                    client
                        .with(move |s| {
                            s.ack_or_nack(Command::Ack, &m, None, &[("receipt", "soak-acked")])
                        })
                        .await
                        .map_err(|e| format!("ack {n}: {e}"))?
                        .map_err(|e| format!("ack {n}: {e}"))?;
                    acked.push(n);
                    stomp_receipt(client, "soak-acked").await?;
                } else {
                    client.ack(&m).await.map_err(|e| format!("ack {n}: {e}"))?;
                    acked.push(n);
                }
            }
            Some(StompEvent::Receipt { .. }) => {}
            other => return Err(format!("after {} acks: {other:?}", acked.len())),
        }
    }
    Ok(())
}

/// Waits for receipt `id`; MESSAGEs meanwhile are left unacked.
async fn stomp_receipt(client: &mut StompClient, id: &str) -> Result<(), String> {
    loop {
        let event = tokio::time::timeout(STEP, client.next_event())
            .await
            .map_err(|_| format!("no RECEIPT {id} within {STEP:?}"))?;
        match event {
            Some(StompEvent::Receipt { receipt_id, .. }) if receipt_id == id => return Ok(()),
            Some(StompEvent::Receipt { .. } | StompEvent::Message(_)) => {}
            other => return Err(format!("waiting for RECEIPT {id}: {other:?}")),
        }
    }
}

/// A STOMP session on a queue of its own; returns the messages acked.
async fn stomp_session(
    config: &SoakConfig,
    kind: Kind,
    id: &str,
    kill: bool,
) -> Result<u64, String> {
    let queue = format!("/queue/soak.{id}");
    let total = config.messages as usize;
    let mut client = stomp_connect(config, kind).await?;
    for i in 0..config.messages {
        client
            .send(&queue, &[], i.to_string())
            .await
            .map_err(|e| format!("send {i}: {e}"))?;
    }
    client
        .subscribe(&queue, AckMode::ClientIndividual)
        .await
        .map_err(|e| format!("subscribe: {e}"))?;
    let mut acked = Vec::with_capacity(total);
    if kill {
        stomp_consume(&mut client, &mut acked, total, total / 2, true).await?;
        // Killed with the rest delivered or on its way, unacked: the broker
        // must hand them to the next subscriber.
        drop(client);
        let mut second = stomp_connect(config, kind).await?;
        second
            .subscribe(&queue, AckMode::ClientIndividual)
            .await
            .map_err(|e| format!("second subscribe: {e}"))?;
        stomp_consume(&mut second, &mut acked, total, total, false).await?;
        second
            .disconnect()
            .await
            .map_err(|e| format!("disconnect: {e}"))?;
    } else {
        stomp_consume(&mut client, &mut acked, total, total, false).await?;
        client
            .disconnect()
            .await
            .map_err(|e| format!("disconnect: {e}"))?;
    }
    let distinct: BTreeSet<u32> = acked.iter().copied().collect();
    if distinct.len() != acked.len() {
        return Err(format!("a message acked twice: {acked:?}"));
    }
    if distinct != (0..config.messages).collect() {
        return Err(format!("acked {} of {total}", distinct.len()));
    }
    Ok(acked.len() as u64)
}

/// A Socket.IO session on `/`: numbered emits with acks; returns the acks.
async fn sio_session(config: &SoakConfig, kind: Kind, kill: bool) -> Result<u64, String> {
    let mut sio = SioConfig::new(&config.url);
    sio.transports = match kind {
        Kind::SioPolling => ClientTransports::Polling,
        Kind::SioUpgrade => ClientTransports::PollingThenWebSocket,
        _ => ClientTransports::WebSocket,
    };
    sio.reconnection = false;
    let manager = Manager::new(sio);
    let mut socket = manager.socket("/", None);
    let connected = tokio::time::timeout(STEP, async {
        loop {
            match socket.next_event().await {
                Some(duplex_tokio::socketio::client::ClientEvent::Connect { .. }) => {
                    return Ok(());
                }
                Some(duplex_tokio::socketio::client::ClientEvent::Event { .. }) => {}
                other => return Err(format!("before connecting: {other:?}")),
            }
        }
    })
    .await
    .map_err(|_| "no connect within the step".to_owned())?;
    connected?;
    let total = if kill {
        config.messages / 2
    } else {
        config.messages
    };
    let mut acks = 0u64;
    for i in 0..total {
        let reply = socket
            .emit_with_ack(
                "message-with-ack",
                vec![Value::String(format!("{i}"))],
                Some(STEP),
            )
            .await
            .map_err(|e| format!("ack {i}: {e:?}"))?;
        match reply.first() {
            Some(Value::String(s)) if *s == i.to_string() => acks += 1,
            other => return Err(format!("ack {i}: got {other:?}")),
        }
    }
    if !kill {
        socket.disconnect();
    }
    // Killed or not, the connection goes; the server must notice either.
    manager.close();
    Ok(acks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_counters_are_read_from_the_connections_object() {
        let body = "HTTP/1.1 200 OK\r\n\r\n{\"uptime_ms\":5,\"connections\":{\"ws\":0,\"sse\":2,\"socket.io\":1},\"x\":{}}";
        assert_eq!(
            open_connections(body),
            vec![
                ("ws".to_owned(), 0),
                ("sse".to_owned(), 2),
                ("socket.io".to_owned(), 1)
            ]
        );
        assert!(open_connections("{}").is_empty());
    }
}
