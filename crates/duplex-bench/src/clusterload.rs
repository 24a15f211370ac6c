//! The broadcast load: C clients in one room of a Socket.IO server, or
//! spread over the nodes of a cluster (servers sharing one Redis, issue
//! 15), all serving the handlers of `shared/conformance/socketio-cluster.md`
//! (`join`, `to-room`); one more client asks the first node to broadcast to
//! that room B times, at most W broadcasts not yet delivered to everyone at
//! a time (all B back to back by default). The figures are the deliveries
//! per second, from the first request until every client has had every
//! broadcast (`scenarios/cluster-broadcast.sh`,
//! `scenarios/socketio-broadcast.sh`), and the time from each request to
//! its last delivery.
//!
//! The clients are [`sioload`](crate::sioload)'s lean WebSocket clients,
//! one task each on one thread, so that a thousand of them are not the
//! limit. Each counts the `room-msg` packets carrying the run's token and
//! reads which broadcast each is from its number; every loop is bounded by
//! the run's deadline, and only loopback addresses are accepted.

use std::net::SocketAddr;
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::loadgen::{Error, Percentiles, ensure_loopback};
use crate::sioload::{TICKS_PER_SEC, WsSession, cpu_ticks};

/// What to run; also the `cluster-load` command's options, so that the
/// command line and the library take the same settings under one name.
#[derive(Clone, Debug, clap::Args)]
pub struct ClusterLoadConfig {
    /// The nodes (127.0.0.1:PORT, `--node` once for each); clients go
    /// round-robin, the broadcasting client to the first. One node: a lone
    /// server.
    #[arg(long = "node", required = true)]
    pub nodes: Vec<SocketAddr>,
    /// Clients in the room, over all nodes.
    #[arg(long, default_value_t = 1000)]
    pub clients: usize,
    /// Broadcasts to the room.
    #[arg(long, default_value_t = 50)]
    pub broadcasts: usize,
    /// Bytes of text in each broadcast.
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Broadcasts requested and not yet delivered to every client, at
    /// most; 0 requests all of them back to back. 1 measures one emit's
    /// fan-out alone.
    #[arg(long, default_value_t = 0)]
    pub window: usize,
    /// A server process whose CPU time to report (a lone server's).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// The whole run's limit (whole seconds on the command line).
    #[arg(
        long = "timeout-secs",
        value_name = "SECS",
        default_value = "120",
        value_parser = whole_seconds
    )]
    pub timeout: Duration,
}

/// `--timeout-secs`: a whole number of seconds.
fn whole_seconds(text: &str) -> Result<Duration, std::num::ParseIntError> {
    text.parse().map(Duration::from_secs)
}

/// What a run gave.
#[derive(Clone, Debug)]
pub struct ClusterLoadReport {
    /// Clients in the room.
    pub clients: usize,
    /// Broadcasts asked for.
    pub broadcasts: usize,
    /// Deliveries counted, over every client (clients × broadcasts when
    /// nothing was lost).
    pub deliveries: u64,
    /// From the first broadcast request to the last delivery.
    pub elapsed: Duration,
    /// Clients that did not get every broadcast before the deadline.
    pub short_clients: usize,
    /// From each broadcast's request to its last delivery, over the
    /// broadcasts every client got.
    pub latency: Percentiles,
    /// CPU seconds `server_pid` spent from the first request until every
    /// broadcast was delivered (or the deadline): steadier than the rates
    /// on a shared machine.
    pub server_cpu_s: Option<f64>,
}

impl ClusterLoadReport {
    /// Deliveries per second.
    pub fn rate(&self) -> f64 {
        self.deliveries as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Who got which broadcast when, shared by the receiving clients and the
/// requesting one.
#[derive(Debug)]
struct Tally {
    /// Clients in the room: a broadcast that reached this many is done.
    clients: usize,
    /// When each broadcast was requested.
    sent: Vec<Option<Instant>>,
    /// How many clients each reached.
    got: Vec<usize>,
    /// When each reached its last client.
    done: Vec<Option<Instant>>,
    /// Broadcasts done.
    complete: usize,
}

impl Tally {
    fn new(clients: usize, broadcasts: usize) -> Self {
        Self {
            clients,
            sent: vec![None; broadcasts],
            got: vec![0; broadcasts],
            done: vec![None; broadcasts],
            complete: 0,
        }
    }

    /// Counts a delivery of broadcast `i` at `at`; true if it was the last
    /// one that broadcast needed.
    fn delivered(&mut self, i: usize, at: Instant) -> bool {
        let (Some(got), Some(done)) = (self.got.get_mut(i), self.done.get_mut(i)) else {
            return false;
        };
        *got += 1;
        if *got == self.clients {
            *done = Some(at);
            self.complete += 1;
            return true;
        }
        false
    }

    /// Request to last delivery of every broadcast that is done.
    fn latencies(&self) -> Vec<Duration> {
        self.sent
            .iter()
            .zip(&self.done)
            .filter_map(|(sent, done)| {
                Some(done.as_ref()?.saturating_duration_since(*sent.as_ref()?))
            })
            .collect()
    }
}

/// The tally, even if a reader panicked holding it (its counts stand).
fn lock(tally: &Mutex<Tally>) -> MutexGuard<'_, Tally> {
    tally.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The number of the broadcast `text` carries, if it is a `room-msg` of
/// this run (`42["room-msg","<token>-<n>-…`).
fn broadcast_number(text: &[u8], marker: &[u8]) -> Option<usize> {
    let rest = text.strip_prefix(marker)?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if rest.get(digits) != Some(&b'-') {
        return None;
    }
    std::str::from_utf8(rest.get(..digits)?).ok()?.parse().ok()
}

/// The `to-room` request for broadcast `n`: its text is `<token>-<n>-`
/// padded with `x` to `size` bytes.
fn request(n: usize, room: &str, token: &str, size: usize) -> String {
    let head = format!("{token}-{n}-");
    let pad = "x".repeat(size.saturating_sub(head.len()));
    format!("42{}[\"to-room\",\"{room}\",\"{head}{pad}\"]", n + 1)
}

/// Runs the load once.
pub async fn run(config: &ClusterLoadConfig) -> Result<ClusterLoadReport, Error> {
    let Some(&first) = config.nodes.first() else {
        return Err(Error::Protocol("no node".into()));
    };
    for node in &config.nodes {
        ensure_loopback(*node)?;
    }
    let deadline = Instant::now() + config.timeout;
    let room = format!("bench-{}", std::process::id());
    let token = format!("t{}", std::process::id());

    // Connect and join, a hundred at a time.
    let mut members = Vec::with_capacity(config.clients);
    let mut next = 0;
    while next < config.clients {
        let mut batch = JoinSet::new();
        for i in next..(next + 100).min(config.clients) {
            let addr = config
                .nodes
                .get(i % config.nodes.len())
                .copied()
                .unwrap_or(first);
            let room = room.clone();
            batch.spawn(async move {
                let mut ws = WsSession::connect(addr, &addr.to_string()).await?;
                let join = format!("421[\"join\",\"{room}\"]");
                ws.round_trip(join.as_bytes(), 1).await?;
                Ok::<_, Error>(ws)
            });
        }
        next = (next + 100).min(config.clients);
        while let Some(joined) = batch.join_next().await {
            members.push(joined.map_err(|e| Error::Protocol(e.to_string()))??);
        }
    }
    // Room subscriptions (the sharded mode's room channels) settle.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let tally = Arc::new(Mutex::new(Tally::new(members.len(), config.broadcasts)));
    let done = Arc::new(Notify::new());
    let mut readers = JoinSet::new();
    for mut ws in members {
        let (token, want) = (token.clone(), config.broadcasts);
        let (tally, done) = (tally.clone(), done.clone());
        readers.spawn(async move {
            let marker = format!("42[\"room-msg\",\"{token}-");
            let mut got = 0usize;
            let mut last = Instant::now();
            while got < want {
                let packet = match tokio::time::timeout_at(deadline.into(), ws.next_packet()).await
                {
                    Ok(Ok(p)) => p,
                    _ => break,
                };
                let text = ws.text(packet);
                if text == b"2" {
                    if ws.send(b"3").await.is_err() {
                        break;
                    }
                } else if let Some(n) = broadcast_number(text, marker.as_bytes()) {
                    got += 1;
                    last = Instant::now();
                    if lock(&tally).delivered(n, last) {
                        done.notify_one();
                    }
                }
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), ws.close()).await;
            (got, last)
        });
    }

    let mut driver = WsSession::connect(first, &first.to_string()).await?;
    let mut acked = 0;
    let ticks_before = config.server_pid.and_then(cpu_ticks);
    let start = Instant::now();
    'requests: for n in 0..config.broadcasts {
        // Wait for room in the window, answering the node on the way.
        while config.window > 0 && lock(&tally).complete + config.window <= n {
            let packet = tokio::select! {
                () = done.notified() => continue,
                p = driver.next_packet() => p?,
                () = tokio::time::sleep_until(deadline.into()) => break 'requests,
            };
            read_reply(&mut driver, packet, &mut acked).await?;
        }
        lock(&tally)
            .sent
            .get_mut(n)
            .map(|s| s.replace(Instant::now()));
        driver
            .send(request(n, &room, &token, config.size).as_bytes())
            .await?;
    }
    // The acks ("ok" once published), read so the node's writes never block.
    while acked < config.broadcasts && Instant::now() < deadline {
        let Ok(Ok(packet)) = tokio::time::timeout_at(deadline.into(), driver.next_packet()).await
        else {
            break;
        };
        read_reply(&mut driver, packet, &mut acked).await?;
    }
    // The server's work ends with the last delivery, not the clients' closes.
    while lock(&tally).complete < config.broadcasts && Instant::now() < deadline {
        let _ = tokio::time::timeout_at(deadline.into(), done.notified()).await;
    }
    let server_cpu_s = config
        .server_pid
        .and_then(cpu_ticks)
        .zip(ticks_before)
        .map(|(after, before)| after.saturating_sub(before) as f64 / TICKS_PER_SEC);

    let mut deliveries = 0u64;
    let mut short_clients = 0;
    let mut end = start;
    while let Some(joined) = readers.join_next().await {
        let (got, last) = joined.map_err(|e| Error::Protocol(e.to_string()))?;
        deliveries += got as u64;
        if got < config.broadcasts {
            short_clients += 1;
        }
        end = end.max(last);
    }
    let _ = tokio::time::timeout(Duration::from_millis(200), driver.close()).await;
    let mut latencies = lock(&tally).latencies();
    Ok(ClusterLoadReport {
        clients: config.clients,
        broadcasts: config.broadcasts,
        deliveries,
        elapsed: end.saturating_duration_since(start),
        short_clients,
        latency: Percentiles::of(&mut latencies),
        server_cpu_s,
    })
}

/// Handles what the node sent the requesting client: answers a ping,
/// counts an ack.
async fn read_reply(
    driver: &mut WsSession,
    packet: Range<usize>,
    acked: &mut usize,
) -> Result<(), Error> {
    let text = driver.text(packet);
    if text == b"2" {
        driver.send(b"3").await?;
    } else if text.starts_with(b"43") {
        *acked += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sioload::tests::spawn_server;
    use crate::sioload::{echo_server, socketioxide_echo_server};

    #[test]
    fn requests_carry_their_number_and_size() {
        let r = request(6, "room", "t9", 12);
        // Twelve characters of text: "t9-6-" and seven x.
        assert_eq!(r, r#"427["to-room","room","t9-6-xxxxxxx"]"#);
        let marker = br#"42["room-msg","t9-"#;
        assert_eq!(
            broadcast_number(br#"42["room-msg","t9-6-xxxxxx"]"#, marker),
            Some(6)
        );
        assert_eq!(
            broadcast_number(br#"42["room-msg","t9-61-",1]"#, marker),
            Some(61)
        );
        // Another run's token, a number without its dash, another event.
        assert_eq!(
            broadcast_number(br#"42["room-msg","t8-6-x"]"#, marker),
            None
        );
        assert_eq!(broadcast_number(br#"42["room-msg","t9-6"]"#, marker), None);
        assert_eq!(broadcast_number(br#"42["all-msg","t9-6-x"]"#, marker), None);
    }

    #[test]
    fn a_broadcast_is_done_at_its_last_delivery() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut tally = Tally::new(2, 3);
        tally.sent[0] = Some(t0);
        tally.sent[1] = Some(t0 + ms(1));
        assert!(!tally.delivered(0, t0 + ms(2)));
        assert!(!tally.delivered(1, t0 + ms(3)));
        assert!(tally.delivered(0, t0 + ms(5)));
        // Out of range: ignored, not a panic.
        assert!(!tally.delivered(7, t0));
        assert_eq!(tally.complete, 1);
        assert_eq!(tally.latencies(), [ms(5)]);
        assert!(tally.delivered(1, t0 + ms(4)));
        assert_eq!(tally.latencies(), [ms(5), ms(3)]);
    }

    /// One server with the room handlers, eight clients, twenty broadcasts
    /// one at a time and then back to back: every client gets every one.
    async fn every_client_gets_every_broadcast<F, S>(server: S)
    where
        S: FnOnce(tokio::net::TcpListener, crate::sioload::ServeConfig) -> F,
        F: Future<Output = Result<u64, Error>> + Send + 'static,
    {
        let (addr, server) = spawn_server(server, true).await;
        for window in [1, 0] {
            let config = ClusterLoadConfig {
                nodes: vec![addr],
                clients: 8,
                broadcasts: 20,
                size: 32,
                window,
                server_pid: Some(std::process::id()),
                timeout: Duration::from_secs(20),
            };
            let r = run(&config).await.unwrap();
            assert_eq!((r.deliveries, r.short_clients), (160, 0), "window {window}");
            assert!(r.server_cpu_s.is_some_and(|s| s >= 0.0));
            assert!(r.latency.p50 <= r.latency.p99 && r.latency.p99 <= r.latency.max);
            assert!(r.latency.max > Duration::ZERO);
        }
        server.abort();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn duplex_broadcasts_to_the_room() {
        every_client_gets_every_broadcast(echo_server).await;
    }

    #[tokio::test(flavor = "current_thread")]
    async fn socketioxide_broadcasts_to_the_room() {
        every_client_gets_every_broadcast(socketioxide_echo_server).await;
    }
}
