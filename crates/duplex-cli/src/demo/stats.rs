//! The demo server's counters, served as JSON at `/stats`.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

use serde_json::{Value, json};

/// A transport the demo counts connections of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Transport {
    /// The page's plain WebSocket (`/ws`).
    WebSocket,
    /// The page's long-polling client (`/poll`).
    Polling,
    /// The page's Server-Sent Events client (`/sse`).
    Sse,
    /// Socket.IO clients (`/socket.io/`).
    SocketIo,
    /// STOMP over WebSocket (`/stomp`).
    Stomp,
    /// WebSocket echo (`/echo`).
    Echo,
}

impl Transport {
    /// Every transport, in the order `/stats` lists them.
    pub(crate) const ALL: [Transport; 6] = [
        Transport::WebSocket,
        Transport::Polling,
        Transport::Sse,
        Transport::SocketIo,
        Transport::Stomp,
        Transport::Echo,
    ];

    /// The name the page and `/stats` use.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Transport::WebSocket => "websocket",
            Transport::Polling => "polling",
            Transport::Sse => "sse",
            Transport::SocketIo => "socket.io",
            Transport::Stomp => "stomp",
            Transport::Echo => "echo",
        }
    }

    fn index(self) -> usize {
        match self {
            Transport::WebSocket => 0,
            Transport::Polling => 1,
            Transport::Sse => 2,
            Transport::SocketIo => 3,
            Transport::Stomp => 4,
            Transport::Echo => 5,
        }
    }
}

/// Counters shared by every endpoint; all updates are relaxed atomics.
#[derive(Debug)]
pub(crate) struct Stats {
    started: Instant,
    open: [AtomicI64; 6],
    total: [AtomicU64; 6],
    messages_in: AtomicU64,
    messages_out: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    sessions_expired: AtomicU64,
    /// HTTP connections served now and ever, `[HTTP/1.1, HTTP/2]`; an
    /// HTTP/1.1 connection upgraded to a WebSocket leaves the open count
    /// (it is the WebSocket's from then on), an HTTP/2 one stays while any
    /// of its streams is open.
    http_open: [AtomicI64; 2],
    http_total: [AtomicU64; 2],
    /// WebSockets opened, `[HTTP/1.1 upgrade, HTTP/2 extended CONNECT]`.
    websockets_opened: [AtomicU64; 2],
}

/// The HTTP version of a connection, for `/stats`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HttpVersion {
    /// HTTP/1.1 (or 1.0).
    Http1,
    /// HTTP/2, over TLS (ALPN `h2`) or in cleartext (prior knowledge).
    Http2,
}

impl HttpVersion {
    fn index(self) -> usize {
        match self {
            HttpVersion::Http1 => 0,
            HttpVersion::Http2 => 1,
        }
    }
}

impl Stats {
    pub(crate) fn new() -> Stats {
        Stats {
            started: Instant::now(),
            open: Default::default(),
            total: Default::default(),
            messages_in: AtomicU64::new(0),
            messages_out: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            sessions_expired: AtomicU64::new(0),
            http_open: Default::default(),
            http_total: Default::default(),
            websockets_opened: Default::default(),
        }
    }

    /// Counts an HTTP connection of `version`, open until the guard is
    /// dropped: what a person reads to see whether the browser used HTTP/2.
    pub(crate) fn http_connection(
        self: &std::sync::Arc<Self>,
        version: HttpVersion,
    ) -> HttpConnectionGuard {
        let i = version.index();
        if let (Some(open), Some(total)) = (self.http_open.get(i), self.http_total.get(i)) {
            open.fetch_add(1, Ordering::Relaxed);
            total.fetch_add(1, Ordering::Relaxed);
        }
        HttpConnectionGuard {
            stats: self.clone(),
            index: i,
        }
    }

    /// A WebSocket opened over `version`: an HTTP/1.1 upgrade, or an
    /// HTTP/2 extended CONNECT stream (RFC 8441).
    pub(crate) fn websocket_opened(&self, version: HttpVersion) {
        if let Some(n) = self.websockets_opened.get(version.index()) {
            n.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a connection opening; it is counted closed when the guard
    /// is dropped.
    pub(crate) fn open(self: &std::sync::Arc<Self>, transport: Transport) -> ConnectionGuard {
        let i = transport.index();
        if let (Some(open), Some(total)) = (self.open.get(i), self.total.get(i)) {
            open.fetch_add(1, Ordering::Relaxed);
            total.fetch_add(1, Ordering::Relaxed);
        }
        ConnectionGuard {
            stats: self.clone(),
            index: i,
        }
    }

    /// A message of `bytes` bytes received from a client.
    pub(crate) fn received(&self, bytes: usize) {
        self.messages_in.fetch_add(1, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// A message of `bytes` bytes sent to a client.
    pub(crate) fn sent(&self, bytes: usize) {
        self.messages_out.fetch_add(1, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// A polling or SSE session ended because its client stopped coming.
    pub(crate) fn expired(&self) {
        self.sessions_expired.fetch_add(1, Ordering::Relaxed);
    }

    /// Connections open on `transport` now.
    pub(crate) fn open_count(&self, transport: Transport) -> i64 {
        self.open
            .get(transport.index())
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// The `/stats` document; `extra` adds connection counts the demo does
    /// not track itself (SockJS sessions, Socket.IO connections).
    pub(crate) fn to_json(&self, extra: &[(&str, i64)]) -> Value {
        let mut connections = serde_json::Map::new();
        let mut totals = serde_json::Map::new();
        for t in Transport::ALL {
            let i = t.index();
            let open = self.open.get(i).map_or(0, |c| c.load(Ordering::Relaxed));
            let total = self.total.get(i).map_or(0, |c| c.load(Ordering::Relaxed));
            connections.insert(t.as_str().to_owned(), json!(open));
            totals.insert(t.as_str().to_owned(), json!(total));
        }
        for (name, count) in extra {
            connections.insert((*name).to_owned(), json!(count));
        }
        json!({
            "uptime_ms": u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "connections": connections,
            "connections_total": totals,
            "messages": {
                "in": self.messages_in.load(Ordering::Relaxed),
                "out": self.messages_out.load(Ordering::Relaxed),
            },
            "bytes": {
                "in": self.bytes_in.load(Ordering::Relaxed),
                "out": self.bytes_out.load(Ordering::Relaxed),
            },
            "sessions_expired": self.sessions_expired.load(Ordering::Relaxed),
            "http": self.http_json(),
        })
    }

    /// Connections by HTTP version and WebSockets by how they were opened.
    fn http_json(&self) -> Value {
        let load_i =
            |a: &[AtomicI64; 2], i: usize| a.get(i).map_or(0, |c| c.load(Ordering::Relaxed));
        let load_u =
            |a: &[AtomicU64; 2], i: usize| a.get(i).map_or(0, |c| c.load(Ordering::Relaxed));
        json!({
            "connections": {
                "http/1.1": load_i(&self.http_open, 0),
                "h2": load_i(&self.http_open, 1),
            },
            "connections_total": {
                "http/1.1": load_u(&self.http_total, 0),
                "h2": load_u(&self.http_total, 1),
            },
            "websockets_opened": {
                "http/1.1 upgrade": load_u(&self.websockets_opened, 0),
                "h2 extended connect": load_u(&self.websockets_opened, 1),
            },
        })
    }
}

/// Counts one open connection until dropped.
#[derive(Debug)]
pub(crate) struct ConnectionGuard {
    stats: std::sync::Arc<Stats>,
    index: usize,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if let Some(open) = self.stats.open.get(self.index) {
            open.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Counts one open HTTP connection until dropped.
#[derive(Debug)]
pub(crate) struct HttpConnectionGuard {
    stats: std::sync::Arc<Stats>,
    index: usize,
}

impl Drop for HttpConnectionGuard {
    fn drop(&mut self) {
        if let Some(open) = self.stats.http_open.get(self.index) {
            open.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn connections_are_counted_while_their_guard_lives() {
        let stats = Arc::new(Stats::new());
        let a = stats.open(Transport::Sse);
        let b = stats.open(Transport::Sse);
        assert_eq!(stats.open_count(Transport::Sse), 2);
        drop(a);
        assert_eq!(stats.open_count(Transport::Sse), 1);
        drop(b);
        let doc = stats.to_json(&[("sockjs", 3)]);
        assert_eq!(doc["connections"]["sse"], 0);
        assert_eq!(doc["connections_total"]["sse"], 2);
        assert_eq!(doc["connections"]["sockjs"], 3);
    }

    #[test]
    fn messages_and_bytes_add_up() {
        let stats = Stats::new();
        stats.received(5);
        stats.received(7);
        stats.sent(100);
        stats.expired();
        let doc = stats.to_json(&[]);
        assert_eq!(doc["messages"]["in"], 2);
        assert_eq!(doc["bytes"]["in"], 12);
        assert_eq!(doc["messages"]["out"], 1);
        assert_eq!(doc["bytes"]["out"], 100);
        assert_eq!(doc["sessions_expired"], 1);
    }

    #[test]
    fn http_versions_and_websocket_openings_are_counted() {
        let stats = Arc::new(Stats::new());
        let h1 = stats.http_connection(HttpVersion::Http1);
        let h2 = stats.http_connection(HttpVersion::Http2);
        stats.websocket_opened(HttpVersion::Http2);
        stats.websocket_opened(HttpVersion::Http2);
        stats.websocket_opened(HttpVersion::Http1);
        drop(h1);
        let doc = stats.to_json(&[]);
        assert_eq!(doc["http"]["connections"]["http/1.1"], 0);
        assert_eq!(doc["http"]["connections"]["h2"], 1);
        assert_eq!(doc["http"]["connections_total"]["http/1.1"], 1);
        assert_eq!(doc["http"]["websockets_opened"]["h2 extended connect"], 2);
        assert_eq!(doc["http"]["websockets_opened"]["http/1.1 upgrade"], 1);
        drop(h2);
    }
}
