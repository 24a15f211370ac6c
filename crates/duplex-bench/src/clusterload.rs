//! The cluster broadcast load (`scenarios/cluster-broadcast.sh`, issue
//! 15): C clients spread over the nodes of a Socket.IO cluster (servers
//! sharing one Redis, serving the handlers of
//! `shared/conformance/socketio-cluster.md`), all in one room; one more
//! client asks a node to broadcast to that room B times, back to back; the
//! figure is the deliveries per second, from the first request until every
//! client has had every broadcast.
//!
//! The clients are [`sioload`](crate::sioload)'s lean WebSocket clients,
//! one task each on one thread, so that a thousand of them are not the
//! limit. Each counts the `room-msg` packets carrying the run's token;
//! every loop is bounded by the run's deadline, and only loopback
//! addresses are accepted.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::loadgen::Error;
use crate::loadgen::ensure_loopback;
use crate::sioload::WsSession;

/// What to run.
#[derive(Clone, Debug)]
pub struct ClusterLoadConfig {
    /// The nodes (127.0.0.1:PORT); clients go round-robin, the
    /// broadcasting client to the first.
    pub nodes: Vec<SocketAddr>,
    /// Clients in the room, over all nodes.
    pub clients: usize,
    /// Broadcasts to the room.
    pub broadcasts: usize,
    /// Bytes of text in each broadcast.
    pub size: usize,
    /// The whole run's limit.
    pub timeout: Duration,
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
}

impl ClusterLoadReport {
    /// Deliveries per second.
    pub fn rate(&self) -> f64 {
        self.deliveries as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
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

    let start = Instant::now();
    let mut readers = JoinSet::new();
    for mut ws in members {
        let (token, want) = (token.clone(), config.broadcasts);
        readers.spawn(async move {
            let marker = format!("42[\"room-msg\",\"{token}");
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
                } else if text.starts_with(marker.as_bytes()) {
                    got += 1;
                    last = Instant::now();
                }
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), ws.close()).await;
            (got, last)
        });
    }

    let mut driver = WsSession::connect(first, &first.to_string()).await?;
    let body = format!(
        "{token}{}",
        "x".repeat(config.size.saturating_sub(token.len()))
    );
    for id in 1..=config.broadcasts {
        let event = format!("42{id}[\"to-room\",\"{room}\",\"{body}\"]");
        driver.send(event.as_bytes()).await?;
    }
    // The acks ("ok" once published), read so the node's writes never block.
    let mut acked = 0;
    while acked < config.broadcasts && Instant::now() < deadline {
        let Ok(Ok(packet)) = tokio::time::timeout_at(deadline.into(), driver.next_packet()).await
        else {
            break;
        };
        let text = driver.text(packet);
        if text == b"2" {
            driver.send(b"3").await?;
        } else if text.starts_with(b"43") {
            acked += 1;
        }
    }

    let mut deliveries = 0u64;
    let mut short_clients = 0;
    let mut end = start;
    while let Some(done) = readers.join_next().await {
        let (got, last) = done.map_err(|e| Error::Protocol(e.to_string()))?;
        deliveries += got as u64;
        if got < config.broadcasts {
            short_clients += 1;
        }
        end = end.max(last);
    }
    let _ = tokio::time::timeout(Duration::from_millis(200), driver.close()).await;
    Ok(ClusterLoadReport {
        clients: config.clients,
        broadcasts: config.broadcasts,
        deliveries,
        elapsed: end.saturating_duration_since(start),
        short_clients,
    })
}
